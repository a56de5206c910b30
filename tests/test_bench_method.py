"""The whole-method benchmark's smoke mode: every stage runs, the GRPO runs train in worker processes, the PRM is saved."""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(1200)  # about three minutes on 2 cores
def test_the_quick_run_prints_both_tables_and_saves_its_prm(spider_dir, quick_work_dir):
    from trl_processsql.prm import ProcessRewardModel

    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "bench_method.py"), "--quick", "--spider-dir", str(spider_dir),
         "--work-dir", str(quick_work_dir)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert re.search(r"own samples: 8 on each of \d+ training questions", out)  # one sampling: answer labels and GRPO prompts
    for strategy in ("greedy", "random among the running (expected)", "vote@4", "PRM best-of-4 (min)", "PRM vote@4 (min)", "step beam", "pass@4"):
        assert re.search(rf"^{re.escape(strategy)}.*\d+\.\d%", out, re.M), strategy
    assert "4 runs, 2 at a time" in out
    assert re.search(r"EX on its \d+ training prompts$", out, re.M)  # did GRPO learn its prompts, beside held-out EX
    assert re.search(r"^SFT\s+\d+\.\d%\s+\d+\.\d%$", out, re.M)
    for run in ("PRM-GRPO (rewardsql)", "outcome-only GRPO"):
        row = re.search(rf"^{re.escape(run)}\s+\d+\.\d%.*?((?:\d+\.\d% ){{2}}).*->.*\d+\.\d%$", out, re.M)
        assert row, run  # one EX per seed, then the EX on the training prompts
    assert "min_form" not in out  # a third run only with --min-form
    prm = ProcessRewardModel.from_pretrained(next(quick_work_dir.glob("prm-*")))
    assert prm.max_length == 512


def test_a_missing_prm_folder_is_refused_before_any_work(tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "bench_method.py"), "--prm", str(tmp_path / "nowhere"), "--work-dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "--prm" in done.stderr and "no such folder" in done.stderr
    assert list(tmp_path.iterdir()) == []  # nothing trained or written


@pytest.mark.slow
@pytest.mark.timeout(900)  # under two minutes on 2 cores
def test_the_quick_run_on_a_pretrained_base_measures_spider_dev_against_the_base_zero_shot(spider_dir, tmp_path):
    """A tiny checkpoint folder stands in for the pretrained base (the real one is measured in README): the cross-database
    setting, the schema prompt recorded in the policy, and the zero-shot row are under test."""
    from transformers import AutoConfig

    from trl_processsql.small_models import save_tiny_checkpoint

    base = save_tiny_checkpoint(tmp_path / "base", kind="causal-lm", hidden_size=32, num_layers=1)
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "bench_method.py"), "--quick", "--base", str(base), "--spider-dir", str(spider_dir),
         "--work-dir", str(tmp_path / "work")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert re.search(r"8 Spider dev questions on \d+ other databases held out \(0 databases in both\)", out)
    assert re.search(r"greedy EX on the 8 held-out questions: SFT \d+\.\d%, zero-shot \(the base model before SFT\) \d+\.\d%", out)
    assert re.search(r"^zero-shot \(the base model before SFT\)\s+\d+\.\d%", out, re.M)
    assert "On 8 held-out Spider dev questions: PRM best-of-2" in out
    policy = next((tmp_path / "work").glob("policy-*"))
    assert AutoConfig.from_pretrained(policy).processsql_prompt_style == "tables"
    assert AutoConfig.from_pretrained(next((tmp_path / "work").glob("prm-*"))).processsql_prompt_style == "tables"
    record = json.loads((tmp_path / "work" / "bench_method_base.json").read_text())  # a quick run writes beside its work, not into benchmarks/results
    assert record["command"].startswith("python benchmarks/bench_method.py --quick --base") and record["git_revision"]
    assert set(record["figures"]["greedy_ex"]) == {"SFT", "zero-shot (the base model before SFT)"}
    assert {"greedy", "PRM best-of-2 (min)", "pass@2 (any sample right: the ceiling)"} <= set(record["figures"]["selection"])
    assert set(record["figures"]["grpo"]) == {"PRM-GRPO (rewardsql)", "outcome-only GRPO"}

    again = subprocess.run(done.args, capture_output=True, text=True)  # every stage resumes from what the first run kept
    assert again.returncode == 0, again.stderr[-3000:]
    for stage in ("policy", "greedy", "zeroshot", "own", "prm", "samples", "scored", "beam"):
        assert re.search(rf"^{stage}: reusing .*\(\d+\.\d min when it ran\)$", again.stdout, re.M), stage
    assert "GRPO: reusing the answers of 4 of 4 runs" in again.stdout
    rerun = json.loads((tmp_path / "work" / "bench_method_base.json").read_text())["figures"]
    for key in ("greedy_ex", "selection", "grpo"):
        assert rerun[key] == record["figures"][key]
    # the resumed run reports what each stage took when it ran, not the moment it took to load it
    assert record["figures"]["reused"] == [] and len(rerun["reused"]) == 13  # 9 stages and 4 GRPO runs
    for key in ("greedy_minutes", "prm_minutes", "selection_minutes", "stage_minutes"):
        assert rerun[key] == record["figures"][key] is not None, key
    assert rerun["policy"]["sft_minutes"] == record["figures"]["policy"]["sft_minutes"] is not None
    assert rerun["grpo_settings"]["minutes"] == record["figures"]["grpo_settings"]["minutes"] is not None


