"""How many of the policy's answer-labelled samples should the PRM learn from? Label mixes compared on shared labels, pools and seeds.

One PRM training moves a held-out set of ``bench_selection.py`` by up to 20 points with its seed
alone, and relabelling moves it again, so two single runs of that benchmark cannot tell two recipes
apart. Here the labels are made once and the pools built once; then, for each size in
``--own-questions`` and each seed in ``--seeds``, the two left-out-kind PRMs of
``bench_selection.py`` (each trained without one half of the mutation kinds) are trained on the
labels of that size and judged on the same pools. A larger size adds questions to a smaller one's:
the rows of the first 1,000 answer-labelled questions are the same in a run of 1,000 and of 2,500.

Each PRM is trained as ``bench_selection.py`` trains one member of its ensemble: from the cached SFT
policy of ``bench_method.py``, on gold chains, mutants of its half of the kinds, right mutants, the
policy's samples with rollouts on ``--prm-questions`` (400, half of ``bench_selection.py``'s, so
that the default run of eight PRMs takes about 80 minutes) and its answer-labelled samples on the
own questions, both prompt styles. Judged, PRM best-of-N (``min``) against a random pick among the
candidates that run, on:

1. Spider dev pools of each left-out kind (gold + mutants of that kind): how many of the kinds beat
   random, and the mean over the kinds;
2. the policy's own samples (8 per question, some right and some wrong, running), on the held-out
   questions and on ``--check-questions`` training questions that no label came from, each judged
   by both PRMs.

The last lines give each size's means over seeds against the first size's.

    python benchmarks/bench_prm_recipe.py             # 400 + 1,000 / 2,500 questions, seeds 0 and 1: about 80 minutes on 2 cores, policy cached
    python benchmarks/bench_prm_recipe.py --quick     # a smoke run of a few minutes
"""

from __future__ import annotations

import argparse
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from _common import RESULTS_DIR, WORK_DIR, add_policy_arguments, add_results_argument, add_spider_dir_argument, require_spider, write_results
from bench_method import answer_rows, prm_questions
from bench_selection import FOLDS, cached_policy, mutant_pools, of_kind, picked, policy_pools, questions_of, random_running, score

from trl_processsql.small_models import train_small_prm, with_both_prompt_styles
from trl_processsql.inference import best_of_n
from trl_processsql.labeling import gold_chains, mutation_rows, policy_rows
from trl_processsql.sql import SQLExecutor


@dataclass
class Judgement:
    """One size and seed: PRM best-of-N and random among running, per left-out kind and, per fold PRM, on the own pools."""

    kinds: dict[str, tuple[float, float]] = field(default_factory=dict)
    own: list[tuple[float, float] | None] = field(default_factory=list)
    check: list[tuple[float, float] | None] = field(default_factory=list)
    minutes: float = 0.0

    def wins(self) -> int:
        return sum(v > b for v, b in self.kinds.values())


def mean(values) -> float:
    values = list(values)
    return float(np.mean(values)) if values else float("nan")


def judged(pools, found) -> tuple[float, float] | None:
    """PRM best-of-N (min) and a random pick among running candidates on ``pools``; None where there are none."""
    return (picked(pools, found, best_of_n), random_running(pools, found)) if pools else None


def new_questions(questions: list[dict], sizes: list[int]) -> list[list[dict]]:
    """The questions each size adds to the one before, labelled apart so that a smaller size's rows are a prefix of a larger one's."""
    return [questions[lo:hi] for lo, hi in zip([0, *sizes[:-1]], sizes)]


def percent(value: tuple[float, float] | None, at: int = 0) -> str:
    return f"{value[at]:.1%}" if value else "-"


def share(value: float) -> str:
    return "-" if np.isnan(value) else f"{value:.1%}"


