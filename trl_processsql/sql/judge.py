"""One judge of predicted SQL: did the prediction return the gold query's result?

Every score of the project (rewards, evaluation, sweeps, labels, benchmarks) asks this question;
:func:`judge` answers it once, under Spider's or BIRD's semantics (:mod:`.compare`). Gold queries
run through the executor's cache (GRPO and evaluation ask for the same gold again and again), and
each prediction is compared with its gold in the worker process that ran it, so that its rows
need not travel back. :func:`judge_results` gives the same verdicts for results already at hand.

A question may be judged on several databases of one schema (a test suite): the prediction is
right only when it matches the gold on every one, and the verdict names the first where it did not.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Hashable, Sequence, Union

from .compare import get_comparator, gold_orders_rows
from .pool import _answer
from .sandbox import ExecutionResult

__all__ = ["Verdict", "judge", "judge_results"]

Databases = Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]


@dataclass(slots=True)  # not frozen: a frozen dataclass takes six times as long to make, and a batch makes thousands
class Verdict:
    """Whether one prediction returned the gold result, and if not, why.

    ``status`` is ``"ok"`` when prediction and gold ran everywhere (``correct`` then says whether
    the results matched), the prediction's status where it failed to run (``"error"``,
    ``"timeout"``, ``"rejected"``), ``"gold_error"`` when a gold query failed (the data is at
    fault: it scores 0 all the same), or ``"missing"`` when there was no prediction. ``failed_on``
    is the index of the first database where the prediction failed (None when right or missing);
    ``message`` says what happened there, naming the database when there are several.
    ``statuses`` and ``gold_statuses`` hold the status of the prediction and of the gold on each
    database, ``gold_seconds`` the gold's slowest run, and ``key`` the prediction's result key on
    the first database (:func:`~.compare.result_key`) when it was asked for and the prediction ran.
    """

    correct: bool
    status: str
    message: str = ""
    failed_on: int | None = None
    statuses: tuple[str, ...] = ()
    gold_statuses: tuple[str, ...] = ()
    gold_seconds: float = 0.0
    key: Hashable | None = None

    @property
    def ran(self) -> bool:
        """The prediction ran on the first database."""
        return bool(self.statuses) and self.statuses[0] == "ok"


def _suite(databases: Databases) -> list[str]:
    if isinstance(databases, (str, os.PathLike)):
        return [os.fspath(databases)]
    return [os.fspath(db) for db in databases]


def _where(suite: Sequence[str], k: int) -> str:
    """Where a failure happened, said only when the question has more than one database."""
    if len(suite) < 2 or not suite[k]:
        return ""
    return f" (on {os.path.basename(os.path.dirname(suite[k]))}/{os.path.basename(suite[k])})"


def _shape(rows: int, columns: int) -> str:
    return f"{rows} rows x {columns} columns"


def _verdict(suite: list[str], runs: list[tuple] | None, golds: list[ExecutionResult]) -> Verdict:
    """The verdict on one prediction from its runs, ``(result, row count, matched, key)`` on each
    database (None: no prediction), and the gold's results."""
    key = runs[0][3] if runs else None
    if len(golds) == 1:  # the commonest case, made without the searches over several databases
        gold = golds[0]
        if runs and runs[0][2]:
            return Verdict(True, "ok", "", None, ("ok",), ("ok",), gold.elapsed, key)
        verdict = Verdict(False, "ok", "", None, (runs[0][0].status,) if runs else (), (gold.status,), gold.elapsed, key)
        broken = 0 if gold.status != "ok" else None
        failed = 0
    else:
        verdict = Verdict(
            False,
            "ok",
            "",
            None,
            tuple([r[0].status for r in runs]) if runs is not None else (),
            tuple([g.status for g in golds]),
            max([g.elapsed for g in golds], default=0.0),
            key,
        )
        broken = next((k for k, g in enumerate(golds) if g.status != "ok"), None)
        failed = next((k for k, r in enumerate(runs) if not r[2]), None) if runs else None
    if broken is not None:
        g = golds[broken]
        verdict.status, verdict.failed_on = "gold_error", broken
        verdict.message = f"gold query {g.status}{_where(suite, broken)}: {g.message}"
        return verdict
    if runs is None:
        verdict.status, verdict.message = "missing", "no prediction for this question"
        return verdict
    if failed is None:
        verdict.correct = True
        return verdict
    (result, rows, _, _), gold = runs[failed], golds[failed]
    verdict.failed_on = failed
    if result.status != "ok":
        verdict.status, verdict.message = result.status, result.message + _where(suite, failed)
        return verdict
    columns = len(result.columns)
    if rows != len(gold.rows) or columns != len(gold.columns):
        why = f"result differs from gold: {_shape(rows, columns)}, gold has {_shape(len(gold.rows), len(gold.columns))}"
    else:
        why = f"result differs from gold ({_shape(rows, columns)} on both sides)"
    verdict.message = why + _where(suite, failed)
    return verdict


