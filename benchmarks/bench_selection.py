"""Does the PRM choose well, on errors it never saw? Selection on fixed candidate pools, with honest held-out kinds.

The PRM is trained the way the project recommends at CPU scale (:mod:`trl_processsql.small_models`):
it starts from the SFT policy of ``bench_method.py`` (trained on Spider train, cached), and learns
from the policy's own samples on Spider train questions, labelled by execution and Monte Carlo
rollouts (2 per question) or by their answer (8 per question on ``--own-questions`` more, those
that run, with as many wrong answers larger than the gold's as not, where a right one and a wrong
one remain), mixed with gold chains, planted mutants of every kind, and mutants whose answer
stays the gold's, labelled right (the fold PRMs below plant only their own kinds, either way);
half of its rows show the full prompt (schema and question), half the compact one, so it judges
either. It is an ensemble of ``--prm-members`` PRMs trained on the same labels with consecutive
seeds, judging by the mean of their step scores: one seed alone moves a held-out set by several
points, and the mean takes that luck out of the verdict; each member is also reported alone, so
the run shows what the ensemble buys. ``--save-prm DIR`` writes it; ``ProcessRewardModel.from_pretrained(DIR)``
then scores exactly as here.

Every pool is a question's verified gold chain of CTEs and wrong candidates, shuffled with a
fixed seed; a pick is right when its result matches the gold's. Pools:

1. Spider dev (databases the PRM never saw): gold + up to ``--mutants`` planted mutants of any kind;
   every selection strategy against random choice, random among those that run, and majority vote.
2. Left-out kinds: two more PRMs, each trained with half of the mutation kinds left out, judge
   Spider dev pools of the kinds they never saw (gold + mutants of one kind), each an ensemble of
   ``--prm-members`` as the main PRM.
3. The policy's own samples (8 per question), where some are right and some wrong and run: its
   real mistakes, on the held-out Spider train questions and on ``--check-questions`` training
   questions the PRM's labels never came from (the policy trained on them, the PRM did not).

Baselines: random choice, random among the candidates that run (execution filtering alone),
majority vote. The headline is the PRM against random-among-running on each left-out kind,
and on the policy's own errors. Beside each left-out kind: how often the PRM scores a wrong
candidate above the gold, split by whether the wrong result has more rows than the gold's, as
many, or fewer (a PRM that judges by the size of a result fails one way round). Beside the policy's own samples,
which repeat answers: the same pools with each distinct result once (a random pick among them, and how often the PRM
scores a right result above a wrong one), and PRM-weighted vote against majority vote.

With ``--base NAME_OR_DIR`` the policy is ``bench_method.py --base``'s (a pretrained model fine-tuned on all of Spider
train, cached in ``--work-dir``), its own samples are that run's cached stage, policy and PRM read the schema prompt, the
PRMs start from the policy in bf16 where the CPU has bf16 matrix units, and the held-out questions of part 3 are Spider
dev questions, whose databases no training question uses. With ``--prm`` naming the PRM that ``bench_method.py`` saved
in the same ``--work-dir`` (``prm-<key>``), the PRM judged here is the one whose best-of-N its table reports.

    python benchmarks/bench_selection.py [--save-prm DIR] [--prm-questions 800] [--epochs 2]
    python benchmarks/bench_selection.py --prm DIR --skip-folds   # judge with a saved PRM: parts 1 and 3 only
    python benchmarks/bench_selection.py --base smollm2-135m-instruct --work-dir DIR --prm DIR/prm-<key> --prm-questions 80 \
        --own-questions 160 --epochs 1 --prm-members 1 --test-questions 200 --check-questions 100 --dev-questions 300
"""

from __future__ import annotations

import argparse
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _common import (
    WORK_DIR,
    add_policy_arguments,
    add_results_argument,
    add_spider_dir_argument,
    base_checkpoint,
    policy_settings,
    require_spider,
    write_results,
)
from bench_method import (
    SAMPLE_MAX_NEW_TOKENS,
    TEMPERATURE,
    StageCache,
    own_sample_rows,
    own_samples,
    prm_questions,
    small_policy,
    spider_dev,
    spider_train,
)

