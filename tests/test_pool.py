"""Tests for :class:`SQLExecutor`: ordering, deduplication, cache, hard deadline, crashes, memory.

Workers are real processes. Expected answers come from the in-process :class:`SQLiteSandbox`
with the same limits, so each test checks that the pool adds its guarantees without changing
any answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from trl_processsql.sql import pool
from trl_processsql.sql import DatabaseNotFoundError, ExecutionLimits, ExecutionResult, SQLExecutor, SQLiteSandbox

TIMEOUT = 0.3  # sandbox deadline used by the hard-deadline tests
GRACE = 0.5
SLACK = 1.0

# Spends seconds inside one VM instruction (the LIKE matcher over an 8 MB string, about 12 s
# in process here), so SQLite's progress handler never gets to stop it: only the pool's kill can.
STUCK_IN_ONE_INSTRUCTION = "SELECT {tag}, printf('%.*c', 8000000, 'a') LIKE '%' || printf('%.*c', 2000, 'a') || 'b%'"
INFINITE_CTE = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


def counting(n: int) -> str:
    return f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) "


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def as_tuple(result: ExecutionResult):
    """Everything but the timing."""
    return result.status, result.rows, result.columns, result.message


def expected(items, limits: ExecutionLimits) -> list[tuple]:
    with SQLiteSandbox(limits) as sandbox:
        return [as_tuple(sandbox.execute(db, sql)) for db, sql in items]


@pytest.fixture
def other_db(tmp_path) -> Path:
    """A second database: band(id, name, founded) with 3 rows."""
    path = tmp_path / "other" / "other.sqlite"
    path.parent.mkdir()
    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            CREATE TABLE band (id INTEGER PRIMARY KEY, name TEXT, founded INTEGER, score REAL, logo BLOB);
            INSERT INTO band VALUES (1, 'Alpha', 1990, 1.5, x'00ff'), (2, 'Beta', 2001, NULL, NULL),
                                    (3, 'Gamma', 1990, -2.25, x'');
            """
        )
    conn.close()
    return path


@pytest.fixture
def executor():
    ex = SQLExecutor(num_workers=2, limits=ExecutionLimits(timeout=1.0), grace=GRACE, memory_limit_mb=1024)
    yield ex
    ex.close()


def alive(executor: SQLExecutor) -> bool:
    return len(executor._workers) == executor.num_workers and all(w.process.poll() is None for w in executor._workers)


# -- answers and their order --------------------------------------------------------------------


def test_results_come_back_in_input_order_for_a_mixed_batch_over_two_databases(executor, toy_db, other_db):
    queries = {
        toy_db: [
            "SELECT name FROM singer ORDER BY age",
            "SELECT count(*) FROM singer WHERE country = 'France'",
            "SELECT country, count(*) FROM singer GROUP BY country ORDER BY country",
            "DELETE FROM singer",
            "SELECT * FROM band",
            "SELECT 1; SELECT 2",
        ],
        other_db: [
            "SELECT name, score, logo FROM band ORDER BY id",
            "SELECT founded, count(*) FROM band GROUP BY founded",
            "SELECT * FROM singer",
            "DROP TABLE band",
            "SELECT NULL, 1.5, x'00'",
        ],
    }
    items = [(db, sql + " " * i) for i in range(4) for db in (toy_db, other_db) for sql in queries[db]]
    items.reverse()  # input order differs from the sorted order the pool runs them in
    results = executor.execute_many(items)
    assert [as_tuple(r) for r in results] == expected(items, executor.limits)
    assert {r.status for r in results} == {"ok", "error", "rejected"}


def test_a_single_query_runs_through_execute(executor, other_db):
    result = executor.execute(other_db, "SELECT name, score, logo FROM band ORDER BY id")
    assert result.ok
    assert result.columns == ("name", "score", "logo")
    assert result.rows == (("Alpha", 1.5, b"\x00\xff"), ("Beta", None, None), ("Gamma", -2.25, b""))


def test_an_empty_batch_starts_no_worker(executor):
    assert executor.execute_many([]) == []
    assert executor._workers == []


