"""Reward functions for TRL's GRPO: execution accuracy, CoCTE format, executable steps.

Each has TRL's reward signature, ``f(prompts, completions, completion_ids, **dataset_columns,
log_metric=..., ...) -> list[float | None]``, reading the dataset columns ``db_path`` (the SQLite
file) and ``gold_sql``. Completions may be plain text or conversational (the assistant message's
content is read). The rewards that run SQL are classes holding the
:class:`~trl_processsql.sql.SQLExecutor` they run it in, so a trainer shares its own executor (and
its gold cache) with them: ``ExecutionAccuracyReward(executor)``. The plain functions of the same
names run in a default executor, started on first use.

:data:`REWARD_FUNCS` maps the names recipes use to the functions; :func:`bind_reward_func` turns
a name or one of these functions into the instance running in a given executor.
"""

from __future__ import annotations

import atexit
import os
import warnings
from typing import Callable, Sequence

from .cocte import CoCTE, execute_steps_many, parse_cocte
from .sql import ExecutionLimits, SQLExecutor, judge

__all__ = [
    "REWARD_FUNCS",
    "BirdExecutionAccuracyReward",
    "ExecutableStepsReward",
    "ExecutionAccuracyReward",
    "bind_reward_func",
    "bird_execution_accuracy_reward",
    "cocte_format_reward",
    "completion_text",
    "executable_steps_reward",
    "execution_accuracy_reward",
    "get_reward_executor",
    "set_reward_executor",
]

_EXECUTOR: SQLExecutor | None = None  # the plain functions' executor, started on first use
_DEFAULTS: dict[type, Callable] = {}
REWARD_SQL_TIMEOUT = 10.0  # seconds per query for rewards: a slow prediction is a wrong one


def _default_executor() -> SQLExecutor:
    global _EXECUTOR
    if _EXECUTOR is None:
        _EXECUTOR = SQLExecutor(limits=ExecutionLimits(timeout=REWARD_SQL_TIMEOUT))
        atexit.register(_EXECUTOR.close)
    return _EXECUTOR


def _default(reward_class: type) -> Callable:
    """The instance of ``reward_class`` that the plain function of the same reward calls."""
    if reward_class not in _DEFAULTS:
        _DEFAULTS[reward_class] = reward_class(_default_executor())
    return _DEFAULTS[reward_class]


def get_reward_executor() -> SQLExecutor:
    """The executor the plain reward functions run in (deprecated: give a reward class its executor)."""
    warnings.warn(
        "get_reward_executor is deprecated: give the executor to the reward, e.g. ExecutionAccuracyReward(executor)",
        FutureWarning,
        stacklevel=2,
    )
    return _default_executor()


def set_reward_executor(executor: SQLExecutor) -> None:
    """Run the plain reward functions in ``executor``, closing the previous one (deprecated)."""
    warnings.warn(
        "set_reward_executor is deprecated: give the executor to the reward, e.g. ExecutionAccuracyReward(executor)",
        FutureWarning,
        stacklevel=2,
    )
    global _EXECUTOR
    if _EXECUTOR is not None and _EXECUTOR is not executor:
        _EXECUTOR.close()
    _EXECUTOR = executor
    _DEFAULTS.clear()


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


def _execution_accuracy(
    executor: SQLExecutor, mode: str, completions, db_path, gold_sql, log_metric, prefix: str, test_suite_paths=None
) -> list[float]:
    coctes = [parse_cocte(completion_text(c)) for c in completions]
    suites = [[p, *(extra or [])] for p, extra in zip(db_path, test_suite_paths or [None] * len(db_path))]
    verdicts = judge(executor, [c.sql for c in coctes], gold_sql, suites, mode=mode)
    n = max(len(verdicts), 1)
    _log(log_metric, f"{prefix}/valid_rate", sum(v.ran for v in verdicts) / n)
    _log(log_metric, f"{prefix}/timeout_rate", sum(v.statuses[0] == "timeout" for v in verdicts) / n)
    _log(log_metric, f"{prefix}/mean_steps", sum(len(c.steps) for c in coctes) / n)
    _log(log_metric, f"{prefix}/gold_failure_rate", sum(v.gold_statuses[0] != "ok" for v in verdicts) / n)
    return [float(v.correct) for v in verdicts]


class ExecutionAccuracyReward:
    """1.0 when the completion's SQL returns the gold result under Spider test-suite semantics, else 0.0.

    Errors and timeouts score 0. With a ``test_suite_paths`` column (for each row, more databases
    of the same schema: :func:`~trl_processsql.data.neighbour_databases`) the answer must match the
    gold on ``db_path`` and on every one of them, which rules out queries right by luck. Logs
    ``execution/valid_rate``, ``execution/timeout_rate`` and ``execution/mean_steps`` (on ``db_path``).
    The SQL runs in ``executor``, which caches gold results.
    """

    __name__ = "execution_accuracy_reward"  # the name TRL logs the reward under
    mode, prefix = "spider", "execution"

    def __init__(self, executor: SQLExecutor):
        self.executor = executor

    def __call__(
        self,
        completions: Sequence,
        db_path: Sequence[str],
        gold_sql: Sequence[str],
        log_metric: Callable | None = None,
        test_suite_paths: Sequence[Sequence[str]] | None = None,
        **kwargs,
    ) -> list[float]:
        return _execution_accuracy(
            self.executor, self.mode, completions, db_path, gold_sql, log_metric, self.prefix, test_suite_paths
        )


