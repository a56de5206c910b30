"""Read-only execution of untrusted SQL against SQLite, inside the calling process.

Every query a model writes is hostile input. :class:`SQLiteSandbox` runs one statement on a
connection configured so that the database can only be read, and turns every outcome into an
:class:`ExecutionResult` instead of an exception.

What this module covers:

- **The file is never written.** Connections open the URI ``file:...?mode=ro`` and set
  ``PRAGMA query_only``; an authorizer allows only reading actions (``SELECT``, ``READ``,
  ``FUNCTION``, ``RECURSIVE``), so ``INSERT``, ``UPDATE``, ``DELETE``, DDL, ``ATTACH``,
  ``PRAGMA``, transactions, ``VACUUM`` and ``ANALYZE`` are refused before they run
  (status ``"rejected"``). ``load_extension`` and ``fts3_tokenizer`` are refused by name.
- **Only SQLite files are opened**: a file whose first 16 bytes are not SQLite's header (an empty
  file included, which SQLite would take for an empty database) is refused when it is opened,
  even by a query such as ``SELECT 1`` that never reads it.
- **Exactly one statement per call**; a second statement in the same string is refused.
- **Runaway queries** (an infinite recursive CTE, a cartesian explosion) are stopped by a progress
  handler that aborts the statement at its deadline (status ``"timeout"``).
- **Memory bombs**: SQLite's own limits cap any single string or blob (``randomblob(1e12)``,
  ``zeroblob``, ``group_concat`` of a huge table), the SQL text length and the expression depth;
  the result is capped in rows and in bytes while it is fetched.
- **Odd data**: text that is not valid UTF-8 is decoded with replacement characters.

What it does not cover, and where that lives:

- A process-wide memory cap, a hard kill for work that never returns to the progress handler,
  and recovery from a crashed interpreter need a separate process: see
  :class:`trl_processsql.sql.pool.SQLExecutor`, which runs this sandbox in worker processes.
- Nothing here limits how much CPU concurrent callers use together, and the database file must
  not be modified or removed by someone else while it is open (results are cached by the pool,
  and an open connection goes on reading a removed file).
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["SQLITE_HEADER", "STATUSES", "ExecutionLimits", "ExecutionResult", "SQLiteSandbox", "execute", "not_sqlite_reason"]

STATUSES = ("ok", "error", "timeout", "rejected")

SQLITE_HEADER = b"SQLite format 3\x00"
"""The first 16 bytes of every SQLite 3 database file."""

_ALLOWED_ACTIONS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)
_DENIED_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer"})
_ACTION_NAMES = {
    getattr(sqlite3, f"SQLITE_{name}"): name.replace("_", " ")
    for name in (
        "ALTER_TABLE ANALYZE ATTACH CREATE_INDEX CREATE_TABLE CREATE_TEMP_INDEX CREATE_TEMP_TABLE "
        "CREATE_TEMP_TRIGGER CREATE_TEMP_VIEW CREATE_TRIGGER CREATE_VIEW CREATE_VTABLE DELETE "
        "DETACH DROP_INDEX DROP_TABLE DROP_TEMP_INDEX DROP_TEMP_TABLE DROP_TEMP_TRIGGER "
        "DROP_TEMP_VIEW DROP_TRIGGER DROP_VIEW DROP_VTABLE INSERT PRAGMA REINDEX SAVEPOINT "
        "TRANSACTION UPDATE"
    ).split()
    if hasattr(sqlite3, f"SQLITE_{name}")
}
_PROGRESS_EVERY = 1000  # SQLite VM instructions between two deadline checks
_FETCH_ROWS = 16  # rows fetched between two checks of the caps (counted row by row, they cost a fifth of Spider queries)


@dataclass(frozen=True)
class ExecutionLimits:
    """Limits applied to every query.

    Parameters:
        timeout (`float`, defaults to `30.0`):
            Seconds a query may run, fetching included. BIRD's official evaluation uses 30 s.
        max_rows (`int`, defaults to `100000`):
            A result with more rows is an error rather than a silently truncated answer.
        max_result_bytes (`int`, defaults to `64 MiB`):
            Approximate size of the fetched result (text and blob lengths, 8 bytes per number).
        max_value_bytes (`int`, defaults to `16 MiB`):
            Largest string or blob SQLite may build (``SQLITE_LIMIT_LENGTH``).
        max_sql_bytes (`int`, defaults to `1 MiB`):
            Longest SQL text accepted (``SQLITE_LIMIT_SQL_LENGTH``).
        max_expr_depth (`int`, defaults to `1000`):
            Deepest expression tree accepted (``SQLITE_LIMIT_EXPR_DEPTH``).
    """

    timeout: float = 30.0
    max_rows: int = 100_000
    max_result_bytes: int = 64 * 2**20
    max_value_bytes: int = 16 * 2**20
    max_sql_bytes: int = 2**20
    max_expr_depth: int = 1000

    def __post_init__(self):
        if not self.timeout > 0:
            raise ValueError(f"timeout must be positive, got {self.timeout}")
        for name in ("max_rows", "max_result_bytes", "max_value_bytes", "max_sql_bytes", "max_expr_depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")


@dataclass(frozen=True, slots=True)  # slots: a batch makes thousands, and a slotted one is made in two thirds of the time
class ExecutionResult:
    """The outcome of one query: never an exception.

    ``status`` is ``"ok"`` (``rows`` and ``columns`` hold the result), ``"error"`` (SQLite or a
    limit refused the query while running it), ``"timeout"`` (stopped at the deadline) or
    ``"rejected"`` (refused before running: it would write, or holds several statements).
    ``message`` explains any status but ``"ok"``; ``elapsed`` is in seconds.
    """

    status: str
    rows: tuple[tuple[Any, ...], ...] = ()
    columns: tuple[str, ...] = ()
    message: str = ""
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class _Refused(Exception):
    pass


def not_sqlite_reason(path: str | os.PathLike) -> str:
    """Why the file at ``path`` is not a SQLite database, or ``""`` when it starts with SQLite's header.

    An empty file is refused too: SQLite would open it as a database with no tables, and a query
    on it would fail with a misleading ``no such table``.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "notes.sqlite")
    >>> _ = open(path, "w").write("SELECT 1")
    >>> not_sqlite_reason(path)
    "its first bytes are not 'SQLite format 3'"
    >>> _ = open(path, "w").close()
    >>> not_sqlite_reason(path)
    'it is an empty file (0 bytes)'
    """
    with open(path, "rb") as file:
        header = file.read(len(SQLITE_HEADER))
    if not header:
        return "it is an empty file (0 bytes)"
    if header != SQLITE_HEADER:
        return "its first bytes are not 'SQLite format 3'"
    return ""


class _GuardedConnection:
    """One read-only connection with its authorizer, deadline and last refusal."""

    def __init__(self, path: str, limits: ExecutionLimits):
        uri = Path(path).resolve().as_uri() + "?mode=ro"
        self.conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        self.conn.text_factory = str  # decoded in C; text that is not UTF-8 is read again (see SQLiteSandbox._run)
        self.conn.execute("PRAGMA query_only = ON")
        self.conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, limits.max_value_bytes)
        self.conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, limits.max_sql_bytes)
        self.conn.setlimit(sqlite3.SQLITE_LIMIT_EXPR_DEPTH, limits.max_expr_depth)
        self.conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        self.deadline = 0.0
        self.refusal = ""
        self.conn.set_authorizer(self._authorize)
        self.conn.set_progress_handler(self._past_deadline, _PROGRESS_EVERY)

    def _authorize(self, action, arg1, arg2, db_name, trigger):
        if action == sqlite3.SQLITE_FUNCTION:
            if arg2 and arg2.lower() in _DENIED_FUNCTIONS:
                self.refusal = self.refusal or f"function {arg2}() is not allowed"
                return sqlite3.SQLITE_DENY
            return sqlite3.SQLITE_OK
        if action in _ALLOWED_ACTIONS:
            return sqlite3.SQLITE_OK
        self.refusal = self.refusal or (
            f"only queries may run, the database is read-only (refused: {_ACTION_NAMES.get(action, action)})"
        )
        return sqlite3.SQLITE_DENY

    def _past_deadline(self) -> bool:
        return time.monotonic() > self.deadline

    def close(self):
        self.conn.close()


def _decode_text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _result_bytes(rows: list[tuple]) -> int:
    """Text and blob lengths plus 8 bytes per other value.

    A plain loop: most calls count one short batch of a fetch, where building iterators would cost
    more than the counting (a batch of one row: 0.2 us against 1.7 us for a C-level pipeline)."""
    size = 0
    for row in rows:
        for value in row:
            size += len(value) if type(value) is str or type(value) is bytes else 8
    return size


class SQLiteSandbox:
    """Runs single SQL statements read-only, reusing one guarded connection per database file.

    >>> import sqlite3, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "toy.sqlite")
    >>> with sqlite3.connect(path) as c:
    ...     _ = c.execute("CREATE TABLE t (x INTEGER)")
    ...     _ = c.execute("INSERT INTO t VALUES (1), (2)")
    >>> sandbox = SQLiteSandbox()
    >>> sandbox.execute(path, "SELECT x FROM t ORDER BY x").rows
    ((1,), (2,))
    >>> result = sandbox.execute(path, "DELETE FROM t")
    >>> result.status, result.message
    ('rejected', 'only queries may run, the database is read-only (refused: DELETE)')
    """

    def __init__(self, limits: ExecutionLimits | None = None, max_open: int = 64):
        self.limits = limits or ExecutionLimits()
        self.max_open = max_open
        self._connections: OrderedDict[str, _GuardedConnection] = OrderedDict()
        self._absolute: dict = {}  # database paths given absolute -> normalised; they do not depend on the working directory

    def _absolute_path(self, db_path: str | os.PathLike) -> str:
        path = self._absolute.get(db_path)
        if path is None:
            path = os.path.abspath(os.fspath(db_path))
            if os.path.isabs(db_path) and len(self._absolute) < 4096:
                self._absolute[db_path] = path
        return path

    def _connection(self, path: str) -> _GuardedConnection:
        guarded = self._connections.get(path)
        if guarded is not None:
            self._connections.move_to_end(path)
            return guarded
        try:
            mode = os.stat(path).st_mode  # one system call for both checks below
        except (OSError, ValueError):
            mode = 0
        if stat.S_ISDIR(mode):
            raise _Refused(f"database not found: {path} is a folder, not a database file")
        if not stat.S_ISREG(mode):
            raise _Refused(f"database not found: {path}")
        reason = not_sqlite_reason(path)
        if reason:
            raise _Refused(f"{path} is not a SQLite database: {reason}")
        guarded = _GuardedConnection(path, self.limits)
        self._connections[path] = guarded
        if len(self._connections) > self.max_open:
            self._connections.popitem(last=False)[1].close()
        return guarded

    def execute(self, db_path: str | os.PathLike, sql: str) -> ExecutionResult:
        """Run one statement on ``db_path``; every failure comes back as a status."""
        start = time.monotonic()
        path = self._absolute_path(db_path)  # one connection per file, whatever the spelling
        if not isinstance(sql, str):
            return ExecutionResult("rejected", message=f"SQL must be a string, got {type(sql).__name__}")
        if not sql.strip():
            return ExecutionResult("rejected", message="empty query: there is no statement to run")
        try:
            guarded = self._connection(path)
        except _Refused as exc:
            return ExecutionResult("error", message=str(exc))
        except (sqlite3.Error, OSError) as exc:
            return ExecutionResult("error", message=f"cannot open database {path}: {exc}")
        guarded.refusal = ""
        guarded.deadline = start + self.limits.timeout
        try:
            return self._run(guarded, sql, start)
        except Exception as exc:  # any SQL can arrive: every failure becomes a status
            return self._failure(guarded, exc, start)

    def _run(self, guarded: _GuardedConnection, sql: str, start: float) -> ExecutionResult:
        try:
            return self._fetch(guarded, sql, start)
        except sqlite3.OperationalError as exc:
            if not str(exc).startswith("Could not decode to UTF-8"):
                raise
        # Rare: text that is not UTF-8. Decoding every value in Python would slow down every query,
        # so only this one runs again (within the same deadline), with replacement characters.
        guarded.conn.text_factory = _decode_text
        try:
            return self._fetch(guarded, sql, start)
        finally:
            guarded.conn.text_factory = str

    def _fetch(self, guarded: _GuardedConnection, sql: str, start: float) -> ExecutionResult:
        limits = self.limits
        cursor = guarded.conn.execute(sql)
        if cursor.description is None:
            return ExecutionResult("rejected", message="not a query: the statement returns no rows", elapsed=time.monotonic() - start)
        rows: list[tuple] = []
        size = 0
        while True:  # a cap is never overshot by more than one batch
            batch = cursor.fetchmany(_FETCH_ROWS)
            rows += batch
            size += _result_bytes(batch)
            if len(rows) > limits.max_rows:
                raise _Refused(f"result too large: more than {limits.max_rows} rows")
            if size > limits.max_result_bytes:
                raise _Refused(f"result too large: more than {limits.max_result_bytes} bytes")
            if len(batch) < _FETCH_ROWS:  # a short batch is the last: no call to find the end
                break
        columns = next(zip(*cursor.description))
        return ExecutionResult("ok", tuple(rows), columns, elapsed=time.monotonic() - start)

    def _failure(self, guarded: _GuardedConnection, exc: Exception, start: float) -> ExecutionResult:
        elapsed = time.monotonic() - start
        text = str(exc) or type(exc).__name__
        if guarded.refusal:
            return ExecutionResult("rejected", message=guarded.refusal, elapsed=elapsed)
        if "one statement at a time" in text:
            return ExecutionResult("rejected", message="several statements: send exactly one per call", elapsed=elapsed)
        if isinstance(exc, sqlite3.OperationalError) and text == "interrupted" and time.monotonic() > guarded.deadline:
            return ExecutionResult("timeout", message=f"timed out after {self.limits.timeout:g} s", elapsed=elapsed)
        if isinstance(exc, UnicodeError):
            text = f"SQL is not valid UTF-8 text ({exc.reason})"
        return ExecutionResult("error", message=text, elapsed=elapsed)

    def close(self):
        while self._connections:
            self._connections.popitem()[1].close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def execute(db_path: str | os.PathLike, sql: str, limits: ExecutionLimits | None = None) -> ExecutionResult:
    """Run one statement in this process with a fresh sandbox (see :class:`SQLExecutor` for batches)."""
    with SQLiteSandbox(limits) as sandbox:
        return sandbox.execute(db_path, sql)
