"""SFT step time of the CPU-scale policy with length-grouped batches against random ones.

The data and model of ``bench_method.py``: Spider train's gold SQL as chains of CTEs behind the
compact prompt (answers of a few tokens to a few hundred), a 3.4M-parameter Qwen2-shaped policy
(``SmallModelSettings``' defaults), 16 examples a step. A random batch pads every example to its
longest; ``train_sampling_strategy="group_by_length"`` (transformers' ``LengthGroupedSampler``, the
default of ``SmallModelSettings``) draws batches of similar length, so less of each step's
compute goes to padding. Each strategy trains the same model from the same seed for ``--steps``
steps, one after the other in this process; a step is timed from ``on_step_begin`` to
``on_step_end`` and the mean step times are compared (not the medians: grouped steps range from
short batches to long ones, and the mean is what a whole run costs).

    python benchmarks/bench_sft_step_time.py [--steps 100]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from _common import add_spider_dir_argument, require_spider
from bench_method import sft_data_and_tokenizer, spider_train
from transformers import TrainerCallback

from trl_processsql.cpu_scale import SmallModelSettings, split_by_question, train_small_policy
from trl_processsql.data import database_path
from trl_processsql.sql import SQLExecutor

STRATEGIES = ("random", "group_by_length")  # the baseline first


class StepTimer(TrainerCallback):
    """Seconds of every optimizer step: data, forward, backward and update."""

    def __init__(self):
        self.seconds, self.began = [], None

    def on_step_begin(self, args, state, control, **kwargs):
        self.began = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.seconds.append(time.perf_counter() - self.began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spider_dir_argument(parser)
    parser.add_argument("--steps", type=int, default=100, help="steps trained with each strategy")
    parser.add_argument("--test-questions", type=int, default=300, help="held out as bench_method.py holds them out")
    args = parser.parse_args()
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    db_dir = require_spider(args.spider_dir) / "database"
    questions = [q for q in spider_train(Path(args.spider_dir)) if database_path(db_dir, q["db_id"]).is_file()]
    _, train = split_by_question(questions, [args.test_questions], seed=0)
    with SQLExecutor() as executor:
        data, tokenizer = sft_data_and_tokenizer(db_dir, train, executor)

    means = {}
    for strategy in STRATEGIES:
        timer = StepTimer()
        settings = SmallModelSettings(max_steps=args.steps, train_sampling_strategy=strategy)
        with tempfile.TemporaryDirectory() as scratch:
            train_small_policy(data, tokenizer, scratch, settings, progress=False, callbacks=[timer])
        means[strategy] = statistics.mean(timer.seconds)
        full = means[strategy] * SmallModelSettings().max_steps / 60
        print(f"{strategy:<16} mean step {means[strategy]:.3f} s over {args.steps} steps (median {statistics.median(timer.seconds):.3f} s); "
              f"{full:.0f} min for the default {SmallModelSettings().max_steps:,} steps")
    ratio = means["group_by_length"] / means["random"]
    print(f"\n{len(data):,} SFT examples, batches of {SmallModelSettings().batch_size}: length-grouped batches take "
          f"{ratio:.2f}x the step time of random ones ({1 / ratio:.1f}x as fast)")


if __name__ == "__main__":
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
