"""The SFT step-time benchmark: both settings train, and the ratio is printed against the padded-batch baseline."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "benchmarks" / "bench_sft_step_time.py"


@pytest.mark.slow
@pytest.mark.timeout(600)  # about a minute on 2 cores
def test_a_short_run_times_both_settings_and_prints_the_ratio(spider_dir):
    done = subprocess.run([sys.executable, str(SCRIPT), "--steps", "10", "--spider-dir", str(spider_dir)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    for micro_batches in (1, 4):
        assert re.search(rf"^micro_batches={micro_batches}\s+mean step \d+\.\d+ s over 10 steps; loss over the last 10 steps \d+\.\d+", done.stdout, re.M)
    ratio = re.search(r"4 micro-batches of similar length take (\d+\.\d+)x the step time of one padded batch", done.stdout)
    assert ratio and float(ratio.group(1)) > 0


def test_too_few_steps_to_log_a_loss_are_refused():
    done = subprocess.run([sys.executable, str(SCRIPT), "--steps", "5"], capture_output=True, text=True)
    assert done.returncode == 2 and "--steps must be at least 10" in done.stderr
