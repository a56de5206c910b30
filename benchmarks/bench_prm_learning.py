"""Does the PRM learn? Train a small PRM from scratch on CPU and measure step AUROC on Spider dev.

Labels are synthetic (no model needed): the verified gold chain of CTEs of each question (every
step right) and one mutant of it whose answer differs (steps before the mutation right, the
mutated step and after wrong), each step followed by its executed view. The PRM trains on
questions from Spider train and is scored on every runnable Spider dev question (other databases).
The model is a randomly initialised Qwen2 token classifier with a tokenizer trained here.

Baselines printed beside it: chance (0.5) and "the view shows an error" (a step scores 0 if its
view, or an earlier one, failed to run), which is all that execution alone can tell.

    python benchmarks/bench_prm_learning.py [--train-questions 3000] [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from _common import add_results_argument, add_spider_dir_argument, require_spider, write_results

from trl_processsql.small_models import train_small_prm
from trl_processsql.data import load_questions
from trl_processsql.labeling import gold_chains, label_statistics, mutation_rows
from trl_processsql.prm.trainer import _auroc
from trl_processsql.sql import SQLExecutor
from trl_processsql.small_models import build_tokenizer


def _train_questions(spider_dir, limit: int, seed: int) -> list[dict]:
    raw = json.loads((spider_dir / "train_spider_from_spider_syn.json").read_text())
    rng = np.random.default_rng(seed)
    picked = rng.permutation(len(raw))[:limit]
    return [
        {"index": int(i), "db_id": raw[i]["db_id"], "question": raw[i]["SpiderQuestion"], "gold_sql": raw[i]["query"], "evidence": ""}
        for i in sorted(picked)
    ]


def _labels(questions, spider_dir, executor, seed):
    chains, _ = gold_chains(questions, spider_dir / "database", executor)
    return mutation_rows(chains, executor, seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spider_dir_argument(parser)
    parser.add_argument("--train-questions", type=int, default=3000, help="Spider train questions sampled for training")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--max-prompt-length", type=int, default=48, help="prompt tokens kept (the end: the question)")
    parser.add_argument("--dev-questions", type=int, default=None, metavar="N",
                        help="score only the first N Spider dev questions (a smoke run; default: all)")
    parser.add_argument("--seed", type=int, default=0)
    add_results_argument(parser)
    args = parser.parse_args()
    spider_dir = require_spider(args.spider_dir)

    start = time.perf_counter()
    with SQLExecutor() as executor:
        train_rows = _labels(_train_questions(spider_dir, args.train_questions, args.seed), spider_dir, executor, args.seed)
        dev_rows = _labels(load_questions(spider_dir / "dev.json")[: args.dev_questions], spider_dir, executor, args.seed)
    labelling = time.perf_counter() - start
    for name, rows in (("train", train_rows), ("dev", dev_rows)):
        stats = label_statistics(rows)
        print(f"{name}: {stats['trajectories']} trajectories, {stats['steps']} steps, {stats['positive_step_share']:.1%} positive steps")

    tokenizer = build_tokenizer([r["question"] for r in train_rows] + [c for r in train_rows for c in r["completions"]], vocab_size=2048)
    prm, training = train_small_prm(
        train_rows,
        tokenizer,
        epochs=args.epochs,
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
        max_prompt_length=args.max_prompt_length,
        seed=args.seed,
        progress=False,
    )
    scores = prm.score_steps([r["prompt"] for r in dev_rows], [r["completions"] for r in dev_rows])
    scored = []  # (PRM score, label, 0/1 "no view failed up to this step")
    for row, row_scores in zip(dev_rows, scores):
        failed = False
        for score, label, completion in zip(row_scores, row["labels"], row["completions"]):
            failed = failed or completion.rsplit("\n-- ", 1)[-1].startswith(("error", "timeout"))
            if score is not None:
                scored.append((score, label >= 0.5, 0.0 if failed else 1.0))
    probs, truth, error_seen = (np.array(column) for column in zip(*scored))
    auroc, execution = _auroc(probs, truth), _auroc(error_seen, truth)
    running = error_seen == 1.0  # steps where execution saw no failure so far: only the PRM can judge them
    running_auroc, accuracy = _auroc(probs[running], truth[running]), float(((probs >= 0.5) == truth).mean())
    print(f"labelling {labelling:.0f} s, training {training:.0f} s ({args.epochs:g} epochs, {len(train_rows)} trajectories, CPU)")
    print(f"dev steps scored: {len(truth)} ({truth.mean():.1%} positive)")
    print("  chance                       : AUROC 0.500")
    print(f"  execution only (view errors) : AUROC {execution:.3f}")
    print(f"  step accuracy at 0.5         : {accuracy:.3f}")
    print(f"  PRM on steps that ran ({running.sum()} steps, {truth[running].mean():.1%} positive): AUROC {running_auroc:.3f}")
    print(f"PRM step AUROC on Spider dev (synthetic labels): {auroc:.3f}")
    print("figures:", write_results("bench_prm_learning", {
        "train_trajectories": len(train_rows), "dev_trajectories": len(dev_rows), "dev_steps": len(truth), "dev_positive_share": round(float(truth.mean()), 4),
        "epochs": args.epochs, "hidden_size": args.hidden_size, "num_layers": args.num_layers,
        "auroc": round(auroc, 4), "execution_auroc": round(execution, 4), "chance_auroc": 0.5, "auroc_over_execution_ratio": round(auroc / execution, 2),
        "running_steps": int(running.sum()), "running_auroc": round(running_auroc, 4), "step_accuracy": round(accuracy, 4),
        "labelling_seconds": round(labelling, 1), "training_seconds": round(training, 1)}, args.results_dir))


if __name__ == "__main__":
    main()
