"""How much Spider gold SQL the CoCTE converter turns into verified chains of CTEs.

Converts every runnable gold query of Spider dev (``dev.json``) and train
(``train_spider_from_spider_syn.json``): runnable means its database file exists and the gold
query runs. A conversion counts only if its result equals the gold's under both comparison modes
and every step view runs (see :func:`trl_processsql.gold_to_cocte.convert_gold_many`). Prints, for dev
and train apart: the share converted, the distribution of step counts, the share of queries with
two or more steps, the failure reasons with counts and an example each, and the wall time; the
headline figure comes last.

    python benchmarks/bench_cocte_coverage.py [--spider-dir DIR] [--workers N]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

from _common import add_results_argument, add_spider_dir_argument, cores, require_spider, write_results
from tqdm.auto import tqdm

from trl_processsql.gold_to_cocte import CONVERSION_FAILURES, convert_gold_many
from trl_processsql.data import database_path, load_questions
from trl_processsql.sql import SQLExecutor

SPLITS = {"dev": "dev.json", "train": "train_spider_from_spider_syn.json"}
CHUNK = 250  # questions per verification batch: one progress-bar tick each


def convert_split(questions: list[dict], db_dir: Path, executor: SQLExecutor, desc: str) -> list:
    pairs = [(q["gold_sql"], database_path(db_dir, q["db_id"])) for q in questions]
    results = []
    with tqdm(total=len(pairs), desc=desc, unit="query") as bar:
        for start in range(0, len(pairs), CHUNK):
            results += convert_gold_many(pairs[start : start + CHUNK], executor)
            bar.update(len(pairs[start : start + CHUNK]))
    return results


def report(split: str, questions: list[dict], results: list, db_dir: Path) -> tuple[int, int, int]:
    """Print one split's figures; returns (runnable, converted, converted with two or more steps)."""
    no_database = sum(not database_path(db_dir, q["db_id"]).is_file() for q in questions)
    gold_fails = sum(r.reason == "gold_error" for r in results) - no_database
    runnable = [r for r in results if r.reason != "gold_error"]
    converted = [r for r in runnable if r.ok]
    steps = Counter(len(r.cocte.steps) for r in converted)
    multi = sum(n for k, n in steps.items() if k >= 2)
    failures = Counter(r.reason for r in runnable if not r.ok)
    print(f"\nSpider {split}: {len(questions)} questions, {len(runnable)} runnable "
          f"({no_database} without a database file, {gold_fails} whose gold query fails)")
    print(f"  converted with identical results: {len(converted)} / {len(runnable)} = {len(converted) / len(runnable):.1%}")
    print("  steps: " + ", ".join(f"{k}: {n} ({n / len(converted):.1%})" for k, n in sorted(steps.items())))
    print(f"  two or more steps: {multi} / {len(runnable)} = {multi / len(runnable):.1%} of runnable")
    for reason, count in failures.most_common():
        example = next(r for r in runnable if r.reason == reason)
        print(f"  failed, {reason} ({CONVERSION_FAILURES[reason]}): {count}")
        print(f"      e.g. {example.gold_sql}\n           -> {example.detail[:160]}")
    return len(runnable), len(converted), multi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_spider_dir_argument(parser)
    parser.add_argument("--workers", type=int, default=None, help="SQL worker processes (default: all CPUs)")
    parser.add_argument("--max-questions", type=int, default=None, metavar="N",
                        help="convert only the first N questions of each split (a smoke run; default: all)")
    add_results_argument(parser)
    args = parser.parse_args()
    spider_dir = require_spider(args.spider_dir)
    db_dir = spider_dir / "database"
    start = time.perf_counter()
    totals = {}
    with SQLExecutor(num_workers=args.workers) as executor:
        for split, filename in SPLITS.items():
            questions = load_questions(spider_dir / filename)[: args.max_questions]
            results = convert_split(questions, db_dir, executor, f"converting {split}")
            totals[split] = report(split, questions, results, db_dir)
    wall = time.perf_counter() - start
    runnable = sum(t[0] for t in totals.values())
    converted = sum(t[1] for t in totals.values())
    dev_runnable, _, dev_multi = totals["dev"]
    print(f"\nwall time: {wall:.1f} s for {runnable} runnable gold queries ({cores()} CPUs)")
    print(f"HEADLINE: {converted / runnable:.1%} of {runnable} runnable Spider gold queries converted to CoCTE "
          f"with identical results; {dev_multi / dev_runnable:.1%} of dev queries have two or more steps")
    print("figures:", write_results("bench_cocte_coverage", {
        "runnable_gold": runnable, "converted_share": converted / runnable, "dev_two_or_more_steps_share": dev_multi / dev_runnable,
        "wall_seconds": round(wall, 1)}, args.results_dir))


if __name__ == "__main__":
    main()