from trl_processsql.small_models import PRETRAINED_PRM_ARGS, split_by_question, train_small_prm, with_both_prompt_styles
from trl_processsql.data import database_path, load_questions
from trl_processsql.inference import best_of_n, majority_vote, prm_vote, result_groups, score_candidates, trajectory_score
from trl_processsql.labeling import MUTATIONS, RolloutLabeler, gold_chains, mutation_rows
from trl_processsql.precision import cpu_inference_model
from trl_processsql.prm import AGGREGATIONS, ProcessRewardModel, StepScoreEnsemble
from trl_processsql.sql import SQLExecutor, judge

FOLDS = (
    ("column", "literal", "join_key", "add_filter", "connector", "order", "projection", "group_by", "sort_key", "join_type"),
    ("comparison", "aggregate", "drop_filter", "table", "distinct", "limit", "negation", "count", "set_operation"),
)
"""Mutation kinds in two halves: a PRM trained on one half judges pools of the other. Kinds alike
(a flipped sort direction and a wrong sort key, ``=`` for ``!=`` and ``NOT IN`` for ``IN``) share a
half, so that what a fold PRM never saw is not a near copy of what it saw."""


@dataclass
class Pool:
    """One question's candidates: their SQL, which are right (known before scoring) and the kind of each."""

    prompt: str
    db_path: str
    sqls: list[str]
    right: list[bool]
    kinds: list[str]

    def shuffled(self, seed: str) -> Pool:
        order = list(range(len(self.sqls)))
        random.Random(seed).shuffle(order)
        return Pool(self.prompt, self.db_path, *([column[i] for i in order] for column in (self.sqls, self.right, self.kinds)))

    def positions(self, kind: str) -> list[int]:
        """Where the gold and the candidates of ``kind`` lie."""
        return [i for i, k in enumerate(self.kinds) if k in ("gold", kind)]


def mutant_pools(rows: list[dict], db_dir: Path, seed: int) -> list[Pool]:
    """Pools from ``mutation_rows`` output (each gold row, then its mutants)."""
    grouped: list[list[dict]] = []
    for row in rows:
        if row["source"] == "gold":
            grouped.append([])
        grouped[-1].append(row)
    return [
        Pool(g[0]["prompt"], str(database_path(db_dir, g[0]["db_id"])), [r["sql"] for r in g], [r["source"] == "gold" for r in g],
             [r["mutation"].split("@")[0] or "gold" for r in g]).shuffled(f"{seed}:{k}")
        for k, g in enumerate(grouped)
    ]


def policy_pools(chains, labeler, executor, n: int, seed: int) -> list[Pool]:
    """The policy's ``n`` samples per question, where at least one runs and is right and one runs and is wrong.

    Sampled from ``seed`` alone, so that a saved PRM (``--prm``) judges the very pools of the run that trained it.
    """
    labeler.reseed(seed)
    texts = labeler.generate([c.prompt for c in chains], [""] * len(chains), n, "policy samples")
    from trl_processsql.cocte import parse_cocte

    sqls = [[parse_cocte(t).sql for t in row] for row in texts]
    asked = [(c, s) for c, row in zip(chains, sqls) for s in row if s]
    found = iter(judge(executor, [s for _, s in asked], [c.question["gold_sql"] for c, _ in asked], [c.db_path for c, _ in asked]))
    pools = []
    for chain, row in zip(chains, sqls):
        verdicts = []
        for sql in row:
            verdict = next(found) if sql else None
            verdicts.append((verdict is not None and verdict.ran, verdict is not None and verdict.correct))
        if any(right for _, right in verdicts) and any(runs and not right for runs, right in verdicts):
            keep = [k for k, s in enumerate(row) if s]
            pools.append(Pool(chain.prompt, chain.db_path, [row[k] for k in keep], [verdicts[k][1] for k in keep], ["policy"] * len(keep)))
    return pools


def score(pools: list[Pool], prm, executor) -> list[list]:
    flat = score_candidates([p.prompt for p in pools for _ in p.sqls], [s for p in pools for s in p.sqls],
                            [p.db_path for p in pools for _ in p.sqls], executor, prm)
    out, at = [], 0
    for p in pools:
        out.append(flat[at : at + len(p.sqls)])
        at += len(p.sqls)
    return out


