"""Hostile-input tests for :class:`SQLiteSandbox`, the in-process read-only executor.

Every test states one property. The ``guarded`` fixture runs a query and checks, for every
query, the three invariants the sandbox promises whatever the SQL: a known status with a message
explaining anything but ``"ok"``, an answer within the deadline plus one second, and a database
directory left byte-identical (same files, same sha256).
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import time
import tracemalloc
from pathlib import Path

import pytest

from trl_processsql.sql import ExecutionLimits, ExecutionResult, SQLiteSandbox, execute
from trl_processsql.sql.sandbox import STATUSES

TIMEOUT = 0.5  # seconds: every runaway query below is stopped at this deadline
SLACK = 1.0  # the sandbox must answer within its deadline plus this

INFINITE_CTE = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
CARTESIAN = "SELECT count(*) FROM " + ", ".join(f"singer s{i}" for i in range(20))  # 4**20 rows


def counting(n: int) -> str:
    """A CTE ``c(x)`` holding the integers 1..n."""
    return f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) "


def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file in ``folder``: detects a changed file as well as a new sidecar file."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def sandbox():
    with SQLiteSandbox(ExecutionLimits(timeout=TIMEOUT)) as sb:
        yield sb


@pytest.fixture
def guarded(sandbox, toy_db):
    """``guarded(sql, db=toy_db, sandbox=sandbox)``: run and check the invariants of every call."""

    def run(sql, *, db: Path = toy_db, sandbox: SQLiteSandbox = sandbox) -> ExecutionResult:
        before = snapshot(db.parent)
        start = time.monotonic()
        result = sandbox.execute(db, sql)
        took = time.monotonic() - start
        assert isinstance(result, ExecutionResult)
        assert result.status in STATUSES
        assert result.ok or result.message, f"status {result.status!r} without a message"
        assert not result.ok or not result.message
        assert took <= sandbox.limits.timeout + SLACK, f"answered after {took:.2f} s"
        assert snapshot(db.parent) == before, "the database folder changed"
        return result

    return run


def check(result: ExecutionResult, status: str, message: str):
    assert result.status == status, result
    assert re.search(message, result.message, re.IGNORECASE), result.message
    if status != "ok":
        assert result.rows == () and result.columns == ()


READ_ONLY = r"read-only \(refused: [A-Z ]+\)"

HOSTILE = {
    # writes
    "insert": ("INSERT INTO singer VALUES (9, 'Eve', 20, 'Peru')", "rejected", READ_ONLY),
    "insert-select": ("INSERT INTO singer SELECT id + 10, name, age, country FROM singer", "rejected", READ_ONLY),
    "upsert": ("INSERT INTO singer VALUES (1, 'Eve', 1, 'x') ON CONFLICT(id) DO UPDATE SET age = 0", "rejected", READ_ONLY),
    "update": ("UPDATE singer SET age = 0", "rejected", READ_ONLY),
    "delete": ("DELETE FROM singer", "rejected", READ_ONLY),
    "replace": ("REPLACE INTO singer VALUES (1, 'Eve', 20, 'Peru')", "rejected", READ_ONLY),
    # DDL
    "create-table": ("CREATE TABLE t (x)", "rejected", READ_ONLY),
    "create-index": ("CREATE INDEX i ON singer(age)", "rejected", READ_ONLY),
    "create-view": ("CREATE VIEW v AS SELECT 1", "rejected", READ_ONLY),
    "create-trigger": ("CREATE TRIGGER tr AFTER INSERT ON singer BEGIN SELECT 1; END", "rejected", READ_ONLY),
    "create-virtual-table": ("CREATE VIRTUAL TABLE v USING fts5(x)", "rejected", READ_ONLY),
    "drop-table": ("DROP TABLE singer", "rejected", READ_ONLY),
    "alter-add-column": ("ALTER TABLE singer ADD COLUMN z", "rejected", READ_ONLY),
    "alter-rename": ("ALTER TABLE singer RENAME TO s2", "rejected", READ_ONLY),
    "create-temp-table": ("CREATE TEMP TABLE t (x)", "rejected", READ_ONLY),
    "create-temp-table-as": ("CREATE TEMP TABLE t AS SELECT * FROM singer", "rejected", READ_ONLY),
    "create-temp-view": ("CREATE TEMP VIEW v AS SELECT 1", "rejected", READ_ONLY),
    # ATTACH (the target file must not be created either: see the snapshot of the folder)
    "attach-file": ("ATTACH '{folder}/evil.sqlite' AS evil", "rejected", r"refused: ATTACH"),
    "attach-memory": ("ATTACH ':memory:' AS m", "rejected", r"refused: ATTACH"),
    "detach": ("DETACH main", "rejected", r"refused: DETACH"),
    # PRAGMA, plain and assignment
    "pragma-read": ("PRAGMA table_info(singer)", "rejected", r"refused: PRAGMA"),
    "pragma-query-only-off": ("PRAGMA query_only = OFF", "rejected", r"refused: PRAGMA"),
    "pragma-journal-mode": ("PRAGMA journal_mode = WAL", "rejected", r"refused: PRAGMA"),
    "pragma-user-version": ("PRAGMA user_version = 7", "rejected", r"refused: PRAGMA"),
    "pragma-writable-schema": ("PRAGMA writable_schema = ON", "rejected", r"refused: PRAGMA"),
    # extensions
    "load-extension": ("SELECT load_extension('/tmp/evil.so')", "rejected", r"load_extension\(\) is not allowed"),
    "load-extension-upper": ("SELECT LOAD_EXTENSION('/tmp/evil.so', 'init')", "rejected", r"load_extension\(\) is not allowed"),
    "fts3-tokenizer": ("SELECT fts3_tokenizer('simple')", "rejected", r"fts3_tokenizer\(\) is not allowed"),
    # transactions
    "begin": ("BEGIN", "rejected", r"refused: TRANSACTION"),
    "begin-immediate": ("BEGIN IMMEDIATE", "rejected", r"refused: TRANSACTION"),
    "begin-exclusive": ("BEGIN EXCLUSIVE", "rejected", r"refused: TRANSACTION"),
    "commit": ("COMMIT", "rejected", r"refused: TRANSACTION"),
    "rollback": ("ROLLBACK", "rejected", r"refused: TRANSACTION"),
    "savepoint": ("SAVEPOINT sp", "rejected", r"refused: SAVEPOINT"),
    "release": ("RELEASE sp", "rejected", r"refused: SAVEPOINT"),
    # maintenance
    "vacuum": ("VACUUM", "rejected", READ_ONLY),
    "vacuum-into": ("VACUUM INTO '{folder}/copy.sqlite'", "rejected", READ_ONLY),
    "analyze": ("ANALYZE", "rejected", READ_ONLY),
    # several statements in one string
    "two-selects": ("SELECT 1; SELECT 2", "rejected", r"several statements"),
    "select-then-drop": ("SELECT 1; DROP TABLE singer", "rejected", r"several statements"),
    "select-then-delete": ("SELECT name FROM singer;\nDELETE FROM singer;", "rejected", r"several statements"),
    "drop-then-select": ("DROP TABLE singer; SELECT 1", "rejected", READ_ONLY),
    # runaway queries
    "infinite-recursive-cte": (INFINITE_CTE + "SELECT count(*) FROM c", "timeout", rf"timed out after {TIMEOUT:g} s"),
    "cartesian-explosion": (CARTESIAN, "timeout", rf"timed out after {TIMEOUT:g} s"),
    # memory bombs
    "randomblob-1TB": ("SELECT randomblob(1000000000000)", "error", r"too big"),
    "zeroblob-1TB": ("SELECT zeroblob(1000000000000)", "error", r"too big"),
    "randomblob-over-value-limit": ("SELECT length(randomblob(20000000))", "error", r"too big"),
    "hex-of-zeroblob": ("SELECT hex(zeroblob(10000000))", "error", r"too big"),
    "group-concat-of-blobs": ("SELECT group_concat(zeroblob(1000000)) FROM (" + counting(100) + "SELECT x FROM c)", "error", r"too big"),
    # very deep nesting
    "parentheses-100k": ("SELECT " + "(" * 100_000 + "1" + ")" * 100_000, "error", r"stack overflow|too large|depth"),
    "scalar-subqueries-2k": ("SELECT " + "(SELECT " * 2000 + "1" + ")" * 2000, "error", r"stack overflow|too large|depth"),
    "from-subqueries-2k": ("SELECT * FROM " + "(SELECT * FROM " * 2000 + "singer" + ")" * 2000, "error", r"stack overflow|too large|depth"),
    "operator-chain-100k": ("SELECT 1" + " + 1" * 100_000, "error", r"expression tree is too large"),
    "compound-select-1k": ("SELECT 1" + " UNION SELECT 2" * 1000, "error", r"too many terms"),
    # huge literal: longer than max_sql_bytes (1 MiB by default)
    "literal-2MB": ("SELECT '" + "a" * 2_000_000 + "'", "error", r"too large"),
    # SQL text that cannot be encoded as UTF-8 (lone surrogates)
    "lone-surrogate": ("SELECT '\ud800'", "error", r"not valid UTF-8"),
    "surrogate-escape": ("SELECT name FROM singer WHERE name = '\udcff'", "error", r"not valid UTF-8"),
    "nul-character": ("SELECT 1\x00; DROP TABLE singer", "error", r"null character"),
    # nothing to run
    "empty": ("", "rejected", r"empty query"),
    "blank": ("  \n\t ", "rejected", r"empty query"),
    "line-comment": ("-- SELECT * FROM singer", "rejected", r"not a query"),
    "block-comment": ("/* SELECT * FROM singer */", "rejected", r"not a query"),
    "lone-semicolon": (";", "rejected", r"not a query"),
    # not a string at all
    "none": (None, "rejected", r"must be a string, got NoneType"),
    "bytes": (b"SELECT 1", "rejected", r"must be a string, got bytes"),
    "int": (42, "rejected", r"must be a string, got int"),
    "list": (["SELECT 1"], "rejected", r"must be a string, got list"),
}


@pytest.mark.parametrize(("sql", "status", "message"), list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_query_gets_a_clear_status_in_time_and_leaves_the_file_untouched(guarded, toy_db, sql, status, message):
    if isinstance(sql, str):
        sql = sql.replace("{folder}", str(toy_db.parent))  # files it would create land in the snapshot
    check(guarded(sql), status, message)


def test_a_refused_write_leaves_the_data_readable_and_unchanged(guarded):
    for sql in ("DELETE FROM singer", "DROP TABLE singer", "UPDATE singer SET name = 'x'"):
        guarded(sql)
    assert guarded("SELECT id, name FROM singer ORDER BY id").rows == ((1, "Joe"), (2, "Ann"), (3, "Bo"), (4, "Cy"))


def test_a_refusal_does_not_stick_to_the_connection(guarded):
    check(guarded("PRAGMA query_only = OFF"), "rejected", r"PRAGMA")
    check(guarded("SELECT count(*) FROM singer"), "ok", r"^$")


def test_writes_fail_even_without_the_authorizer(toy_db, sandbox):
    """Defence in depth: the connection itself is read-only (``mode=ro`` and ``query_only``)."""
    before = snapshot(toy_db.parent)
    sandbox.execute(toy_db, "SELECT 1")
    conn = sandbox._connections[os.fspath(toy_db)].conn
    conn.set_authorizer(None)
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly|read-only|query_only"):
            conn.execute("DELETE FROM singer")
    finally:
        sandbox.close()
    assert snapshot(toy_db.parent) == before


# -- runaway queries ------------------------------------------------------------------------


def test_an_infinite_query_returning_rows_is_stopped_by_the_row_cap_or_the_deadline(guarded):
    result = guarded(INFINITE_CTE + "SELECT x FROM c")
    assert result.status in ("error", "timeout")
    assert re.search(r"more than \d+ rows|timed out", result.message)


def test_a_timeout_does_not_poison_the_next_query_on_the_same_connection(guarded, sandbox, toy_db):
    check(guarded(INFINITE_CTE + "SELECT count(*) FROM c"), "timeout", r"timed out")
    connection = sandbox._connections[os.fspath(toy_db)]
    start = time.monotonic()
    result = guarded("SELECT count(*) FROM singer")
    assert time.monotonic() - start < TIMEOUT / 2  # the deadline was reset, not left expired
    check(result, "ok", r"^$")
    assert result.rows == ((4,),)
    assert sandbox._connections[os.fspath(toy_db)] is connection  # same connection, not a reopened one


def test_each_query_gets_its_own_full_deadline(guarded):
    for _ in range(2):
        result = guarded(INFINITE_CTE + "SELECT count(*) FROM c")
        check(result, "timeout", r"timed out")
        assert result.elapsed >= TIMEOUT * 0.9


def test_a_timeout_is_reported_only_past_the_deadline(guarded):
    result = guarded(counting(1000) + "SELECT sum(x) FROM c")
    check(result, "ok", r"^$")
    assert result.rows == ((500500,),)


# -- caps -----------------------------------------------------------------------------------


def test_row_cap_exceeded_is_an_error_not_a_truncated_answer(guarded, toy_db):
    with SQLiteSandbox(ExecutionLimits(timeout=TIMEOUT, max_rows=10)) as capped:
        check(guarded(counting(11) + "SELECT x FROM c", sandbox=capped), "error", r"more than 10 rows")


def test_row_cap_allows_exactly_max_rows(guarded):
    with SQLiteSandbox(ExecutionLimits(timeout=TIMEOUT, max_rows=10)) as capped:
        result = guarded(counting(10) + "SELECT x FROM c", sandbox=capped)
    check(result, "ok", r"^$")
    assert len(result.rows) == 10


def test_byte_cap_exceeded_is_an_error(guarded):
    with SQLiteSandbox(ExecutionLimits(timeout=TIMEOUT, max_result_bytes=1000)) as capped:
        check(guarded(counting(3) + "SELECT zeroblob(400) FROM c", sandbox=capped), "error", r"more than 1000 bytes")


def test_byte_cap_allows_a_result_under_it(guarded):
    with SQLiteSandbox(ExecutionLimits(timeout=TIMEOUT, max_result_bytes=1000)) as capped:
        result = guarded(counting(2) + "SELECT zeroblob(400) FROM c", sandbox=capped)
    check(result, "ok", r"^$")
    assert result.rows == ((bytes(400),), (bytes(400),))


def test_byte_cap_bounds_the_memory_used_while_fetching(guarded):
    cap = 2**20
    with SQLiteSandbox(ExecutionLimits(timeout=TIMEOUT, max_result_bytes=cap)) as capped:
        tracemalloc.start()
        try:
            result = guarded(counting(200) + "SELECT zeroblob(262144) FROM c", sandbox=capped)  # 50 MiB in all
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    check(result, "error", r"result too large")
    assert peak < 8 * cap, f"fetched {peak / 2**20:.0f} MiB for a {cap / 2**20:.0f} MiB cap"


def test_value_cap_refuses_a_literal_longer_than_max_value_bytes(guarded):
    with SQLiteSandbox(ExecutionLimits(timeout=TIMEOUT, max_value_bytes=1000)) as capped:
        check(guarded("SELECT '" + "a" * 5000 + "'", sandbox=capped), "error", r"too big")


def test_sql_length_cap_is_configurable(guarded):
    with SQLiteSandbox(ExecutionLimits(timeout=TIMEOUT, max_sql_bytes=100)) as capped:
        check(guarded("SELECT '" + "a" * 200 + "'", sandbox=capped), "error", r"too large")


def test_expression_depth_cap_is_configurable(guarded):
    with SQLiteSandbox(ExecutionLimits(timeout=TIMEOUT, max_expr_depth=10)) as capped:
        check(guarded("SELECT 1" + " + 1" * 20, sandbox=capped), "error", r"expression tree is too large")


def test_moderate_nesting_still_runs(guarded):
    result = guarded("SELECT * FROM " + "(SELECT * FROM " * 10 + "singer" + ")" * 10 + " WHERE id = 2")
    check(result, "ok", r"^$")
    assert result.rows == ((2, "Ann", 32, "France"),)


@pytest.mark.parametrize("field", ["timeout", "max_rows", "max_result_bytes", "max_value_bytes", "max_sql_bytes", "max_expr_depth"])
def test_limits_refuse_non_positive_values(field):
    with pytest.raises(ValueError, match=field):
        ExecutionLimits(**{field: 0})


# -- odd data and odd files -------------------------------------------------------------------


def test_text_that_is_not_utf8_comes_back_with_replacement_characters(guarded):
    result = guarded("SELECT CAST(x'ff' AS TEXT), CAST(x'61ff62' AS TEXT), CAST(x'c328' AS TEXT), x'ff'")
    check(result, "ok", r"^$")
    assert result.rows == (("\ufffd", "a\ufffdb", "\ufffd(", b"\xff"),)


def test_text_that_is_not_utf8_after_valid_rows_is_read_again_and_the_next_query_is_unaffected(guarded):
    # the bad value comes after a first batch of rows: the query runs again, its rows are not kept twice
    result = guarded(counting(40) + "SELECT x, CASE WHEN x = 30 THEN CAST(x'ff' AS TEXT) ELSE 'ok' END FROM c")
    check(result, "ok", r"^$")
    assert len(result.rows) == 40 and result.rows[29] == (30, "\ufffd") and result.rows[0] == (1, "ok")
    check(guarded("SELECT name FROM singer WHERE id = 2"), "ok", r"^$")
    assert guarded("SELECT CAST(x'ff' AS TEXT)").rows == (("\ufffd",),)


@pytest.mark.parametrize("sql", ["SELECT 1", "SELECT * FROM singer"])
def test_a_file_that_is_not_sqlite_is_refused_even_by_a_query_that_reads_no_table(guarded, tmp_path, sql):
    junk = tmp_path / "junk" / "notes.sqlite"
    junk.parent.mkdir()
    junk.write_text("SQLite is great\n")
    result = guarded(sql, db=junk)
    check(result, "error", r"is not a SQLite database: its first bytes are not 'SQLite format 3'")
    assert str(junk) in result.message


def test_an_empty_file_is_refused_not_taken_for_an_empty_database(guarded, tmp_path):
    """SQLite would open a 0-byte file as a database with no tables; that is almost always a mistake."""
    empty = tmp_path / "empty" / "empty.sqlite"
    empty.parent.mkdir()
    empty.touch()
    check(guarded("SELECT 1", db=empty), "error", r"not a SQLite database: it is an empty file \(0 bytes\)")
    assert empty.read_bytes() == b""


def test_a_missing_file_is_an_error_and_is_not_created(guarded, tmp_path):
    missing = tmp_path / "gone" / "gone.sqlite"
    missing.parent.mkdir()
    check(guarded("SELECT 1", db=missing), "error", rf"database not found: {re.escape(str(missing))}")
    assert not missing.exists()


def test_a_directory_is_not_a_database(sandbox, tmp_path):
    check(sandbox.execute(tmp_path, "SELECT 1"), "error", r"database not found: .* is a folder, not a database file")


def test_uri_characters_in_the_path_open_that_file_read_only(guarded, tmp_path):
    """The path goes into a ``file:`` URI: ``?``, ``#`` and ``%`` must not become URI syntax."""
    folder = tmp_path / "a?mode=rwc#x%41"
    folder.mkdir()
    db = folder / "q?mode=rw.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("INSERT INTO t VALUES (42)")
    conn.close()
    assert guarded("SELECT x FROM t", db=db).rows == ((42,),)
    check(guarded("DELETE FROM t", db=db), "rejected", READ_ONLY)


