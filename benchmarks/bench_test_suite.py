"""Test-suite evaluation cost: Spider dev with 1 and with 3 databases per schema.

Spider's test suites cannot be downloaded here, so the benchmark builds one in a temporary folder:
for every dev database, two neighbours, each a copy of the original with a third of the rows of
every table deleted (a different third each). Then ``evaluate`` scores the 972 runnable gold
queries as predictions (so every verdict must be right), once on the original databases only and
once with ``test_suite_dir`` (3 databases per question), each run with a fresh executor. The
baseline judges the same 3 x 972 pairs the way peer test-suite scripts do: a new sqlite3
connection per query and database, gold then prediction, sequentially, each in a thread joined
with a timeout.

    python benchmarks/bench_test_suite.py [--spider-dir DIR] [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from _common import BackgroundLoad, Prediction, add_results_argument, add_spider_dir_argument, judge_naive, median, require_spider, write_results

from trl_processsql.data import database_path, load_questions, neighbour_databases
from trl_processsql.evaluation import evaluate

NEIGHBOURS = 2


def build_suite(db_dir: Path, db_ids: set[str], folder: Path) -> None:
    """Two neighbours per database: copies with every third row of each table deleted (offset 0, then 1)."""
    for db_id in sorted(db_ids):
        (folder / db_id).mkdir(parents=True)
        for k in range(NEIGHBOURS):
            path = folder / db_id / f"{db_id}_{k + 1}.sqlite"
            shutil.copyfile(database_path(db_dir, db_id), path)
            conn = sqlite3.connect(path)
            tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
            for table in tables:
                try:
                    conn.execute(f'DELETE FROM "{table}" WHERE rowid % 3 = {k}')
                except sqlite3.OperationalError:  # a table without rowid keeps its rows
                    pass
            conn.commit()
            conn.close()


def peer_style(questions: list[dict], db_dir: Path, suite: Path) -> tuple[float, int]:
    """Seconds and right answers: every database of the schema, a fresh connection per query, sequentially."""
    pairs = [
        (k, Prediction(str(path), q["gold_sql"], q["gold_sql"], "gold"))
        for k, q in enumerate(questions)
        for path in [database_path(db_dir, q["db_id"]), *neighbour_databases(suite, q["db_id"])]
    ]
    start = time.perf_counter()
    verdicts = judge_naive([p for _, p in pairs], 30.0)
    seconds = time.perf_counter() - start
    wrong = {k for (k, _), right in zip(pairs, verdicts) if not right}
    return seconds, len(questions) - len(wrong)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spider_dir_argument(parser)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each way; the median wall time is reported")
    parser.add_argument("--max-databases", type=int, default=None, metavar="N",
                        help="only the questions of the first N dev databases, by name (a smoke run; default: all)")
    add_results_argument(parser)
    args = parser.parse_args()
    spider_dir = require_spider(args.spider_dir).resolve()
    db_dir = spider_dir / "database"
    questions = [q for q in load_questions(spider_dir / "dev.json") if database_path(db_dir, q["db_id"]).is_file()]
    if args.max_databases is not None:
        kept = sorted({q["db_id"] for q in questions})[: args.max_databases]
        questions = [q for q in questions if q["db_id"] in kept]
    gold = [q["gold_sql"] for q in questions]

    with tempfile.TemporaryDirectory() as tmp:
        suite = Path(tmp) / "suite"
        start = time.perf_counter()
        build_suite(db_dir, {q["db_id"] for q in questions}, suite)
        built = time.perf_counter() - start
        load = BackgroundLoad().start()
        walls: dict[str, list[float]] = {"1": [], "3": []}
        for _ in range(args.repeats):
            for label, suite_dir in (("1", None), ("3", suite)):
                start = time.perf_counter()
                report = evaluate(questions, gold, db_dir, test_suite_dir=suite_dir)
                walls[label].append(time.perf_counter() - start)
                if report.totals["accuracy"] != 1.0:
                    raise SystemExit(f"gold as predictions scored {report.totals['accuracy']:.1%} with {label} database(s)")
        per_question = report.settings["test_suite"]["databases_per_question"]
        peer = [peer_style(questions, db_dir, suite) for _ in range(args.repeats)]
        load.stop()
    if any(correct != len(questions) for _, correct in peer):
        raise SystemExit("peer-style judging did not score every gold query right")

    one, three, naive = median(walls["1"]), median(walls["3"]), median([seconds for seconds, _ in peer])
    print(f"Spider dev, {len(questions)} runnable gold queries as predictions ({args.repeats} runs each, median wall time)")
    print(f"  test suite built in {built:.1f} s: {NEIGHBOURS} neighbours per database, {per_question:.0f} databases per question")
    print(f"  evaluate, 1 database per schema    : {one:.2f} s")
    print(f"  evaluate, 3 databases per schema   : {three:.2f} s ({three / one:.2f}x the single-database run)")
    print(f"  peer-style, 3 databases per schema : {naive:.2f} s")
    print(f"  {load.report()}")
    print(f"each database costs {three / one / 3:.2f} of a single-database evaluation (3 separate runs: {3 * one:.2f} s)")
    print(f"3-database evaluate vs peer-style: {naive / three:.1f}x faster ({three:.2f} s vs {naive:.2f} s)")
    print("figures:", write_results("bench_test_suite", {
        "questions": len(questions), "databases_per_question": round(per_question, 2), "repeats": args.repeats,
        "suite_build_seconds": round(built, 1), "one_database_seconds": round(one, 3), "three_databases_seconds": round(three, 3),
        "peer_seconds": round(naive, 3), "speedup": round(naive / three, 2), "three_over_one_ratio": round(three / one, 2),
        "per_database_ratio": round(three / one / 3, 2), "background_load": load.report()}, args.results_dir))


if __name__ == "__main__":
    main()