class BirdExecutionAccuracyReward(ExecutionAccuracyReward):
    """:class:`ExecutionAccuracyReward` with BIRD's semantics (sets of rows, column order counts)."""

    __name__ = "bird_execution_accuracy_reward"
    mode, prefix = "bird", "execution_bird"


class ExecutableStepsReward:
    """The share of the completion's steps whose view runs in ``executor`` (0.0 for a completion with no step)."""

    __name__ = "executable_steps_reward"

    def __init__(self, executor: SQLExecutor):
        self.executor = executor

    def __call__(self, completions: Sequence, db_path: Sequence[str], log_metric: Callable | None = None, **kwargs) -> list[float]:
        coctes = [parse_cocte(completion_text(c)) for c in completions]
        views = execute_steps_many(list(zip(coctes, map(os.fspath, db_path))), self.executor)
        rewards = [sum(v.result.ok for v in steps) / len(steps) if steps else 0.0 for steps in views]
        _log(log_metric, "steps/executable_share", sum(rewards) / max(len(rewards), 1))
        return rewards


def execution_accuracy_reward(completions: Sequence, db_path: Sequence[str], gold_sql: Sequence[str], **kwargs) -> list[float]:
    """:class:`ExecutionAccuracyReward` in the default executor (``log_metric`` and ``test_suite_paths`` as there).

    Example:

    ```python
    >>> import sqlite3, tempfile, os
    >>> db = os.path.join(tempfile.mkdtemp(), "toy.sqlite")
    >>> with sqlite3.connect(db) as c:
    ...     _ = c.execute("CREATE TABLE t (x INTEGER)")
    ...     _ = c.execute("INSERT INTO t VALUES (1), (2)")
    >>> execution_accuracy_reward(["SELECT count(*) FROM t", "SELECT 3"], db_path=[db, db], gold_sql=["SELECT 2", "SELECT 2"])
    [1.0, 0.0]

    ```
    """
    return _default(ExecutionAccuracyReward)(completions, db_path, gold_sql, **kwargs)


def bird_execution_accuracy_reward(completions: Sequence, db_path: Sequence[str], gold_sql: Sequence[str], **kwargs) -> list[float]:
    """:class:`BirdExecutionAccuracyReward` in the default executor (``log_metric`` and ``test_suite_paths`` as there).

    Example:

    ```python
    >>> import sqlite3, tempfile, os
    >>> db = os.path.join(tempfile.mkdtemp(), "pair.sqlite")
    >>> _ = sqlite3.connect(db).executescript("CREATE TABLE t (x INTEGER, y INTEGER); INSERT INTO t VALUES (1, 2);")
    >>> bird_execution_accuracy_reward(["SELECT x, y FROM t", "SELECT y, x FROM t"], db_path=[db, db], gold_sql=["SELECT x, y FROM t"] * 2)
    [1.0, 0.0]

    ```
    """
    return _default(BirdExecutionAccuracyReward)(completions, db_path, gold_sql, **kwargs)


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


def executable_steps_reward(completions: Sequence, db_path: Sequence[str], **kwargs) -> list[float]:
    """:class:`ExecutableStepsReward` in the default executor (``log_metric`` as there).

    Example:

    ```python
    >>> import sqlite3, tempfile, os
    >>> db = os.path.join(tempfile.mkdtemp(), "steps.sqlite")
    >>> _ = sqlite3.connect(db).executescript("CREATE TABLE t (x INTEGER);")
    >>> executable_steps_reward(["WITH a AS (SELECT x FROM t)\\n\\nSELECT x FROM a", "WITH a AS (SELECT y FROM t)\\n\\nSELECT 1"], db_path=[db, db])
    [1.0, 0.5]

    ```
    """
    return _default(ExecutableStepsReward)(completions, db_path, **kwargs)


REWARD_FUNCS: dict[str, Callable[..., list[float]]] = {
    "execution_accuracy": execution_accuracy_reward,
    "bird_execution_accuracy": bird_execution_accuracy_reward,
    "cocte_format": cocte_format_reward,
    "executable_steps": executable_steps_reward,
}
"""Reward functions by the name recipes use (``reward_funcs: [execution_accuracy, cocte_format]``)."""

_CLASSES = {
    execution_accuracy_reward: ExecutionAccuracyReward,
    bird_execution_accuracy_reward: BirdExecutionAccuracyReward,
    executable_steps_reward: ExecutableStepsReward,
}


def bind_reward_func(reward_func: str | Callable, executor: SQLExecutor) -> str | Callable:
    """``reward_func`` running its SQL in ``executor``: a name of :data:`REWARD_FUNCS` or a plain function of this
    module becomes an instance on ``executor``; anything else (a reward model id, another callable) is returned as is.

    >>> with SQLExecutor(num_workers=1) as executor:
    ...     bind_reward_func("execution_accuracy", executor).executor is executor
    True
    >>> bind_reward_func("cocte_format", None) is cocte_format_reward
    True
    """
    func = REWARD_FUNCS.get(reward_func, reward_func) if isinstance(reward_func, str) else reward_func
    return _CLASSES[func](executor) if func in _CLASSES else func
