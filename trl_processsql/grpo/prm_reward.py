"""A process reward model as a GRPO reward: execute every step, score it, aggregate.

GRPO's ``reward_funcs`` accepts sequence-classification models only, so a token-level PRM is
wrapped in this callable instead. :meth:`PRMReward.step_scores` is also what
:class:`PRMGRPOTrainer` uses for per-token advantages, so both read the PRM the same way.
"""

from __future__ import annotations

from typing import Sequence

from ..cocte import CoCTE, StepResult
from ..prm.aggregation import aggregate, weighted_mean
from ..prm.model import ProcessRewardModel
from ..prm.scoring import score_chains
from ..rewards import completion_text
from ..sql import SQLExecutor
from .advantages import step_weights

__all__ = ["PRMReward"]


class PRMReward:
    """Scores completions with a PRM as inference does (:func:`~trl_processsql.prm.scoring.score_chains`).

    Called as a TRL reward function, it returns the trajectory score (``aggregation`` of the step
    scores, weighted by ``weighting`` when that is ``prm_entropy``); it reads the ``db_path`` column.
    """

    __name__ = "prm"

    def __init__(self, prm: ProcessRewardModel, executor: SQLExecutor, aggregation: str = "min", weighting: str = "none"):
        self.prm, self.executor, self.aggregation, self.weighting = prm, executor, aggregation, weighting

    def step_scores(
        self, prompts: Sequence, texts: Sequence[str], db_paths: Sequence[str]
    ) -> tuple[list[CoCTE], list[list[StepResult]], list[list[float]]]:
        """Parse, execute and score every step of every completion text (:func:`~trl_processsql.prm.scoring.score_chains`)."""
        return score_chains(self.prm, prompts, texts, db_paths, self.executor)

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
