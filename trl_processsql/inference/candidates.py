"""Candidates from completions: each completion's SQL, how it ran, its rows and, with a PRM, its step scores.

The steps are executed and scored by :func:`trl_processsql.prm.scoring.score_steps`, the path GRPO and the demo take too.
"""

from __future__ import annotations

import os
from typing import Sequence

from ..cocte import CoCTE, StepResult
from ..prm.scoring import executed_steps, score_steps
from .selection import Candidate

__all__ = ["candidate_status", "score_candidates"]


def candidate_status(cocte: CoCTE, views: Sequence[StepResult]) -> str:
    """How the candidate's SQL ran: its final step's status, ``no_sql`` or ``incomplete`` (no final statement)."""
    if not views:
        return "no_sql"
    if cocte.steps[-1].name is not None:
        return "incomplete"
    return views[-1].result.status


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
    coctes, views = executed_steps(completions, db_paths, executor, prm)
    scores = score_steps(prm, prompts, views) if prm is not None else [None] * len(views)
    candidates = []
    for text, cocte, steps, step_scores in zip(completions, coctes, views, scores):
        status = candidate_status(cocte, steps)
        rows = steps[-1].result.rows if status == "ok" else ()
        candidates.append(Candidate(cocte.sql, status, rows, step_scores, text))
    return candidates
