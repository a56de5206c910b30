"""The README's picture of accuracy against the number of candidates, from a run on the bundled sample.

The pool of each question of the sample's ``concert_singer`` database (the one the quickstart
holds out of PRM training) is its verified gold chain of CTEs plus up to ``--mutants`` synthetic
wrong variants from the labelling module, shuffled with a fixed seed. Every candidate goes through
the inference pipeline (parse, execute every step, PRM step scores) with the PRM given by
``--prm`` (the quickstart's tiny PRM: ``trl-processsql quickstart`` writes it to
``outputs/quickstart/prm``), is written in ``predict``'s JSONL format, and ``trl-processsql
sweep`` prints the table and draws the curves.

    trl-processsql quickstart
    python benchmarks/figure_selection_curves.py --prm outputs/quickstart/prm
"""

from __future__ import annotations

import argparse
import os
import random
from pathlib import Path

from trl_processsql.cli import main as cli
from trl_processsql.data import database_path, load_questions, sample_paths
from trl_processsql.inference import best_of_n, candidate_records, load_prm, score_candidates, write_predictions
from trl_processsql.labeling import gold_chains, mutation_rows
from trl_processsql.sql import SQLExecutor

FIGURES = Path(__file__).resolve().parent / "figures"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prm", required=True, help="PRM checkpoint (e.g. outputs/quickstart/prm)")
    parser.add_argument("--db-id", default="concert_singer", help="sample database whose questions are pooled (default: %(default)s)")
    parser.add_argument("--mutants", type=int, default=15, help="wrong variants per pool, at most (default: %(default)s)")
    parser.add_argument("--resamples", type=int, default=200, help="random subsets per k (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default=str(FIGURES / "selection_curves"), help="(default: %(default)s)")
    args = parser.parse_args()

    questions_file, db_dir = sample_paths()
    questions = [q for q in load_questions(questions_file) if q["db_id"] == args.db_id]
    prm = load_prm(args.prm, device="cpu")
    with SQLExecutor() as executor:
        chains, _ = gold_chains(questions, db_dir, executor)
        rows = mutation_rows(chains, executor, mutants_per_question=args.mutants, attempts=8 * args.mutants, seed=args.seed)
        pools: list[list[dict]] = []
        for row in rows:  # each gold row, then its mutants
            if row["source"] == "gold":
                pools.append([])
            pools[-1].append(row)
        for k, pool in enumerate(pools):
            random.Random(f"{args.seed}:{k}").shuffle(pool)
        by_question = {q["question"]: q for q in questions}
        records = []
        for pool in pools:
            question = by_question[pool[0]["question"]]
            path = database_path(db_dir, question["db_id"])
            candidates = score_candidates([r["prompt"] for r in pool], [r["sql"] for r in pool], [path] * len(pool), executor, prm)
            pick = best_of_n(candidates)
            records.append(
                {
                    "index": question["index"],
                    "db_id": question["db_id"],
                    "question": question["question"],
                    "sql": candidates[pick].sql,
                    "strategy": "best-of-n",
                    "selected": pick,
                    "candidates": candidate_records(candidates),
                }
            )
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    pool_file = Path(__file__).resolve().parent / "_work" / "selection_pool.jsonl"  # git-ignored
    pool_file.parent.mkdir(exist_ok=True)
    write_predictions(records, pool_file)
    sizes = [len(r["candidates"]) for r in records]
    print(f"{len(records)} pools on {args.db_id}, {sum(sizes)} candidates ({min(sizes)} to {max(sizes)} per question), written to {pool_file}")
    title = f"Sample {args.db_id}: gold + up to {args.mutants} mutants per question, quickstart PRM ({args.resamples} subsets per k)"
    cli(
        ["sweep", os.path.relpath(pool_file), "--sample", "--output-dir", str(output), "--resamples", str(args.resamples)]
        + ["--seed", str(args.seed), "--title", title]
    )


if __name__ == "__main__":
    main()
