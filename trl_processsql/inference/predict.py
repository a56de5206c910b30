"""The inference pipeline: questions -> sampled candidates -> execution -> PRM scores -> one answer each.

:func:`predict` yields one record per question, in the JSONL form that
:func:`~trl_processsql.evaluation.load_predictions` reads (``index`` and ``sql``), with every
candidate kept for analysis::

    {"index": 3, "db_id": "concert_singer", "question": "...", "sql": "WITH ...", "strategy": "best-of-n",
     "selected": 1, "candidates": [{"sql", "status", "prm_scores", "prm_score", "votes", "completion"}, ...]}

``prm_score`` is the aggregated PRM score (0 for a candidate that did not run; null without a
PRM), ``votes`` the number of candidates whose result equals this one's (0 if it did not run).
Questions whose database file is missing get no record: the evaluator reports them as skipped.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Iterator, Sequence

from ..data import database_path
from ..formats import FORMATS
from ..prompts import saved_prompt_style
from .beam import beam_search
from .candidates import score_candidates
from .selection import NEEDS_PRM, STRATEGIES, Candidate, best_of_n, result_groups, trajectory_score

__all__ = ["STRATEGY_NAMES", "candidate_records", "predict", "write_predictions"]

logger = logging.getLogger(__name__)

STRATEGY_NAMES = (*STRATEGIES, "beam")
"""Every strategy :func:`predict` runs."""


def candidate_records(candidates: Sequence[Candidate], *, aggregation: str = "min", mode: str = "spider") -> list[dict]:
    """The candidates as JSON objects, with their aggregated PRM score and their votes."""
    votes = [0] * len(candidates)
    for group in result_groups(candidates, mode):
        for i in group:
            votes[i] = len(group)
    return [
        {
            "sql": c.sql,
            "status": c.status,
            "prm_scores": c.prm_scores,
            "prm_score": None if c.prm_scores is None else trajectory_score(c, aggregation),
            "votes": v,
            "completion": c.completion,
        }
        for c, v in zip(candidates, votes)
    ]


def predict(
    questions: Sequence[dict],
    db_dir: str | os.PathLike,
    sampler,
    executor,
    *,
    strategy: str = "best-of-n",
    n: int = 8,
    prm=None,
    aggregation: str = "min",
    mode: str = "spider",
    beam_width: int = 4,
    max_steps: int = 8,
    chunk_size: int = 16,
    prompt_style: str | None = None,
    progress: bool = False,
) -> Iterator[dict]:
    """Answer every question (dicts from :func:`~trl_processsql.data.load_questions`); yields records.

    ``strategy`` is ``greedy`` (one completion; the sampler should decode greedily), ``vote``,
    ``best-of-n``, ``prm-vote`` (each over ``n`` samples) or ``beam`` (``beam_width`` chains kept,
    each extended by ``max(1, n // beam_width)`` sampled steps per round, at most ``max_steps``
    rounds). ``mode`` says when two results are equal (see :func:`~trl_processsql.sql.compare.result_key`).
    Questions go through in chunks of ``chunk_size``, so records come out while the rest run.
    ``prompt_style`` defaults to the one the policy was trained with (recorded in its config).
    """
    if strategy not in STRATEGY_NAMES:
        raise ValueError(f"unknown strategy {strategy!r}: choose one of {', '.join(STRATEGY_NAMES)}")
    if strategy in NEEDS_PRM and prm is None:
        raise ValueError(f"strategy {strategy!r} needs a process reward model")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    from tqdm.auto import tqdm

    model = getattr(sampler, "model", None)
    style = prompt_style or (saved_prompt_style(model.config) if model is not None else "full")
    policy_format = getattr(sampler, "format", FORMATS["processsql"])
    prm_format = getattr(prm, "format", policy_format)

    def prompts_of(input_format, chunk: list[int]) -> list[str]:
        """Each question's prompt as ``input_format`` writes it (the released checkpoints' own, or ``build_prompt``'s)."""
        return [input_format.question_prompt(questions[i]["question"], paths[i], questions[i].get("evidence", ""), style=style) for i in chunk]

    paths = [database_path(db_dir, q["db_id"]) for q in questions]
    runnable = [i for i, path in enumerate(paths) if path.is_file()]
    if len(runnable) < len(questions):
        missing = sorted({questions[i]["db_id"] for i in range(len(questions)) if not paths[i].is_file()})
        logger.warning("%d questions skipped, database file missing: %s", len(questions) - len(runnable), ", ".join(missing))
    with tqdm(total=len(runnable), desc=f"predicting ({strategy})", unit="question", disable=not progress) as bar:
        for start in range(0, len(runnable), chunk_size):
            chunk = runnable[start : start + chunk_size]
            policy_prompts = prompts_of(policy_format, chunk)
            prompts = policy_prompts if prm_format == policy_format else prompts_of(prm_format, chunk)  # the PRM's
            conversations = [[{"role": "user", "content": prompt}] for prompt in policy_prompts]
            chunk_paths = [paths[i] for i in chunk]
            if strategy == "beam":
                pools = beam_search(
                    conversations,
                    prompts,
                    chunk_paths,
                    sampler,
                    prm,
                    executor,
                    beam_width=beam_width,
                    expansions=max(1, n // beam_width),
                    max_steps=max_steps,
                    aggregation=aggregation,
                )
                chosen = [best_of_n(pool, aggregation=aggregation) for pool in pools]
            else:
                samples = sampler.sample(conversations, 1 if strategy == "greedy" else n)
                flat = score_candidates(
                    [p for p, row in zip(prompts, samples) for _ in row],
                    [text for row in samples for text in row],
                    [path for path, row in zip(chunk_paths, samples) for _ in row],
                    executor,
                    prm,
                )
                pools, at = [], 0
                for row in samples:
                    pools.append(flat[at : at + len(row)])
                    at += len(row)
                chosen = [STRATEGIES[strategy](pool, aggregation=aggregation, mode=mode) for pool in pools]
            for i, pool, pick in zip(chunk, pools, chosen):
                question = questions[i]
                yield {
                    "index": question.get("index", i),
                    "db_id": question["db_id"],
                    "question": question["question"],
                    "sql": pool[pick].sql,
                    "strategy": strategy,
                    "selected": pick,
                    "candidates": candidate_records(pool, aggregation=aggregation, mode=mode),
                }
            bar.update(len(chunk))


def write_predictions(records, path: str | os.PathLike) -> int:
    """Write records as JSONL, one line as each comes (flushed); returns how many were written."""
    count = 0
    with open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            count += 1
    return count


PREDICTION_COLUMNS = {
    "index": "position of the question in the questions file",
    "db_id": "the database",
    "question": "the question",
    "sql": "the chosen answer",
    "strategy": "how it was chosen (greedy, vote, best-of-n, prm-vote, beam)",
    "selected": "index of the chosen candidate",
    "candidates": "every candidate: its SQL, execution status, PRM step scores and score, votes, raw completion",
}


def push_predictions(path: str | os.PathLike, repo_id: str, *, model: str, strategy: str, private: bool = False, token=None) -> str:
    """Push a predictions JSONL file to the Hub as a dataset with its card; returns the URL."""
    from datasets import Dataset

    from ..hub import push_dataset

    records = Dataset.from_json(str(path))
    ran = sum(c["status"] == "ok" for row in records["candidates"] for c in row)
    total = sum(len(row) for row in records["candidates"])
    return push_dataset(
        records,
        repo_id,
        private=private,
        token=token,
        kind="predictions",
        title=f"Predictions of {model} ({strategy})",
        description=f"Text-to-SQL predictions of `{model}`, chosen by `{strategy}`, with every candidate kept for analysis.",
        columns=PREDICTION_COLUMNS,
        stats={"questions": str(len(records)), "candidates that run": f"{ran} of {total}"},
        command=f"trl-processsql predict --model {model} --strategy {strategy} --output {Path(path).name}",
    )
