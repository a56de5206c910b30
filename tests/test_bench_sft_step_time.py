"""The SFT step-time benchmark: both settings train, and the ratio is printed against the padded-batch baseline."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "benchmarks" / "bench_sft_step_time.py"


@pytest.mark.slow
@pytest.mark.timeout(600)  # about a minute on 2 cores
def test_a_short_run_times_both_settings_and_prints_the_ratio(spider_dir, tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--steps", "10", "--spider-dir", str(spider_dir), "--results-dir", str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    for micro_batches in (1, 4):
        assert re.search(rf"^micro_batches={micro_batches}\s+mean step \d+\.\d+ s over 10 steps; loss over the last 10 steps \d+\.\d+", done.stdout, re.M)
    ratio = re.search(r"4 micro-batches of similar length take (\d+\.\d+)x the step time of one padded batch", done.stdout)
    assert ratio and float(ratio.group(1)) > 0
    figures = json.loads((tmp_path / "bench_sft_step_time.json").read_text())["figures"]
    assert set(figures) == {"steps", "examples", "batch_size", "micro_batches", "one_batch_step_seconds", "one_batch_loss",
                            "micro_batches_step_seconds", "micro_batches_loss", "step_time_ratio", "speedup"}
    # printed to two decimals, stored to three: the two roundings differ by at most 0.005 + 0.0005
    assert abs(figures["step_time_ratio"] - float(ratio.group(1))) <= 0.0055


def test_too_few_steps_to_log_a_loss_are_refused():
    done = subprocess.run([sys.executable, str(SCRIPT), "--steps", "5"], capture_output=True, text=True)
    assert done.returncode == 2 and "--steps must be at least 10" in done.stderr


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_on_a_pretrained_base_fp32_and_bf16_are_timed_side_by_side(spider_dir, tmp_path):
    """A tiny llama-shaped checkpoint stands in for the pretrained base: the comparison, not the model, is under test."""
    from trl_processsql.small_models import build_tokenizer, build_tiny_model

    tokenizer = build_tokenizer(vocab_size=512)
    build_tiny_model(tokenizer, "causal-lm", hidden_size=32, num_layers=1).save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    done = subprocess.run([sys.executable, str(SCRIPT), "--steps", "10", "--base", str(tmp_path / "base"), "--spider-dir", str(spider_dir),
                           "--results-dir", str(tmp_path / "results")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("fp32", "bf16 autocast"):
        assert re.search(rf"^{name}\s+mean step \d+\.\d+ s over 10 steps; loss over the last 10 steps \d+\.\d+", done.stdout, re.M)
    assert re.search(r"base: bf16 autocast takes \d+\.\d+x the step time of fp32 \(\d+\.\dx as fast\); this CPU (has|lacks) bf16", done.stdout)
    figures = json.loads((tmp_path / "results" / "bench_sft_step_time_base.json").read_text())["figures"]  # named after the base
    assert set(figures) == {"steps", "examples", "batch_size", "fp32_step_seconds", "fp32_loss", "bf16_step_seconds", "bf16_loss",
                            "step_time_ratio", "speedup"}
