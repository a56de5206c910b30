"""PRMGRPOTrainer step time against stock GRPOTrainer on the same tiny models and batch. Goal: at most 1.3x.

Both trainers train the same policy on the same prompts with the same config and seed, and both
reward execution accuracy and the CoCTE format (as the smoke recipe does: the format reward gives
groups a nonzero advantage, which the PRM's step scores then shape); PRM-GRPO also executes every step of every completion, scores the steps
with a PRM and turns them into per-token advantages (``process_advantage="rewardsql"``). A random
policy writes no SQL, leaving the PRM nothing to score, so the policy is first fine-tuned on the
chains of CTEs of the bundled Spider sample, with the question alone as prompt to keep that short
(cached in benchmarks/_work/); the mean number of steps per completion is printed to show the PRM
had work. The PRM is a random token classifier of the policy's size: its scores mean nothing, its
cost is real. GRPO prompts are the real ones, the schema without example values unless
``--schema-examples`` says otherwise.

A step is timed from ``on_step_begin`` to ``on_step_end`` (generation, rewards, PRM, loss, update).
The two trainers run in two threads that take turns step by step, each with its own random stream,
so both meet the same background load on a shared machine and sample what they would alone; gold
results are cached before timing. The median over the timed steps after warm-up is compared; on a
shared machine ``--threads 1`` gives steadier figures.

    python benchmarks/bench_grpo_step_time.py [--hidden-size 64] [--num-layers 2] [--steps 20] [--warmup 2]
        [--prompts-per-step 2] [--num-generations 4] [--max-completion-length 64] [--schema-examples 0]
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import threading
import time
import warnings
from collections import defaultdict

import datasets
import torch
from _common import WORK_DIR, BackgroundLoad, QuietWaiter, add_quiet_argument
from transformers import PrinterCallback, TrainerCallback
from transformers.utils import logging as transformers_logging

from trl_processsql.data import database_path, load_questions, sample_paths
from trl_processsql.prompts import prompt_messages
from trl_processsql.rewards import cocte_format_reward, execution_accuracy_reward, get_reward_executor

PHASES = ("decode with offsets", "parse + execute steps", "PRM forward")  # what PRM-GRPO adds to a step


class Turns:
    """Trainers in separate threads run one optimizer step at a time, in the order named, each with its own torch RNG."""

    def __init__(self, names: list[str], seed: int):
        self.names, self.turn, self.holder, self.done = names, names[0], None, set()
        self.condition = threading.Condition()
        torch.manual_seed(seed)
        self.rng = {name: torch.random.get_rng_state() for name in names}

    def take(self, name: str) -> None:
        """Called when a step of ``name`` begins: hand on the turn it holds, wait for its next one."""
        with self.condition:
            if self.holder == name:
                self._release(name)
            self.condition.wait_for(lambda: self.turn == name and self.holder is None)
            self.holder = name
            torch.random.set_rng_state(self.rng[name])

    def leave(self, name: str) -> None:
        """Called when ``name`` stops training (or fails): the others go on without it."""
        with self.condition:
            self.done.add(name)
            if self.holder == name or self.turn == name:
                self._release(name)

    def _release(self, name: str) -> None:
        if self.holder == name:
            self.rng[name] = torch.random.get_rng_state()
            self.holder = None
        i = self.names.index(name)
        self.turn = next((n for n in self.names[i + 1 :] + self.names[: i + 1] if n not in self.done), None)
        self.condition.notify_all()


class StepTimer(TrainerCallback):
    """Wall and CPU time of each optimizer step, and the wall seconds each wrapped method took in it.

    CPU time is this process's (torch's threads included, the SQL worker processes not): while one
    trainer steps the other waits, so it is the stepping trainer's, and it moves less than wall
    time when other processes load the machine.
    """

    def __init__(self, name: str, turns: Turns, load: BackgroundLoad, quiet: QuietWaiter | None = None):
        self.name, self.turns, self.load, self.quiet = name, turns, load, quiet
        self.steps: list[float] = []
        self.cpu: list[float] = []
        self.phases: list[dict[str, float]] = []

    def on_step_begin(self, args, state, control, **kwargs):
        self.turns.take(self.name)
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
    from trl_processsql.tiny import build_tiny_model, build_tokenizer

    name = f"policy-h{args.hidden_size}-l{args.num_layers}-sft{args.sft_steps}-seed{args.seed}"
    path = WORK_DIR / "grpo_step_time" / name
    if (path / "config.json").is_file():
        print(f"policy: SFT model cached in {path.relative_to(WORK_DIR.parent.parent)}")
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


def grpo_config(cls, args, output_dir: str, **extra):
    return cls(
        output_dir=output_dir,
        per_device_train_batch_size=args.prompts_per_step * args.num_generations,
        num_generations=args.num_generations,
        max_completion_length=args.max_completion_length,
        max_steps=args.warmup + args.steps,
        learning_rate=1e-6,
        beta=0.0,
        temperature=1.0,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        disable_tqdm=True,
        seed=args.seed,
        **extra,
    )


def train_in_turns(trainers: dict, turns: Turns) -> None:
    failures = []

    def train(name, trainer):
        try:
            turns.take(name)  # set-up in turn too: train() reseeds the global RNG
            trainer.train()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            failures.append(exc)
        finally:
            turns.leave(name)

    threads = [threading.Thread(target=train, args=item) for item in trainers.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def phase_medians(timer: StepTimer, warmup: int) -> dict[str, float]:
    """Median seconds per timed step of each phase, step execution without the PRM forward it calls."""
    steps = [{**step, PHASES[1]: step[PHASES[1]] - step[PHASES[2]]} for step in timer.phases[warmup:]]
    return {phase: statistics.median(step[phase] for step in steps) for phase in PHASES}


def summary(trainer, timer: StepTimer, warmup: int) -> dict:
    logs = [e for e in trainer.state.log_history if "reward" in e][warmup:]
    return {
        "median": statistics.median(timer.steps[warmup:]),
        "steps": timer.steps[warmup:],
        "cpu": statistics.median(timer.cpu[warmup:]),
        "length": statistics.fmean(e["completions/mean_length"] for e in logs),
        "cocte_steps": statistics.fmean(e["execution/mean_steps"] for e in logs),
        "valid": statistics.fmean(e["execution/valid_rate"] for e in logs),
        "flat": statistics.fmean(e["frac_reward_zero_std"] for e in logs),
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
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    add_quiet_argument(parser, 10.0)
    args = parser.parse_args()
    # Quiet: no per-step log lines or progress bars, no warnings about transformers 5 renames that TRL still uses.
    warnings.filterwarnings("ignore", message=r".*gradient_checkpointing.* is deprecated", category=FutureWarning)
    transformers_logging.disable_progress_bar()
    datasets.disable_progress_bars()

    from transformers import AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from trl_processsql.grpo import PRMGRPOConfig, PRMGRPOTrainer
    from trl_processsql.prm import ProcessRewardModel
    from trl_processsql.tiny import build_tiny_model

    if args.threads:
        torch.set_num_threads(args.threads)
    policy = sft_policy(args)
    tokenizer = AutoTokenizer.from_pretrained(policy)
    batch = args.prompts_per_step * args.num_generations
    prm_model = build_tiny_model(tokenizer, "token-classification", hidden_size=args.hidden_size, num_layers=args.num_layers, seed=1)
    prm = ProcessRewardModel(prm_model, tokenizer, batch_size=batch, max_length=4096)
    rows = sample_rows(args.schema_examples)
    get_reward_executor().execute_many([(r["db_path"], r["gold_sql"]) for r in rows], cache=True)
    dataset = datasets.Dataset.from_list(rows)
    work = WORK_DIR / "grpo_step_time"
    names = ["GRPOTrainer", "PRMGRPOTrainer"]
    turns = Turns(names, args.seed)
    load = BackgroundLoad()
    # Before each pair of steps, wait (within the budget) for other processes to leave the machine alone.
    timers = {name: StepTimer(name, turns, load, QuietWaiter(args.quiet_wait) if name == names[0] else None) for name in names}
    common = dict(reward_funcs=[execution_accuracy_reward, cocte_format_reward], train_dataset=dataset, processing_class=tokenizer)
    trainers = {
        "GRPOTrainer": GRPOTrainer(
            policy, args=grpo_config(GRPOConfig, args, str(work / "grpo")), callbacks=[timers["GRPOTrainer"]], **common
        ),
        "PRMGRPOTrainer": PRMGRPOTrainer(
            policy,
            args=grpo_config(PRMGRPOConfig, args, str(work / "prm_grpo"), process_advantage="rewardsql", prm_batch_size=batch),
            prm=prm,
            callbacks=[timers["PRMGRPOTrainer"]],
            **common,
        ),
    }
    for trainer in trainers.values():
        trainer.remove_callback(PrinterCallback)
    ours = trainers["PRMGRPOTrainer"]
    timers["PRMGRPOTrainer"].wrap(ours, "_decode_with_offsets", PHASES[0])
    timers["PRMGRPOTrainer"].wrap(ours.prm_reward, "step_scores", PHASES[1])  # includes the PRM forward
    timers["PRMGRPOTrainer"].wrap(ours.prm, "score_steps", PHASES[2])

    prompt_tokens = statistics.fmean(
        len(tokenizer.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"])
        for r in rows
    )
    print(
        f"{args.warmup} warm-up + {args.steps} timed steps; {args.prompts_per_step} prompts x {args.num_generations} "
        f"completions of at most {args.max_completion_length} tokens per step (prompts: {prompt_tokens:.0f} tokens on average); "
        f"policy and PRM: Qwen2 hidden {args.hidden_size}, {args.num_layers} layers; CPU, {torch.get_num_threads()} threads"
    )
    train_in_turns(trainers, turns)

    results = {name: summary(trainer, timers[name], args.warmup) for name, trainer in trainers.items()}
    for name, r in results.items():
        print(
            f"  {name:<15} median {r['median']:.2f} s/step, CPU {r['cpu']:.2f} s/step (timed steps: {', '.join(f'{t:.2f}' for t in r['steps'])}); "
            f"{r['cocte_steps']:.2f} CoCTE steps per completion, {r['valid']:.0%} run, "
            f"{r['flat']:.0%} of groups with one reward"
        )
    base, prm_run = results["GRPOTrainer"], results["PRMGRPOTrainer"]
    print(f"  mean completion length: {base['length']:.1f} and {prm_run['length']:.1f} tokens (same random streams: they differ once the policies do)")
    ratios = [b / a for a, b in zip(base["steps"], prm_run["steps"])]
    print(f"  step-by-step ratios: {', '.join(f'{x:.2f}' for x in ratios)} (median {statistics.median(ratios):.2f})")
    print(f"  ratio of median CPU times: {prm_run['cpu'] / base['cpu']:.2f}")
    shared = "; the machine was shared: rerun when it is quiet" if load.cores > 0.15 else ""
    print(f"  other processes kept {load.cores:.2f} of {os.cpu_count()} cores busy during the steps{shared}")

    phases = phase_medians(timers["PRMGRPOTrainer"], args.warmup)
    added = prm_run["median"] - base["median"]
    print(f"PRM-GRPO work per step (medians over the timed steps), against a difference of medians of {added:+.3f} s:")
    for phase, seconds in phases.items():
        print(f"  {phase:<26} {seconds:.3f} s")
    print(f"  {'rest':<26} {added - sum(phases.values()):+.3f} s (the difference minus the above)")
    print(f"PRMGRPOTrainer vs GRPOTrainer: {prm_run['median'] / base['median']:.2f} x step time")


if __name__ == "__main__":
    main()
