"""Candidates from completions: parse the chain of CTEs, execute every step, let the PRM score each.

The PRM reads each step exactly as in labelling and training (the step, then its executed view:
:func:`~trl_processsql.cocte.prm_completions`, or its format's reading: :mod:`trl_processsql.formats`)
after the prompt's user message, the same reading
as :class:`~trl_processsql.grpo.PRMReward`: a step whose view fails scores 0, a step past the
PRM's length limit 0.5 (no opinion).
"""

from __future__ import annotations

import os
from typing import Sequence

from ..cocte import CoCTE, StepResult, execute_steps_many, parse_cocte
from ..formats import FORMATS
from .selection import Candidate

__all__ = ["UNSCORED", "candidate_status", "score_candidates", "score_steps"]

UNSCORED = 0.5
"""The score of a step the PRM could not read (past its ``max_length``): no opinion either way."""


def candidate_status(cocte: CoCTE, views: Sequence[StepResult]) -> str:
    """How the candidate's SQL ran: its final step's status, ``no_sql`` or ``incomplete`` (no final statement)."""
    if not views:
        return "no_sql"
    if cocte.steps[-1].name is not None:
        return "incomplete"
    return views[-1].result.status


def score_steps(prm, prompts: Sequence[str], views: Sequence[Sequence[StepResult]]) -> list[list[float]]:
    """One PRM score per executed step (0 where the view failed); an empty list for a chain with no step."""
    live = [i for i, v in enumerate(views) if v]
    steps = getattr(prm, "format", FORMATS["processsql"]).prm_steps  # the PRM's own reading of a step and its view
    scored = prm.score_steps([prompts[i] for i in live], [steps(views[i]) for i in live]) if live else []
    scores: list[list[float]] = [[] for _ in views]
    for i, row in zip(live, scored):
        scores[i] = [0.0 if not view.result.ok else (UNSCORED if s is None else s) for view, s in zip(views[i], row)]
    return scores


def prm_view_rows(prm) -> int | None:
    """Rows a CTE step's view fetches for ``prm``: its format's (all of them for ``rewardsql``), else :data:`VIEW_ROWS`."""
    return getattr(prm, "format", FORMATS["processsql"]).view_rows


def score_candidates(
    prompts: Sequence[str],
    completions: Sequence[str],
    db_paths: Sequence[str | os.PathLike],
    executor,
    prm=None,
) -> list[Candidate]:
    """A :class:`Candidate` per completion: its SQL, final status and rows, and PRM step scores if ``prm``.

    ``prompts`` are the PRM's prompt texts (the user message, see
    :func:`~trl_processsql.prompts.build_prompt`); ``executor`` is an
    :class:`~trl_processsql.sql.SQLExecutor` or a :class:`~trl_processsql.sql.SQLiteSandbox`.
    """
    if not len(prompts) == len(completions) == len(db_paths):
        raise ValueError(f"{len(prompts)} prompts, {len(completions)} completions and {len(db_paths)} database paths")
    coctes = [parse_cocte(text) for text in completions]
    views = execute_steps_many([(c, os.fspath(p)) for c, p in zip(coctes, db_paths)], executor, view_rows=prm_view_rows(prm))
    scores = score_steps(prm, prompts, views) if prm is not None else [None] * len(views)
    candidates = []
    for text, cocte, steps, step_scores in zip(completions, coctes, views, scores):
        status = candidate_status(cocte, steps)
        rows = steps[-1].result.rows if status == "ok" else ()
        candidates.append(Candidate(cocte.sql, status, rows, step_scores, text))
    return candidates
