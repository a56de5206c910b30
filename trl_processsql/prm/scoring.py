"""Step scoring: parse a completion into its chain of CTEs, execute every step, let the PRM score each.

The one path from text to step scores that GRPO's rewards and advantages, inference's candidates and
the demo all take, so the PRM reads a step at inference exactly as in labelling and training: the
prompt's user message, then each step and its executed view (:func:`~trl_processsql.cocte.prm_completions`,
or its format's reading, :mod:`trl_processsql.formats`). A step whose view fails scores 0; a step past
the PRM's length limit :data:`UNSCORED` (no opinion). The PRM is any object with ``score_steps(prompts,
steps)`` (a :class:`~trl_processsql.prm.ProcessRewardModel`, an ensemble, a test double): nothing here
imports torch.
"""

from __future__ import annotations

import os
from typing import Sequence

from ..cocte import CoCTE, StepResult, execute_steps_many, parse_cocte
from ..formats import FORMATS

__all__ = ["UNSCORED", "executed_steps", "prm_view_rows", "prompt_text", "score_chains", "score_steps"]

UNSCORED = 0.5
"""The score of a step the PRM could not read (past its ``max_length``): no opinion either way."""


def prompt_text(prompt) -> str:
    """The PRM's prompt: a string as it is, a conversation's last user message.

    >>> prompt_text([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Question: ..."}])
    'Question: ...'
    """
    if isinstance(prompt, str):
        return prompt
    users = [m.get("content", "") for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
    return str(users[-1]) if users else ""


def prm_view_rows(prm) -> int | None:
    """Rows a CTE step's view fetches for ``prm``: its format's (all of them for ``rewardsql``), else :data:`VIEW_ROWS`."""
    return getattr(prm, "format", FORMATS["processsql"]).view_rows


def executed_steps(
    texts: Sequence[str], db_paths: Sequence[str | os.PathLike], executor, prm=None
) -> tuple[list[CoCTE], list[list[StepResult]]]:
    """Each completion text parsed into its chain of CTEs, and every step executed (with the view rows ``prm`` reads).

    ``executor`` is an :class:`~trl_processsql.sql.SQLExecutor` or a :class:`~trl_processsql.sql.SQLiteSandbox`.
    """
    coctes = [parse_cocte(text) for text in texts]
    views = execute_steps_many([(c, os.fspath(p)) for c, p in zip(coctes, db_paths)], executor, view_rows=prm_view_rows(prm))
    return coctes, views


def score_steps(prm, prompts: Sequence[str], views: Sequence[Sequence[StepResult]]) -> list[list[float]]:
    """One PRM score per executed step (0 where the view failed); an empty list for a chain with no step."""
    live = [i for i, v in enumerate(views) if v]
    steps = getattr(prm, "format", FORMATS["processsql"]).prm_steps  # the PRM's own reading of a step and its view
    scored = prm.score_steps([prompts[i] for i in live], [steps(views[i]) for i in live]) if live else []
    scores: list[list[float]] = [[] for _ in views]
    for i, row in zip(live, scored):
        scores[i] = [0.0 if not view.result.ok else (UNSCORED if s is None else s) for view, s in zip(views[i], row)]
    return scores


def score_chains(
    prm, prompts: Sequence, texts: Sequence[str], db_paths: Sequence[str | os.PathLike], executor
) -> tuple[list[CoCTE], list[list[StepResult]], list[list[float]]]:
    """Parse, execute and score every step of every completion text; ``prompts`` are strings or conversations."""
    coctes, views = executed_steps(texts, db_paths, executor, prm)
    return coctes, views, score_steps(prm, [prompt_text(p) for p in prompts], views)
