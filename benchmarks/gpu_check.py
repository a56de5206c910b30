"""The project on one GPU in under 8 minutes, ending with one summary table.

Stages, each a row of the table (status, seconds, what it measured):

- ``sft``: the SFT smoke recipe through ``accelerate launch`` in bf16, long enough for the tiny policy
  to write chains of CTEs (300 steps);
- ``prm``: the PRM smoke recipe on mutation labels of the sample;
- ``prm_grpo <preset>``: the PRM-GRPO smoke recipe from that policy and PRM, once per process-advantage
  preset;
- ``predict best-of-n``, ``predict beam``: ``trl-processsql predict`` on the GPU, then the share of
  candidates that ran;
- ``cost 7B-shaped``: a Qwen2.5-7B-shaped policy and PRM with random weights in bf16: sampling prompts
  of real length with transformers, the PRM's parse + step execution + scoring of as many gold chains
  of CTEs, and one policy forward over prompt + completion;
- ``step ratio``: median step time of ``PRMGRPOTrainer`` over stock ``GRPOTrainer`` on the same SFT
  policy, batch and seed.

Without a GPU (or with ``--cpu``) every stage runs degraded, with tiny models and a few steps (a
few minutes on two CPU cores): CI runs it so that the script keeps working. On the GPU machine, without network,
``benchmarks/gpu_check.sh WHEELHOUSE`` installs what is missing from a folder of wheels first
(``benchmarks/build_wheelhouse.sh`` makes it on a machine with network).

    python benchmarks/gpu_check.py [--cpu] [--work-dir benchmarks/_work/gpu_check]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RECIPES = REPO_ROOT / "recipes"
# Qwen2.5-7B: hidden 3584, 28 layers, 28 query heads and 4 key-value heads, MLP 18944, vocabulary 152064.
SEVEN_B = dict(hidden_size=3584, num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4, intermediate_size=18944)


@dataclass
class Sizes:
    """How much each stage does: the GPU check, or its degraded CPU run."""

    sft_steps: int
    grpo_steps: int
    predict_questions: int
    predict_n: int
    max_new_tokens: int
    cost_prompts: int
    cost_tokens: int
    cost_shape: dict
    ratio_steps: int


GPU = Sizes(300, 4, 16, 8, 128, 96, 256, SEVEN_B, 6)
CPU = Sizes(5, 1, 2, 2, 16, 4, 8, dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, intermediate_size=128), 1)


@dataclass
class Row:
    stage: str
    status: str
    seconds: float
    figure: str


class Check:
    """Runs the stages in order, each timed and caught, and keeps a row per stage."""

    def __init__(self, args):
        self.cpu = args.cpu
        self.sizes = CPU if args.cpu else GPU
        self.device = "cpu" if args.cpu else "cuda"
        self.work = Path(args.work_dir).resolve()
        self.rows: list[Row] = []

    def stage(self, name: str, run) -> bool:
        print(f"\n== {name}", flush=True)
        start = time.perf_counter()
        try:
            figure, status = run(), "ok"
        except Exception as exc:  # a failing stage is a row of the table, and the next stages still run
            traceback.print_exc()
            figure, status = str(exc).strip().splitlines()[-1][:120] if str(exc).strip() else type(exc).__name__, "FAILED"
        self.rows.append(Row(name, status, time.perf_counter() - start, figure))
        print(f"== {name}: {status} in {self.rows[-1].seconds:.0f} s: {figure}", flush=True)
        return status == "ok"

    # -- the recipes through accelerate ------------------------------------------------------------

    def launch(self, script: str, recipe: str, *overrides: str) -> str:
        """``accelerate launch`` of a training script with a smoke recipe, in bf16 on the GPU (or on the CPU)."""
        if self.cpu:
            layout = ["--cpu", "--num_processes", "1"]
            precision = ["--use_cpu", "true", "--bf16", "false", "--dtype", "float32"]
        else:
            layout = ["--config_file", str(RECIPES / "accelerate_configs" / "single_gpu.yaml")]
            precision = ["--use_cpu", "false", "--bf16", "true", "--dtype", "bfloat16"]
        command = [sys.executable, "-m", "accelerate.commands.launch", *layout, "-m", f"trl_processsql.scripts.{script}"]
        command += ["--config", str(RECIPES / "smoke" / recipe), *precision, *overrides]
        done = subprocess.run(command, cwd=self.work, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            print(done.stdout[-4000:], done.stderr[-4000:], sep="\n")
            raise RuntimeError(f"{script} exited with {done.returncode}: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
        losses = [float(value) for value in re.findall(r"'loss': '?([0-9.]+)", done.stdout + done.stderr)]
        return f"loss {losses[0]:.2f} -> {losses[-1]:.2f}" if losses else "trained"

    def prepare(self) -> str:
        from trl_processsql.cli import main

        if self.work.exists():
            shutil.rmtree(self.work)
        outputs = self.work / "outputs"
        for command in (
            ["tiny-model", "--output", str(outputs / "tiny-policy")],
            ["tiny-model", "--kind", "token-classification", "--output", str(outputs / "tiny-prm")],
            ["build-sft", "--sample", "--output", str(outputs / "sft-data")],
            ["label-steps", "--sample", "--sources", "mutations", "--output", str(outputs / "prm-data")],
        ):
            if main(command):
                raise RuntimeError(f"trl-processsql {command[0]} failed")
        return "tiny models, SFT data and step labels of the sample"

    def sft(self) -> str:
        steps = self.sizes.sft_steps
        return self.launch("sft", "sft.yaml", "--max_steps", str(steps), "--learning_rate", "5e-3", "--lr_scheduler_type", "cosine",
                           "--per_device_train_batch_size", "8" if not self.cpu else "2", "--logging_steps", str(max(1, steps // 5)))

    def prm(self) -> str:
        return self.launch("prm", "prm.yaml", "--max_steps", str(self.sizes.sft_steps // 3 or 1))

    def grpo(self, preset: str) -> str:
        weighting = {"rewardsql": "prm_entropy", "additive": "policy_entropy"}.get(preset, "none")
        return self.launch(
            "prm_grpo", "prm_grpo.yaml", "--model_name_or_path", "outputs/smoke-sft", "--prm_model_name_or_path", "outputs/smoke-prm",
            "--process_advantage", preset, "--step_weighting", weighting, "--max_steps", str(self.sizes.grpo_steps),
            "--output_dir", f"outputs/smoke-prm-grpo-{preset}",
        ) + f", step weighting {weighting}"

    # -- inference ---------------------------------------------------------------------------------

    def predict(self, strategy: str) -> str:
        from trl_processsql.cli import main

        output = self.work / f"predict-{strategy}.jsonl"
        code = main([
            "predict", "--model", str(self.work / "outputs/smoke-sft"), "--prm", str(self.work / "outputs/smoke-prm"), "--sample",
            "--limit", str(self.sizes.predict_questions), "--strategy", strategy, "--n", str(self.sizes.predict_n),
            "--max-new-tokens", str(self.sizes.max_new_tokens), "--device", self.device, "--backend", "transformers",
            "--output", str(output),
        ])
        if code:
            raise RuntimeError(f"predict exited with {code}")
        lines = [json.loads(line) for line in output.read_text().splitlines()]
        candidates = [c for line in lines for c in line["candidates"]]
        ran = sum(c["status"] == "ok" for c in candidates)
        return f"{len(lines)} questions on {self.device}, {ran} of {len(candidates)} candidates ran"

    # -- costs on the device -----------------------------------------------------------------------

    def cost(self) -> str:
        """Sampling, PRM and one policy forward for the same batch, with models of the shape in ``sizes.cost_shape``."""
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForTokenClassification

        from trl_processsql.data import load_questions, sample_paths
        from trl_processsql.grpo.prm_reward import PRMReward
        from trl_processsql.inference import TransformersSampler
        from trl_processsql.labeling import gold_chains
        from trl_processsql.prm import ProcessRewardModel
        from trl_processsql.prompts import prompt_messages
        from trl_processsql.rewards import REWARD_SQL_TIMEOUT
        from trl_processsql.sql import ExecutionLimits, SQLExecutor
        from trl_processsql.small_models import build_tokenizer

        sizes, dtype = self.sizes, torch.float32 if self.cpu else torch.bfloat16
        tokenizer = build_tokenizer()
        tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
        vocabulary = 152064 if not self.cpu else len(tokenizer)
        torch.manual_seed(0)
        with torch.device(self.device):
            policy = AutoModelForCausalLM.from_config(AutoConfig.for_model("qwen2", vocab_size=vocabulary, **sizes.cost_shape), dtype=dtype)
            prm_config = AutoConfig.for_model("qwen2", vocab_size=vocabulary, num_labels=1, **sizes.cost_shape)
            prm_model = AutoModelForTokenClassification.from_config(prm_config, dtype=dtype)
        questions_file, db_dir = sample_paths()
        executor = SQLExecutor(limits=ExecutionLimits(timeout=REWARD_SQL_TIMEOUT))
        chains, _ = gold_chains(load_questions(questions_file)[: sizes.cost_prompts], db_dir, executor)
        chains = (chains * sizes.cost_prompts)[: sizes.cost_prompts]
        conversations = [prompt_messages(c.question["question"], c.db_path) for c in chains]

        def timed(work):
            if not self.cpu:
                torch.cuda.synchronize()
            start = time.perf_counter()
            result = work()
            if not self.cpu:
                torch.cuda.synchronize()
            return result, time.perf_counter() - start

        sampler = TransformersSampler(policy, tokenizer, max_new_tokens=sizes.cost_tokens, batch_size=sizes.cost_prompts, prune_every=None)
        texts, sampling = timed(lambda: sampler.sample(conversations))
        prm = ProcessRewardModel(prm_model, tokenizer, batch_size=16, max_length=8192)
        reward = PRMReward(prm, executor, "min", "none")
        prompts = [sampler.prompt_text(c) for c in conversations]
        chain_texts, paths = [c.cocte.render() for c in chains], [c.db_path for c in chains]
        _, scoring = timed(lambda: reward.step_scores(conversations, chain_texts, paths))  # what GRPO hands the PRM
        ids = tokenizer([p + t[0] for p, t in zip(prompts, texts)], add_special_tokens=False, padding=True, return_tensors="pt")
        with torch.inference_mode():
            _, forward = timed(lambda: [policy(**{k: v[i : i + 16].to(self.device) for k, v in ids.items()}) for i in range(0, len(prompts), 16)])
        peak = f", peak {torch.cuda.max_memory_allocated() / 2**30:.0f} GiB" if not self.cpu else ""
        tokens = ids["input_ids"].shape[1]
        return (
            f"{len(prompts)} prompts ({tokens} tokens padded): sampling {sizes.cost_tokens} tokens {sampling:.1f} s, "
            f"PRM {scoring:.1f} s, forward {forward:.1f} s{peak}"
        )

    def ratio(self) -> str:
        """Median step time of PRM-GRPO over stock GRPO: same SFT policy, prompts, batch, seed; the smoke PRM."""
        from datasets import load_from_disk
        from transformers import TrainerCallback
        from trl import GRPOConfig, GRPOTrainer

        from trl_processsql.data import database_path, sample_paths
        from trl_processsql.grpo import PRMGRPOConfig, PRMGRPOTrainer
        from trl_processsql.rewards import cocte_format_reward, execution_accuracy_reward

        class StepTimes(TrainerCallback):
            def __init__(self):
                self.times, self.start = [], 0.0

            def on_step_begin(self, *unused, **also_unused):
                self.start = time.perf_counter()

            def on_step_end(self, *unused, **also_unused):
                self.times.append(time.perf_counter() - self.start)

        db_dir = sample_paths()[1]
        data = load_from_disk(str(self.work / "outputs/sft-data"))["train"].map(
            lambda row: {"db_path": str(database_path(db_dir, row["db_id"]))}
        )
        settings = dict(
            per_device_train_batch_size=8, num_generations=4, max_completion_length=self.sizes.max_new_tokens,
            max_steps=self.sizes.ratio_steps + 1, learning_rate=1e-6, beta=0.0, save_strategy="no", report_to="none",
            use_cpu=self.cpu, bf16=not self.cpu, disable_tqdm=True, seed=0, logging_steps=1,
        )
        medians = {}
        for name in ("GRPOTrainer", "PRMGRPOTrainer"):
            timer = StepTimes()
            common = dict(reward_funcs=[execution_accuracy_reward, cocte_format_reward], train_dataset=data, callbacks=[timer])
            policy = str(self.work / "outputs/smoke-sft")
            if name == "GRPOTrainer":
                trainer = GRPOTrainer(policy, args=GRPOConfig(str(self.work / "ratio-grpo"), **settings), **common)
            else:
                config = PRMGRPOConfig(str(self.work / "ratio-prm-grpo"), **settings, prm_model_name_or_path=str(self.work / "outputs/smoke-prm"))
                trainer = PRMGRPOTrainer(policy, args=config, **common)
            trainer.train()
            medians[name] = statistics.median(timer.times[1:])  # the first step warms up
        ratio = medians["PRMGRPOTrainer"] / medians["GRPOTrainer"]
        return f"{ratio:.2f}x ({medians['PRMGRPOTrainer']:.2f} s against {medians['GRPOTrainer']:.2f} s per step, median of {self.sizes.ratio_steps})"

    # -- the whole check ---------------------------------------------------------------------------

    def run(self) -> int:
        from trl_processsql.grpo.advantages import PROCESS_ADVANTAGES

        start = time.perf_counter()
        if self.stage("prepare", self.prepare):
            trained = self.stage("sft", self.sft) & self.stage("prm", self.prm)
            if trained:
                for preset in PROCESS_ADVANTAGES:
                    self.stage(f"prm_grpo {preset}", lambda preset=preset: self.grpo(preset))
                self.stage("predict best-of-n", lambda: self.predict("best-of-n"))
                self.stage("predict beam", lambda: self.predict("beam"))
                self.stage("step ratio", self.ratio)
            self.stage("cost 7B-shaped" if not self.cpu else "cost tiny-shaped", self.cost)
        total = time.perf_counter() - start
        self.summary(total)
        return 0 if all(row.status == "ok" for row in self.rows) else 1

    def summary(self, total: float) -> None:
        import torch

        where = "CPU (degraded: tiny models, few steps)" if self.cpu else torch.cuda.get_device_name()
        print(f"\nGPU check on {where}, {time.strftime('%Y-%m-%d')}, {total:.0f} s in all\n")
        print("| stage | status | seconds | figure |\n| --- | --- | --- | --- |")
        for row in self.rows:
            print(f"| {row.stage} | {row.status} | {row.seconds:.0f} | {row.figure} |")
        record = {"device": where, "total_seconds": total, "rows": [row.__dict__ for row in self.rows]}
        (self.work / "summary.json").write_text(json.dumps(record, indent=2) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu", action="store_true", help="the degraded run: tiny models, few steps (the default without a GPU)")
    parser.add_argument(
        "--work-dir", default=str(REPO_ROOT / "benchmarks" / "_work" / "gpu_check"), help="scratch folder, emptied first (default: %(default)s)"
    )
    args = parser.parse_args()
    import torch

    if not args.cpu and not torch.cuda.is_available():
        print("no GPU here: running the degraded CPU check")
        args.cpu = True
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return Check(args).run()


if __name__ == "__main__":
    sys.exit(main())
