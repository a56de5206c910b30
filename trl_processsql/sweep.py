"""Accuracy against the sample budget: every selection method at k = 1, 2, 4, ..., N from one pool.

``trl-processsql predict`` keeps every candidate of every question (its SQL, status and PRM step
scores). :func:`sweep` replays the selection strategies of :mod:`.inference.selection` on the
first ``k`` candidates of each question (or, with ``resamples``, on random subsets of size ``k``,
averaged), so that the methods are compared on the same samples at every budget:

- ``pass@k``: some candidate is right (the ceiling any selection can reach);
- ``maj@k``: the execution vote;
- ``best-of-k (AGG)``: PRM best-of-N with execution filtering, step scores aggregated by ``AGG``;
- ``prm-vote@k (AGG)``: the PRM-weighted vote.

Each distinct candidate of a question runs once (the JSONL does not keep result rows) and is
judged against the gold by :func:`~trl_processsql.sql.judge`, the evaluator's judge; candidates
then carry a small token of their result class instead of their rows, so the strategies group
them exactly as on full rows.
"""

from __future__ import annotations

import csv
import json
import os
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from .data import database_path
from .evaluation import PredictionFileError
from .inference.selection import Candidate, best_of_n, majority_vote, prm_vote
from .prm.aggregation import AGGREGATIONS
from .sql import judge

__all__ = ["JudgedPool", "SweepResult", "budgets", "judge_pools", "load_records", "plot_sweep", "sweep"]


@dataclass
class JudgedPool:
    """One question's candidates, in sampled order, and whether each is right."""

    candidates: list[Candidate]
    correct: list[bool]


@dataclass
class SweepResult:
    """Accuracy of every method at every budget ``k``; ``greedy`` is the greedy answer's accuracy, if given."""

    ks: list[int]
    curves: dict[str, list[float]]
    questions: int
    settings: dict = field(default_factory=dict)
    greedy: float | None = None

    def save_json(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    def save_csv(self, path: str | os.PathLike) -> None:
        """One row per ``k``, one column per method (accuracies as fractions)."""
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["k", *self.curves, *(["greedy"] if self.greedy is not None else [])])
            for i, k in enumerate(self.ks):
                extra = [f"{self.greedy:.6f}"] if self.greedy is not None else []
                writer.writerow([k, *(f"{values[i]:.6f}" for values in self.curves.values()), *extra])

    def table(self) -> str:
        """The curves as a text table: one row per method, one column per ``k``."""
        width = max(len(name) for name in [*self.curves, "greedy"]) + 2
        lines = ["".ljust(width) + "".join(f"{'k=' + str(k):>8}" for k in self.ks)]
        for name, values in self.curves.items():
            lines.append(name.ljust(width) + "".join(f"{v:>8.1%}" for v in values))
        if self.greedy is not None:
            lines.append("greedy".ljust(width) + f"{self.greedy:>8.1%}")
        return "\n".join(lines)


def budgets(n: int) -> list[int]:
    """The budgets swept for pools of up to ``n`` candidates: powers of two below ``n``, then ``n``.

    >>> budgets(32), budgets(12), budgets(1)
    ([1, 2, 4, 8, 16, 32], [1, 2, 4, 8, 12], [1])
    """
    ks, k = [], 1
    while k < n:
        ks.append(k)
        k *= 2
    return ks + [n]


