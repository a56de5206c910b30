"""Prompts within the policy's reach: GRPO learns only from groups whose completions disagree.

GRPO's advantage is a completion's reward minus its group's mean, so a prompt the policy always
fails (or always solves) gives each of its completions an advantage of 0 and its step teaches
nothing, and a small policy fails most questions. Sampling the policy ``n`` times per question before
training and keeping the questions it answers sometimes but not always makes every group carry signal
(docs/history.md, "The method at CPU scale", records what it did there).

Answers that run are executed twice (once by the sampling pipeline, once by the judge); sampling
costs far more than either.
"""

from __future__ import annotations

import os
from typing import Sequence

from ..data import database_path
from ..sql.judge import judge
from .predict import predict

__all__ = ["pass_rates", "within_reach"]


def pass_rates(
    questions: Sequence[dict],
    db_dir: str | os.PathLike,
    sampler,
    executor,
    *,
    n: int = 8,
    mode: str = "spider",
    prompt_style: str | None = None,
    progress: bool = False,
) -> list[float | None]:
    """The share of ``n`` sampled answers per question whose result matches the gold's.

    ``questions`` are dicts from :func:`~trl_processsql.data.load_questions` (with ``gold_sql``);
    ``sampler`` samples with the temperature GRPO will use. A question whose database file is
    missing gets ``None``. Answers are judged by execution with ``mode``'s comparator, as in the
    evaluator; a failing gold query makes every answer wrong.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    positioned = [{**q, "index": i} for i, q in enumerate(questions)]
    records = list(predict(positioned, db_dir, sampler, executor, strategy="vote", n=n, mode=mode, prompt_style=prompt_style, progress=progress))
    # each distinct answer to a question is judged once; one that did not run is wrong without running again
    wanted = sorted({(r["index"], c["sql"]) for r in records for c in r["candidates"] if c["status"] == "ok"})
    found = judge(executor, [sql for _, sql in wanted], [questions[i]["gold_sql"] for i, _ in wanted],
                  [database_path(db_dir, questions[i]["db_id"]) for i, _ in wanted], mode=mode)
    right = {key for key, verdict in zip(wanted, found) if verdict.correct}
    rates: list[float | None] = [None] * len(questions)
    for record in records:
        answers = record["candidates"]
        rates[record["index"]] = sum(c["status"] == "ok" and (record["index"], c["sql"]) in right for c in answers) / len(answers)
    return rates


def within_reach(questions: Sequence[dict], rates: Sequence[float | None], *, low: float = 0.0, high: float = 1.0) -> list[dict]:
    """The questions whose pass rate lies strictly between ``low`` and ``high`` (``None`` rates are dropped).

    >>> within_reach([{"q": "a"}, {"q": "b"}, {"q": "c"}, {"q": "d"}], [0.0, 0.25, 1.0, None])
    [{'q': 'b'}]
    """
    if len(questions) != len(rates):
        raise ValueError(f"{len(questions)} questions but {len(rates)} pass rates")
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"need 0 <= low < high <= 1, got low={low}, high={high}")
    return [q for q, rate in zip(questions, rates) if rate is not None and low < rate < high]
