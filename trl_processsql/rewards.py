"""Reward functions for TRL's GRPO: execution accuracy, CoCTE format, executable steps.

Each is a plain callable with TRL's reward signature, ``f(prompts, completions, completion_ids,
**dataset_columns, log_metric=..., ...) -> list[float | None]``, reading the dataset columns
``db_path`` (the SQLite file) and ``gold_sql``. Completions may be plain text or conversational
(the assistant message's content is read). SQL runs in one shared
:class:`~trl_processsql.sql.SQLExecutor` per process (gold results cached), started on first use;
:func:`set_reward_executor` replaces it, e.g. to change the timeout.

:data:`REWARD_FUNCS` maps the names recipes use to the functions.
"""

from __future__ import annotations

import atexit
import os
from typing import Callable, Sequence

from .cocte import CoCTE, execute_steps_many, parse_cocte
from .sql import ExecutionLimits, SQLExecutor, judge

__all__ = [
    "REWARD_FUNCS",
    "bird_execution_accuracy_reward",
    "cocte_format_reward",
    "completion_text",
    "executable_steps_reward",
    "execution_accuracy_reward",
    "get_reward_executor",
    "set_reward_executor",
]

_EXECUTOR: SQLExecutor | None = None
REWARD_SQL_TIMEOUT = 10.0  # seconds per query for rewards: a slow prediction is a wrong one


def get_reward_executor() -> SQLExecutor:
    """The executor the reward functions share in this process, started on first use."""
    global _EXECUTOR
    if _EXECUTOR is None:
        _EXECUTOR = SQLExecutor(limits=ExecutionLimits(timeout=REWARD_SQL_TIMEOUT))
        atexit.register(_EXECUTOR.close)
    return _EXECUTOR


def set_reward_executor(executor: SQLExecutor) -> None:
    """Use ``executor`` for all reward functions of this process (the previous one is closed)."""
    global _EXECUTOR
    if _EXECUTOR is not None and _EXECUTOR is not executor:
        _EXECUTOR.close()
    _EXECUTOR = executor


def completion_text(completion) -> str:
    """The text of a completion: a string as it is, a conversation's last message content.

    >>> completion_text([{"role": "assistant", "content": "SELECT 1"}])
    'SELECT 1'
    """
    if isinstance(completion, str):
        return completion
    if completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content") or "")
    return ""


def _log(log_metric: Callable | None, name: str, value: float) -> None:
    if log_metric is not None:
        log_metric(name, value)


def _execution_accuracy(mode: str, completions, db_path, gold_sql, log_metric, prefix: str, test_suite_paths=None) -> list[float]:
    coctes = [parse_cocte(completion_text(c)) for c in completions]
    suites = [[p, *(extra or [])] for p, extra in zip(db_path, test_suite_paths or [None] * len(db_path))]
    verdicts = judge(get_reward_executor(), [c.sql for c in coctes], gold_sql, suites, mode=mode)
    n = max(len(verdicts), 1)
    _log(log_metric, f"{prefix}/valid_rate", sum(v.ran for v in verdicts) / n)
    _log(log_metric, f"{prefix}/timeout_rate", sum(v.statuses[0] == "timeout" for v in verdicts) / n)
    _log(log_metric, f"{prefix}/mean_steps", sum(len(c.steps) for c in coctes) / n)
    _log(log_metric, f"{prefix}/gold_failure_rate", sum(v.gold_statuses[0] != "ok" for v in verdicts) / n)
    return [float(v.correct) for v in verdicts]


def execution_accuracy_reward(
    completions: Sequence,
    db_path: Sequence[str],
    gold_sql: Sequence[str],
    log_metric: Callable | None = None,
    test_suite_paths: Sequence[Sequence[str]] | None = None,
    **kwargs,
) -> list[float]:
    """1.0 when the completion's SQL returns the gold result under Spider test-suite semantics, else 0.0.

    Errors and timeouts score 0. With a ``test_suite_paths`` column (for each row, more databases
    of the same schema: :func:`~trl_processsql.data.neighbour_databases`) the answer must match the
    gold on ``db_path`` and on every one of them, which rules out queries right by luck. Logs
    ``execution/valid_rate``, ``execution/timeout_rate`` and ``execution/mean_steps`` (on ``db_path``).

    >>> import sqlite3, tempfile, os
    >>> db = os.path.join(tempfile.mkdtemp(), "toy.sqlite")
    >>> with sqlite3.connect(db) as c:
    ...     _ = c.execute("CREATE TABLE t (x INTEGER)")
    ...     _ = c.execute("INSERT INTO t VALUES (1), (2)")
    >>> execution_accuracy_reward(["SELECT count(*) FROM t", "SELECT 3"], db_path=[db, db], gold_sql=["SELECT 2", "SELECT 2"])
    [1.0, 0.0]
    """
    return _execution_accuracy("spider", completions, db_path, gold_sql, log_metric, "execution", test_suite_paths)


def bird_execution_accuracy_reward(
    completions: Sequence,
    db_path: Sequence[str],
    gold_sql: Sequence[str],
    log_metric: Callable | None = None,
    test_suite_paths: Sequence[Sequence[str]] | None = None,
    **kwargs,
) -> list[float]:
    """:func:`execution_accuracy_reward` with BIRD's semantics (sets of rows, column order counts)."""
    return _execution_accuracy("bird", completions, db_path, gold_sql, log_metric, "execution_bird", test_suite_paths)


def cocte_format_reward(completions: Sequence, log_metric: Callable | None = None, **kwargs) -> list[float]:
    """1.0 for an answer that reads as a clean chain of CTEs (complete, parsed without fallback), else 0.0.

    >>> cocte_format_reward(["WITH a AS (SELECT 1 AS x)\\n\\nSELECT x FROM a", "Sorry, no idea.", "WITH a AS (SELECT"])
    [1.0, 0.0, 0.0]
    """
    coctes = [parse_cocte(completion_text(c)) for c in completions]
    rewards = [float(_well_formed(c)) for c in coctes]
    _log(log_metric, "cocte/well_formed_rate", sum(rewards) / max(len(rewards), 1))
    return rewards


def _well_formed(cocte: CoCTE) -> bool:
    return bool(cocte.steps) and not (cocte.fallback or cocte.truncated or cocte.parse_error)


def executable_steps_reward(
    completions: Sequence, db_path: Sequence[str], log_metric: Callable | None = None, **kwargs
) -> list[float]:
    """The share of the completion's steps whose view runs (0.0 for a completion with no step)."""
    coctes = [parse_cocte(completion_text(c)) for c in completions]
    views = execute_steps_many(list(zip(coctes, map(os.fspath, db_path))), get_reward_executor())
    rewards = [sum(v.result.ok for v in steps) / len(steps) if steps else 0.0 for steps in views]
    _log(log_metric, "steps/executable_share", sum(rewards) / max(len(rewards), 1))
    return rewards


REWARD_FUNCS: dict[str, Callable[..., list[float]]] = {
    "execution_accuracy": execution_accuracy_reward,
    "bird_execution_accuracy": bird_execution_accuracy_reward,
    "cocte_format": cocte_format_reward,
    "executable_steps": executable_steps_reward,
}
"""Reward functions by the name recipes use (``reward_funcs: [execution_accuracy, cocte_format]``)."""