def test_identical_queries_in_a_batch_run_once(toy_db, other_db):
    """Each execution builds a new result from a worker's answer: one object means one run.

    The timing confirms it: seven items (two unique queries) that each run into their 0.4 s
    deadline finish in about 0.8 s, not the 2.8 s that seven runs on the single worker would need.
    """
    slow = INFINITE_CTE
    rel = os.path.relpath(toy_db)  # another spelling of the same file
    items = [(toy_db, slow), (other_db, slow), (rel, slow), (toy_db, slow), (str(toy_db), slow), (toy_db, slow), (toy_db, slow)]
    with SQLExecutor(num_workers=1, limits=ExecutionLimits(timeout=0.4)) as executor:
        executor.execute(toy_db, "SELECT 1")  # worker up before timing
        start = time.monotonic()
        results = executor.execute_many(items)
        took = time.monotonic() - start
    assert [r.status for r in results] == ["timeout"] * len(items)
    same_file = [r for (db, _), r in zip(items, results) if db != other_db]
    assert all(r is same_file[0] for r in same_file)
    assert results[1] is not results[0]  # the same SQL on another file is another query
    assert took < 2 * 0.4 + SLACK, f"took {took:.2f} s: the duplicates ran again"


# -- cache ----------------------------------------------------------------------------------------


def test_cache_serves_a_repeated_gold_query_without_running_it(executor, toy_db):
    gold = "SELECT name FROM singer WHERE age > 30 ORDER BY name"
    first = executor.execute(toy_db, gold, cache=True)
    assert first.rows == (("Ann",), ("Bo",), ("Joe",))
    executor.close()  # no worker is left to run anything
    again = executor.execute_many([(toy_db, gold), (str(toy_db), gold)], cache=True)
    assert again[0] is first and again[1] is first
    assert executor._workers == [], "a cached query started workers"


def test_uncached_calls_neither_read_nor_fill_the_cache(executor, toy_db):
    sql = "SELECT count(*) FROM singer"
    plain = executor.execute(toy_db, sql)
    cached = executor.execute(toy_db, sql, cache=True)
    assert cached is not plain  # the uncached run was not stored
    fresh = executor.execute(toy_db, sql)
    assert fresh is not cached  # cache=False always runs the query
    assert as_tuple(fresh) == as_tuple(cached) == as_tuple(plain)


def test_cache_drops_the_least_recently_used_entry_past_its_size(toy_db):
    with SQLExecutor(num_workers=1, cache_size=2) as executor:
        one, two = (executor.execute(toy_db, f"SELECT {i}", cache=True) for i in (1, 2))
        assert executor.execute(toy_db, "SELECT 1", cache=True) is one  # 1 is now the most recent
        executor.execute(toy_db, "SELECT 3", cache=True)  # evicts 2
        assert executor.execute(toy_db, "SELECT 1", cache=True) is one
        assert executor.execute(toy_db, "SELECT 2", cache=True) is not two


# -- setup errors ---------------------------------------------------------------------------------


def test_a_missing_database_raises_naming_the_path_before_anything_runs(executor, toy_db, tmp_path):
    missing = tmp_path / "nowhere" / "gone.sqlite"
    with pytest.raises(DatabaseNotFoundError, match=re.escape(str(missing))) as info:
        executor.execute_many([(toy_db, "SELECT 1"), (missing, "SELECT 1")], cache=True)
    assert isinstance(info.value, FileNotFoundError)
    assert executor._workers == [], "workers started for a batch that cannot run"
    assert executor._cache == {}
    assert not missing.exists()


def test_a_folder_given_as_a_database_is_named_as_a_folder(executor, tmp_path):
    with pytest.raises(DatabaseNotFoundError, match=re.escape(f"{tmp_path} is a folder, not a database file")):
        executor.execute(tmp_path, "SELECT 1")


def test_a_file_that_is_not_sqlite_is_refused_in_the_workers(executor, toy_db, tmp_path):
    junk = tmp_path / "notes.sqlite"
    junk.write_text("not a database")
    results = executor.execute_many([(junk, "SELECT 1"), (toy_db, "SELECT 1")])
    assert results[0].status == "error" and "is not a SQLite database" in results[0].message
    assert results[1].ok


