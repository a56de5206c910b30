"""PRMGRPOTrainer step time against stock GRPOTrainer on the same tiny models and batch. Goal: at most 1.3x.

Both trainers train the same policy on the same prompts with the same config and seed, and both
reward execution accuracy and the CoCTE format (the smoke recipe's rewards: the format reward gives
groups a nonzero advantage for the step scores to shape); PRM-GRPO also executes every step of every
completion, scores the steps with a PRM and turns them into per-token advantages
(``process_advantage="rewardsql"``: completions whose outcome advantage is 0 are neither executed
nor scored, and a query already run for a reward is not run again for a step view). A random
policy writes no SQL, leaving the PRM nothing to score, so the policy is first fine-tuned on the
chains of CTEs of the bundled Spider sample, with the question alone as prompt to keep that short
(cached in benchmarks/_work/); the mean number of steps per completion is printed to show the PRM
had work, and how many completions it scored. The PRM is a random token classifier of the
policy's size: its scores mean nothing, its cost is real. GRPO prompts are the real ones, the schema
without example values unless ``--schema-examples`` says otherwise.

A step is timed from ``on_step_begin`` to ``on_step_end`` (generation, rewards, PRM, loss, update).
Each trainer runs in its own process and the two take turns step by step, so both meet the same
background load on a shared machine while sampling exactly what they would alone (same seed, same
random stream until the policies part); gold results are cached before timing. The median over the
timed steps after warm-up is compared.

    python benchmarks/bench_grpo_step_time.py [--hidden-size 64] [--num-layers 2] [--steps 20] [--warmup 2]
        [--prompts-per-step 2] [--num-generations 4] [--max-completion-length 64] [--schema-examples 0]
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import os
import statistics
import time
import traceback
import warnings
from collections import defaultdict
from pathlib import Path

import datasets
import torch
from _common import WORK_DIR, BackgroundLoad, QuietWaiter, add_quiet_argument, add_results_argument, write_results
from transformers import PrinterCallback, TrainerCallback
from transformers.utils import logging as transformers_logging

from trl_processsql.data import database_path, load_questions, sample_paths
from trl_processsql.prompts import prompt_messages
from trl_processsql.rewards import REWARD_SQL_TIMEOUT, ExecutionAccuracyReward, cocte_format_reward
from trl_processsql.sql import ExecutionLimits, SQLExecutor

TRAINERS = ("GRPOTrainer", "PRMGRPOTrainer")  # in the order they step
PHASES = ("decode with offsets", "parse + execute steps", "PRM forward")  # what PRM-GRPO adds to a step


class Turns:
    """Two processes run their optimizer steps alternately, the first one first; one that stops lets the other go on."""

    def __init__(self, context):
        self.go = [context.Semaphore(1), context.Semaphore(0)]
        self.done = context.Array("b", 2)
        self.me, self.holding = 0, False  # set in each process

    def take(self) -> None:
        """At the start of a step: hand the turn held on to the other process, wait for the next one."""
        other = 1 - self.me
        if self.holding:
            self.go[other].release()
        self.holding = not self.done[other]
        if self.holding:
            self.go[self.me].acquire()

    def leave(self) -> None:
        self.done[self.me] = 1
        if self.holding:
            self.go[1 - self.me].release()
            self.holding = False


class StepTimer(TrainerCallback):
    """Wall and CPU time of each optimizer step, and the wall seconds each wrapped method took in it.

    CPU time is the process's own (torch's threads included, the SQL worker processes not); it moves
    less than wall time when other processes load the machine.
    """

    def __init__(self, turns: Turns, load: BackgroundLoad, quiet: QuietWaiter | None):
        self.turns, self.load, self.quiet = turns, load, quiet
        self.steps: list[float] = []
        self.cpu: list[float] = []
        self.phases: list[dict[str, float]] = []

    def on_step_begin(self, args, state, control, **kwargs):
        self.turns.take()
        if self.quiet is not None:
            self.quiet.wait()
        self.phases.append(defaultdict(float))
        self.load.start()
        self._start, self._cpu = time.perf_counter(), time.process_time()

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append(time.perf_counter() - self._start)
        self.cpu.append(time.process_time() - self._cpu)
        self.load.stop()

    def wrap(self, owner, method: str, phase: str) -> None:
        original = getattr(owner, method)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.phases[-1][phase] += time.perf_counter() - start

        setattr(owner, method, timed)


def quiet_libraries() -> None:
    """No per-step log lines or progress bars, no warnings about transformers 5 renames that TRL still uses."""
    warnings.filterwarnings("ignore", message=r".*gradient_checkpointing.* is deprecated", category=FutureWarning)
    transformers_logging.disable_progress_bar()
    datasets.disable_progress_bars()


def sample_rows(schema_examples: int) -> list[dict]:
    """The bundled sample's questions as GRPO rows: conversational prompt, ``db_path``, ``gold_sql``."""
    questions_file, db_dir = sample_paths()
    rows = []
    for q in load_questions(questions_file):
        path = database_path(db_dir, q["db_id"])
        rows.append(
            {"prompt": prompt_messages(q["question"], path, n_examples=schema_examples), "db_path": str(path), "gold_sql": q["gold_sql"]}
        )
    return rows


