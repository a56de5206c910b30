"""Parallel, isolated execution of SQL batches with hard deadlines and a result cache.

GRPO scores hundreds of completions per step, and each one is untrusted SQL. :class:`SQLExecutor`
runs batches in a few long-lived worker processes, each holding a :class:`SQLiteSandbox` whose
read-only connections stay open between batches (opening a connection costs more than most Spider
queries). On top of the sandbox it adds what only a separate process can give:

- a **hard deadline**: a worker still on one query ``grace`` seconds past its timeout is killed
  and replaced; that query comes back as ``"timeout"`` and the rest of its chunk is run again;
- **crash recovery**: a worker that dies (segfault, out of memory) is replaced, the query it was
  running comes back as ``"error"`` and the batch still completes;
- a **memory cap** per worker (address-space limit and SQLite's heap limit);
- a **cache** of results keyed by (database, SQL) for queries marked ``cache=True`` (gold queries,
  which GRPO runs again every epoch); identical queries within one batch run once;
- **shared results** (:meth:`SQLExecutor.shared_results`): within one block every result is
  kept, so that a query run again there (GRPO runs a completion's final query for its outcome
  reward and again as its last step's view) costs nothing, a timeout included;
- **comparison where the rows are** (:meth:`SQLExecutor.execute_compared`): a prediction's result
  is compared with its gold's in the worker that ran it, and only the verdict travels back; each
  worker keeps the gold rows it was sent, so that a gold judged again (every epoch) travels once.

Workers are fresh interpreters that import only ``trl_processsql.sql`` (never a fork of a parent
holding CUDA contexts and threads, never a re-run of the parent's ``__main__``), and they ignore
SIGINT so that Ctrl-C reaches the parent, which then shuts them down.
"""

from __future__ import annotations

import itertools
import math
import mmap
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import OrderedDict, deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Hashable, Iterable, Iterator, Sequence

from .compare import get_comparator, result_key
from .sandbox import ExecutionLimits, ExecutionResult, SQLiteSandbox, _result_bytes

__all__ = ["DatabaseNotFoundError", "SQLExecutor"]

_IDLE = -1.0  # start time a worker reports while it runs nothing
# Size of the gold rows the workers keep between batches, at most (64 bytes a row plus its values as
# the sandbox counts them): past it they start afresh, far below their memory cap.
_GOLD_BYTES_KEPT = 128 * 2**20
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class DatabaseNotFoundError(FileNotFoundError):
    """A batch names a database file that does not exist (a setup error, not a model error)."""


def _not_a_database_file(path: str) -> str:
    if os.path.isdir(path):
        return f"{path} is a folder, not a database file"
    return f"database file not found: {path}"


def _answer(result: ExecutionResult, against: tuple | None) -> tuple:
    """A worker's answer to one query: the result's fields; with ``against`` = (mode, gold rows or
    None, order matters, want the key, keep the rows), also its row count, whether it matches the
    gold and its result key (if wanted), its rows only when asked to keep them."""
    if against is None:
        return (result.status, result.rows, result.columns, result.message, result.elapsed)
    mode, gold_rows, order_matters, want_key, keep_rows = against
    matched = result.ok and gold_rows is not None and get_comparator(mode)(result.rows, gold_rows, order_matters)
    key = result_key(result.rows, mode) if result.ok and want_key else None
    rows = result.rows if keep_rows else ()
    return (result.status, rows, result.columns, result.message, result.elapsed, len(result.rows), matched, key)


def _received(answer: tuple) -> ExecutionResult | tuple:
    """A worker's answer as the parent keeps it: an ExecutionResult, or (result, rows, matched, key)."""
    if len(answer) == 5:
        return ExecutionResult(*answer)
    return (ExecutionResult(*answer[:5]), *answer[5:])