def random_running(pools: list[Pool], found: list[list]) -> float:
    total = 0.0
    for pool, cands in zip(pools, found):
        running = [i for i, c in enumerate(cands) if c.ok]
        total += sum(pool.right[i] for i in running) / len(running) if running else 0.0
    return total / len(pools)


def picked(pools: list[Pool], found: list[list], pick) -> float:
    return sum(pool.right[pick(cands)] for pool, cands in zip(pools, found)) / len(pools)


def random_answer(pools: list[Pool], found: list[list]) -> float:
    """A random pick among the distinct results that run, each once. Where the policy repeats its answers, a random
    pick among candidates follows its vote; best-of-N, which keeps one candidate however many agree, faces this."""
    total = 0.0
    for pool, cands in zip(pools, found):
        groups = result_groups(cands)
        total += sum(pool.right[g[0]] for g in groups) / len(groups) if groups else 0.0
    return total / len(pools)


def answer_pairs(pools: list[Pool], found: list[list]) -> tuple[int, float]:
    """Pairs of a right and a wrong result of one pool: how many, and the share where the right result's best
    candidate scores (min) above the wrong one's, ties counting half: the PRM's judgement with repeats set aside."""
    shares = []
    for pool, cands in zip(pools, found):
        best = [(pool.right[g[0]], max(trajectory_score(cands[i]) for i in g)) for g in result_groups(cands)]
        shares += [float(r > w) + 0.5 * (r == w) for right, r in best if right for wrong, w in best if not wrong]
    return len(shares), float(np.mean(shares)) if shares else float("nan")


def prefers_wrong(pools: list[Pool], found: list[list]) -> dict[str, tuple[int, float]]:
    """Pairs of a pool's gold and a wrong candidate that runs: how many, and the share where the PRM (min)
    scores the wrong one higher (ties count half), by the wrong result's size against the gold's."""
    shares: dict[str, list[float]] = {"more rows": [], "as many": [], "fewer": []}
    for pool, cands in zip(pools, found):
        gold = cands[pool.kinds.index("gold")]
        for right, cand in zip(pool.right, cands):
            if right or not cand.ok or not gold.ok:
                continue
            size = "more rows" if len(cand.rows) > len(gold.rows) else "as many" if len(cand.rows) == len(gold.rows) else "fewer"
            wrong_score, gold_score = trajectory_score(cand), trajectory_score(gold)
            shares[size].append(1.0 if wrong_score > gold_score else 0.5 if wrong_score == gold_score else 0.0)
    return {size: (len(v), float(np.mean(v)) if v else float("nan")) for size, v in shares.items()}


def of_kind(pools: list[Pool], founds: list[list[list]], kind: str) -> tuple[list[Pool], list[list[list]]]:
    """Each pool that has candidates of ``kind``, restricted to them and the gold (under each PRM's scores in ``founds``)."""
    holding = [k for k, pool in enumerate(pools) if kind in pool.kinds]
    keeps = {k: pools[k].positions(kind) for k in holding}
    sub = [Pool(pools[k].prompt, pools[k].db_path, *([column[i] for i in keeps[k]] for column in (pools[k].sqls, pools[k].right, pools[k].kinds)))
           for k in holding]
    return sub, [[[found[k][i] for i in keeps[k]] for k in holding] for found in founds]


def against_random(pools: list[Pool], founds: list[list[list]]) -> dict:
    """The figures of one set of pools scored by a PRM (``founds[0]``) and by each of its members alone (the rest): how many pools,
    the PRM's best-of-N (min) pick and a random pick among running candidates (shares right), and the gain of the one over the other;
    with members, the mean of their picks alone and how many of them beat random."""
    prm, baseline = picked(pools, founds[0], best_of_n), random_running(pools, founds[0])
    figures = {"pools": len(pools), "prm": prm, "random_running": baseline, "gain": prm - baseline}
    if len(founds) > 1:
        alone = [picked(pools, f, best_of_n) for f in founds[1:]]
        figures.update(members_alone=float(np.mean(alone)), members_above_random=sum(v > baseline for v in alone))
    return figures


def members_alone(prm: ProcessRewardModel) -> list[ProcessRewardModel]:
    """Each member of an ensemble PRM as a PRM of its own (none for a single PRM)."""
    if not isinstance(prm.model, StepScoreEnsemble):
        return []
    return [ProcessRewardModel(m, prm.tokenizer, max_length=prm.max_length, max_prompt_length=prm.max_prompt_length)
            for m in prm.model.members]