def test_non_string_sql_in_a_batch_is_rejected_like_in_the_sandbox(executor, toy_db):
    results = executor.execute_many([(toy_db, "SELECT 1"), (toy_db, None), (toy_db, b"SELECT 1")])
    assert [r.status for r in results] == ["ok", "rejected", "rejected"]


# -- hard deadline --------------------------------------------------------------------------------


def test_a_query_stuck_in_one_instruction_is_killed_at_the_hard_deadline(toy_db, other_db):
    limits = ExecutionLimits(timeout=TIMEOUT)
    stuck = (toy_db, STUCK_IN_ONE_INSTRUCTION.format(tag="'stuck'"))
    others = [(db, f"SELECT {i}, count(*) FROM {table}") for i in range(6) for db, table in ((toy_db, "singer"), (other_db, "band"))]
    items = others[:5] + [stuck] + others[5:]
    with SQLExecutor(num_workers=2, limits=limits, grace=GRACE) as executor:
        executor.execute(toy_db, "SELECT 1")
        before = [w.process for w in executor._workers]
        start = time.monotonic()
        results = executor.execute_many(items)
        took = time.monotonic() - start

        killed = results[5]
        assert killed.status == "timeout"
        assert re.search(r"killed after 0\.8 s \(hard deadline\)", killed.message), killed.message
        assert took <= TIMEOUT + GRACE + SLACK, f"batch took {took:.2f} s"
        assert [as_tuple(r) for r in results[:5] + results[6:]] == expected(others, limits)
        assert any(p.returncode == -signal.SIGKILL for p in before), "no worker was killed"

        assert alive(executor)  # the killed worker was replaced
        after = executor.execute_many(others)
        assert [as_tuple(r) for r in after] == expected(others, limits)


def test_innocent_queries_survive_several_hard_deadline_kills_in_one_chunk(toy_db):
    # One worker and 16 queries make a first chunk of 8 in sorted order: the three stuck queries
    # ('a', 'b', 'c') share it with the first fast ones ('d00' to 'd04').
    stuck = [(toy_db, STUCK_IN_ONE_INSTRUCTION.format(tag=f"'{t}'")) for t in "abc"]
    fast = [(toy_db, f"SELECT 'd{i:02d}'") for i in range(13)]
    with SQLExecutor(num_workers=1, limits=ExecutionLimits(timeout=0.2), grace=0.3) as executor:
        results = executor.execute_many(stuck + fast)
    assert [r.status for r in results[:3]] == ["timeout"] * 3
    assert [(r.status, r.rows) for r in results[3:]] == [("ok", ((f"d{i:02d}",),)) for i in range(13)]


def test_chunks_shrink_towards_the_end_and_spread_neighbouring_queries():
    for n, workers in [(1, 1), (10, 2), (16, 1), (857, 2), (3000, 16)]:
        chunks = [chunk.keys for chunk in pool._chunks(n, workers)]
        assert sorted(k for keys in chunks for k in keys) == list(range(n))  # every query once
        sizes = [len(keys) for keys in chunks]
        assert max(sizes) <= 64 and sizes == sorted(sizes, reverse=True)
        if n >= 64 * workers:
            assert sizes[-1] <= 8 and sizes[0] == 64  # few round trips first, a short wait for the last chunk
        if n >= 200:  # a prompt's 8 rollouts, side by side in the batch, go to at least 4 chunks
            owner = {k: c for c, keys in enumerate(chunks) for k in keys}
            assert min(len({owner[k] for k in range(s, s + 8)}) for s in range(n - 8)) >= 4


def test_a_hard_deadline_timeout_is_not_cached(toy_db):
    stuck = (toy_db, STUCK_IN_ONE_INSTRUCTION.format(tag="'cached?'"))
    with SQLExecutor(num_workers=1, limits=ExecutionLimits(timeout=0.2), grace=0.3) as executor:
        first = executor.execute_many([stuck], cache=True)[0]
        second = executor.execute_many([stuck], cache=True)[0]
        fast = executor.execute_many([(toy_db, "SELECT 1")], cache=True)[0]
        assert executor.execute_many([(toy_db, "SELECT 1")], cache=True)[0] is fast
    assert first.status == second.status == "timeout"
    assert second is not first  # run again rather than served from the cache