def load_records(path: str | os.PathLike, questions: Sequence[dict]) -> list[dict]:
    """The records of a ``predict`` JSONL file, checked against ``questions`` (index and database)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PredictionFileError(f"predictions file not found: {path}") from None
    records, seen = [], set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            index, candidates = record["index"], record["candidates"]
            if not all(isinstance(c["sql"], str) and isinstance(c["status"], str) for c in candidates):
                raise TypeError("a candidate's sql and status must be strings")
        except (json.JSONDecodeError, TypeError, KeyError) as exc:
            raise PredictionFileError(
                f"{path}, line {number}: expected a record of trl-processsql predict, with index and candidates ({exc!r})"
            ) from None
        if not isinstance(index, int) or not 0 <= index < len(questions) or index in seen:
            raise PredictionFileError(f"{path}, line {number}: index {index!r} is not a question index, or repeats one")
        if record.get("db_id", questions[index]["db_id"]) != questions[index]["db_id"]:
            raise PredictionFileError(
                f"{path}, line {number}: database {record['db_id']!r}, question {index} is on {questions[index]['db_id']!r} "
                "(are these the questions the predictions were made for?)"
            )
        if not candidates:
            raise PredictionFileError(f"{path}, line {number}: no candidates")
        seen.add(index)
        records.append(record)
    if not records:
        raise PredictionFileError(f"{path}: no predictions")
    return records


def judge_pools(
    records: Sequence[dict],
    questions: Sequence[dict],
    db_dir: str | os.PathLike,
    executor,
    *,
    mode: str = "spider",
    extra_sql: Sequence[str | None] = (),
    progress: bool = False,
) -> tuple[list[JudgedPool], list[bool], int]:
    """Run every distinct candidate query and gold query once; judge each distinct result once.

    Returns the pools in record order, the verdicts of ``extra_sql`` (one query per record, e.g.
    the greedy answers; ``None`` is wrong) and how many gold queries failed (their questions
    count as wrong, as in the evaluator).
    """
    paths = [os.fspath(database_path(db_dir, questions[r["index"]]["db_id"])) for r in records]
    golds = [questions[r["index"]]["gold_sql"] for r in records]
    # each distinct (question, SQL) is judged once; candidates that did not run keep their status
    wanted = sorted(
        {(k, c["sql"]) for k, r in enumerate(records) for c in r["candidates"] if c["status"] == "ok"}
        | {(k, sql) for k, sql in enumerate(extra_sql) if sql is not None}
    )
    # one verdict without a prediction per record says whether its gold ran
    found = judge(executor, [sql for _, sql in wanted] + [None] * len(records), [golds[k] for k, _ in wanted] + golds,
                  [paths[k] for k, _ in wanted] + paths, mode=mode, keys=True, progress=progress)
    verdicts = dict(zip(wanted, found))
    classes: dict = {}
    pools = []
    for k, (path, record) in enumerate(zip(paths, records)):
        candidates, correct = [], []
        for c in record["candidates"]:
            verdict = verdicts.get((k, c["sql"])) if c["status"] == "ok" else None
            status = c["status"] if verdict is None else verdict.statuses[0]
            token = ()
            if status == "ok":
                token = ((classes.setdefault((path, verdict.key), len(classes)),),)
            candidates.append(Candidate(c["sql"], status, token, c.get("prm_scores")))
            correct.append(verdict is not None and verdict.correct)
        pools.append(JudgedPool(candidates, correct))
    extra = [sql is not None and verdicts[(k, sql)].correct for k, sql in enumerate(extra_sql)]
    return pools, extra, sum(v.status == "gold_error" for v in found[len(wanted):])


def _methods(pools: Sequence[JudgedPool], aggregations: Sequence[str], mode: str) -> dict:
    """Method name -> function(candidates, correct) -> bool."""
    methods = {
        "pass@k": lambda cands, right: any(right),
        "maj@k": lambda cands, right: right[majority_vote(cands, mode=mode)],
    }
    if all(c.prm_scores is not None for pool in pools for c in pool.candidates):
        for agg in aggregations:
            methods[f"best-of-k ({agg})"] = lambda cands, right, a=agg: right[best_of_n(cands, aggregation=a)]
            methods[f"prm-vote@k ({agg})"] = lambda cands, right, a=agg: right[prm_vote(cands, aggregation=a, mode=mode)]
    return methods


def sweep(
    pools: Sequence[JudgedPool],
    *,
    aggregations: Sequence[str] = tuple(AGGREGATIONS),
    mode: str = "spider",
    resamples: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> SweepResult:
    """Accuracy of every method on subsets of size ``k`` of each pool, for ``k`` in :func:`budgets`.

    Without ``resamples`` the subset is the first ``k`` candidates (the samples a run with
    ``--n k`` would have drawn); with it, ``resamples`` random subsets of size ``k`` per question,
    each kept in sampled order, and the accuracies averaged. A pool smaller than ``k`` is used
    whole. PRM methods appear only when every candidate has PRM scores.
    """
    unknown = [a for a in aggregations if a not in AGGREGATIONS]
    if unknown:
        raise ValueError(f"unknown aggregation {unknown[0]!r}: choose from {', '.join(AGGREGATIONS)}")
    if resamples is not None and resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if not pools:
        raise ValueError("no pool of candidates to sweep")
    from tqdm.auto import tqdm

    methods = _methods(pools, aggregations, mode)
    ks = budgets(max(len(pool.candidates) for pool in pools))
    rng = random.Random(seed)
    totals = {name: [0.0] * len(ks) for name in methods}
    for pool in tqdm(pools, desc="sweeping budgets", unit="question", disable=not progress):
        size = len(pool.candidates)
        for j, k in enumerate(ks):
            if k >= size or resamples is None:
                subsets = [range(min(k, size))]
            else:
                subsets = [sorted(rng.sample(range(size), k)) for _ in range(resamples)]
            for name, method in methods.items():
                hits = sum(method([pool.candidates[i] for i in s], [pool.correct[i] for i in s]) for s in subsets)
                totals[name][j] += hits / len(subsets)
    curves = {name: [t / len(pools) for t in values] for name, values in totals.items()}
    settings = {"mode": mode, "subsets": "first k" if resamples is None else f"{resamples} random subsets of size k", "seed": seed}
    return SweepResult(ks, curves, len(pools), settings)


def plot_sweep(result: SweepResult, path: str | os.PathLike, *, title: str | None = None) -> None:
    """Draw accuracy against ``k`` (log2 axis), one line per method, as a PNG (matplotlib, Agg backend)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("drawing the curves needs matplotlib: pip install 'trl-processsql[plot]'") from None

    figure = Figure(figsize=(7.5, 4.8), dpi=150)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    colors = {agg: f"C{i + 2}" for i, agg in enumerate(AGGREGATIONS)}
    for name, values in result.curves.items():
        agg = name[name.find("(") + 1 : -1] if "(" in name else None
        style = {"pass@k": ("C0", ":"), "maj@k": ("C1", "-")}.get(name) or (colors[agg], "--" if name.startswith("prm-vote") else "-")
        axes.plot(result.ks, [100 * v for v in values], marker="o", markersize=3.5, color=style[0], linestyle=style[1], label=name)
    if result.greedy is not None:
        axes.axhline(100 * result.greedy, color="grey", linestyle="-.", linewidth=1, label="greedy")
    axes.set_xscale("log", base=2)
    axes.set_xticks(result.ks, [str(k) for k in result.ks])
    axes.minorticks_off()
    axes.set_xlabel("candidates per question (k)")
    axes.set_ylabel("execution accuracy (%)")
    axes.grid(True, alpha=0.3)
    axes.set_title(title or f"{result.questions} questions, {result.settings.get('subsets', '')}", fontsize=10)
    axes.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    figure.savefig(path, bbox_inches="tight")