def points(value: float, baseline: float) -> str:
    return "-" if np.isnan(value - baseline) else f"{100 * (value - baseline):+.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spider_dir_argument(parser)
    parser.add_argument("--quick", action="store_true", help="small sizes everywhere: a smoke run of a few minutes")
    parser.add_argument("--work-dir", default=str(WORK_DIR / "method"), help="where bench_method.py caches its SFT policy")
    parser.add_argument("--test-questions", type=int, default=300, help="Spider train questions held out (as in bench_method.py)")
    add_policy_arguments(parser)
    parser.add_argument("--prm-questions", type=int, default=400, help="Spider train questions with mutants and rollout-labelled samples")
    parser.add_argument("--own-questions", type=int, nargs="+", default=[1000, 2500],
                        help="sizes compared: training questions with 8 answer-labelled samples each; the first is the baseline")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds of every size's PRMs")
    parser.add_argument("--dev-questions", type=int, help="Spider dev questions the left-out-kind pools come from (default: all)")
    parser.add_argument("--check-questions", type=int, default=600, help="other training questions whose policy samples test the PRMs")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--mutants", type=int, default=3, help="wrong candidates per dev pool, at most")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, the labels and the pools")
    add_results_argument(parser)
    args = parser.parse_args()
    if args.quick and args.results_dir == RESULTS_DIR:  # a smoke run's figures stay beside its work
        args.results_dir = Path(args.work_dir)
    if args.quick:
        args.test_questions, args.sft_steps, args.prm_questions, args.own_questions = 40, 60, 30, [20, 40]
        args.check_questions, args.epochs, args.dev_questions, args.seeds = 40, 1.0, 60, [0]
    sizes = sorted(set(args.own_questions))
    if sizes[0] < 1 or sizes != args.own_questions:
        parser.error(f"--own-questions must be positive, distinct and increasing, got {args.own_questions}")
    spider_dir = require_spider(args.spider_dir)
    db_dir = spider_dir / "database"
    began = time.perf_counter()
    test, train, dev = questions_of(spider_dir, args.test_questions, args.seed)
    if args.dev_questions:
        dev = random.Random(args.seed).sample(dev, min(args.dev_questions, len(dev)))
    args.own_questions = sizes[-1]  # prm_questions picks the largest size's questions; smaller sizes take a prefix
    labelled, answered = prm_questions(train, args)
    with SQLExecutor() as executor:
        policy_dir, _, tokenizer, labeler = cached_policy(spider_dir, train, args, executor)
        start = time.perf_counter()
        chains, _ = gold_chains(labelled, db_dir, executor, prompt_style="compact")
        rollout_rows = policy_rows(chains, labeler, samples_per_question=2)
        # mutants of each fold's kinds, made once: their checks run queries under a deadline, which a busy machine can miss
        fold_mutants = [mutation_rows(chains, executor, kinds=kept, seed=args.seed, equivalents=True) for kept in FOLDS]
        chunk_rows = [answer_rows(gold_chains(chunk, db_dir, executor, prompt_style="compact")[0], labeler, args.seed + k)
                      for k, chunk in enumerate(new_questions(answered, sizes))]
        labelling = time.perf_counter() - start

        dev_chains, _ = gold_chains(dev, db_dir, executor)
        fold_pools = [mutant_pools(mutation_rows(dev_chains, executor, mutants_per_question=args.mutants, attempts=8 * args.mutants,
                                                 kinds=left_out, seed=args.seed + 2), db_dir, args.seed)
                      for left_out in FOLDS[::-1]]
        own = policy_pools(gold_chains(test, db_dir, executor, prompt_style="compact")[0], labeler, executor, 8, args.seed)
        used = {q["index"] for q in labelled + answered}
        unused = [q for q in train if q["index"] not in used]
        check_chains, _ = gold_chains(random.Random(args.seed + 3).sample(unused, min(args.check_questions, len(unused))), db_dir, executor,
                                      prompt_style="compact")
        check = policy_pools(check_chains, labeler, executor, 8, args.seed + 1)
        print(f"\nLabels: {len(rollout_rows)} rollout-labelled samples on {len(chains)} questions; answer-labelled samples "
              + ", ".join(f"{sum(map(len, chunk_rows[: k + 1]))} on {size} questions" for k, size in enumerate(sizes))
              + f" ({labelling / 60:.0f} min). Pools: {len(own)} of the policy's own on held-out questions, {len(check)} on "
              f"{len(check_chains)} unused training questions; Spider dev pools of {sum(map(len, FOLDS))} left-out kinds", flush=True)

        results: dict[tuple[int, int], Judgement] = {}
        for k, size in enumerate(sizes):
            own_rows = rollout_rows + [row for rows in chunk_rows[: k + 1] for row in rows]
            for seed in args.seeds:
                judgement = Judgement()
                for mutants, left_out, pools in zip(fold_mutants, FOLDS[::-1], fold_pools):
                    rows = with_both_prompt_styles(mutants + own_rows, db_dir, seed=args.seed)
                    prm, seconds = train_small_prm(rows, tokenizer, init_from=policy_dir, epochs=args.epochs, seed=seed)
                    judgement.minutes += seconds / 60
                    found = score(pools, prm, executor)
                    for kind in left_out:
                        sub, (sub_found,) = of_kind(pools, [found], kind)
                        if sub:
                            judgement.kinds[kind] = judged(sub, sub_found)
                    judgement.own.append(judged(own, score(own, prm, executor)))
                    judgement.check.append(judged(check, score(check, prm, executor)))
                results[size, seed] = judgement
                print(f"   {size} own questions, seed {seed}: {len(rows)} trajectories in the second PRM, both trained in {judgement.minutes:.1f} min",
                      flush=True)
    report(results, sizes, args.seeds)
    minutes = (time.perf_counter() - began) / 60
    print(f"({minutes:.0f} minutes in all)")
    figures = {"prm_questions": args.prm_questions, "test_questions": args.test_questions, "check_questions": args.check_questions,
               "epochs": args.epochs, **recipe_figures(results, sizes, args.seeds), "minutes": round(minutes, 1)}
    print("figures:", write_results("bench_prm_recipe", figures, args.results_dir))


