"""PRM scoring: every step in one forward pass against one pass per step prefix (the naive way).

Trajectories are the gold chains of CTEs of the bundled Spider sample and mutants of them, each
step followed by its executed view, exactly as the PRM reads them. The PRM is a randomly
initialised token-classification model built locally (its scores need not mean anything: the
benchmark checks that both ways give the same scores and times them). The naive way scores step
k by running the model on the prompt plus steps 1..k and reading the last position.

    python benchmarks/bench_prm_scoring.py [--hidden-size 256] [--num-layers 4] [--trajectories 256]
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import add_results_argument, write_results

from trl_processsql.data import load_questions, sample_paths
from trl_processsql.labeling import gold_chains, mutation_rows
from trl_processsql.prm import ProcessRewardModel
from trl_processsql.sql import SQLExecutor
from trl_processsql.small_models import build_tiny_model, build_tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--num-layers", type=int, default=4)
    parser.add_argument("--trajectories", type=int, default=96, help="trajectories scored (multi-step ones first)")
    parser.add_argument("--batch-size", type=int, default=4)
    add_results_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())

    questions_file, db_dir = sample_paths()
    with SQLExecutor() as executor:
        chains, _ = gold_chains(load_questions(questions_file), db_dir, executor)
        rows = mutation_rows(chains, executor)
    rows.sort(key=lambda row: -len(row["completions"]))
    rows = rows[: args.trajectories]
    prompts, completions = [r["prompt"] for r in rows], [r["completions"] for r in rows]
    steps = sum(len(c) for c in completions)

    tokenizer = build_tokenizer()
    model = build_tiny_model(tokenizer, "token-classification", hidden_size=args.hidden_size, num_layers=args.num_layers)
    prm = ProcessRewardModel(model, tokenizer, batch_size=args.batch_size, max_length=4096)
    prm.score_steps(prompts[:2], completions[:2])  # warm-up

    start = time.perf_counter()
    batched = prm.score_steps(prompts, completions)
    one_pass = time.perf_counter() - start

    start = time.perf_counter()
    naive = [
        [prm.score_steps([prompt], [steps_[: k + 1]])[0][-1] for k in range(len(steps_))]
        for prompt, steps_ in zip(prompts, completions)
    ]
    per_prefix = time.perf_counter() - start

    worst = max(abs(a - b) for row_a, row_b in zip(batched, naive) for a, b in zip(row_a, row_b))
    if worst > 1e-4:
        raise SystemExit(f"scores differ by {worst:.2e} > 1e-4 between the two ways")
    print(f"{len(rows)} trajectories, {steps} steps; PRM hidden {args.hidden_size}, {args.num_layers} layers, CPU")
    print(f"  one pass per batch of {args.batch_size} trajectories : {one_pass:.2f} s ({steps / one_pass:.0f} steps/s)")
    print(f"  one pass per step prefix (naive)       : {per_prefix:.2f} s ({steps / per_prefix:.0f} steps/s)")
    print(f"  largest score difference: {worst:.1e} (limit 1e-4)")
    print(f"one-pass scoring vs one pass per prefix: {per_prefix / one_pass:.1f}x faster")
    print("figures:", write_results("bench_prm_scoring", {
        "trajectories": len(rows), "steps": steps, "one_pass_seconds": round(one_pass, 3), "per_prefix_seconds": round(per_prefix, 3),
        "speedup": round(per_prefix / one_pass, 2), "largest_score_difference": worst, "hidden_size": args.hidden_size,
        "num_layers": args.num_layers, "batch_size": args.batch_size}, args.results_dir))


if __name__ == "__main__":
    main()
