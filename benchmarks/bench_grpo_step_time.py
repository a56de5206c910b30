"""PRMGRPOTrainer step time against stock GRPOTrainer on the same tiny models and batch. Goal: at most 1.3x.

Both trainers train the same policy on the same prompts with the same config and seed, and both
reward execution accuracy; PRM-GRPO also executes every step of every completion, scores the steps
with a PRM and turns them into per-token advantages (``process_advantage="rewardsql"``). A random
policy writes no SQL, leaving the PRM nothing to score, so the policy is first fine-tuned on the
chains of CTEs of the bundled Spider sample (cached in benchmarks/_work/); the mean number of steps
per completion is printed to show the PRM had work. The PRM is a random token classifier of the
policy's size: its scores mean nothing, its cost is real.

A step is timed from ``on_step_begin`` to ``on_step_end`` (generation, rewards, PRM, loss, update);
the median over the timed steps after warm-up is compared. Prompts hold the schema without example
values unless ``--schema-examples`` says otherwise.

    python benchmarks/bench_grpo_step_time.py [--hidden-size 64] [--num-layers 2] [--steps 10] [--warmup 2]
        [--prompts-per-step 2] [--num-generations 4] [--max-completion-length 64]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections import defaultdict

from _common import WORK_DIR, BackgroundLoad, QuietWaiter, add_quiet_argument
from datasets import Dataset
from transformers import TrainerCallback

from trl_processsql.data import database_path, load_questions, sample_paths
from trl_processsql.prompts import prompt_messages
from trl_processsql.rewards import execution_accuracy_reward

PHASES = ("decode with offsets", "parse + execute steps", "PRM forward")  # what PRM-GRPO adds to a step


class StepTimer(TrainerCallback):
    """Wall time of each optimizer step, and the seconds each wrapped method took in it."""

    def __init__(self):
        self.steps: list[float] = []
        self.phases: list[dict[str, float]] = []

    def on_step_begin(self, args, state, control, **kwargs):
        self.phases.append(defaultdict(float))
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append(time.perf_counter() - self._start)

    def wrap(self, owner, method: str, phase: str) -> None:
        original = getattr(owner, method)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                if self.phases:
                    self.phases[-1][phase] += time.perf_counter() - start

        setattr(owner, method, timed)


def sample_rows(schema_examples: int) -> list[dict]:
    questions_file, db_dir = sample_paths()
    rows = []
    for q in load_questions(questions_file):
        path = database_path(db_dir, q["db_id"])
        rows.append(
            {
                "prompt": prompt_messages(q["question"], path, n_examples=schema_examples),
                "db_path": str(path),
                "gold_sql": q["gold_sql"],
            }
        )
    return rows


def sft_policy(args) -> str:
    """The tiny policy fine-tuned on the sample's CoCTE SFT data, trained once and cached."""
    from trl import SFTConfig, SFTTrainer

    from trl_processsql.sft_data import build_sft_dataset
    from trl_processsql.tiny import build_tiny_model, build_tokenizer

    path = WORK_DIR / "grpo_step_time" / (
        f"policy-h{args.hidden_size}-l{args.num_layers}-x{args.schema_examples}-sft{args.sft_steps}-seed{args.seed}"
    )
    if (path / "config.json").is_file():
        print(f"policy: cached SFT model {path.relative_to(WORK_DIR.parent)}")
        return str(path)
    questions_file, db_dir = sample_paths()
    dataset, _ = build_sft_dataset(load_questions(questions_file), db_dir)
    dataset = dataset.map(
        lambda row: {"prompt": prompt_messages(row["question"], database_path(db_dir, row["db_id"]), n_examples=args.schema_examples)}
    )
    tokenizer = build_tokenizer()
    model = build_tiny_model(tokenizer, hidden_size=args.hidden_size, num_layers=args.num_layers, seed=args.seed)
    config = SFTConfig(
        output_dir=str(path.parent / "sft-run"),
        max_steps=args.sft_steps,
        per_device_train_batch_size=8,
        learning_rate=3e-3,
        lr_scheduler_type="cosine",
        warmup_steps=5,
        max_length=None,
        logging_steps=max(1, args.sft_steps // 5),
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
    trainer.train()
    trainer.save_model(str(path))
    loss = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    print(f"policy: SFT of {args.sft_steps} steps in {time.perf_counter() - start:.0f} s (loss {loss[0]:.2f} -> {loss[-1]:.2f}), cached")
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


def run(name, trainer, timer: StepTimer, args, quiet: QuietWaiter) -> dict:
    quiet.wait()
    load = BackgroundLoad().start()
    trainer.train()
    load.stop()
    timed = slice(args.warmup, None)
    logs = [e for e in trainer.state.log_history if "reward" in e][timed]
    mean = lambda key: statistics.fmean(e[key] for e in logs) if logs and key in logs[0] else float("nan")  # noqa: E731
    result = {
        "median": statistics.median(timer.steps[timed]),
        "steps": timer.steps[timed],
        "phases": {p: statistics.fmean(step[p] for step in timer.phases[timed]) for p in PHASES},
        "cocte_steps": mean("execution/mean_steps"),
        "valid": mean("execution/valid_rate"),
        "length": mean("completions/mean_length"),
        "load": load.cores,
    }
    print(
        f"  {name:<15} median {result['median']:.2f} s/step (steps: {', '.join(f'{t:.2f}' for t in result['steps'])}); "
        f"mean completion {result['length']:.0f} tokens, {result['cocte_steps']:.2f} CoCTE steps, "
        f"{result['valid']:.0%} run; other processes used {result['load']:.2f} cores"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden-size", type=int, default=64, help="policy and PRM width (default: %(default)s)")
    parser.add_argument("--num-layers", type=int, default=2, help="policy and PRM depth (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=10, help="timed optimizer steps (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default: %(default)s)")
    parser.add_argument("--prompts-per-step", type=int, default=2, help="(default: %(default)s)")
    parser.add_argument("--num-generations", type=int, default=4, help="completions per prompt (default: %(default)s)")
    parser.add_argument("--max-completion-length", type=int, default=64, help="(default: %(default)s)")
    parser.add_argument("--schema-examples", type=int, default=0, help="example values per column in prompts (default: %(default)s)")
    parser.add_argument("--sft-steps", type=int, default=60, help="SFT steps of the policy (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    add_quiet_argument(parser, 10.0)
    args = parser.parse_args()

    from transformers import AutoModelForTokenClassification, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from trl_processsql.grpo import PRMGRPOConfig, PRMGRPOTrainer
    from trl_processsql.prm import ProcessRewardModel
    from trl_processsql.tiny import build_tiny_model

    policy = sft_policy(args)
    tokenizer = AutoTokenizer.from_pretrained(policy)
    prm_model = build_tiny_model(tokenizer, "token-classification", hidden_size=args.hidden_size, num_layers=args.num_layers, seed=1)
    prm = ProcessRewardModel(prm_model, tokenizer, batch_size=args.prompts_per_step * args.num_generations, max_length=4096)
    dataset = Dataset.from_list(sample_rows(args.schema_examples))
    work = WORK_DIR / "grpo_step_time"
    batch = args.prompts_per_step * args.num_generations
    print(
        f"{args.warmup} warm-up + {args.steps} timed steps, {args.prompts_per_step} prompts x {args.num_generations} "
        f"completions of at most {args.max_completion_length} tokens; policy and PRM: Qwen2 hidden {args.hidden_size}, "
        f"{args.num_layers} layers, CPU"
    )
    quiet = QuietWaiter(args.quiet_wait)

    timer = StepTimer()
    stock = GRPOTrainer(
        model=policy,
        reward_funcs=[execution_accuracy_reward],
        args=grpo_config(GRPOConfig, args, str(work / "grpo")),
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[timer],
    )
    base = run("GRPOTrainer", stock, timer, args, quiet)

    timer = StepTimer()
    trainer = PRMGRPOTrainer(
        model=policy,
        reward_funcs=[execution_accuracy_reward],
        args=grpo_config(PRMGRPOConfig, args, str(work / "prm_grpo"), process_advantage="rewardsql", prm_batch_size=batch),
        train_dataset=dataset,
        processing_class=tokenizer,
        prm=prm,
        callbacks=[timer],
    )
    timer.wrap(trainer, "_decode_with_offsets", PHASES[0])
    timer.wrap(trainer.prm_reward, "step_scores", PHASES[1])  # the PRM forward it calls is taken off below
    timer.wrap(trainer.prm, "score_steps", PHASES[2])
    ours = run("PRMGRPOTrainer", trainer, timer, args, quiet)

    phases = dict(ours["phases"])
    phases[PHASES[1]] -= phases[PHASES[2]]
    added = ours["median"] - base["median"]
    print(f"PRM-GRPO work per step (mean over timed steps), against a median difference of {added:+.2f} s:")
    for phase, seconds in phases.items():
        print(f"  {phase:<26} {seconds:.3f} s")
    print(f"  {'rest (advantages, logging)':<26} {added - sum(phases.values()):+.3f} s (difference minus the above)")
    print(f"PRMGRPOTrainer vs GRPOTrainer: {ours['median'] / base['median']:.2f} x step time")


if __name__ == "__main__":
    main()
