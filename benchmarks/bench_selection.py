"""Does the PRM choose well? Selection strategies on fixed candidate pools, independent of any policy.

For every runnable Spider dev question whose gold SQL converts to a verified chain of CTEs and
has wrong variants, the pool is the gold CoCTE plus up to ``--mutants`` synthetic mutants from
the labelling module (each returns a different answer, or fails to run), shuffled with a fixed
seed. A PRM is trained from scratch on Spider train questions as in ``bench_prm_learning.py``
(other databases), then every pool goes through the inference pipeline: parse, execute every
step, PRM step scores (:func:`trl_processsql.inference.score_candidates`), and each strategy of
:mod:`trl_processsql.inference.selection` picks one candidate. A pick is correct when its result
matches the gold's (Spider semantics).

Baselines: random choice (expected accuracy over the pool), random among the candidates that
run (execution filtering alone), and execution-result majority vote. Mutants are kept
preferring those whose every step runs, so execution alone cannot rule most of them out.

    python benchmarks/bench_selection.py [--train-questions 800] [--epochs 2] [--mutants 3]
"""

from __future__ import annotations

import argparse
import random
import time

from _common import add_spider_dir_argument, require_spider, spider_train_questions, train_small_prm

from trl_processsql.data import database_path, load_questions
from trl_processsql.inference import best_of_n, majority_vote, prm_vote, result_groups, score_candidates
from trl_processsql.labeling import gold_chains, mutation_rows
from trl_processsql.prm import AGGREGATIONS
from trl_processsql.sql import SQLExecutor, results_match


def _pools(rows: list[dict], seed: int) -> list[list[dict]]:
    """Rows grouped per question (``mutation_rows`` writes each gold row, then its mutants), shuffled."""
    pools: list[list[dict]] = []
    for row in rows:
        if row["source"] == "gold":
            pools.append([])
        pools[-1].append(row)
    for k, pool in enumerate(pools):
        random.Random(f"{seed}:{k}").shuffle(pool)
    return pools


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spider_dir_argument(parser)
    parser.add_argument("--train-questions", type=int, default=800, help="Spider train questions sampled for PRM training")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--max-prompt-length", type=int, default=48, help="prompt tokens kept (the end: the question)")
    parser.add_argument("--mutants", type=int, default=3, help="wrong candidates per pool, at most")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    spider_dir = require_spider(args.spider_dir)
    db_dir = spider_dir / "database"

    start = time.perf_counter()
    dev = load_questions(spider_dir / "dev.json")
    runnable = [q for q in dev if database_path(db_dir, q["db_id"]).is_file()]
    with SQLExecutor() as executor:
        train_chains, _ = gold_chains(spider_train_questions(spider_dir, args.train_questions, args.seed), db_dir, executor)
        train_rows = mutation_rows(train_chains, executor, seed=args.seed)
        dev_chains, skipped = gold_chains(runnable, db_dir, executor)
        dev_rows = mutation_rows(dev_chains, executor, mutants_per_question=args.mutants, attempts=8 * args.mutants, seed=args.seed + 1)
        labelling = time.perf_counter() - start
        prm, training = train_small_prm(
            train_rows,
            epochs=args.epochs,
            hidden_size=args.hidden_size,
            num_layers=args.num_layers,
            max_prompt_length=args.max_prompt_length,
            seed=args.seed,
        )
        pools = _pools(dev_rows, args.seed)
        start = time.perf_counter()
        flat = score_candidates(
            [row["prompt"] for pool in pools for row in pool],
            [row["sql"] for pool in pools for row in pool],
            [database_path(db_dir, row["db_id"]) for pool in pools for row in pool],
            executor,
            prm,
        )
        scoring = time.perf_counter() - start

    candidates, correct, at = [], [], 0
    for pool in pools:
        found = flat[at : at + len(pool)]
        at += len(pool)
        gold = found[[row["source"] for row in pool].index("gold")]
        assert gold.ok, f"a verified gold chain did not run: {gold.sql[:200]}"
        candidates.append(found)
        correct.append([c.ok and results_match(c.rows, gold.rows, "spider", gold_sql=gold.sql) for c in found])

    def accuracy(pick) -> float:
        return sum(ok[pick(found)] for found, ok in zip(candidates, correct)) / len(candidates)

    def expected(only_running: bool) -> float:
        total = 0.0
        for found, ok in zip(candidates, correct):
            eligible = [i for i, c in enumerate(found) if c.ok or not only_running]
            total += sum(ok[i] for i in eligible) / len(eligible) if eligible else 0.0
        return total / len(candidates)

    sizes = [len(found) for found in candidates]
    ran = sum(c.ok for found in candidates for c in found)
    agreeing = sum(any(len(group) > 1 for group in result_groups(found)) for found in candidates)  # only mutants can agree
    print(
        f"dev: {len(dev)} questions, {len(runnable)} runnable, {len(dev_chains)} with a verified gold CoCTE "
        f"({sum(skipped.values()) - skipped['database missing']} not converted), {len(pools)} with wrong variants: the pools"
    )
    print(
        f"pools: {sum(sizes)} candidates, {sum(sizes) / len(sizes):.2f} per question (gold + up to {args.mutants} mutants), "
        f"{ran / sum(sizes):.1%} run, {agreeing / len(pools):.1%} of pools with wrong candidates that agree on one result"
    )
    print(f"PRM trained on {len(train_rows)} trajectories (gold + 1 mutant) from {args.train_questions} Spider train questions")
    print(f"labelling {labelling:.0f} s, training {training:.0f} s ({args.epochs:g} epochs, CPU), scoring the pools {scoring:.0f} s")
    table = [
        ("random choice (expected)", expected(False)),
        ("random among those that run", expected(True)),
        ("majority vote (execution result)", accuracy(majority_vote)),
    ]
    table += [(f"PRM best-of-N, {name}", accuracy(lambda found, a=name: best_of_n(found, aggregation=a))) for name in AGGREGATIONS]
    table += [(f"PRM-weighted vote, {name}", accuracy(lambda found, a=name: prm_vote(found, aggregation=a))) for name in AGGREGATIONS]
    print(f"\n{'strategy':<36}{'accuracy':>9}")
    for name, value in table:
        print(f"{name:<36}{value:>9.1%}")
    best_name, best = max(table[3:], key=lambda item: item[1])
    print(
        f"\nSelection on {len(pools)} Spider dev pools: {best_name} picks the right answer {best:.1%} of the time, "
        f"against {table[0][1]:.1%} for random choice, {table[1][1]:.1%} for random among those that run "
        f"and {table[2][1]:.1%} for majority vote"
    )


if __name__ == "__main__":
    main()
