"""SFT step time: micro-batches of similar length against one padded batch, and bf16 autocast against fp32.

The data and model of ``bench_method.py``: Spider train's gold SQL as chains of CTEs behind the
compact prompt (answers of a few tokens to a few hundred), a 3.4M-parameter Qwen2-shaped policy
(``SmallModelSettings``' defaults), 16 examples a step. One batch of 16 pads every example to the
longest; ``SmallModelSettings(micro_batches=4)`` (the default) sorts the step's 16 examples by
length and cuts them into 4 micro-batches whose gradients are accumulated (transformers'
``batch_rebalance`` sampler), so less compute goes to padding while each step still learns from
16 examples drawn at random. Each setting trains the same model from the same seed for
``--steps`` steps, one after the other in this process; a step is timed from ``on_step_begin`` to
``on_step_end``, and the mean step times are compared (the mean is what a whole run costs). The
mean loss of each run's last logged steps is printed too: the two should learn alike.

With ``--base NAME_OR_DIR`` the policy is that pretrained model fine-tuned as ``bench_method.py
--base`` fine-tunes it (the schema prompt, 8 examples a step in 2 micro-batches), and the two
settings compared are fp32 and bf16 autocast (weights and optimizer state in fp32 both times),
same batches, same seed: bf16 pays on CPUs with bf16 matrix units (AMX, AVX512-BF16), which the
output says this CPU has or lacks.

    python benchmarks/bench_sft_step_time.py [--steps 100]
    python benchmarks/bench_sft_step_time.py --base smollm2-135m-instruct --steps 20
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path

from _common import add_results_argument, add_spider_dir_argument, base_checkpoint, policy_settings, require_spider, write_results
from bench_method import sft_data_and_tokenizer, spider_train
from transformers import TrainerCallback

from trl_processsql.small_models import SmallModelSettings, split_by_question, train_small_policy
from trl_processsql.data import database_path
from trl_processsql.precision import cpu_has_bf16
from trl_processsql.sql import SQLExecutor


class StepTimer(TrainerCallback):
    """Seconds of every optimizer step (data, forwards, backwards and update) and the logged losses."""

    def __init__(self):
        self.seconds, self.losses, self.began = [], [], None

    def on_step_begin(self, args, state, control, **kwargs):
        self.began = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.seconds.append(time.perf_counter() - self.began)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.losses.append(logs["loss"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spider_dir_argument(parser)
    parser.add_argument("--steps", type=int, default=100, help="steps trained with each setting")
    parser.add_argument("--test-questions", type=int, default=300, help="held out as bench_method.py holds them out")
    parser.add_argument("--base", metavar="NAME_OR_DIR", help="time fp32 against bf16 autocast on this pretrained model (a packaged base model "
                        "or a checkpoint folder) instead of the micro-batches of the small model from scratch")
    add_results_argument(parser)
    args = parser.parse_args()
    if args.steps < 10:
        parser.error(f"--steps must be at least 10 (a loss is logged every 10 steps), got {args.steps}")
    db_dir = require_spider(args.spider_dir) / "database"
    questions = [q for q in spider_train(Path(args.spider_dir)) if database_path(db_dir, q["db_id"]).is_file()]
    _, train = split_by_question(questions, [args.test_questions], seed=0)
    base = base_checkpoint(args.base) if args.base else None
    with SQLExecutor() as executor:
        data, tokenizer = sft_data_and_tokenizer(db_dir, train, executor, base)

    if base is None:
        default = SmallModelSettings()
        runs = {f"micro_batches={m}": SmallModelSettings(max_steps=args.steps, micro_batches=m) for m in (1, default.micro_batches)}
    else:
        default = policy_settings(argparse.Namespace(sft_steps=args.steps, sft_micro_batches=None, seed=0), base)
        runs = {name: dataclasses.replace(default, bf16=bf16) for name, bf16 in (("fp32", False), ("bf16 autocast", True))}
    means, losses = {}, {}
    for name, settings in runs.items():  # the baseline first
        timer = StepTimer()
        with tempfile.TemporaryDirectory() as scratch:
            train_small_policy(data, tokenizer, scratch, settings, progress=False, callbacks=[timer], prompt_style="tables" if base else "compact")
        means[name], losses[name] = statistics.mean(timer.seconds), statistics.mean(timer.losses[-3:])
        print(f"{name:<16} mean step {means[name]:.3f} s over {args.steps} steps; "
              f"loss over the last {10 * len(timer.losses[-3:])} steps {statistics.mean(timer.losses[-3:]):.3f}; "
              f"{means[name] * default.max_steps / 60:.0f} min for {default.max_steps:,} steps")
    (baseline, first), (name, second) = means.items()
    ratio = second / first
    if base is None:
        print(f"\n{len(data):,} SFT examples, {default.batch_size} a step: {default.micro_batches} micro-batches of similar length take "
              f"{ratio:.2f}x the step time of one padded batch ({1 / ratio:.1f}x as fast)")
    else:
        print(f"\n{len(data):,} SFT examples, {default.batch_size} a step, {base.name}: bf16 autocast takes {ratio:.2f}x the step time of fp32 "
              f"({1 / ratio:.1f}x as fast); this CPU {'has' if cpu_has_bf16() else 'lacks'} bf16 matrix units")
    keys = dict(zip(runs, ("one_batch", "micro_batches") if base is None else ("fp32", "bf16")))
    figures = {"steps": args.steps, "examples": len(data), "batch_size": default.batch_size}
    if base is None:
        figures["micro_batches"] = default.micro_batches
    for name, key in keys.items():
        figures.update({f"{key}_step_seconds": round(means[name], 4), f"{key}_loss": round(losses[name], 4)})
    figures.update(step_time_ratio=round(ratio, 3), speedup=round(1 / ratio, 2))
    name = "bench_sft_step_time" + (f"_{Path(args.base).name}" if args.base else "")
    print("figures:", write_results(name, figures, args.results_dir))


if __name__ == "__main__":
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