def prm_rows(chains, labeler_rows: list[dict], executor, kinds, args, db_dir) -> list[dict]:
    """The PRM's rows: mutants of ``kinds`` (and equivalent ones) and the policy's own; from scratch, half read the full prompt."""
    rows = mutation_rows(chains, executor, kinds=kinds, seed=args.seed, equivalents=True) + labeler_rows
    return rows if args.base else with_both_prompt_styles(rows, db_dir, seed=args.seed)


def questions_of(spider_dir: Path, test_questions: int, seed: int, base: Path | None = None,
                 dev_questions: int | None = None) -> tuple[list[dict], list[dict], list[dict]]:
    """The held-out questions, the training questions and the Spider dev questions of the planted pools (a fixed sample of
    ``dev_questions``, or all), those whose database is present; libraries quietened for a readable run. From scratch the
    held-out questions come from Spider train (split as ``bench_method.py`` splits it); with a pretrained ``base``, from
    Spider dev as there, and all of train trains."""
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    db_dir = spider_dir / "database"
    questions = [q for q in spider_train(spider_dir) if database_path(db_dir, q["db_id"]).is_file()]
    if base:
        test, train = spider_dev(spider_dir, test_questions, seed), questions
    else:
        test, train = split_by_question(questions, [test_questions], seed)
    if dev_questions is None:
        dev = [q for q in load_questions(spider_dir / "dev.json") if database_path(db_dir, q["db_id"]).is_file()]
    else:
        dev = spider_dev(spider_dir, dev_questions, seed + 1)
    return test, train, dev


