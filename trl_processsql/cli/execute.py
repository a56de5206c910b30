"""``trl-processsql execute``: one query in the read-only sandbox."""

from __future__ import annotations

from dataclasses import dataclass

from ._options import CommandError, Options, option

DESCRIPTION = (
    "Run one SQL query against a SQLite file in the read-only sandbox (a worker process with a "
    "deadline, row and memory caps) and print the result table or the reason it was refused."
)


@dataclass(kw_only=True)
class ExecuteOptions(Options):
    sql: str = option(help="the SQL query (exactly one statement)", positional=True)
    db: str = option(help="path to the .sqlite file")
    timeout: float = option(30.0, help="seconds the query may run (default: %(default)s)")
    max_rows: int = option(20, help="rows to print (default: %(default)s)")


OPTIONS = ExecuteOptions


def run(options: ExecuteOptions) -> int:
    from ..sql import ExecutionLimits, SQLExecutor
    from ..sql.render import format_table

    try:
        limits = ExecutionLimits(timeout=options.timeout)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    with SQLExecutor(num_workers=1, limits=limits) as executor:
        try:
            result = executor.execute(options.db, options.sql)
        except FileNotFoundError as exc:
            raise CommandError(str(exc)) from exc
    if not result.ok:  # "error: <message>" once; refusals and timeouts say which they are
        raise CommandError(result.message if result.status == "error" else f"{result.status}: {result.message}")
    print(format_table(result.columns, result.rows, max_rows=options.max_rows))
    print(f"({len(result.rows)} row{'s' * (len(result.rows) != 1)}, {result.elapsed * 1000:.1f} ms)")
    return 0