class FinishesBetweenReads:
    """A worker's shared state as the parent sees it when the worker finishes a query between two
    reads of its start time: every other read finds it idle."""

    def __init__(self, state):
        self.state, self.reads = state, 0

    def __getitem__(self, index):
        if index != 1:
            return self.state[index]
        self.reads += 1
        return self.state[1] if self.reads % 2 else pool._IDLE

    def __setitem__(self, index, value):
        self.state[index] = value


def test_a_worker_that_finishes_while_its_deadline_is_checked_is_not_killed(toy_db):
    """The parent must judge a worker's deadline on one reading of its start time: a start time
    from one read and _IDLE (-1) from the next made it look busy for the whole uptime, and the
    pool killed healthy workers and ran their chunks again (about one batch in forty of 1,024
    Spider predictions on two workers)."""
    slow = (toy_db, counting(2_000_000) + "SELECT count(*) FROM c")  # keeps one worker busy while the other answers
    items = [slow] + [(toy_db, f"SELECT {i}") for i in range(3)]
    limits = ExecutionLimits(timeout=20.0)
    with SQLExecutor(num_workers=2, limits=limits) as executor:
        executor.execute_many(items[1:])
        processes = [w.process for w in executor._workers]
        for worker in executor._workers:
            worker.state = FinishesBetweenReads(worker.state)
        results = executor.execute_many(items)
        assert [w.process for w in executor._workers] == processes, "a healthy worker was killed and replaced"
        reads = sum(w.state.reads for w in executor._workers)
    assert reads > 0, "the deadline was never checked while a worker was busy"
    assert [as_tuple(r) for r in results] == expected(items, limits)


# -- shared results -------------------------------------------------------------------------------


def run_counter(executor: SQLExecutor) -> list:
    """Every query the executor's workers are given, recorded as it is sent."""
    sent, run = [], executor._run

    def counting_run(queries, progress):
        sent.extend(queries)
        return run(queries, progress)

    executor._run = counting_run
    return sent


def test_shared_results_run_each_query_once_per_block_slow_ones_included(toy_db):
    slow, fast = INFINITE_CTE, "SELECT count(*) FROM singer"
    with SQLExecutor(num_workers=1, limits=ExecutionLimits(timeout=0.3)) as executor:
        sent = run_counter(executor)
        with executor.shared_results():
            first = executor.execute_many([(toy_db, fast), (toy_db, slow)])
            with executor.shared_results():  # blocks nest
                again = executor.execute_many([(str(toy_db), slow), (toy_db, fast), (toy_db, "SELECT 2")])
            assert len(sent) == 3, "a query of the block ran twice"
        after = executor.execute_many([(toy_db, fast)])
    assert first[1].status == "timeout" and again[0] is first[1] and again[1] is first[0]
    assert after[0] is not first[0] and len(sent) == 4  # outside the block every call runs again
    assert as_tuple(after[0]) == as_tuple(first[0])


# -- crashes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGSEGV], ids=["SIGKILL", "SIGSEGV"])
def test_a_worker_that_dies_mid_query_yields_an_error_for_that_query_only(toy_db, other_db, signum):
    limits = ExecutionLimits(timeout=30.0)  # the long query would run 30 s if its worker survived
    items = [(toy_db, "SELECT count(*) FROM singer"), (other_db, INFINITE_CTE), (other_db, "SELECT name FROM band ORDER BY id"), (toy_db, "SELECT 7")]
    killed = []

    def kill_the_busy_worker(executor: SQLExecutor, stop: float):
        while time.monotonic() < stop:
            worker = executor._workers[0]
            started = worker.state[1]
            if started > 0 and time.monotonic() - started > 0.2:  # only the long query runs this long
                os.kill(worker.process.pid, signum)
                killed.append(worker.process)
                return
            time.sleep(0.01)

    with SQLExecutor(num_workers=1, limits=limits) as executor:
        executor.execute(toy_db, "SELECT 1")
        killer = threading.Thread(target=kill_the_busy_worker, args=(executor, time.monotonic() + 10.0))
        killer.start()
        start = time.monotonic()
        results = executor.execute_many(items)
        took = time.monotonic() - start
        killer.join()

        assert killed, "the long query never started"
        assert results[1].status == "error"
        assert re.search(rf"worker process died \(exit code {-signum}\) on this query", results[1].message), results[1].message
        assert took < limits.timeout / 2, f"took {took:.2f} s: the batch waited for the dead worker's query to time out"
        rest = [items[i] for i in (0, 2, 3)]
        assert [as_tuple(results[i]) for i in (0, 2, 3)] == expected(rest, limits)
        assert alive(executor)
        assert executor._workers[0].process is not killed[0]
        assert executor.execute(toy_db, "SELECT 2").rows == ((2,),)


