"""Slow queries: SQLExecutor vs the naive way on a Spider database scaled up to about 100 MB.

The benchmark copies one Spider dev database (default ``world_1``: three tables, joins,
subqueries, set operations, 120 dev questions) into ``benchmarks/_work/`` and replicates the rows
of every table until the file is about ``--target-mb``; key columns are offset in every copy
(integers by a stride, text by a ``#k`` suffix) so that joins still pair rows of the same copy.
The scaled file is built once and reused while its size and recipe match. The shared data is
only read.

Workload per batch: each distinct dev gold query of that database with one prediction (the gold
itself or a perturbed variant, seeded per batch), judged with Spider semantics; here a query
takes tens of milliseconds, so process start-up, IPC and connection costs fade and what is left
is parallelism. A plain-connection pre-pass (not timed, stopped at the timeout) measures every
query once, leaves out gold queries whose result exceeds the row cap (our executor refuses those
by design, so the two ways would do different work) or that time out, and replaces predictions
that would by their gold query.

Compared with the naive way (a fresh ``sqlite3.connect`` per prediction, gold then prediction in
threads joined with a timeout, sequential):

- ours as in benchmark 1, steady state: gold from the executor's cache, predictions run;
- ours with equal executions (the headline): gold and prediction both run (no cache), so the
  ratio measures parallel execution alone and is bounded by the number of cores;
- plain parallel, the machine's ceiling for that: one process per core with a warm plain
  connection, queries handed out one at a time, rows counted but not sent back, no judging.

Before each timed batch the script waits (within ``--quiet-wait``) for other processes to leave
the machine alone, and it reports how busy they kept it while timing.
Both ways must give the same verdict on every prediction (checked). The headline is printed last.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import multiprocessing
import os
import shutil
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    WORK_DIR,
    BackgroundLoad,
    GoldPair,
    Prediction,
    QuietWaiter,
    add_quiet_argument,
    add_results_argument,
    add_spider_dir_argument,
    check_agreement,
    cores,
    judge_naive,
    judge_in_parent,
    make_batch,
    median,
    open_warm,
    require_spider,
    run_share,
    runnable_dev_pairs,
    timed,
    warm_connections,
    write_results,
)

from trl_processsql.data import database_path
from trl_processsql.sql import ExecutionLimits, SQLExecutor

RECIPE = 2  # bump when the scaling procedure changes, so old builds are rebuilt
# Columns that act as keys without being declared so (world_1: country.Capital -> city.ID).
EXTRA_KEYS = {"world_1": {"country": {"Capital"}}}


# -- building the scaled database ---------------------------------------------------------------


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def key_columns(conn: sqlite3.Connection, db_id: str) -> dict[str, set[str]]:
    """Columns to offset per copy: single-column primary keys, both ends of every foreign key,
    known undeclared keys, and every column of a composite primary key that has no offset column."""
    tables = [
        r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    ]
    keys: dict[str, set[str]] = {t: set(EXTRA_KEYS.get(db_id, {}).get(t, ())) for t in tables}
    primary = {
        t: [r[1] for r in sorted(conn.execute(f"PRAGMA table_info({_quote(t)})"), key=lambda r: r[5]) if r[5]]
        for t in tables
    }
    for t in tables:
        if len(primary[t]) == 1:
            keys[t].add(primary[t][0])
        for row in conn.execute(f"PRAGMA foreign_key_list({_quote(t)})"):
            target, source, to = row[2], row[3], row[4]
            keys[t].add(source)
            match = next((name for name in keys if name.lower() == target.lower()), None)
            if match is not None:
                keys[match].add(to or (primary[match][0] if primary[match] else source))
    for t in tables:
        if len(primary[t]) > 1 and not keys[t] & set(primary[t]):
            keys[t].update(primary[t])
    return keys


def _is_integer_text(col: str) -> str:
    return f"(typeof({col}) = 'text' AND {col} GLOB '[0-9]*' AND CAST(CAST({col} AS INTEGER) AS TEXT) = {col})"


def _offset(col: str, stride: int) -> str:
    """The value of key column ``col`` in copy ``k.n``: integers (and integer-looking text, so that
    a text foreign key still meets its integer key) move by a stride, other text gets a suffix."""
    return (
        f"CASE WHEN typeof({col}) = 'integer' THEN {col} + k.n * {stride} "
        f"WHEN {_is_integer_text(col)} THEN CAST(CAST({col} AS INTEGER) + k.n * {stride} AS TEXT) "
        f"WHEN typeof({col}) = 'text' THEN {col} || '#' || k.n ELSE {col} END"
    )


def build_scaled(source: Path, target: Path, db_id: str, target_bytes: int) -> int:
    """Copy ``source`` to ``target`` and replicate its rows; returns the replication factor.

    Copies are added in rounds: doubling until the growth per copy can be measured, then as many
    as the measured growth says bring the file to ``target_bytes``.
    """
    tmp = target.with_suffix(".building")
    tmp.unlink(missing_ok=True)
    shutil.copyfile(source, tmp)
    conn = sqlite3.connect(tmp, isolation_level=None)
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    keys = key_columns(conn, db_id)
    integer_max = 0
    for table, columns in keys.items():
        for name in columns:
            col = _quote(name)
            value = conn.execute(
                f"SELECT max(abs(CAST({col} AS INTEGER))) FROM {_quote(table)} "
                f"WHERE typeof({col}) = 'integer' OR {_is_integer_text(col)}"
            ).fetchone()[0]
            integer_max = max(integer_max, value or 0)
    stride = integer_max + 1
    inserts = []
    for table, columns in keys.items():
        original = _quote("original_" + table)
        conn.execute(f"CREATE TEMP TABLE {original} AS SELECT * FROM {_quote(table)}")
        names = [r[1] for r in conn.execute(f"PRAGMA table_info({_quote(table)})")]
        exprs = [_offset(f"o.{_quote(n)}", stride) if n in columns else f"o.{_quote(n)}" for n in names]
        inserts.append(
            "WITH RECURSIVE k(n) AS (SELECT ? UNION ALL SELECT n + 1 FROM k WHERE n < ?) "
            f"INSERT INTO {_quote(table)} SELECT {', '.join(exprs)} FROM k, temp.{original} AS o"
        )

    def used() -> int:
        pages = (
            conn.execute("PRAGMA main.page_count").fetchone()[0]
            - conn.execute("PRAGMA main.freelist_count").fetchone()[0]
        )
        return pages * conn.execute("PRAGMA main.page_size").fetchone()[0]

    def replicate(first: int, last: int) -> None:
        conn.execute("BEGIN")
        for insert in inserts:
            conn.execute(insert, (first, last))
        conn.execute("COMMIT")

    before = size = used()
    copies, step = 1, 8  # the original counts as the first copy
    while size < 0.97 * target_bytes:
        replicate(copies, copies + step - 1)
        copies += step
        size = used()
        if size - before < 2**20:  # too little growth yet to extrapolate from
            step *= 2
        else:
            step = max(1, math.ceil((target_bytes - size) / ((size - before) / (copies - 1))))
    conn.close()
    os.replace(tmp, target)
    return copies


def scaled_database(spider_dir: Path, db_id: str, target_mb: float, work_dir: Path) -> tuple[Path, dict, bool]:
    """The scaled copy of ``db_id``: reused if its recorded recipe and size match, else built."""
    source = database_path(spider_dir / "database", db_id)
    if not source.is_file():
        sys.exit(f"database {db_id} not found at {source}")
    folder = work_dir / f"{db_id}_{target_mb:g}mb"
    target, meta_path = folder / f"{db_id}.sqlite", folder / "scaled.json"
    wanted = {
        "recipe": RECIPE,
        "source": str(source.resolve()),
        "source_bytes": source.stat().st_size,
        "target_mb": target_mb,
    }
    if target.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if all(meta.get(k) == v for k, v in wanted.items()) and meta.get("bytes") == target.stat().st_size:
            return target, meta, False
    folder.mkdir(parents=True, exist_ok=True)
    meta_path.unlink(missing_ok=True)
    start = time.perf_counter()
    factor = build_scaled(source, target, db_id, int(target_mb * 2**20))
    meta = dict(wanted, factor=factor, bytes=target.stat().st_size, build_s=round(time.perf_counter() - start, 2))
    meta_path.write_text(json.dumps(meta, indent=1))
    return target, meta, True


# -- the workload --------------------------------------------------------------------------------


def prepass(conn: sqlite3.Connection, sql: str, timeout: float) -> tuple[float, str, int]:
    """``(seconds, status, rows)`` of one run on a plain connection, stopped at ``timeout``."""
    start = time.perf_counter()
    conn.set_progress_handler(lambda: time.perf_counter() - start > timeout, 10_000)
    try:
        status, rows = "ok", len(conn.execute(sql).fetchall())
    except sqlite3.Error:
        status, rows = ("timeout" if time.perf_counter() - start > timeout else "error"), 0
    finally:
        conn.set_progress_handler(None, 0)
    return time.perf_counter() - start, status, rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spider_dir_argument(parser)
    parser.add_argument("--db", default="world_1", help="Spider dev database to scale (default: %(default)s)")
    parser.add_argument(
        "--target-mb", type=float, default=100, help="size of the scaled database in MiB (default: %(default)s)"
    )
    parser.add_argument(
        "--work-dir", type=Path, default=WORK_DIR, help="where the scaled copy is built and kept (default: %(default)s)"
    )
    parser.add_argument(
        "--batches",
        type=int,
        default=5,
        help="timed batches after one warm-up; medians are reported (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the perturbations (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=None, help="executor workers (default: the usable cores)")
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="per-query timeout for both ways, in seconds (default: %(default)s)"
    )
    add_quiet_argument(parser, 20.0)
    add_results_argument(parser)
    args = parser.parse_args(argv)

    spider_dir = require_spider(args.spider_dir)
    db_path, meta, built = scaled_database(spider_dir, args.db, args.target_mb, args.work_dir)
    print(
        f"database: {args.db} x{meta['factor']} = {meta['bytes'] / 2**20:.0f} MiB at {db_path} "
        f"({'built in ' + str(meta['build_s']) + ' s' if built else 'reused'})"
    )

    limits = ExecutionLimits(timeout=args.timeout)
    golds = list(dict.fromkeys(p.gold for p in runnable_dev_pairs(spider_dir, args.db)))
    conn = warm_connections([str(db_path)])[str(db_path)]
    gold_cost = {g: prepass(conn, g, limits.timeout) for g in golds}
    # Gold queries ours would refuse (result over the row cap) or that would time out are left
    # out: the two ways would then do different work.
    excluded = collections.Counter(
        "too slow" if status == "timeout" else "too many rows"
        for _, status, rows in gold_cost.values()
        if status == "timeout" or rows > limits.max_rows
    )
    questions = [
        GoldPair(str(db_path), g, args.db)
        for g, (_, status, rows) in gold_cost.items()
        if status != "timeout" and rows <= limits.max_rows
    ]
    if not questions:
        sys.exit(f"no usable gold queries for {args.db}: {dict(excluded)}")
    batches = [make_batch(questions, args.seed * 1_000_003 + b) for b in range(args.batches + 1)]
    cost = {g: t for g, (t, _, _) in gold_cost.items()}
    replaced = 0
    for batch in batches:
        for i, p in enumerate(batch):
            if p.sql not in cost:
                cost[p.sql], status, rows = prepass(conn, p.sql, limits.timeout)
                if status == "timeout" or rows > limits.max_rows:
                    cost[p.sql] = cost[p.gold]
                    batch[i] = Prediction(p.db_path, p.gold, p.gold, "gold")
                    replaced += 1
    conn.close()

    n = len(questions)
    timed_batches = batches[1:]
    per_exec = [cost[q] for batch in timed_batches for p in batch for q in (p.gold, p.sql)]
    kinds = collections.Counter(p.kind for batch in timed_batches for p in batch)
    print(
        f"workload: {n} distinct dev gold queries of {args.db}, each with one prediction per batch; "
        f"{args.batches} timed batches after 1 warm-up, seed {args.seed}"
    )
    print(
        f"  excluded gold queries: {dict(excluded) or 'none'} (rows over max_rows={limits.max_rows:,}, which ours "
        f"refuses by design, or over the timeout); {replaced} predictions like that replaced by their gold"
    )
    print("  mix: " + ", ".join(f"{k} {v / sum(kinds.values()):.0%}" for k, v in kinds.most_common()))
    print(
        f"  plain-connection pre-pass: {sum(per_exec) / len(per_exec) * 1000:.1f} ms mean per execution, "
        f"slowest {max(per_exec) * 1000:.0f} ms; timeout {limits.timeout:g} s for both ways"
    )

    quiet = QuietWaiter(args.quiet_wait)
    load = BackgroundLoad()
    executor = SQLExecutor(num_workers=args.workers, limits=limits).start()
    # the plain parallel ceiling: one process per core with a warm plain connection, a query per task (slow ones balance out)
    plain = multiprocessing.get_context("fork").Pool(cores(), open_warm, ([(str(db_path), "SELECT 1")],))
    results: dict[str, list[float]] = {"cached": [], "uncached": [], "plain": [], "naive": []}
    right: collections.Counter = collections.Counter()
    statuses: collections.Counter = collections.Counter()
    phases: dict[str, list[float]] = {}
    naive_statuses: list = []
    with executor, plain:
        for index, batch in enumerate(batches):
            # batch 0 warms up: fills the gold cache and opens every process's connection
            if index:
                quiet.wait()
                load.start()
            t_cached, v_cached = timed(judge_in_parent, executor, batch, cache_gold=True)
            t_uncached, v_uncached = timed(
                judge_in_parent,
                executor,
                batch,
                cache_gold=False,
                statuses=statuses if index else None,
                phases=phases if index else None,
            )
            sqls = [q for p in batch for q in (p.gold, p.sql)]
            t_plain = timed(plain.map, run_share, [[(str(db_path), sql)] for sql in sqls], chunksize=1)[0]
            if index == 0:
                continue
            results["plain"].append(t_plain)
            t_naive, v_naive = timed(judge_naive, batch, limits.timeout, naive_statuses)
            load.stop()
            check_agreement(v_cached, v_naive, batch, f"batch {index}, gold cached")
            check_agreement(v_uncached, v_naive, batch, f"batch {index}, no cache")
            for name, t in (("cached", t_cached), ("uncached", t_uncached), ("naive", t_naive)):
                results[name].append(t)
            right.update(naive=sum(v_naive), ours=sum(v_uncached))
        workers = executor.num_workers

    judged = n * args.batches
    naive_timeouts = sum(s.count("timeout") for s in naive_statuses)
    ours_timeouts = statuses["timeout"]
    print(
        f"verdicts: identical both ways on all {judged} timed predictions; "
        f"accuracy ours {right['ours'] / judged:.1%}, naive {right['naive'] / judged:.1%}"
    )
    print(
        f"  prediction statuses (ours): {dict(statuses)}; timeouts: ours {ours_timeouts}, naive {naive_timeouts}"
        + ("  <-- raise --timeout" if ours_timeouts or naive_timeouts else "")
    )
    t_naive, t_cached, t_uncached = (median(results[k]) for k in ("naive", "cached", "uncached"))
    print(
        f"naive (fresh connection, sequential, thread timeout): {t_naive:.2f} s per batch of {2 * n} executions "
        f"= {t_naive / (2 * n) * 1000:.1f} ms per query"
    )
    print(
        f"ours, steady state (gold cached, as benchmark 1): {t_cached:.2f} s per batch = "
        f"{t_cached / (2 * n) * 1000:.1f} ms per judged query; {t_naive / t_cached:.1f}x faster than naive"
    )
    print(
        f"ours, equal executions (no cache: gold and prediction run): {t_uncached:.2f} s per batch "
        f"= {t_uncached / (2 * n) * 1000:.1f} ms per query; "
        + ", ".join(f"{k} {median(v):.2f} s" for k, v in phases.items())
    )
    print(
        f"  per-batch times naive: {', '.join(f'{t:.2f}' for t in results['naive'])}; "
        f"ours cached: {', '.join(f'{t:.2f}' for t in results['cached'])}; "
        f"ours no cache: {', '.join(f'{t:.2f}' for t in results['uncached'])}"
    )
    floor = median([sum(cost[q] for p in batch for q in (p.gold, p.sql)) for batch in timed_batches]) / cores()
    t_plain = median(results["plain"])
    print(
        f"floor (the batch's plain-connection pre-pass times / {cores()} cores): {floor:.2f} s per batch; "
        f"plain parallel ({cores()} processes, warm plain connections, no guards, rows not sent back): "
        f"{t_plain:.2f} s = {t_naive / t_plain:.1f}x naive, the most this machine gives; "
        f"ours without cache takes {t_uncached / t_plain:.2f}x the plain parallel time"
    )
    print(
        f"cores: {cores()} usable, executor workers: {workers}; "
        f"parallel efficiency {t_naive / t_uncached / min(workers, cores()):.0%}"
    )
    print(f"  {load.report()}; waited {quiet.waited:.1f} s for quiet before batches")
    print(f"ours vs naive (equal executions): {t_naive / t_uncached:.1f}x faster")
    print("figures:", write_results("bench_slow_queries", {
        "database": args.db, "scale_factor": meta["factor"], "database_mib": round(meta["bytes"] / 2**20, 1), "queries_per_batch": n,
        "batches": args.batches, "cores": cores(), "workers": workers,
        "ours_batch_seconds": round(t_uncached, 3), "naive_batch_seconds": round(t_naive, 3), "speedup": round(t_naive / t_uncached, 2),
        "ours_cached_batch_seconds": round(t_cached, 3), "cached_speedup": round(t_naive / t_cached, 2),
        "plain_parallel_batch_seconds": round(t_plain, 3), "plain_parallel_speedup": round(t_naive / t_plain, 2),
        "ours_over_plain_parallel_ratio": round(t_uncached / t_plain, 2),
        "parallel_efficiency": round(t_naive / t_uncached / min(workers, cores()), 3), "background_load": load.report()}, args.results_dir))


if __name__ == "__main__":
    main()