def _worker_main(commands: Connection, answers: Connection, state) -> None:
    """Run chunks of (db_path, sql[, against]) until the parent closes the pipe.

    Each chunk comes as ``(forget, gold rows, items)``: ``against`` names its gold rows by a token,
    and the gold rows this worker does not hold yet come with the chunk (all of them are dropped
    first when ``forget``). ``state[0]`` is the index in the chunk of the query running now,
    ``state[1]`` its start time on the system-wide monotonic clock: the parent reads both to
    enforce the hard deadline.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limits, memory_limit = commands.recv()
    if memory_limit:
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
        sqlite3.connect(":memory:").execute(f"PRAGMA hard_heap_limit = {memory_limit // 2}").close()
    sandbox = SQLiteSandbox(limits)
    golds: dict[int, tuple] = {}
    while True:
        try:
            forget, fresh, items = commands.recv()
        except (EOFError, OSError):
            return
        if forget:
            golds.clear()
        golds.update(fresh)
        results = []
        for index, (db_path, sql, *against) in enumerate(items):
            state[0] = index
            state[1] = time.monotonic()
            result = sandbox.execute(db_path, sql)
            if against:
                mode, token, *rest = against[0]
                results.append(_answer(result, (mode, None if token is None else golds[token], *rest)))
            else:
                results.append(_answer(result, None))
        state[1] = _IDLE
        state[0] = -1
        answers.send(results)


def _worker_entry() -> None:
    """Entry point of a worker interpreter: file descriptors of its two pipes and its state."""
    commands, answers, state_fd = map(int, sys.argv[1:4])
    state = memoryview(mmap.mmap(state_fd, 16)).cast("d")
    _worker_main(Connection(commands, writable=False), Connection(answers, readable=False), state)


@dataclass
class _Chunk:
    keys: list[int]  # positions in the batch's list of unique queries
    attempts: int = 0


@dataclass
class _Worker:
    process: subprocess.Popen
    commands: Connection
    conn: Connection  # answers from the worker
    state: memoryview  # [index in chunk, start time], shared with the worker
    chunk: _Chunk | None = None
    golds: set[int] = field(default_factory=set)  # tokens of the gold rows the worker holds
    forget: bool = False  # the worker must drop its gold rows before the next chunk

    def close(self):
        self.commands.close()
        self.conn.close()


class SQLExecutor:
    """Executes batches of read-only queries in worker processes.

    Parameters:
        num_workers (`int`, *optional*):
            Worker processes; defaults to the CPUs this process may use.
        limits ([`ExecutionLimits`], *optional*):
            Per-query limits (timeout, row and byte caps) applied inside every worker.
        grace (`float`, defaults to `1.0`):
            Seconds past ``limits.timeout`` after which a worker still on one query is killed.
        memory_limit_mb (`int` or `None`, defaults to `2048`):
            Address-space cap of each worker; `None` leaves it unlimited.
        cache_size (`int`, defaults to `100000`):
            Results kept for queries executed with ``cache=True`` (least recently used go first).

    >>> import sqlite3, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "toy.sqlite")
    >>> with sqlite3.connect(path) as c:
    ...     _ = c.execute("CREATE TABLE t (x INTEGER)")
    >>> with SQLExecutor(num_workers=1) as executor:
    ...     [r.status for r in executor.execute_many([(path, "SELECT count(*) FROM t"), (path, "DROP TABLE t")])]
    ['ok', 'rejected']
    """

    def __init__(
        self,
        num_workers: int | None = None,
        limits: ExecutionLimits | None = None,
        grace: float = 1.0,
        memory_limit_mb: int | None = 2048,
        cache_size: int = 100_000,
    ):
        self.num_workers = num_workers or len(os.sched_getaffinity(0))
        self.limits = limits or ExecutionLimits()
        self.grace = grace
        self.memory_limit = memory_limit_mb * 2**20 if memory_limit_mb else None
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str], ExecutionResult] = OrderedDict()
        self._shared: dict[tuple[str, str], ExecutionResult] | None = None
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._gold_rows: dict[int, tuple] = {}  # token -> gold rows; kept, so that the ids below stay unique
        self._gold_tokens: dict[int, int] = {}  # id of gold rows -> token
        self._gold_kept = 0  # size of the rows in _gold_rows, counted as for _GOLD_BYTES_KEPT
        self._next_token = itertools.count()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> "SQLExecutor":
        """Start the workers now rather than on the first batch."""
        while len(self._workers) < self.num_workers:
            self._workers.append(self._spawn())
        return self

    def _spawn(self) -> _Worker:
        # A fresh interpreter that imports only this package: neither a fork of a parent that
        # holds CUDA contexts and threads, nor a spawn that re-runs the parent's __main__.
        command_read, command_write = os.pipe()
        answer_read, answer_write = os.pipe()
        with tempfile.TemporaryFile() as state_file:
            state_file.truncate(16)
            state = memoryview(mmap.mmap(state_file.fileno(), 16)).cast("d")
            state[0], state[1] = -1.0, _IDLE
            fds = (command_read, answer_write, state_file.fileno())
            # `python -c` puts the working directory first on sys.path, where another copy of this
            # package (an old checkout) or a module named like the standard library's could sit:
            # the worker reads this package's folder there instead.
            entry = f"import sys; sys.path[0] = {_PACKAGE_ROOT!r}; from {__name__} import _worker_entry; _worker_entry()"
            process = subprocess.Popen([sys.executable, "-c", entry, *map(str, fds)], pass_fds=fds, stdin=subprocess.DEVNULL)
        os.close(command_read)
        os.close(answer_write)
        commands = Connection(command_write, readable=False)
        commands.send((self.limits, self.memory_limit))
        return _Worker(process, commands, Connection(answer_read, writable=False), state)

    def close(self):
        """Stop every worker; the executor starts new ones if used again."""
        for worker in self._workers:
            worker.close()
        for worker in self._workers:
            try:
                worker.process.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
        self._workers = []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    @contextmanager
    def shared_results(self) -> Iterator["SQLExecutor"]:
        """Within this block each distinct (database, SQL) runs at most once; later batches reuse its result.

        Every result is kept, timeouts and dead workers included (unlike the cache): one generation
        batch of GRPO asks for the same query twice, and a slow query should cost one deadline.
        Blocks nest; the results are dropped when the outermost one ends.

        >>> import sqlite3, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "toy.sqlite")
        >>> sqlite3.connect(path).close()
        >>> with SQLExecutor(num_workers=1) as executor, executor.shared_results():
        ...     first, again = executor.execute(path, "SELECT 1"), executor.execute(path, "SELECT 1")
        >>> first is again
        True
        """
        outermost = self._shared is None
        if outermost:
            self._shared = {}
        try:
            yield self
        finally:
            if outermost:
                self._shared = None

    # -- execution -------------------------------------------------------------------------

    def execute(self, db_path: str | os.PathLike, sql: str, *, cache: bool = False) -> ExecutionResult:
        """Run one query in a worker process (hard deadline included)."""
        return self.execute_many([(db_path, sql)], cache=cache)[0]

    def execute_many(
        self,
        items: Iterable[tuple[str | os.PathLike, str]],
        *,
        cache: bool = False,
        progress: bool | str = False,
    ) -> list[ExecutionResult]:
        """Run ``(db_path, sql)`` pairs in parallel; results come back in input order.

        With ``cache=True`` results are looked up in and stored to the cache (use it for gold
        queries). ``progress`` shows a progress bar (a string names it). Raises
        :class:`DatabaseNotFoundError` if a database file does not exist.
        """
        keys, found = _checked(items)
        with self._lock:
            shared = self._shared
            if shared is not None:
                found.update((key, shared[key]) for key in keys if key in shared)
            if cache:
                for key in keys:
                    result = self._cache.get(key)
                    if result is not None:
                        found[key] = result
                        self._cache.move_to_end(key)
            todo = sorted({key for key in keys if key not in found})
            results, transient = self._run(todo, progress)
            found.update(zip(todo, results))
            if shared is not None:
                shared.update(zip(todo, results))
            if cache:
                # A timeout or a dead worker may not happen again: only lasting answers are cached.
                for k, key in enumerate(todo):
                    if k not in transient:
                        self._cache[key] = found[key]
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return [found[key] for key in keys]

    def execute_compared(
        self,
        items: Sequence[tuple[str | os.PathLike, str]],
        against: Sequence[tuple[str, ExecutionResult, bool]],
        *,
        keys: bool = False,
        progress: bool | str = False,
    ) -> list[tuple[ExecutionResult, int, bool, Hashable | None]]:
        """Run ``(db_path, sql)`` pairs and compare each result with a gold result in the worker that ran it.

        ``against[i]`` is ``(mode, gold, order_matters)``: a gold that did not run matches nothing.
        Each answer is ``(result, row count, matched, key)``; ``key`` is the result's
        :func:`~trl_processsql.sql.compare.result_key` with ``keys=True``. The result's rows stay in
        the worker, except inside :meth:`shared_results`, whose later batches reuse them (a result
        already kept there is compared here). Identical (database, SQL, gold) triples run once.
        """
        paths, found = _checked(items)
        golds: dict[tuple[str, int, bool], int] = {}  # (mode, gold, order) -> index in specs
        specs: list[tuple] = []
        triples = []
        for (db, sql), (mode, gold, order_matters) in zip(paths, against):
            spec = golds.setdefault((mode, id(gold), order_matters), len(specs))
            if spec == len(specs):
                specs.append((mode, gold.rows if gold.ok else None, order_matters, keys, self._shared is not None))
            triples.append((db, sql, spec))
        answers: dict[tuple[str, str, int], tuple] = {}
        with self._lock:
            shared = self._shared
            for triple in triples if found or shared else ():
                known = found.get(triple[:2]) or (shared or {}).get(triple[:2])
                if known is not None:
                    answers[triple] = (known, *_answer(known, specs[triple[2]])[5:])
            todo = list(dict.fromkeys(triple for triple in triples if triple not in answers))
            if self._gold_kept > _GOLD_BYTES_KEPT:
                self._forget_golds()
            sent = [(mode, None if rows is None else self._gold_token(rows), *rest) for mode, rows, *rest in specs]
            results, _ = self._run([(db, sql, sent[spec]) for db, sql, spec in todo], progress)
            for triple, result in zip(todo, results):
                answers[triple] = result if isinstance(result, tuple) else (result, 0, False, None)
                if shared is not None:
                    shared[triple[:2]] = answers[triple][0]
        return [answers[triple] for triple in triples]

    def _gold_token(self, rows: tuple) -> int:
        """The token that names these gold rows to the workers (the same every batch while they are kept)."""
        token = self._gold_tokens.get(id(rows))
        if token is None:
            token = self._gold_tokens[id(rows)] = next(self._next_token)
            self._gold_rows[token] = rows
            self._gold_kept += _result_bytes(rows) + 64 * (len(rows) + 1)
        return token

    def _forget_golds(self):
        """Drop every kept gold, here and (with their next chunk) in the workers, whose memory stays bounded."""
        self._gold_rows.clear()
        self._gold_tokens.clear()
        self._gold_kept = 0
        for worker in self._workers:
            worker.golds, worker.forget = set(), True

    def _message(self, worker: _Worker, items: list[tuple]) -> tuple:
        """A chunk as ``worker`` receives it, with the gold rows it does not hold yet."""
        tokens = {item[2][1] for item in items if len(item) == 3 and item[2][1] is not None} - worker.golds
        message = (worker.forget, {token: self._gold_rows[token] for token in tokens}, items)
        worker.golds |= tokens
        worker.forget = False
        return message

    def _run(self, queries: Sequence[tuple], progress: bool | str) -> tuple[list, set[int]]:
        """Results in order (as :func:`_received` makes them), and the positions answered by the pool
        itself (hard deadline, dead worker): those are always plain ExecutionResults."""
        if not queries:
            return [], set()
        self.start()
        results: list[ExecutionResult | None] = [None] * len(queries)
        transient: set[int] = set()
        pending = _chunks(len(queries), self.num_workers)
        bar = _progress_bar(len(queries), progress)
        hard_limit = self.limits.timeout + self.grace
        try:
            while pending or any(w.chunk for w in self._workers):
                for i in range(len(self._workers)):
                    self._feed(i, pending, queries)
                busy = [w for w in self._workers if w.chunk is not None]
                now = time.monotonic()
                # Each start time is read once: a worker marks itself idle whenever it finishes, and
                # two reads could see a start time, then _IDLE taken for one (killing a healthy worker).
                started = [w.state[1] for w in busy]
                next_deadline = min((s + hard_limit for s in started if s != _IDLE), default=now + hard_limit)
                ready = wait([w.conn for w in busy], timeout=max(0.0, next_deadline - now) + 0.01)
                for i, worker in enumerate(list(self._workers)):
                    if worker.chunk is None:
                        continue
                    if worker.conn in ready:
                        try:
                            answers = worker.conn.recv()
                        except (EOFError, OSError):
                            self._recover(i, pending, results, transient, bar, killed=False)
                            continue
                        chunk, worker.chunk = worker.chunk, None
                        self._feed(i, pending, queries)  # the next chunk first: the worker runs it while these answers are read
                        for key, answer in zip(chunk.keys, answers):
                            results[key] = _received(answer)
                        bar.update(len(answers))
                    elif (start := worker.state[1]) != _IDLE and time.monotonic() - start > hard_limit:
                        self._recover(i, pending, results, transient, bar, killed=True)
                    elif worker.process.poll() is not None:
                        self._recover(i, pending, results, transient, bar, killed=False)
        except BaseException:
            self.close()  # workers may hold half-sent chunks: never reuse them
            raise
        finally:
            bar.close()
        return results, transient

    def _feed(self, i: int, pending: deque, queries: Sequence[tuple]) -> None:
        """Send worker ``i`` the next pending chunk if it has none.

        A worker that died while idle is found here, by its broken pipe: its replacement takes the
        chunk at once (waiting first could mean a whole deadline with none busy).
        """
        while self._workers[i].chunk is None and pending:
            worker, chunk = self._workers[i], pending.popleft()
            try:
                worker.commands.send(self._message(worker, [queries[k] for k in chunk.keys]))
                worker.chunk = chunk
            except (BrokenPipeError, OSError):
                pending.appendleft(chunk)
                self._replace(i)

    def _recover(self, i, pending, results, transient, bar, *, killed: bool):
        """Answer for the query a worker was killed on (or died on) and queue the rest of its chunk again."""
        worker = self._workers[i]
        chunk, index = worker.chunk, int(worker.state[0])
        if killed:
            worker.process.kill()
        exitcode = worker.process.wait()
        self._replace(i)
        if 0 <= index < len(chunk.keys):
            key = chunk.keys[index]
            if killed:
                message = f"killed after {self.limits.timeout + self.grace:g} s (hard deadline)"
                results[key] = ExecutionResult("timeout", message=message)
            else:
                results[key] = ExecutionResult("error", message=f"worker process died (exit code {exitcode}) on this query")
            transient.add(key)
            bar.update(1)
            rest, attempts = chunk.keys[:index] + chunk.keys[index + 1 :], 0  # progress was made: a fresh start
        else:
            rest, attempts = chunk.keys, chunk.attempts + 1
        if attempts > 2:  # the chunk keeps killing workers outside any query: give up on it
            for key in rest:
                results[key] = ExecutionResult("error", message=f"worker process died (exit code {exitcode})")
                transient.add(key)
            bar.update(len(rest))
        elif rest:
            pending.appendleft(_Chunk(rest, attempts))

    def _replace(self, i):
        old = self._workers[i]
        old.close()
        if old.process.poll() is None:
            old.process.kill()
            old.process.wait()
        self._workers[i] = self._spawn()


def _chunks(n: int, workers: int, largest: int = 64) -> deque[_Chunk]:
    """Positions ``0..n-1`` in chunks that shrink towards the end of the batch (guided scheduling).

    Large chunks first cost few round trips; small ones last let the workers finish together
    rather than one waiting on the other's last long chunk. Positions are dealt with a stride, so
    that similar queries (a prompt's rollouts, which come together) spread over several chunks.
    A chunk never holds more than ``largest``: after a kill the rest of its chunk runs again.
    """
    stride = math.ceil(n / largest)
    order = [k for first in range(stride) for k in range(first, n, stride)]
    smallest = max(1, min(8, math.ceil(n / (4 * workers))))
    chunks, start = deque(), 0
    while start < n:
        size = min(largest, max(smallest, math.ceil((n - start) / (2 * workers))))
        chunks.append(_Chunk(order[start : start + size]))
        start += size
    return chunks


def _checked(items: Iterable[tuple[str | os.PathLike, str]]) -> tuple[list[tuple[str, str]], dict]:
    """Absolute (database, SQL) keys, and the answers known before running: SQL that is not text is
    rejected. Raises :class:`DatabaseNotFoundError` for a database file that does not exist."""
    items = list(items)
    absolute = {db: os.path.abspath(os.fspath(db)) for db in {db for db, _ in items}}  # a batch names few files
    missing = sorted(db for db in set(absolute.values()) if not os.path.isfile(db))
    if missing:
        raise DatabaseNotFoundError("; ".join(map(_not_a_database_file, missing)))
    not_text = ExecutionResult("rejected", message="SQL must be a string")
    keys = [(absolute[db], sql if isinstance(sql, str) else not_text) for db, sql in items]
    return keys, {key: not_text for key in keys if key[1] is not_text}


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass


def _progress_bar(total: int, progress: bool | str):
    if not progress:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=progress if isinstance(progress, str) else "executing SQL", unit="query")
