"""Accuracy against the sample budget: every selection method at k = 1, 2, 4, ..., N from one pool.

``trl-processsql predict`` keeps every candidate of every question (its SQL, status and PRM step
scores). :func:`sweep` replays the selection strategies of :mod:`.inference.selection` on the
first ``k`` candidates of each question (or, with ``resamples``, on random subsets of size ``k``,
averaged), so that the methods are compared on the same samples at every budget:

- ``pass@k``: some candidate is right (the ceiling any selection can reach);
- ``maj@k``: the execution vote;
- ``best-of-k (AGG)``: PRM best-of-N with execution filtering, step scores aggregated by ``AGG``;
- ``prm-vote@k (AGG)``: the PRM-weighted vote.

Each distinct candidate query runs once (the JSONL does not keep result rows) and is judged
against the gold once with the evaluator's comparator; candidates then carry a small token of
their result class instead of their rows, so the strategies group them exactly as on full rows.
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
from .sql import get_comparator, gold_orders_rows, result_key

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
    compare = get_comparator(mode)
    paths = [os.fspath(database_path(db_dir, questions[r["index"]]["db_id"])) for r in records]
    golds = [questions[r["index"]]["gold_sql"] for r in records]
    gold_results = executor.execute_many(list(zip(paths, golds)), cache=True, progress=progress and "gold queries")
    wanted = sorted(
        {(path, c["sql"]) for path, r in zip(paths, records) for c in r["candidates"] if c["status"] == "ok"}
        | {(path, sql) for path, sql in zip(paths, extra_sql) if sql is not None}
    )
    results = dict(zip(wanted, executor.execute_many(wanted, progress=progress and "candidate queries")))
    classes: dict = {}
    verdicts: dict = {}

    def judge(path: str, sql: str, gold, gold_sql: str) -> bool:
        if (path, sql) not in verdicts:
            result = results[(path, sql)]
            verdicts[(path, sql)] = result.ok and gold.ok and compare(result.rows, gold.rows, gold_orders_rows(gold_sql))
        return verdicts[(path, sql)]

    pools = []
    for path, record, gold, gold_sql in zip(paths, records, gold_results, golds):
        candidates, correct = [], []
        for c in record["candidates"]:
            result = results.get((path, c["sql"])) if c["status"] == "ok" else None
            status = c["status"] if result is None else result.status
            token = ()
            if status == "ok":
                key = (path, result_key(result.rows, mode))
                token = ((classes.setdefault(key, len(classes)),),)
            candidates.append(Candidate(c["sql"], status, token, c.get("prm_scores")))
            correct.append(status == "ok" and judge(path, c["sql"], gold, gold_sql))
        pools.append(JudgedPool(candidates, correct))
    extra = [sql is not None and judge(path, sql, gold, g) for path, sql, gold, g in zip(paths, extra_sql, gold_results, golds)]
    return pools, extra, sum(not g.ok for g in gold_results)


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