def sft_policy(args) -> str:
    """The tiny policy fine-tuned on the sample's CoCTE SFT data, trained once and cached."""
    from trl import SFTConfig, SFTTrainer

    from trl_processsql.sft_data import build_sft_dataset
    from trl_processsql.small_models import build_tiny_model, build_tokenizer

    path = args.work_dir / f"policy-h{args.hidden_size}-l{args.num_layers}-sft{args.sft_steps}-seed{args.seed}"
    if (path / "config.json").is_file():
        print(f"policy: SFT model cached in {path}")
        return str(path)
    questions_file, db_dir = sample_paths()
    dataset, _ = build_sft_dataset(load_questions(questions_file), db_dir)
    dataset = dataset.map(lambda row: {"prompt": [{"role": "user", "content": f"Question: {row['question']}"}]})
    tokenizer = build_tokenizer()
    model = build_tiny_model(tokenizer, hidden_size=args.hidden_size, num_layers=args.num_layers, seed=args.seed)
    config = SFTConfig(
        output_dir=str(path.parent / "sft-run"),
        max_steps=args.sft_steps,
        per_device_train_batch_size=8,
        learning_rate=5e-3,
        lr_scheduler_type="cosine",
        warmup_steps=5,
        max_length=None,
        logging_steps=max(1, args.sft_steps // 10),
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        disable_tqdm=True,
        seed=args.seed,
    )
    start = time.perf_counter()
    trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    trainer.save_model(str(path))
    loss = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    print(f"policy: {args.sft_steps} SFT steps in {time.perf_counter() - start:.0f} s (loss {loss[0]:.2f} -> {loss[-1]:.2f}), cached in {path}")
    return str(path)


def build_trainer(name: str, args, policy: str, timer: StepTimer):
    from transformers import AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from trl_processsql.grpo import PRMGRPOConfig, PRMGRPOTrainer
    from trl_processsql.prm import ProcessRewardModel
    from trl_processsql.small_models import build_tiny_model

    rows = sample_rows(args.schema_examples)
    executor = SQLExecutor(limits=ExecutionLimits(timeout=REWARD_SQL_TIMEOUT))  # both trainers run their SQL here
    executor.execute_many([(r["db_path"], r["gold_sql"]) for r in rows], cache=True)
    tokenizer = AutoTokenizer.from_pretrained(policy)
    batch = args.prompts_per_step * args.num_generations
    settings = dict(
        output_dir=str(args.work_dir / name),
        per_device_train_batch_size=batch,
        num_generations=args.num_generations,
        max_completion_length=args.max_completion_length,
        max_steps=args.warmup + args.steps,
        learning_rate=1e-6,
        beta=0.0,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        disable_tqdm=True,
        seed=args.seed,
    )
    common = dict(
        reward_funcs=[ExecutionAccuracyReward(executor), cocte_format_reward],
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
        callbacks=[timer],
    )
    if name == "GRPOTrainer":
        trainer = GRPOTrainer(policy, args=GRPOConfig(**settings), **common)
    else:
        prm_model = build_tiny_model(tokenizer, "token-classification", hidden_size=args.hidden_size, num_layers=args.num_layers, seed=1)
        prm = ProcessRewardModel(prm_model, tokenizer, batch_size=batch, max_length=4096)
        config = PRMGRPOConfig(**settings, process_advantage="rewardsql", prm_batch_size=batch)
        trainer = PRMGRPOTrainer(policy, args=config, prm=prm, executor=executor, **common)
        timer.wrap(trainer, "_decode_with_offsets", PHASES[0])
        timer.wrap(trainer.prm_reward, "step_scores", PHASES[1])  # includes the PRM forward
        timer.wrap(trainer.prm, "score_steps", PHASES[2])
    trainer.remove_callback(PrinterCallback)
    return trainer


def run_trainer(me: int, args, policy: str, turns: Turns, barrier, results) -> None:
    """One trainer in its own process: set up, wait for the other, train in turns, send the figures home."""
    quiet_libraries()
    if args.threads:
        torch.set_num_threads(args.threads)
    turns.me, name = me, TRAINERS[me]
    load = BackgroundLoad()
    # The first trainer waits (within the budget) before each pair of steps for other processes to go quiet.
    timer = StepTimer(turns, load, QuietWaiter(args.quiet_wait) if me == 0 else None)
    try:
        trainer = build_trainer(name, args, policy, timer)
        barrier.wait()
        trainer.train()
        turns.leave()
        barrier.wait()  # and exit together: a process winding down would slow the other's last step
        results.put((name, summary(trainer, timer, args.warmup, load)))
    except BaseException:
        barrier.abort()
        results.put((name, traceback.format_exc()))
        raise
    finally:
        turns.leave()


def summary(trainer, timer: StepTimer, warmup: int, load: BackgroundLoad) -> dict:
    logs = [e for e in trainer.state.log_history if "reward" in e][warmup:]
    phases = [defaultdict(float, step) for step in timer.phases[warmup:]]
    for step in phases:
        step[PHASES[1]] -= step[PHASES[2]]  # execution alone
    return {
        "steps": timer.steps[warmup:],
        "cpu": statistics.median(timer.cpu[warmup:]),
        "phases": {phase: statistics.median(step[phase] for step in phases) for phase in PHASES},
        "length": statistics.fmean(e["completions/mean_length"] for e in logs),
        "cocte_steps": statistics.fmean(e["execution/mean_steps"] for e in logs),
        "valid": statistics.fmean(e["execution/valid_rate"] for e in logs),
        "flat": statistics.fmean(e["frac_reward_zero_std"] for e in logs),
        "scored": statistics.fmean(e.get("process/scored_completions", 0.0) for e in logs),
        "load": (load.cores, sum(timer.steps)),
    }


def step_figures(results: dict[str, dict], args) -> dict:
    """The figures of a run: its sizes; each trainer's median step time (the stock one is the baseline), their ratio (the
    headline, goal at most 1.3) and the ratio of median CPU times; the medians of what PRM-GRPO adds to a step (decoding with
    offsets, executing the steps, the PRM forward); the work the PRM had; how busy other processes kept the machine."""
    base, ours = results["GRPOTrainer"], results["PRMGRPOTrainer"]
    base_median, ours_median = statistics.median(base["steps"]), statistics.median(ours["steps"])
    busy = sum(cores * wall for cores, wall in (base["load"], ours["load"])) / sum(wall for _, wall in (base["load"], ours["load"]))
    return {
        "timed_steps": args.steps, "warmup_steps": args.warmup, "prompts_per_step": args.prompts_per_step,
        "num_generations": args.num_generations, "max_completion_length": args.max_completion_length,
        "hidden_size": args.hidden_size, "num_layers": args.num_layers,
        "grpo_step_seconds": round(base_median, 4), "prm_grpo_step_seconds": round(ours_median, 4),
        "step_time_ratio": round(ours_median / base_median, 3), "cpu_time_ratio": round(ours["cpu"] / base["cpu"], 3),
        "decode_seconds": round(ours["phases"][PHASES[0]], 4), "execute_seconds": round(ours["phases"][PHASES[1]], 4),
        "prm_forward_seconds": round(ours["phases"][PHASES[2]], 4),
        "cocte_steps_per_completion": round(ours["cocte_steps"], 3), "scored_per_step": round(ours["scored"], 3),
        "background_cores": round(busy, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden-size", type=int, default=64, help="policy and PRM width (default: %(default)s)")
    parser.add_argument("--num-layers", type=int, default=2, help="policy and PRM depth (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=20, help="timed optimizer steps (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default: %(default)s)")
    parser.add_argument("--prompts-per-step", type=int, default=2, help="(default: %(default)s)")
    parser.add_argument("--num-generations", type=int, default=4, help="completions per prompt (default: %(default)s)")
    parser.add_argument("--max-completion-length", type=int, default=64, help="(default: %(default)s)")
    parser.add_argument(
        "--schema-examples", type=int, default=0, help="example values per column in GRPO prompts (default: %(default)s)"
    )
    parser.add_argument("--sft-steps", type=int, default=300, help="SFT steps of the policy (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads per trainer (default: torch's own choice)")
    parser.add_argument("--work-dir", type=Path, default=WORK_DIR / "grpo_step_time",
                        help="where the SFT policy is cached and the trainers write (default: benchmarks/_work/grpo_step_time)")
    add_quiet_argument(parser, 10.0)
    add_results_argument(parser)
    args = parser.parse_args()
    quiet_libraries()

    from transformers import AutoTokenizer

    policy = sft_policy(args)
    tokenizer = AutoTokenizer.from_pretrained(policy)
    prompt_tokens = statistics.fmean(
        len(tokenizer.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"])
        for r in sample_rows(args.schema_examples)
    )
    print(
        f"{args.warmup} warm-up + {args.steps} timed steps; {args.prompts_per_step} prompts x {args.num_generations} "
        f"completions of at most {args.max_completion_length} tokens per step (prompts: {prompt_tokens:.0f} tokens on average); "
        f"policy and PRM: Qwen2 hidden {args.hidden_size}, {args.num_layers} layers; CPU, "
        f"{args.threads or torch.get_num_threads()} torch threads"
    )

    context = multiprocessing.get_context("spawn")
    turns, barrier, queue = Turns(context), context.Barrier(len(TRAINERS)), context.Queue()
    processes = [context.Process(target=run_trainer, args=(me, args, policy, turns, barrier, queue)) for me in range(len(TRAINERS))]
    for process in processes:
        process.start()
    results = dict(queue.get(timeout=3600) for _ in processes)
    for process in processes:
        process.join()
    failed = {name: result for name, result in results.items() if isinstance(result, str)}
    if failed:
        raise SystemExit("\n".join(f"{name} failed:\n{text}" for name, text in failed.items()))

    for name in TRAINERS:
        r = results[name]
        print(
            f"  {name:<15} median {statistics.median(r['steps']):.2f} s/step, CPU {r['cpu']:.2f} s/step "
            f"(timed steps: {', '.join(f'{t:.2f}' for t in r['steps'])}); {r['cocte_steps']:.2f} CoCTE steps per "
            f"completion, {r['valid']:.0%} run, {r['flat']:.0%} of groups with one reward"
        )
    base, ours = results["GRPOTrainer"], results["PRMGRPOTrainer"]
    base_median, ours_median = statistics.median(base["steps"]), statistics.median(ours["steps"])
    print(f"  mean completion length: {base['length']:.1f} and {ours['length']:.1f} tokens (the same until the policies part)")
    ratios = [b / a for a, b in zip(base["steps"], ours["steps"])]
    print(f"  step-by-step ratios: {', '.join(f'{x:.2f}' for x in ratios)} (median {statistics.median(ratios):.2f})")
    print(f"  ratio of median CPU times: {ours['cpu'] / base['cpu']:.2f}")
    busy = sum(cores * wall for cores, wall in (base["load"], ours["load"])) / sum(wall for _, wall in (base["load"], ours["load"]))
    shared = "; the machine was shared: rerun when it is quiet" if busy > 0.15 else ""
    print(f"  other processes kept {busy:.2f} of {os.cpu_count()} cores busy during the steps{shared}")

    added = ours_median - base_median
    print(f"PRM-GRPO work per step (medians over the timed steps), against a difference of medians of {added:+.3f} s:")
    for phase, seconds in ours["phases"].items():
        print(f"  {phase:<26} {seconds:.3f} s")
    print(f"  {'rest':<26} {added - sum(ours['phases'].values()):+.3f} s (the difference minus the above)")
    batch = args.prompts_per_step * args.num_generations
    print(
        f"  completions scored by the PRM: {ours['scored']:.2f} of {batch} per step on average (the others had an "
        f"outcome advantage of 0); PRM forward share of a PRM-GRPO step: {ours['phases'][PHASES[2]] / ours_median:.1%}"
    )
    print(f"PRMGRPOTrainer vs GRPOTrainer: {ours_median / base_median:.2f} x step time")
    print("figures:", write_results("bench_grpo_step_time", step_figures(results, args), args.results_dir))


if __name__ == "__main__":
    main()