def cached_policy(spider_dir: Path, train: list[dict], args, executor, stages: StageCache | None = None, base: Path | None = None):
    """The SFT policy of ``bench_method.py`` (trained once, then loaded from ``args.work_dir``) and a labeler that samples it;
    from a pretrained ``base`` it samples through the batched sampler with bf16 weights where the CPU has bf16 matrix units."""
    from trl_processsql.inference import TransformersSampler

    policy_dir, policy, tokenizer, _ = small_policy(spider_dir, Path(args.work_dir), train, policy_settings(args, base), executor, stages)
    sampler = None
    if base:
        policy = cpu_inference_model(policy, None)
        sampler = TransformersSampler(policy, tokenizer, temperature=TEMPERATURE, max_new_tokens=SAMPLE_MAX_NEW_TOKENS, batch_size=32,
                                      bf16=None, progress=True)
    labeler = RolloutLabeler(policy, tokenizer, executor, num_rollouts=4, temperature=TEMPERATURE, max_new_tokens=SAMPLE_MAX_NEW_TOKENS,
                             batch_size=32, progress=True, sampler=sampler)
    return policy_dir, policy, tokenizer, labeler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spider_dir_argument(parser)
    parser.add_argument("--save-prm", metavar="DIR", help="write the PRM trained on every mutation kind here")
    parser.add_argument("--work-dir", default=str(WORK_DIR / "method"), help="where bench_method.py caches its SFT policy")
    parser.add_argument("--test-questions", type=int, default=300,
                        help="questions held out whose policy samples test the PRM (as in bench_method.py: of Spider train, of Spider dev with --base)")
    parser.add_argument("--dev-questions", type=int, default=None, metavar="N",
                        help="Spider dev questions of the planted pools: a fixed sample of N (default: all)")
    add_policy_arguments(parser, base=True)
    parser.add_argument("--prm-questions", type=int, default=800, help="Spider train questions with mutants and rollout-labelled samples (as in bench_method.py)")
    parser.add_argument("--own-questions", type=int, default=2500,
                        help="more with 8 answer-labelled samples each (bench_method.py takes fewer to fit in its hour)")
    parser.add_argument("--check-questions", type=int, default=600, help="other training questions whose policy samples test the PRM")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--mutants", type=int, default=3, help="wrong candidates per dev pool, at most")
    parser.add_argument("--skip-folds", action="store_true", help="do not train the two left-out-kind PRMs")
    parser.add_argument("--prm-members", type=int, default=2,
                        help="PRMs trained on the same labels with seeds --seed, --seed + 1, ...; the mean of their step scores judges "
                        "(1: a single PRM). Each PRM of the run, the left-out-kind ones too, is such an ensemble")
    parser.add_argument("--prm", metavar="DIR", help="judge with this saved PRM (e.g. an earlier --save-prm, or the PRM bench_method.py "
                        "saved in --work-dir) instead of training one; the left-out-kind PRMs are still trained unless --skip-folds")
    parser.add_argument("--seed", type=int, default=0)
    add_results_argument(parser)
    args = parser.parse_args()
    if args.prm_members < 1:
        parser.error(f"--prm-members must be at least 1, got {args.prm_members}")
    spider_dir = require_spider(args.spider_dir)
    db_dir = spider_dir / "database"
    began = time.perf_counter()
    base = base_checkpoint(args.base) if args.base else None
    test, train, dev = questions_of(spider_dir, args.test_questions, args.seed, base, args.dev_questions)
    style = "tables" if args.base else "compact"  # the policy's prompt, which the PRM reads too (from scratch: half the full one)
    lengths = PRETRAINED_PRM_ARGS if args.base else {}
    stages = StageCache(Path(args.work_dir))
    with SQLExecutor() as executor:
        policy_dir, policy, tokenizer, labeler = cached_policy(spider_dir, train, args, executor, stages, base)
        labelled, answered = prm_questions(train, args)

        def trained_prm(rows: list[dict], output_dir=None) -> tuple[ProcessRewardModel, float]:
            prm_, seconds = train_small_prm(rows, tokenizer, init_from=policy_dir, epochs=args.epochs, output_dir=output_dir, seed=args.seed,
                                            members=args.prm_members, **lengths)
            if args.base:  # it only scores from here on
                prm_.model = cpu_inference_model(prm_.model, None)
            return prm_, seconds

        if not (args.prm and args.skip_folds):  # the labels of the main PRM and of the left-out-kind ones
            start = time.perf_counter()
            chains, _ = gold_chains(labelled, db_dir, executor, prompt_style=style)
            own_chains, _ = gold_chains(answered, db_dir, executor, prompt_style=style)
            _, own_chains, answers = own_samples(stages, policy_dir, answered, own_chains, labeler, args.seed)  # bench_method.py's stage
            own_rows = own_sample_rows(chains, own_chains, labeler, args.seed, answers)
            labelling = time.perf_counter() - start
        if args.prm:
            prm, trained = ProcessRewardModel.from_pretrained(args.prm), f"loaded from {args.prm}"
            if args.base:
                prm.model = cpu_inference_model(prm.model, None)
        else:
            rows = prm_rows(chains, own_rows, executor, MUTATIONS, args, db_dir)
            prm, training = trained_prm(rows, args.save_prm)
            ensemble = f"{args.prm_members} PRMs (seeds {args.seed}-{args.seed + args.prm_members - 1}) " if args.prm_members > 1 else ""
            trained = (f"{ensemble}from the {sum(p.numel() for p in policy.parameters()) / 1e6:.1f}M-parameter SFT policy, {len(rows)} trajectories "
                       f"(policy samples on {len(chains)} Spider train questions with rollouts and on {len(own_chains)} more by their "
                       f"answer, gold chains, mutants of every kind); labelling {labelling / 60:.1f} min, training {training / 60:.1f} min")
        dev_chains, _ = gold_chains(dev, db_dir, executor, prompt_style="tables" if args.base else "full")
        dev_rows = mutation_rows(dev_chains, executor, mutants_per_question=args.mutants, attempts=8 * args.mutants, seed=args.seed + 1)
        pools = mutant_pools(dev_rows, db_dir, args.seed)
        found = score(pools, prm, executor)
        alone = members_alone(prm)
        found_alone = [score(pools, m, executor) for m in alone]
        test_chains, _ = gold_chains(test, db_dir, executor, prompt_style=style)
        own = policy_pools(test_chains, labeler, executor, 8, args.seed)
        own_found = score(own, prm, executor)
        own_alone = [score(own, m, executor) for m in alone]
        used = {q["index"] for q in labelled + answered}
        unused = [q for q in train if q["index"] not in used]
        check_chains, _ = gold_chains(random.Random(args.seed + 3).sample(unused, min(args.check_questions, len(unused))), db_dir, executor,
                                      prompt_style=style)
        check = policy_pools(check_chains, labeler, executor, 8, args.seed + 1)
        check_found = score(check, prm, executor)
        check_alone = [score(check, m, executor) for m in alone]

        folds = []
        if not args.skip_folds:
            for kept, left_out in zip(FOLDS, FOLDS[::-1]):
                rows = prm_rows(chains, own_rows, executor, kept, args, db_dir)
                fold_rows = mutation_rows(dev_chains, executor, mutants_per_question=args.mutants, attempts=8 * args.mutants, kinds=left_out, seed=args.seed + 2)
                fold_pools = mutant_pools(fold_rows, db_dir, args.seed)
                fold_prm, _ = trained_prm(rows)
                folds.append((left_out, fold_pools, [score(fold_pools, fold_prm, executor)] + [score(fold_pools, m, executor) for m in members_alone(fold_prm)]))

    # -- 1. planted kinds on dev: every strategy --------------------------------------------------
    sizes = [len(p.sqls) for p in pools]
    ran = sum(c.ok for cands in found for c in cands)
    agreeing = sum(any(len(g) > 1 for g in result_groups(cands)) for cands in found)
    print(f"\nPRM: {trained}")
    print(f"1. Spider dev (unseen databases): {len(pools)} pools, {sum(sizes) / len(sizes):.2f} candidates each "
          f"(gold + up to {args.mutants} planted mutants), {ran / sum(sizes):.1%} run, {agreeing / len(pools):.1%} with wrong candidates that agree")
    table = [
        ("random choice (expected)", float(np.mean([sum(p.right) / len(p.right) for p in pools]))),
        ("random among those that run", random_running(pools, found)),
        ("majority vote (execution result)", picked(pools, found, majority_vote)),
    ]
    best = {a: picked(pools, found, lambda c, a=a: best_of_n(c, aggregation=a)) for a in AGGREGATIONS}
    votes = {a: picked(pools, found, lambda c, a=a: prm_vote(c, aggregation=a)) for a in AGGREGATIONS}
    table += [(f"PRM best-of-N, {a}", value) for a, value in best.items()]
    if found_alone:
        table.append((f"each of the {len(alone)} PRMs alone, min (mean)", float(np.mean([picked(pools, f, best_of_n) for f in found_alone]))))
    table += [(f"PRM-weighted vote, {a}", value) for a, value in votes.items()]
    for name, value in table:
        print(f"   {name:<36}{value:>8.1%}")
    figures = {
        "base": args.base, "prm_members": args.prm_members, "epochs": args.epochs, "mutants": args.mutants, "trained": not args.prm,
        "dev": {"pools": len(pools), "candidates_per_pool": round(sum(sizes) / len(sizes), 2), "run_share": ran / sum(sizes),
                "random": table[0][1], "random_running": table[1][1], "majority_vote": table[2][1],
                "best_of_n": best, "prm_vote": votes},
        "left_out": {},
        "own": {},
    }
    if found_alone:
        figures["dev"]["members_alone"] = table[3 + len(AGGREGATIONS)][1]

    # -- 2-4. errors the PRM never saw ------------------------------------------------------------
    print("\nErrors the PRM was not trained on: PRM best-of-N (min) against a random pick among the candidates that run")
    members = f"each of its {args.prm_members} PRMs alone: their mean, how many beat random; " if args.prm_members > 1 else ""
    print(f"   ({members}left-out kinds: PRM prefers a wrong candidate with more rows / as many / fewer)")
    print(f"   {'pools':<44}{'n':>5}{'PRM':>8}{'random':>8}" + (f"{'alone':>8}" if args.prm_members > 1 else ""))
    headline = []

    def line(name: str, pools_: list[Pool], founds: list[list[list]], sizes: bool = True, into: dict | None = None,
             key: str = "") -> tuple[float, float] | None:
        """One set of pools scored by the PRM (``founds[0]``) and by each of its members alone (the rest): the
        PRM's pick against random among running (its figures go to ``into[key]``)."""
        if not pools_:
            print(f"   {name:<44}{0:>5}")
            return None
        found_figures = against_random(pools_, founds)
        if into is not None:
            into[key] = found_figures
        prm_value, baseline = found_figures["prm"], found_figures["random_running"]
        alone = [picked(pools_, f, best_of_n) for f in founds[1:]]
        headline.append((prm_value, baseline, alone))
        alone = f"{np.mean(alone):>8.1%} {sum(v > baseline for v in alone)} of {len(alone)}   " if alone else "   "
        if sizes:
            split = prefers_wrong(pools_, founds[0])
            shares = " / ".join(f"{share:.0%} of {n}" if n else "-" for n, share in split.values())
        print(f"   {name:<44}{len(pools_):>5}{prm_value:>8.1%}{baseline:>8.1%}{alone}{shares if sizes else ''}")
        return prm_value, baseline

    for left_out, fold_pools, fold_founds in folds:
        print(f"   2. a PRM trained without {', '.join(left_out)}; Spider dev pools of each:")
        for kind in left_out:
            line(f"   left-out kind '{kind}'", *of_kind(fold_pools, fold_founds, kind), into=figures["left_out"], key=kind)
    print("   3. the policy's own samples, 8 per question, where some run and are right and some run and are wrong:")
    held_out = f"held-out Spider {'dev' if args.base else 'train'} questions"
    own_lines = [
        line(f"   {held_out}", own, [own_found, *own_alone], sizes=False, into=figures["own"], key="held_out"),
        line(f"   {len(check_chains)} training questions the PRM never saw", check, [check_found, *check_alone], sizes=False,
             into=figures["own"], key="unused"),
    ]
    print("      the same pools, each distinct result once (the policy repeats its answers; best-of-N keeps one candidate "
          "however many agree):")
    print(f"      {'':<44}{'random':>8}   right result scored above a wrong one   PRM vote / majority vote")
    for name, key, pools_, found_ in ((held_out, "held_out", own, own_found),
                                      ("training questions the PRM never saw", "unused", check, check_found)):
        if pools_:
            n_pairs, share = answer_pairs(pools_, found_)
            figures["own"][key].update(random_answer=random_answer(pools_, found_), answer_pairs=n_pairs, right_above_wrong=share,
                                       prm_vote=picked(pools_, found_, prm_vote), majority_vote=picked(pools_, found_, majority_vote))
            pairs = f"{share:.1%} of {n_pairs} pairs"
            print(f"      {name:<44}{random_answer(pools_, found_):>8.1%}   {pairs:<39}"
                  f"{picked(pools_, found_, prm_vote):.1%} / {picked(pools_, found_, majority_vote):.1%}")
    where = ("held-out questions", "training questions the PRM never saw")
    own_words = " and ".join(f"{r[0]:.1%} against {r[1]:.1%} ({w})" for r, w in zip(own_lines, where) if r) or "no pools"

    wins = sum(v > b for v, b, _ in headline)
    worst = min(v - b for v, b, _ in headline) if headline else 0.0
    members = "".join(
        f"; its PRM {k + 1} alone in {sum(a[k] > b for _, b, a in headline)} (worst {100 * min(a[k] - b for _, b, a in headline):+.1f} points)"
        for k in range(len(headline[0][2]) if headline else 0)
    )
    print(f"\nThe PRM picks the right answer more often than a random pick among running candidates in {wins} of {len(headline)} "
          f"held-out error sets (worst {100 * worst:+.1f} points){members}; on the policy's own errors {own_words}; "
          f"on planted mutants on unseen databases best-of-N (min) {table[3][1]:.1%} against {table[1][1]:.1%} "
          f"({(time.perf_counter() - began) / 60:.0f} minutes in all)" if headline else "")
    figures.update(sets_won=wins, sets=len(headline), worst_gain=worst, minutes=round((time.perf_counter() - began) / 60, 1))
    name = "bench_selection" + (f"_{Path(args.base).name}" if args.base else "")
    print("figures:", write_results(name, figures, args.results_dir))
    if args.save_prm and not args.prm:
        print(f"PRM saved to {args.save_prm}: ProcessRewardModel.from_pretrained({args.save_prm!r}) scores as above")


if __name__ == "__main__":
    os.environ.setdefault("DS_ACCELERATOR", "cpu")  # a CPU benchmark: DeepSpeed, if installed, need not probe for a GPU and warn
    main()
