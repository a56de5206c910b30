"""Everything that touches a database: safe execution, parallel execution, comparison, judging, schemas.

Nothing in this package imports torch: worker processes start in milliseconds.
"""

from .compare import COMPARISON_MODES, first_failure, get_comparator, gold_orders_rows, result_key, results_match
from .judge import Verdict, judge, judge_results
from .pool import DatabaseNotFoundError, SQLExecutor
from .sandbox import SQLITE_HEADER, ExecutionLimits, ExecutionResult, SQLiteSandbox, execute, not_sqlite_reason

__all__ = [
    "COMPARISON_MODES",
    "SQLITE_HEADER",
    "DatabaseNotFoundError",
    "ExecutionLimits",
    "ExecutionResult",
    "SQLExecutor",
    "SQLiteSandbox",
    "Verdict",
    "execute",
    "first_failure",
    "get_comparator",
    "gold_orders_rows",
    "judge",
    "judge_results",
    "not_sqlite_reason",
    "result_key",
    "results_match",
]
