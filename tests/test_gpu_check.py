"""The GPU check script: its degraded CPU run (installed from a folder of wheels, as on the GPU machine) and its wheel list."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_the_wheelhouse_pins_what_the_gpu_machine_lacks_at_the_installed_versions():
    from importlib.metadata import version

    listed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "build_wheelhouse.py"), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert {f"{name}=={version(name)}" for name in ("trl", "datasets", "sqlglot")} <= set(listed)
    names = {pin.split("==")[0] for pin in listed}
    assert not names & {"torch", "transformers", "accelerate", "peft", "numpy", "huggingface-hub", "tokenizers"}


@pytest.mark.slow
@pytest.mark.timeout(1800)  # about two minutes of CPU in eight processes one after the other; a shared machine stretches it
def test_the_degraded_gpu_check_installs_from_wheels_and_runs_every_stage(tmp_path):
    from trl_processsql.grpo.advantages import PROCESS_ADVANTAGES

    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "--wheel-dir", str(wheels), str(REPO_ROOT)],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PROCESSSQL_SITE": str(tmp_path / "site")}
    work = tmp_path / "work"
    done = subprocess.run(
        ["bash", str(REPO_ROOT / "benchmarks" / "gpu_check.sh"), str(wheels), "--cpu", "--work-dir", str(work)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1700,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert (tmp_path / "site" / "trl_processsql" / "sample_data" / "questions.json").is_file()  # the wheel was used
    table = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert table[0] == "| stage | status | seconds | figure |"
    rows = [line.strip("| ").split(" | ") for line in table[2:]]
    built_in = [name for name, rule in PROCESS_ADVANTAGES.items() if rule.__module__ == "trl_processsql.grpo.advantages"]
    grpo = [f"prm_grpo {preset}" for preset in built_in]  # rules other tests register live only in this process
    expected = ["prepare", "sft", "prm", *grpo, "predict best-of-n", "predict beam", "step ratio", "cost tiny-shaped"]
    assert [row[0] for row in rows] == expected and all(row[1] == "ok" for row in rows)
    figures = dict((row[0], row[3]) for row in rows)
    assert re.fullmatch(r"\d+\.\d\dx \(.*\)", figures["step ratio"]) and "candidates ran" in figures["predict beam"]
    assert re.search(r"sampling 8 tokens [\d.]+ s, PRM [\d.]+ s, forward [\d.]+ s", figures["cost tiny-shaped"])
    summary = json.loads((work / "summary.json").read_text())
    assert summary["device"].startswith("CPU (degraded") and len(summary["rows"]) == len(expected)
