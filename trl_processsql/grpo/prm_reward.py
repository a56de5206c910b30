"""A process reward model as a GRPO reward: execute every step, score it, aggregate.

GRPO's ``reward_funcs`` accepts sequence-classification models only, so a token-level PRM is
wrapped in this callable instead. :meth:`PRMReward.step_scores` is also what
:class:`PRMGRPOTrainer` uses for per-token advantages, so both read the PRM the same way.
"""

from __future__ import annotations

import os
from typing import Sequence

from ..cocte import CoCTE, StepResult, execute_steps_many, parse_cocte
from ..inference.scoring import prm_view_rows, score_steps
from ..prm.aggregation import aggregate, weighted_mean
from ..prm.model import ProcessRewardModel
from ..rewards import completion_text
from ..sql import SQLExecutor
from .advantages import step_weights

__all__ = ["PRMReward", "prompt_text"]

def prompt_text(prompt) -> str:
    """The PRM's prompt: a string as it is, a conversation's last user message.

    >>> prompt_text([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Question: ..."}])
    'Question: ...'
    """
    if isinstance(prompt, str):
        return prompt
    users = [m.get("content", "") for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
    return str(users[-1]) if users else ""


class PRMReward:
    """Scores completions with a PRM as inference does (:func:`~trl_processsql.inference.scoring.score_steps`).

    Called as a TRL reward function, it returns the trajectory score (``aggregation`` of the step
    scores, weighted by ``weighting`` when that is ``prm_entropy``); it reads the ``db_path`` column.
    """

    __name__ = "prm"

    def __init__(self, prm: ProcessRewardModel, executor: SQLExecutor, aggregation: str = "min", weighting: str = "none"):
        self.prm, self.executor, self.aggregation, self.weighting = prm, executor, aggregation, weighting

    def step_scores(
        self, prompts: Sequence, texts: Sequence[str], db_paths: Sequence[str]
    ) -> tuple[list[CoCTE], list[list[StepResult]], list[list[float]]]:
        """Parse, execute and score every step of every completion text."""
        coctes = [parse_cocte(text) for text in texts]
        views = execute_steps_many([(c, os.fspath(p)) for c, p in zip(coctes, db_paths)], self.executor, view_rows=prm_view_rows(self.prm))
        return coctes, views, score_steps(self.prm, [prompt_text(p) for p in prompts], views)

    def __call__(self, prompts, completions, db_path, log_metric=None, **kwargs) -> list[float]:
        texts = [completion_text(c) for c in completions]
        _, _, scores = self.step_scores(prompts, texts, db_path)
        rewards = []
        for row in scores:
            if not row:
                rewards.append(self.prm.failure_floor)
            elif self.weighting == "prm_entropy":
                rewards.append(weighted_mean(row, step_weights("prm_entropy", row)))
            else:
                rewards.append(aggregate(row, self.aggregation))
        if log_metric is not None and rewards:
            log_metric("prm/trajectory_score", sum(rewards) / len(rewards))
        return rewards