def test_workers_that_died_between_batches_are_replaced_without_waiting_for_the_deadline(toy_db, other_db):
    """A worker killed while idle is found dead when the next batch is sent to it; its chunk must go
    to a fresh worker at once, not after the hard deadline (5.5 s here; a healthy batch takes ms)."""
    limits = ExecutionLimits(timeout=5.0)
    items = [(db, f"SELECT {i}, count(*) FROM {table}") for i in range(6) for db, table in ((toy_db, "singer"), (other_db, "band"))]
    with SQLExecutor(num_workers=2, limits=limits, grace=GRACE) as executor:
        first = executor.execute_many(items)
        dead = [w.process for w in executor._workers]
        for process in dead:  # every worker, so that none is busy while the batch is dealt out
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
        start = time.monotonic()
        results = executor.execute_many(items)
        took = time.monotonic() - start

        assert took < limits.timeout, f"took {took:.2f} s: the batch waited for the hard deadline"
        assert [as_tuple(r) for r in results] == [as_tuple(r) for r in first] == expected(items, limits)
        assert alive(executor)
        assert not {w.process for w in executor._workers} & set(dead)


# -- memory -----------------------------------------------------------------------------------------

_MEMORY_SCRIPT = r"""
import json, resource, sys
from trl_processsql.sql import ExecutionLimits, SQLExecutor

db, queries = sys.argv[1], json.loads(sys.argv[2])
executor = SQLExecutor(num_workers=2, limits=ExecutionLimits(timeout=1.0), memory_limit_mb=512)
results = executor.execute_many([(db, q) for q in queries])
after = executor.execute(db, "SELECT count(*) FROM singer")
executor.close()
print(json.dumps({
    "results": [[r.status, r.message] for r in results],
    "after": [after.status, after.rows],
    "maxrss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
}))
"""

MEMORY_BOMBS = {
    "randomblob-1TB": ("SELECT randomblob(1000000000000)", {"error"}, r"too big"),
    "zeroblob-1TB": ("SELECT zeroblob(1000000000000)", {"error"}, r"too big"),
    "hex-of-zeroblob": ("SELECT hex(zeroblob(15000000))", {"error"}, r"too big"),
    "many-16MB-zeroblobs": (counting(512) + "SELECT zeroblob(16000000) FROM c", {"error", "timeout"}, r"memory|too large|hard deadline"),
    # ~50 ms per row inside single VM instructions: the sandbox deadline may miss it, the pool's does not
    "many-16MB-randomblobs": (counting(512) + "SELECT randomblob(16000000) FROM c", {"error", "timeout"}, r"memory|too large|hard deadline"),
    "distinct-over-blobs": ("SELECT count(DISTINCT b) FROM (" + counting(10**6) + "SELECT randomblob(10000) AS b FROM c)", {"error", "timeout"}, r"memory|timed out"),
    "sort-of-blobs": (counting(10**6) + "SELECT randomblob(10000) AS b FROM c ORDER BY b LIMIT 1", {"error", "timeout"}, r"memory|timed out"),
    "group-concat-of-blobs": ("SELECT length(group_concat(b)) FROM (" + counting(10**6) + "SELECT randomblob(100000) AS b FROM c)", {"error", "timeout"}, r"too big|memory|timed out"),
}