# -- normal queries ---------------------------------------------------------------------------


def test_a_normal_query_returns_rows_and_column_names(guarded):
    result = guarded("SELECT name, age AS years FROM singer WHERE country = 'France' ORDER BY age")
    check(result, "ok", r"^$")
    assert result.columns == ("name", "years")
    assert result.rows == (("Ann", 32), ("Bo", 41))
    assert 0 <= result.elapsed < TIMEOUT


def test_an_empty_result_keeps_its_column_names(guarded):
    result = guarded("SELECT name, age FROM singer WHERE age > 100")
    check(result, "ok", r"^$")
    assert result.rows == ()
    assert result.columns == ("name", "age")


def test_null_float_blob_and_integer_values_come_back_unchanged(guarded):
    result = guarded("SELECT NULL, 1.5, -0.25, 1e308, x'00ff10', 9223372036854775807, -1, 'ü', ''")
    check(result, "ok", r"^$")
    (row,) = result.rows
    assert row == (None, 1.5, -0.25, 1e308, b"\x00\xff\x10", 2**63 - 1, -1, "ü", "")
    assert [type(v) for v in row] == [type(None), float, float, float, bytes, int, int, str, str]


def test_null_in_table_data_comes_back_as_none(guarded):
    assert guarded("SELECT country FROM singer WHERE id = 4").rows == ((None,),)


