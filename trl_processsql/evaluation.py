"""Execution-accuracy (EX) evaluation of predicted SQL, with Spider or BIRD semantics.

Gold and predicted queries run through :class:`~trl_processsql.sql.SQLExecutor` (read-only
workers, per-query deadline, gold results cached) and are judged by
:func:`trl_processsql.sql.judge`. The report separates what a single accuracy hides: prediction
errors and timeouts (both score 0), gold queries that fail, and questions skipped because their
database file is missing.

Query rewrites: none by default. ``remove_distinct=True`` deletes every ``DISTINCT`` keyword
from gold and prediction before running them, as the Spider test-suite script does by default.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from . import __version__
from .data import database_path, load_questions, neighbour_databases
from .sql import ExecutionLimits, SQLExecutor, Verdict, get_comparator, judge

__all__ = ["EvaluationReport", "PredictionFileError", "evaluate", "evaluate_files", "load_predictions", "print_report", "drop_distinct"]

_BIRD_SEPARATOR = "\t----- bird -----\t"
_SHOWN_GOLD_FAILURES = 10


class PredictionFileError(ValueError):
    """A predictions file that cannot be read, with the place that is wrong."""


@dataclass
class EvaluationReport:
    """What :func:`evaluate` found; ``save`` writes it as report.json.

    ``examples[i]`` is ``{"index", "db_id", "correct", "status", "message"}`` in question order,
    where ``status`` is ``"ok"`` (the prediction ran; ``correct`` says whether it matched),
    ``"error"``, ``"timeout"``, ``"rejected"``, ``"missing"`` (no prediction for this index),
    ``"gold_error"`` or ``"skipped"`` (database file missing). With a test suite each example
    also has ``failed_on``: the first database (``<db_id>/<file>``) where the prediction failed,
    None when it matched on all.
    """

    totals: dict
    settings: dict
    examples: list[dict]
    by_difficulty: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """The result on one line: accuracy, counts, and what scored 0 apart from wrong answers."""
        t = self.totals
        return f"EX {t['accuracy']:.1%} ({t['correct']} of {t['n']}, {self.settings['mode']} semantics); {_zero_scores(t)}"

    def gold_failures(self) -> list[dict]:
        """The verdicts of questions whose gold query failed (scored 0: the data, not the prediction, is at fault)."""
        return [e for e in self.examples if e["status"] == "gold_error"]

    def save(self, path: str | os.PathLike) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def load_predictions(path: str | os.PathLike, questions: Sequence[dict]) -> list[str | None]:
    """Read predictions aligned with ``questions``; ``None`` marks a question with no prediction.

    ``.json``: BIRD's ``{"0": "SQL\\t----- bird -----\\tdb_id", ...}``; ``.jsonl``: lines
    ``{"index": i, "sql": "..."}``; anything else: one query per line (Spider), text after a
    tab ignored. Raises :class:`PredictionFileError` naming the line or key that is wrong.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PredictionFileError(f"predictions file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise PredictionFileError(f"{path}: not UTF-8 text ({exc})") from None
    if path.suffix == ".jsonl":
        return _read_jsonl(path, text, len(questions))
    if path.suffix == ".json":
        return _read_bird_json(path, text, questions)
    lines = text.splitlines()
    if lines and not lines[-1].strip() and len(lines) == len(questions) + 1:
        lines = lines[:-1]
    if len(lines) != len(questions):
        raise PredictionFileError(
            f"{path}: {len(lines)} lines of predictions for {len(questions)} questions (one query per line, in question order)"
        )
    return [line.split("\t", 1)[0] for line in lines]


def _read_jsonl(path: Path, text: str, n: int) -> list[str | None]:
    predictions: list[str | None] = [None] * n
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            index, sql = item["index"], item["sql"]
        except (json.JSONDecodeError, TypeError, KeyError) as exc:
            raise PredictionFileError(f'{path}, line {number}: expected {{"index": i, "sql": "..."}} ({exc})') from None
        if not isinstance(index, int) or not 0 <= index < n:
            raise PredictionFileError(f"{path}, line {number}: index {index!r} is not a question index (0..{n - 1})")
        if not isinstance(sql, str):
            raise PredictionFileError(f"{path}, line {number}: sql must be a string")
        if predictions[index] is not None:
            raise PredictionFileError(f"{path}, line {number}: a second prediction for index {index}")
        predictions[index] = sql
    return predictions


def _read_bird_json(path: Path, text: str, questions: Sequence[dict]) -> list[str | None]:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PredictionFileError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise PredictionFileError(f'{path}: expected BIRD\'s object {{"0": "SQL\\t----- bird -----\\tdb_id", ...}}')
    predictions: list[str | None] = [None] * len(questions)
    for key, value in raw.items():
        if not (isinstance(key, str) and key.isdigit() and int(key) < len(questions)):
            raise PredictionFileError(f"{path}: key {key!r} is not a question index (0..{len(questions) - 1})")
        if not isinstance(value, str):
            raise PredictionFileError(f"{path}: key {key!r}: the prediction must be a string")
        sql, _, db_id = value.partition(_BIRD_SEPARATOR)
        expected = questions[int(key)]["db_id"]
        if db_id and db_id.strip() != expected:
            raise PredictionFileError(f"{path}: key {key!r} names database {db_id.strip()!r}, the question is on {expected!r}")
        predictions[int(key)] = sql
    return predictions


def drop_distinct(sql: str) -> str:
    """Delete every DISTINCT keyword (the Spider test-suite's default rewrite), keeping all else as written.

    >>> drop_distinct("SELECT DISTINCT name, count(DISTINCT id) FROM t WHERE x = 'distinct'")
    "SELECT name, count(id) FROM t WHERE x = 'distinct'"
    """
    from sqlglot.errors import SqlglotError
    from sqlglot.tokens import Tokenizer, TokenType

    try:
        tokens = Tokenizer().tokenize(sql)
    except SqlglotError:
        return sql
    for token in reversed(tokens):
        if token.token_type == TokenType.DISTINCT:
            end = token.end + 1
            while end < len(sql) and sql[end] in " \t\n":
                end += 1
            sql = sql[: token.start] + sql[end:]
    return sql


def evaluate(
    questions: Sequence[dict],
    predictions: Sequence[str | None],
    db_dir: str | os.PathLike,
    *,
    mode: str = "spider",
    executor: SQLExecutor | None = None,
    timeout: float = 30.0,
    num_workers: int | None = None,
    remove_distinct: bool = False,
    test_suite_dir: str | os.PathLike | None = None,
    progress: bool = False,
) -> EvaluationReport:
    """Execute gold and predicted SQL for every question and judge them in ``mode``.

    ``questions`` are dicts as :func:`~trl_processsql.data.load_questions` returns them. Pass an
    ``executor`` to reuse running workers (its limits then apply); otherwise one is started with
    ``timeout`` and ``num_workers`` and closed at the end. Questions whose database file is missing
    are skipped; a ``db_dir`` that is not a folder, or that holds none of the databases, is a
    ``ValueError`` (there would be nothing to score).

    With ``test_suite_dir`` (Spider's test-suite layout, ``<dir>/<db_id>/*.sqlite``) every question
    is also judged on its database's neighbours (:func:`~trl_processsql.data.neighbour_databases`),
    after its own database: a prediction is right only if it matches the gold on all of them, and
    each example names in ``failed_on`` the first database where it did not.
    """
    if len(predictions) != len(questions):
        raise ValueError(f"{len(predictions)} predictions for {len(questions)} questions")
    get_comparator(mode)  # an unknown mode fails before any query runs
    rewrite = drop_distinct if remove_distinct else str
    if not Path(db_dir).is_dir():
        raise ValueError(f"database folder not found: {db_dir}")
    paths = [database_path(db_dir, q["db_id"]) for q in questions]
    present = {p: p.is_file() for p in set(paths)}
    runnable = [i for i, p in enumerate(paths) if present[p]]
    if questions and not runnable:
        names = sorted({q["db_id"] for q in questions})
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise ValueError(f"none of the databases the questions use is in {db_dir} (expected <db_id>/<db_id>.sqlite for {shown})")
    neighbours = {}
    if test_suite_dir is not None:
        if not Path(test_suite_dir).is_dir():
            raise ValueError(f"test suite folder not found: {test_suite_dir}")
        neighbours = {db_id: neighbour_databases(test_suite_dir, db_id) for db_id in {questions[i]["db_id"] for i in runnable}}
    suites = {i: [paths[i], *neighbours.get(questions[i]["db_id"], [])] for i in runnable}

    own_executor = executor is None
    if own_executor:
        executor = SQLExecutor(num_workers=num_workers, limits=ExecutionLimits(timeout=timeout))
    try:
        verdicts = judge(
            executor,
            [None if predictions[i] is None else rewrite(predictions[i]) for i in runnable],
            [rewrite(questions[i]["gold_sql"]) for i in runnable],
            [suites[i] for i in runnable],
            mode=mode,
            progress=progress,
        )
    finally:
        if own_executor:
            executor.close()
    verdict_by_index = dict(zip(runnable, verdicts))

    examples = []
    for i, question in enumerate(questions):
        example = {"index": i, "db_id": question["db_id"], "correct": False}
        verdict = verdict_by_index.get(i)
        if verdict is None:
            example.update(status="skipped", message=f"database not found: {paths[i]}")
        else:
            example.update(status=verdict.status, correct=verdict.correct, message=verdict.message)
            if test_suite_dir is not None and verdict.status not in ("gold_error", "missing"):
                example["failed_on"] = None if verdict.failed_on is None else _database_name(suites[i][verdict.failed_on])
        examples.append(example)

    settings = {
        "mode": mode,
        "timeout": executor.limits.timeout,
        "query_rewrites": ["remove DISTINCT"] if remove_distinct else [],
        "row_order": "counts when the gold SQL has ORDER BY" if mode == "spider" else "ignored",
        "versions": _versions(),
    }
    if test_suite_dir is not None:
        sizes = [len(s) for s in suites.values()]
        settings["test_suite"] = {
            "dir": str(test_suite_dir),
            "databases_per_question": sum(sizes) / len(sizes) if sizes else 0.0,
            "schemas_without_neighbours": sorted(db_id for db_id, found in neighbours.items() if not found),
        }
    return EvaluationReport(
        totals=_totals(examples, paths, verdicts),
        settings=settings,
        examples=examples,
        by_difficulty=_by_difficulty(questions, examples),
    )


def _database_name(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def _totals(examples: list[dict], paths: list[Path], verdicts: list[Verdict]) -> dict:
    statuses = Counter(e["status"] for e in examples)
    evaluated = [e for e in examples if e["status"] != "skipped"]
    correct = sum(e["correct"] for e in evaluated)
    return {
        "n": len(evaluated),
        "correct": correct,
        "accuracy": correct / len(evaluated) if evaluated else 0.0,
        "errors": statuses["error"] + statuses["rejected"],
        "timeouts": statuses["timeout"],
        "missing_predictions": statuses["missing"],
        "gold_failures": statuses["gold_error"],
        "skipped": statuses["skipped"],
        "skipped_databases": sorted({str(paths[e["index"]]) for e in examples if e["status"] == "skipped"}),
        "gold_slowest_seconds": max((v.gold_seconds for v in verdicts), default=0.0),
    }


def _by_difficulty(questions: Sequence[dict], examples: list[dict]) -> dict:
    groups: dict[str, list[bool]] = defaultdict(list)
    for question, example in zip(questions, examples):
        if question.get("difficulty") is not None and example["status"] != "skipped":
            groups[str(question["difficulty"])].append(example["correct"])
    return {name: {"n": len(v), "correct": sum(v), "accuracy": sum(v) / len(v)} for name, v in sorted(groups.items())}


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {"trl-processsql": __version__, "python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    try:
        found["sqlglot"] = version("sqlglot")
    except PackageNotFoundError:
        pass
    return found


def evaluate_files(
    questions_path: str | os.PathLike,
    db_dir: str | os.PathLike,
    predictions_path: str | os.PathLike,
    **kwargs,
) -> EvaluationReport:
    """:func:`evaluate` on files; ``predictions_path="gold"`` scores the gold queries themselves."""
    questions = load_questions(questions_path)
    if str(predictions_path) == "gold":
        predictions = [q["gold_sql"] for q in questions]
    else:
        predictions = load_predictions(predictions_path, questions)
    report = evaluate(questions, predictions, db_dir, **kwargs)
    report.settings.update(questions=str(questions_path), db_dir=str(db_dir), predictions=str(predictions_path))
    return report


def _zero_scores(t: dict) -> str:
    return (
        f"errors {t['errors']}, timeouts {t['timeouts']}, missing predictions {t['missing_predictions']}, "
        f"gold failures {t['gold_failures']}, skipped {t['skipped']}"
    )


def print_report(report: EvaluationReport) -> None:
    """A readable summary table on stdout."""
    t, s = report.totals, report.settings
    rows = [(name, g["n"], g["correct"], g["accuracy"]) for name, g in report.by_difficulty.items()]
    rows.append(("all", t["n"], t["correct"], t["accuracy"]))
    print(f"\nExecution accuracy, {s['mode']} semantics")
    print(f"{'':<12}{'n':>8}{'correct':>9}{'EX':>9}")
    for name, n, correct, accuracy in rows:
        print(f"{name:<12}{n:>8}{correct:>9}{accuracy:>8.1%}")
    print(_zero_scores(t))
    failures = report.gold_failures()
    if failures:
        print(f"gold queries that failed, scored 0 ({len(failures)}):")
        for example in failures[:_SHOWN_GOLD_FAILURES]:
            print(f"  question {example['index']} ({example['db_id']}): {example['message']}")
        if len(failures) > _SHOWN_GOLD_FAILURES:
            print(f"  ... and {len(failures) - _SHOWN_GOLD_FAILURES} more (every verdict is in the JSON report)")
    if t["skipped_databases"]:
        print("skipped (database file missing): " + ", ".join(t["skipped_databases"]))
    if "test_suite" in s:
        suite = s["test_suite"]
        print(f"test suite {suite['dir']}: {suite['databases_per_question']:.2f} databases per question", end="")
        missing = suite["schemas_without_neighbours"]
        print(f"; no neighbours for {', '.join(missing)}" if missing else "")
    rewrites = ", ".join(s["query_rewrites"]) or "none"
    print(f"timeout {s['timeout']:g} s (slowest gold query {t['gold_slowest_seconds']:.3f} s), query rewrites: {rewrites}")