def test_memory_bombs_get_clear_statuses_and_workers_stay_under_the_memory_cap(toy_db):
    """Runs in a fresh interpreter so that RUSAGE_CHILDREN sees only this executor's workers."""
    cap_kib = 512 * 1024
    before = sha256(toy_db)
    queries = [sql for sql, _, _ in MEMORY_BOMBS.values()]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, str(toy_db), json.dumps(queries)], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, (status, message), (_, statuses, pattern) in zip(MEMORY_BOMBS, report["results"], MEMORY_BOMBS.values()):
        assert status in statuses, f"{name}: {status} {message}"
        assert re.search(pattern, message, re.IGNORECASE), f"{name}: {message!r}"
    assert report["after"] == ["ok", [[4]]]  # the executor still answers after the bombs
    assert 0 < report["maxrss_kib"] < cap_kib, f"a worker reached {report['maxrss_kib'] / 1024:.0f} MiB"
    assert sha256(toy_db) == before


# -- lifecycle --------------------------------------------------------------------------------------


def test_executor_is_a_context_manager_that_starts_and_stops_its_workers(toy_db):
    with SQLExecutor(num_workers=2) as executor:
        assert alive(executor)
        processes = [w.process for w in executor._workers]
        assert executor.execute(toy_db, "SELECT count(*) FROM singer").rows == ((4,),)
    assert executor._workers == []
    assert all(p.poll() is not None for p in processes), "a worker outlived the with block"


def test_workers_ignore_what_the_working_directory_holds(toy_db, tmp_path, monkeypatch):
    """A worker imports this package and the standard library, not a same-named copy in the directory it starts in."""
    for name in ("trl_processsql/__init__.py", "sqlite3.py"):  # a package of the same name; a module shadowing the standard library's
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("raise ImportError('imported from the working directory')\n")
    monkeypatch.chdir(tmp_path)
    with SQLExecutor(num_workers=1) as executor:
        result = executor.execute(toy_db, "SELECT count(*) FROM singer")
        assert result.ok, result.message
        assert alive(executor)


def test_executor_restarts_workers_after_close(executor, toy_db):
    executor.start()
    first = [w.process.pid for w in executor._workers]
    executor.close()
    assert executor._workers == []
    assert executor.execute(toy_db, "SELECT max(age) FROM singer").rows == ((52,),)
    assert alive(executor)
    assert not {w.process.pid for w in executor._workers} & set(first)


def test_a_batch_leaves_the_database_files_byte_identical(executor, toy_db, other_db):
    before = {db: sha256(db) for db in (toy_db, other_db)}
    common = ["VACUUM", "PRAGMA journal_mode = WAL", "CREATE TABLE t (x)", "BEGIN IMMEDIATE", f"ATTACH '{toy_db.parent / 'x.sqlite'}' AS x"]
    hostile = {
        toy_db: common + ["DELETE FROM singer", "DROP TABLE singer", "SELECT 1; UPDATE singer SET age = 0"],
        other_db: common + ["UPDATE band SET name = ''", "ALTER TABLE band ADD COLUMN z", "SELECT 1; DELETE FROM band"],
    }
    results = executor.execute_many([(db, sql) for db, queries in hostile.items() for sql in queries])
    assert {r.status for r in results} == {"rejected"}
    assert {db: sha256(db) for db in before} == before
    assert sorted(p.name for p in toy_db.parent.iterdir()) == ["toy.sqlite"]


# -- integration: the Spider dev set -----------------------------------------------------------------


@pytest.mark.spider
def test_every_runnable_spider_dev_gold_query_runs_ok_and_leaves_files_identical(spider_dir):
    dev = json.loads((spider_dir / "dev.json").read_text())
    items, skipped = [], 0
    for example in dev:
        db = spider_dir / "database" / example["db_id"] / f"{example['db_id']}.sqlite"
        if db.is_file():
            items.append((db, example["query"]))
        else:
            skipped += 1
    assert len(items) + skipped == len(dev)
    assert len(items) >= 0.9 * len(dev), f"only {len(items)} of {len(dev)} examples have a database"
    before = {db: sha256(db) for db, _ in items}
    with SQLExecutor() as executor:
        results = executor.execute_many(items)
    failures = [(str(db.name), sql, r.status, r.message) for (db, sql), r in zip(items, results) if not r.ok]
    assert not failures, f"{len(failures)} gold queries failed, e.g. {failures[:3]}"
    assert {db: sha256(db) for db in before} == before
    # the pipes carry values unchanged: same rows as an in-process run
    assert [(r.rows, r.columns) for r in results] == [(rows, cols) for _, rows, cols, _ in expected(items, executor.limits)]