def test_sft_only_stops_after_the_greedy_figures(spider_dir, tmp_path):
    from trl_processsql.small_models import save_tiny_checkpoint

    base = save_tiny_checkpoint(tmp_path / "base", kind="causal-lm", hidden_size=32, num_layers=1)
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "bench_method.py"), "--quick", "--stop-after", "sft", "--base", str(base),
         "--spider-dir", str(spider_dir), "--work-dir", str(tmp_path / "work")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "greedy EX on the 8 held-out questions: SFT" in done.stdout
    assert "own samples" not in done.stdout and not list((tmp_path / "work").glob("prm-*"))
    assert "selection" not in json.loads((tmp_path / "work" / "bench_method_base.json").read_text())["figures"]


def _alive(pid: int) -> bool:
    """The process runs (a zombie waiting to be reaped does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_stage_process_dies_with_the_run_that_started_it(tmp_path):
    """A run stopped with kill (SIGTERM to its own process only) takes its stage and GRPO processes with it, rather than
    leaving a GRPO run of many GiB training on as an orphan."""
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {str(REPO_ROOT / "benchmarks")!r})
        from bench_method import process_pool

        if __name__ == "__main__":
            pool = process_pool(1)
            print(pool.submit(os.getpid).result(), flush=True)
            pool.submit(time.sleep, 300)
            time.sleep(300)
    """))
    run, stage = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True), 0
    try:
        stage = int(run.stdout.readline())
        assert _alive(stage)
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=30)
        waited = time.monotonic()
        while _alive(stage) and time.monotonic() - waited < 30:
            time.sleep(0.1)
        assert not _alive(stage)
    finally:
        run.kill()
        if stage and _alive(stage):  # never leave it behind, even when the test fails
            os.kill(stage, signal.SIGKILL)


def test_a_stage_process_killed_from_outside_ends_the_run_with_what_to_do_not_a_traceback(tmp_path):
    """The 300-question run's stage process was once killed for memory: the run must say that its finished stages are kept
    and how to resume, in one message instead of a BrokenProcessPool traceback."""
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(REPO_ROOT / "benchmarks")!r})
        from bench_method import process_pool, resumable

        def killed():
            os.kill(os.getpid(), signal.SIGKILL)

        if __name__ == "__main__":
            with resumable("WORK"), process_pool(1) as pool:
                pool.submit(killed).result()
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr, done.stderr
    assert re.search(r"a stage process ended abruptly.*out-of-memory.*kept in WORK: run the same command again", done.stderr), done.stderr
