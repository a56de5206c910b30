"""Full Spider dev evaluation: wall time and peak memory of ``trl-processsql evaluate``.

Runs the real command (gold queries as predictions, spider semantics, every safety feature on) in
a fresh interpreter, several times, and the way peer evaluation scripts do it in another fresh
interpreter: a new sqlite3 connection per query, gold then prediction sequentially, each in a
thread joined with a timeout. Both must score 100 % of the 972 runnable questions. Reported: the
median wall time of each, the ratio, and peak resident memory (the evaluator process, and the
largest of its worker processes). For reference, the official test-suite script's execution
comparison takes about 2 s and 30 MB for the same 972 pairs on a 2-core machine.

    python benchmarks/bench_evaluation.py [--spider-dir DIR] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from _common import BackgroundLoad, add_results_argument, add_spider_dir_argument, median, require_spider, write_results

_OURS = """
import json, resource, sys, time
start = time.perf_counter()
from trl_processsql.evaluation import evaluate_files
report = evaluate_files(sys.argv[1] + "/dev.json", sys.argv[1] + "/database", "gold", mode="spider")
wall = time.perf_counter() - start
print(json.dumps({
    "wall": wall, "accuracy": report.totals["accuracy"], "n": report.totals["n"],
    "self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
}))
"""

_PEER = """
import json, os, resource, sqlite3, sys, time
start = time.perf_counter()
sys.path.insert(0, sys.argv[2])
from _common import naive_execute
from trl_processsql.sql.compare import spider_match, gold_orders_rows
questions = json.load(open(sys.argv[1] + "/dev.json"))
correct = n = 0
for q in questions:
    path = os.path.join(sys.argv[1], "database", q["db_id"], q["db_id"] + ".sqlite")
    if not os.path.isfile(path):
        continue
    n += 1
    conn = sqlite3.connect(path, check_same_thread=False)
    conn.text_factory = lambda b: b.decode(errors="replace")
    gold_status, gold = naive_execute(conn, q["query"], 30.0)
    pred_status, pred = naive_execute(conn, q["query"], 30.0)
    conn.close()
    correct += gold_status == pred_status == "ok" and spider_match(pred, gold, gold_orders_rows(q["query"]))
wall = time.perf_counter() - start
print(json.dumps({"wall": wall, "accuracy": correct / n, "n": n,
                  "self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "worker_mb": 0.0}))
"""


def _run(code: str, spider_dir: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code, str(spider_dir), str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spider_dir_argument(parser)
    parser.add_argument("--repeats", type=int, default=5, help="runs of each way; the median wall time is reported")
    add_results_argument(parser)
    args = parser.parse_args()
    spider_dir = require_spider(args.spider_dir).resolve()

    load = BackgroundLoad().start()
    ours = [_run(_OURS, spider_dir) for _ in range(args.repeats)]
    peer = [_run(_PEER, spider_dir) for _ in range(args.repeats)]
    load.stop()
    for name, runs in (("ours", ours), ("peer-style", peer)):
        if any(r["n"] != runs[0]["n"] or r["accuracy"] != 1.0 for r in runs):
            raise SystemExit(f"{name}: gold-as-prediction did not score 100 %: {runs}")

    ours_wall, peer_wall = median([r["wall"] for r in ours]), median([r["wall"] for r in peer])
    print(f"Spider dev, {ours[0]['n']} runnable questions, gold as predictions, spider semantics ({args.repeats} runs each)")
    print(f"  trl-processsql evaluate : {ours_wall:.3f} s wall (median, imports included), accuracy {ours[0]['accuracy']:.1%}")
    print(
        f"    peak memory            : evaluator {max(r['self_mb'] for r in ours):.0f} MB, "
        f"largest worker {max(r['worker_mb'] for r in ours):.0f} MB"
    )
    print(f"  peer-style sequential   : {peer_wall:.3f} s wall, peak {max(r['self_mb'] for r in peer):.0f} MB, accuracy {peer[0]['accuracy']:.1%}")
    print("  official test-suite     : about 2 s and 30 MB on a 2-core machine (reference from the issue, not run here)")
    print(f"  {load.report()}")
    print(f"evaluate vs peer-style sequential: {peer_wall / ours_wall:.1f}x faster ({ours_wall:.2f} s vs {peer_wall:.2f} s)")
    print("figures:", write_results("bench_evaluation", {
        "questions": ours[0]["n"], "repeats": args.repeats, "evaluate_seconds": round(ours_wall, 3), "peer_seconds": round(peer_wall, 3),
        "speedup": round(peer_wall / ours_wall, 2), "evaluator_peak_mb": round(max(r["self_mb"] for r in ours)),
        "worker_peak_mb": round(max(r["worker_mb"] for r in ours)), "background_load": load.report()}, args.results_dir))


if __name__ == "__main__":
    main()