# -- comparison in the workers --------------------------------------------------------------------


def gold_of(executor, db, sql):
    return ("spider", executor.execute(db, sql, cache=True), False)


def test_compared_results_leave_their_rows_in_the_worker(executor, toy_db):
    gold = gold_of(executor, toy_db, "SELECT name FROM singer")
    answers = executor.execute_compared([(toy_db, "SELECT name FROM singer"), (toy_db, "SELECT id FROM singer")], [gold, gold])
    assert [(r.status, r.rows, r.columns, rows, matched) for r, rows, matched, _ in answers] == [
        ("ok", (), ("name",), 4, True),
        ("ok", (), ("id",), 4, False),
    ]


def test_identical_comparisons_in_a_batch_run_once(toy_db):
    with SQLExecutor(num_workers=1) as executor:
        gold = gold_of(executor, toy_db, "SELECT 1")
        sent = run_counter(executor)
        answers = executor.execute_compared([(toy_db, "SELECT 1"), (str(toy_db), "SELECT 1"), (toy_db, "SELECT 2")], [gold] * 3)
    assert len(sent) == 2 and [matched for _, _, matched, _ in answers] == [True, True, False]


def test_compared_results_are_shared_in_full_within_a_block(toy_db):
    with SQLExecutor(num_workers=1) as executor:
        gold = gold_of(executor, toy_db, "SELECT count(*) FROM singer")
        sent = run_counter(executor)
        with executor.shared_results():
            (compared, rows, matched, _), = executor.execute_compared([(toy_db, "SELECT count(*) FROM singer")], [gold])
            again = executor.execute(toy_db, "SELECT count(*) FROM singer")
            (twice, *_), = executor.execute_compared([(toy_db, "SELECT count(*) FROM singer")], [gold])
    assert len(sent) == 1, "a query of the block ran twice"
    assert matched and compared.rows == ((4,),) and again is compared is twice


def test_a_compared_query_stuck_in_one_instruction_is_killed_at_the_hard_deadline(toy_db):
    stuck = STUCK_IN_ONE_INSTRUCTION.format(tag="'stuck'")
    with SQLExecutor(num_workers=1, limits=ExecutionLimits(timeout=TIMEOUT), grace=GRACE) as executor:
        gold = gold_of(executor, toy_db, "SELECT count(*) FROM singer")
        start = time.monotonic()
        answers = executor.execute_compared([(toy_db, stuck), (toy_db, "SELECT count(*) FROM singer")], [gold, gold])
        took = time.monotonic() - start
    (killed, _, killed_matched, _), (fine, _, fine_matched, _) = answers
    assert killed.status == "timeout" and "hard deadline" in killed.message and not killed_matched
    assert fine.ok and fine_matched and took <= TIMEOUT + GRACE + SLACK


def test_gold_rows_travel_to_a_worker_once_and_again_after_it_forgets_them_or_restarts(toy_db, monkeypatch):
    with SQLExecutor(num_workers=1) as executor:
        gold = gold_of(executor, toy_db, "SELECT name FROM singer")
        messages, message = [], executor._message
        executor._message = lambda worker, items: messages.append(message(worker, items)) or messages[-1]

        def matched(sql):
            return [m for _, _, m, _ in executor.execute_compared([(toy_db, sql)], [gold])]

        assert matched("SELECT name FROM singer") == [True] and matched("SELECT name FROM singer ORDER BY id") == [True]
        assert [(forget, len(fresh)) for forget, fresh, _ in messages] == [(False, 1), (False, 0)]
        monkeypatch.setattr(pool, "_GOLD_BYTES_KEPT", 0)  # kept rows past the bound: the workers start afresh
        assert matched("SELECT id FROM singer") == [False] and matched("SELECT name FROM singer WHERE id > 0") == [True]
        assert [(forget, len(fresh)) for forget, fresh, _ in messages[2:]] == [(True, 1), (True, 1)]
        monkeypatch.undo()
        executor.close()  # new workers hold no gold rows
        assert matched("SELECT name FROM singer LIMIT 10") == [True] and [len(fresh) for _, fresh, _ in messages[4:]] == [1]
