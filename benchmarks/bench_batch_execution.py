"""Batch reward execution in steady state: SQLExecutor vs the naive way peer projects judge SQL.

Workload: 1,024 predictions per batch over the runnable Spider dev databases, a fixed seeded mix
of gold queries and perturbed variants (a changed literal, ASC/DESC flipped, a condition dropped,
an aggregate swapped, DISTINCT toggled, a misspelt column that errors), each judged against its
gold query with Spider semantics. Every batch has the same questions (GRPO sees its prompts
again every epoch) and fresh predictions.

- ours: ``trl_processsql.sql.judge`` on one ``SQLExecutor`` with default limits (timeouts, hard
  deadline, memory cap, read-only guards), started before timing: gold through the executor's
  cache (filled by the warm-up batch), each prediction compared with its gold in the worker that
  ran it, so that only verdicts come back.
- judged in the parent: the same executor, but every result comes back to this process
  (``execute_many``) and is judged here (``judge_results``): the way before comparison moved into
  the workers, timed in the same run as a baseline, with its phases (gold, predictions, judging).
- naive: per prediction a fresh ``sqlite3.connect``; gold, then prediction, each in a
  ``threading.Thread`` joined with the same timeout; same comparison (2 executions per prediction).
- floor: the batch's gold queries on already-open plain connections in one process, divided by
  the number of cores: what the work would cost with no guards, no IPC and perfect parallelism.
  The same gold texts run there every batch, so SQLite's statement cache spares them compiling.
- predictions floor: what ours actually runs, the batch's distinct predictions, on warm plain
  connections of their own in one process, divided by the number of cores. Each batch's
  predictions are new text, compiled once as any fresh prediction must be: the floor of this
  work, not of other work.
- sandbox in one process: the same distinct predictions through one ``SQLiteSandbox`` here
  (every guard but those a separate process adds): what the guards cost before any IPC, over
  the predictions floor's time in one process.
- plain parallel: the same gold queries dealt between one plain process per core, each with its
  own warm connections, run at once: what the cores really give together (a virtual machine's
  cores may share a physical one, or its host), beside the floor's assumption.

Both floors, the sandbox and the plain parallel baseline are timed right after ours in each
batch, and every ratio is the median of the batches' own ratios, so that each compares times of
the same minute (on a shared or virtual machine the same work can take half as long again from one
minute to the next). All three ways of judging must give the same verdict on every prediction
(checked), so the ratios compare equal work. Before each timed batch the script waits (within
``--quiet-wait``) for other processes to leave the machine alone, and it reports how busy they
kept it while timing. The headline ratio is printed last.
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    BackgroundLoad,
    QuietWaiter,
    add_quiet_argument,
    add_results_argument,
    add_spider_dir_argument,
    check_agreement,
    cores,
    judge_in_parent,
    judge_naive,
    judge_ours,
    make_batch,
    median,
    open_warm,
    pick_questions,
    plain_parallel,
    require_spider,
    run_warm,
    runnable_dev_pairs,
    timed,
    warm_connections,
    write_results,
)

from trl_processsql.sql import ExecutionLimits, SQLExecutor, SQLiteSandbox


def ratio(times: list[float], baselines: list[float]) -> float:
    """The median of the batches' own ratios: each batch's time over its baseline's in the same batch."""
    return median([t / b for t, b in zip(times, baselines)])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spider_dir_argument(parser)
    parser.add_argument("--predictions", type=int, default=1024, help="predictions per batch (default: %(default)s)")
    parser.add_argument(
        "--batches", type=int, default=15, help="timed batches; the median is reported (default: %(default)s)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the questions and perturbations (default: %(default)s)"
    )
    parser.add_argument("--workers", type=int, default=None, help="executor workers (default: the usable cores)")
    add_quiet_argument(parser, 10.0)
    add_results_argument(parser)
    args = parser.parse_args(argv)

    spider_dir = require_spider(args.spider_dir)
    pairs = runnable_dev_pairs(spider_dir)
    questions = pick_questions(pairs, args.predictions, args.seed)
    # batch 0 is the warm-up: it fills the gold cache and opens the workers' connections
    batches = [make_batch(questions, args.seed * 1_000_003 + b) for b in range(args.batches + 1)]
    limits = ExecutionLimits()
    n = args.predictions

    kinds = collections.Counter(p.kind for batch in batches[1:] for p in batch)
    print(
        f"workload: {n:,} predictions per batch over {len({q.db_id for q in questions})} Spider dev databases "
        f"({len(pairs)} runnable dev questions), {args.batches} timed batches after 1 warm-up, seed {args.seed}"
    )
    print("  mix: " + ", ".join(f"{k} {v / sum(kinds.values()):.0%}" for k, v in kinds.most_common()))
    print(f"  machine: {cores()} usable cores; timeout {limits.timeout:g} s for both ways")

    start_time, executor = timed(lambda: SQLExecutor(num_workers=args.workers, limits=limits).start())
    print(
        f"  executor: {executor.num_workers} workers spawned in {start_time:.2f} s, not timed (start() does not wait "
        "for the interpreters to be ready: the warm-up batch absorbs that)"
    )

    quiet = QuietWaiter(args.quiet_wait)
    load = BackgroundLoad()
    ours_times, parent_times, naive_times, plain_times, first, phases = [], [], [], [], None, {}
    floor_times, work_times, sandbox_times, ran = [], [], [], []
    gold_items = [(q.db_path, q.gold) for q in questions]
    # open and warm every connection first; the predictions get connections of their own, whose statement
    # cache their texts would otherwise take from the gold queries'
    conns, work_conns = warm_connections([q.db_path for q in questions]), warm_connections([q.db_path for q in questions])
    run_warm(conns, gold_items)
    run_warm(work_conns, gold_items)
    sandbox = SQLiteSandbox(limits)
    for path, sql in gold_items:
        sandbox.execute(path, sql)
    # timed right after ours, batch by batch: the machine's parallelism of the moment, not of another minute
    plain = multiprocessing.get_context("spawn").Pool(cores(), open_warm, (gold_items,))
    pred_status: collections.Counter = collections.Counter()
    ours_right = naive_right = 0
    naive_statuses: list = []
    with executor, plain:
        for index, batch in enumerate(batches):
            if index:
                quiet.wait()
                load.start()
            t_ours, ours = timed(judge_ours, executor, batch, statuses=pred_status if index else None)
            t_plain = plain_parallel(plain, gold_items, cores())
            t_floor = timed(run_warm, conns, gold_items)[0]
            distinct = sorted({(p.db_path, p.sql) for p in batch})
            t_work = timed(run_warm, work_conns, distinct)[0]
            t_sandbox = timed(lambda: [sandbox.execute(path, sql) for path, sql in distinct])[0]
            t_parent, parent = timed(judge_in_parent, executor, batch, phases=phases if index else None)
            t_naive, naive = timed(judge_naive, batch, limits.timeout, naive_statuses)
            if index:
                load.stop()
            check_agreement(ours, naive, batch, f"batch {index}")
            check_agreement(parent, naive, batch, f"batch {index}, judged in the parent")
            if index == 0:
                first = t_ours
                continue
            ours_times.append(t_ours)
            plain_times.append(t_plain)
            floor_times.append(t_floor)
            work_times.append(t_work)
            sandbox_times.append(t_sandbox)
            ran.append(len(distinct))
            parent_times.append(t_parent)
            naive_times.append(t_naive)
            ours_right += sum(ours)
            naive_right += sum(naive)

    floor_raw, work_raw = median(floor_times), median(work_times)
    floor, work_floor = floor_raw / cores(), work_raw / cores()
    floors, work_floors = [t / cores() for t in floor_times], [t / cores() for t in work_times]
    over_floor, over_work, over_plain = ratio(ours_times, floors), ratio(ours_times, work_floors), ratio(ours_times, plain_times)
    parent_over_floor, speedup = ratio(parent_times, floors), ratio(naive_times, ours_times)
    plain_speedup = ratio(floor_times, plain_times)

    judged = n * args.batches
    timeouts = sum(s.count("timeout") for s in naive_statuses)
    print(
        f"verdicts: identical both ways on all {judged:,} timed predictions (and the warm-up); "
        f"accuracy ours {ours_right / judged:.1%}, naive {naive_right / judged:.1%}"
    )
    print(f"  prediction statuses (ours, timed batches): {dict(pred_status)}; naive thread timeouts: {timeouts}")

    t_naive, t_ours, t_parent, t_plain = median(naive_times), median(ours_times), median(parent_times), median(plain_times)
    print(
        f"naive (fresh connection, sequential, thread timeout): {t_naive:.3f} s per batch "
        f"= {2 * n / t_naive:,.0f} executions/s ({2 * n:,} per batch: gold + prediction)"
    )
    print(
        f"ours (SQLExecutor, all guards on, gold cached): {t_ours:.3f} s per batch "
        f"= {2 * n / t_ours:,.0f} executions/s counted as for naive, {n / t_ours:,.0f} predictions judged/s "
        f"(gold came from the cache; {median(ran):,.0f} unique predictions ran per batch "
        f"= {median(ran) / t_ours:,.0f} executions/s actually run)"
    )
    print(f"  first batch (gold not cached, connections opening): {first:.3f} s")
    print(
        f"judged in the parent (the same executor, every result brought back and compared here): {t_parent:.3f} s per batch: "
        + ", ".join(f"{k} {median(v) * 1000:.1f} ms" for k, v in phases.items())
        + " (medians)"
    )
    print(
        f"floor (batch's {n:,} gold queries on warm plain connections: {floor_raw:.3f} s / {cores()} cores): "
        f"{floor:.3f} s = {n / floor:,.0f} executions/s"
    )
    print(
        f"predictions floor (the batch's {median(ran):,.0f} distinct predictions, compiled afresh, on warm connections: "
        f"{work_raw:.3f} s / {cores()} cores): {work_floor:.3f} s, {ratio(work_times, floor_times):.2f}x the floor"
    )
    sandbox_ratio = ratio(sandbox_times, work_times)
    print(
        f"sandbox in one process (the same predictions through one SQLiteSandbox here): {median(sandbox_times):.3f} s, "
        f"{sandbox_ratio:.2f}x the predictions floor's one process (median of the per-batch ratios)"
    )
    print(
        f"  per-batch times ours: {', '.join(f'{t:.3f}' for t in ours_times)}; "
        f"judged in the parent: {', '.join(f'{t:.3f}' for t in parent_times)}; "
        f"naive: {', '.join(f'{t:.3f}' for t in naive_times)}; plain parallel: {', '.join(f'{t:.3f}' for t in plain_times)}; "
        f"floor (one process): {', '.join(f'{t:.3f}' for t in floor_times)}; "
        f"predictions floor (one process): {', '.join(f'{t:.3f}' for t in work_times)}; "
        f"sandbox (one process): {', '.join(f'{t:.3f}' for t in sandbox_times)}"
    )
    print(
        f"plain parallel (the same gold queries dealt between {cores()} plain processes with warm connections, at once, "
        f"timed after ours in each batch): {t_plain:.3f} s, {plain_speedup:.2f}x as fast as one process where the floor "
        f"counts {cores()}x"
    )
    print(f"ours is {over_floor:.2f}x the floor, {over_work:.2f}x the predictions floor and "
          f"{over_plain:.2f}x the plain parallel time; "
          f"judged in the parent {parent_over_floor:.2f}x the floor (medians of the per-batch ratios)")
    print(f"  {load.report()}; waited {quiet.waited:.1f} s for quiet before batches")
    print(f"ours vs naive: {speedup:.1f}x faster")
    print("figures:", write_results("bench_batch_execution", {
        "predictions_per_batch": n, "batches": args.batches, "ours_batch_seconds": round(t_ours, 4), "naive_batch_seconds": round(t_naive, 4),
        "speedup": round(speedup, 2), "floor_batch_seconds": round(floor, 4), "ours_over_floor_ratio": round(over_floor, 2),
        "parent_judged_batch_seconds": round(t_parent, 4), "parent_judged_over_floor_ratio": round(parent_over_floor, 2),
        "plain_parallel_batch_seconds": round(t_plain, 4), "plain_parallel_speedup": round(plain_speedup, 2),
        "ours_over_plain_parallel_ratio": round(over_plain, 2),
        "predictions_floor_batch_seconds": round(work_floor, 4), "ours_over_predictions_floor_ratio": round(over_work, 2),
        "sandbox_batch_seconds": round(median(sandbox_times), 4), "sandbox_over_plain_ratio": round(sandbox_ratio, 2),
        "background_load": load.report()}, args.results_dir))


if __name__ == "__main__":
    main()