def judge(
    executor,
    predictions: Sequence[str | None],
    gold_sql: Sequence[str],
    databases: Sequence[Databases],
    *,
    mode: str = "spider",
    keys: bool = False,
    progress: bool = False,
) -> list[Verdict]:
    """Run every prediction and gold query on its database(s) and judge them in ``mode``.

    ``databases[i]`` is question ``i``'s database file, or a list of them (a test suite, its own
    database first). ``predictions[i]`` may be None (no prediction: judged ``"missing"``). Gold
    queries run through ``executor``'s cache; each prediction runs uncached and is compared in the
    worker that ran it. With ``keys=True`` each verdict also carries its result's key, for grouping
    predictions by result. Row order counts (Spider) when the gold query has ORDER BY.

    >>> import sqlite3, tempfile, os
    >>> from trl_processsql.sql import SQLExecutor
    >>> db = os.path.join(tempfile.mkdtemp(), "toy.sqlite")
    >>> with sqlite3.connect(db) as c:
    ...     _ = c.execute("CREATE TABLE t (x INTEGER)")
    >>> with SQLExecutor(num_workers=1) as executor:
    ...     verdicts = judge(executor, ["SELECT count(*) FROM t", "SELECT y FROM t", "SELECT 1"], ["SELECT 0"] * 3, [db] * 3)
    >>> [(v.correct, v.status) for v in verdicts]
    [(True, 'ok'), (False, 'error'), (False, 'ok')]
    >>> verdicts[2].message
    'result differs from gold (1 rows x 1 columns on both sides)'
    """
    get_comparator(mode)  # an unknown mode fails before any query runs
    if not len(predictions) == len(gold_sql) == len(databases):
        raise ValueError(f"{len(predictions)} predictions, {len(gold_sql)} gold queries and {len(databases)} databases")
    suites = [_suite(d) for d in databases]
    ends = list(itertools.accumulate(map(len, suites)))  # question i's gold results: golds[ends[i] - len(suites[i]):ends[i]]
    golds = executor.execute_many(
        [(db, sql) for suite, sql in zip(suites, gold_sql) for db in suite], cache=True, progress=progress and "gold queries"
    )
    items, against = [], []
    for suite, pred, sql, end in zip(suites, predictions, gold_sql, ends):
        if pred is not None:
            order_matters = gold_orders_rows(sql)
            for k, db in enumerate(suite, end - len(suite)):
                items.append((db, pred))
                against.append((mode, golds[k], order_matters))
    answers = executor.execute_compared(items, against, keys=keys, progress=progress and "predictions")
    verdicts, done = [], 0
    for suite, pred, end in zip(suites, predictions, ends):
        n, runs = len(suite), None
        if pred is not None:
            runs, done = answers[done : done + n], done + n
        verdicts.append(_verdict(suite, runs, golds[end - n : end]))
    return verdicts


def judge_results(
    predicted: Sequence[Sequence[ExecutionResult]],
    gold: Sequence[Sequence[ExecutionResult]],
    gold_sql: Sequence[str],
    *,
    mode: str = "spider",
    databases: Sequence[Databases] | None = None,
) -> list[Verdict]:
    """:func:`judge` on results already at hand: ``predicted[i]`` and ``gold[i]`` hold question
    ``i``'s :class:`~.sandbox.ExecutionResult`, one per database (a single result stands for a
    list of one). ``databases`` only names the databases in messages.

    >>> ran, other = ExecutionResult("ok", ((1,), (2,))), ExecutionResult("ok", ((2,), (1,)))
    >>> [v.correct for v in judge_results([ran, ran], [other, other], ["SELECT x FROM t", "SELECT x FROM t ORDER BY x"])]
    [True, False]
    """
    get_comparator(mode)
    verdicts = []
    for k, (preds, golds, sql) in enumerate(zip(predicted, gold, gold_sql)):
        preds, golds = _listed(preds), _listed(golds)
        order_matters = gold_orders_rows(sql)
        runs = [(p, *_answer(p, (mode, g.rows if g.ok else None, order_matters, False, False))[5:]) for p, g in zip(preds, golds)]
        suite = _suite(databases[k]) if databases is not None else [""] * len(golds)
        verdicts.append(_verdict(suite, runs, golds))
    return verdicts


def _listed(results) -> list:
    return list(results) if isinstance(results, (list, tuple)) else [results]