def test_read_only_table_valued_queries_run(guarded):
    """EXPLAIN QUERY PLAN and sqlite_master only read: they are queries, not writes."""
    check(guarded("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"), "ok", r"^$")
    check(guarded("EXPLAIN QUERY PLAN SELECT * FROM singer"), "ok", r"^$")


def test_one_connection_per_database_file_is_reused(sandbox, toy_db, tmp_path):
    sandbox.execute(toy_db, "SELECT 1")
    first = sandbox._connections[os.fspath(toy_db)]
    for sql in ("SELECT count(*) FROM singer", "DELETE FROM singer", "SELECT name FROM singer"):
        sandbox.execute(toy_db, sql)
    sandbox.execute(str(toy_db), "SELECT 1")  # str and Path spellings are one file
    sandbox.execute(os.path.join(toy_db.parent, "..", toy_db.parent.name, toy_db.name), "SELECT 1")  # and so is a detour
    assert list(sandbox._connections) == [os.fspath(toy_db)]
    assert sandbox._connections[os.fspath(toy_db)] is first


def test_least_recently_used_connections_are_closed_past_max_open(tmp_path):
    paths = []
    for i in range(3):
        path = tmp_path / f"db{i}.sqlite"
        with sqlite3.connect(path) as conn:
            conn.execute(f"CREATE TABLE t AS SELECT {i} AS x")
        conn.close()
        paths.append(path)
    with SQLiteSandbox(ExecutionLimits(timeout=TIMEOUT), max_open=2) as sandbox:
        for path in paths:
            sandbox.execute(path, "SELECT x FROM t")
        assert list(sandbox._connections) == [os.fspath(p) for p in paths[1:]]
        assert [sandbox.execute(p, "SELECT x FROM t").rows for p in paths] == [((0,),), ((1,),), ((2,),)]


def test_a_relative_path_names_the_file_in_the_current_directory(tmp_path, monkeypatch):
    for name, value in (("one", 1), ("two", 2)):
        (tmp_path / name).mkdir()
        with sqlite3.connect(tmp_path / name / "db.sqlite") as conn:
            conn.execute(f"CREATE TABLE t AS SELECT {value} AS x")
        conn.close()
    with SQLiteSandbox(ExecutionLimits(timeout=TIMEOUT)) as sandbox:
        monkeypatch.chdir(tmp_path / "one")
        assert sandbox.execute("db.sqlite", "SELECT x FROM t").rows == ((1,),)
        monkeypatch.chdir(tmp_path / "two")
        assert sandbox.execute("db.sqlite", "SELECT x FROM t").rows == ((2,),)


def test_module_level_execute_runs_one_query(toy_db):
    before = snapshot(toy_db.parent)
    result = execute(toy_db, "SELECT count(*) FROM singer", ExecutionLimits(timeout=TIMEOUT))
    check(result, "ok", r"^$")
    assert result.rows == ((4,),)
    check(execute(toy_db, "DROP TABLE singer"), "rejected", READ_ONLY)
    assert snapshot(toy_db.parent) == before