def recipe_figures(results: dict[tuple[int, int], Judgement], sizes: list[int], seeds: list[int]) -> dict:
    """The figures of :func:`report`: per size (key: the number of own questions), means over seeds and both PRMs of the left-out
    kinds above random, the PRM's pick on them and on the own samples; the random pick among running beside them (the baseline
    every size must beat, the same pools for all), per left-out kind each size's mean over seeds, and each size's gain over the first."""
    first = results[sizes[0], seeds[0]]
    by_size = {}
    for size in sizes:
        runs = [results[size, s] for s in seeds]
        by_size[str(size)] = {
            "kinds_above_random": mean(j.wins() for j in runs), "mean_over_kinds": mean(v for j in runs for v, _ in j.kinds.values()),
            "own_held_out": mean(p[0] for j in runs for p in j.own if p), "own_unused": mean(p[0] for j in runs for p in j.check if p),
            "minutes": round(mean(j.minutes for j in runs), 1),
        }
    base = by_size[str(sizes[0])]
    for figures in list(by_size.values())[1:]:
        figures["gain_over_first"] = {key: figures[key] - base[key] for key in ("mean_over_kinds", "own_held_out", "own_unused")}
    baseline = {"mean_over_kinds": mean(b for _, b in first.kinds.values()),  # the pools are the same for every PRM, and so is this
                "own_held_out": next((p[1] for p in first.own if p), float("nan")), "own_unused": next((p[1] for p in first.check if p), float("nan"))}
    kinds = {kind: {"random_running": first.kinds[kind][1], **{str(size): mean(results[size, s].kinds[kind][0] for s in seeds) for size in sizes}}
             for kind in first.kinds}
    return {"sizes": sizes, "seeds": seeds, "kinds": len(first.kinds), "by_size": by_size, "random_running": baseline, "by_kind": kinds}


def report(results: dict[tuple[int, int], Judgement], sizes: list[int], seeds: list[int]) -> None:
    first = results[sizes[0], seeds[0]]
    print("\nPRM best-of-N (min) against a random pick among running candidates; two left-out-kind PRMs per size and seed")
    print(f"   {'own questions':<15}{'seed':>5}{'kinds above random':>20}{'mean over kinds':>17}{'own, held-out':>18}{'own, unused':>18}{'training':>12}")
    for (size, seed), j in results.items():
        print(f"   {size:<15}{seed:>5}{f'{j.wins()} of {len(j.kinds)}':>20}{mean(v for v, _ in j.kinds.values()):>17.1%}"
              f"{' / '.join(map(percent, j.own)):>18}{' / '.join(map(percent, j.check)):>18}{j.minutes:>8.1f} min")
    print(f"   {'random among running':<40}{mean(b for _, b in first.kinds.values()):>17.1%}"
          f"{percent(first.own[0], 1):>18}{percent(first.check[0], 1):>18}")

    print(f"\nEach left-out kind, mean over seeds {seeds}:")
    print(f"   {'kind':<16}{'random':>8}" + "".join(f"{size:>8}" for size in sizes))
    for kind in first.kinds:
        print(f"   {kind:<16}{first.kinds[kind][1]:>8.1%}" + "".join(f"{mean(results[size, s].kinds[kind][0] for s in seeds):>8.1%}" for size in sizes))

    print(f"\nMeans over seeds {seeds} and both PRMs, against {sizes[0]} own questions (the first size):")
    base = None
    for size in sizes:
        runs = [results[size, s] for s in seeds]
        figures = (mean(v for j in runs for v, _ in j.kinds.values()), mean(p[0] for j in runs for p in j.own if p),
                   mean(p[0] for j in runs for p in j.check if p))
        delta = f"   ({' / '.join(points(a, b) for a, b in zip(figures, base))} points)" if base else ""
        base = base or figures
        print(f"   {size} own questions: left-out kinds above random {mean(j.wins() for j in runs):.1f} of {len(first.kinds)}, "
              f"mean over kinds {share(figures[0])}; own samples, held-out {share(figures[1])}, unused {share(figures[2])}{delta}")


if __name__ == "__main__":
    os.environ.setdefault("DS_ACCELERATOR", "cpu")  # a CPU benchmark: DeepSpeed, if installed, need not probe for a GPU and warn
    main()
