"""The benchmarks write their figures as results files: small runs of each, into a temporary folder, never benchmarks/results.

Each test pins the figure keys its benchmark writes, which README links name (see tests/test_results_files.py).
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO_ROOT / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))


def run_benchmark(script: str, results_dir: Path, *args) -> dict:
    """Run ``benchmarks/<script>`` with ``args`` and ``--results-dir results_dir``; its one results file, read back."""
    before = sorted((BENCHMARKS / "results").glob("*.json"))
    mtimes = [path.stat().st_mtime for path in before]
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *map(str, args), "--results-dir", str(results_dir)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted((BENCHMARKS / "results").glob("*.json")) == before, "a small run wrote into benchmarks/results"
    assert [path.stat().st_mtime for path in before] == mtimes, "a small run rewrote a file of benchmarks/results"
    (path,) = results_dir.glob("*.json")
    assert f"figures: {path}" in done.stdout
    record = json.loads(path.read_text())
    assert record["name"] == path.stem
    assert record["command"].startswith(f"python benchmarks/{script} ") and "--results-dir" in record["command"]
    assert record["git_revision"] and record["date"] and {"cpus", "torch", "python"} <= set(record["machine"])
    return record["figures"]


def test_prm_scoring_writes_both_ways_and_the_speedup(tmp_path):
    figures = run_benchmark("bench_prm_scoring.py", tmp_path, "--trajectories", 4, "--hidden-size", 32, "--num-layers", 1)
    assert set(figures) == {"trajectories", "steps", "one_pass_seconds", "per_prefix_seconds", "speedup", "largest_score_difference",
                            "hidden_size", "num_layers", "batch_size"}
    assert figures["trajectories"] == 4 and figures["speedup"] > 0


def test_batch_execution_writes_ours_judged_in_the_parent_the_naive_way_and_the_floor(spider_dir, tmp_path):
    figures = run_benchmark("bench_batch_execution.py", tmp_path, "--spider-dir", spider_dir, "--predictions", 32, "--batches", 1,
                            "--quiet-wait", 0)
    assert set(figures) == {"predictions_per_batch", "batches", "ours_batch_seconds", "naive_batch_seconds", "speedup",
                            "floor_batch_seconds", "ours_over_floor_ratio", "parent_judged_batch_seconds",
                            "parent_judged_over_floor_ratio", "plain_parallel_batch_seconds", "plain_parallel_speedup",
                            "ours_over_plain_parallel_ratio", "predictions_floor_batch_seconds",
                            "ours_over_predictions_floor_ratio", "sandbox_batch_seconds", "sandbox_over_plain_ratio",
                            "background_load"}
    assert figures["predictions_per_batch"] == 32 and figures["batches"] == 1
    assert figures["plain_parallel_batch_seconds"] > 0 and figures["ours_over_plain_parallel_ratio"] > 0
    assert figures["ours_over_predictions_floor_ratio"] == pytest.approx(
        figures["ours_batch_seconds"] / figures["predictions_floor_batch_seconds"], rel=0.05)
    assert figures["sandbox_batch_seconds"] > 0 and figures["sandbox_over_plain_ratio"] > 0


def test_slow_queries_writes_equal_executions_cached_and_plain_parallel(spider_dir, tmp_path):
    figures = run_benchmark("bench_slow_queries.py", tmp_path, "--spider-dir", spider_dir, "--target-mb", 1, "--batches", 1,
                            "--quiet-wait", 0, "--work-dir", tmp_path / "work")
    assert set(figures) == {"database", "scale_factor", "database_mib", "queries_per_batch", "batches", "cores", "workers",
                            "ours_batch_seconds", "naive_batch_seconds", "speedup", "ours_cached_batch_seconds", "cached_speedup",
                            "plain_parallel_batch_seconds", "plain_parallel_speedup", "ours_over_plain_parallel_ratio",
                            "parallel_efficiency", "background_load"}
    assert figures["database"] == "world_1" and figures["speedup"] == pytest.approx(
        figures["naive_batch_seconds"] / figures["ours_batch_seconds"], rel=0.05)


def test_evaluation_writes_evaluate_against_the_peer_way(spider_dir, tmp_path):
    figures = run_benchmark("bench_evaluation.py", tmp_path, "--spider-dir", spider_dir, "--repeats", 1)
    assert set(figures) == {"questions", "repeats", "evaluate_seconds", "peer_seconds", "speedup", "evaluator_peak_mb", "worker_peak_mb",
                            "background_load"}
    assert figures["repeats"] == 1 and figures["questions"] > 900


def test_test_suite_writes_one_and_three_databases_and_the_peer_way(spider_dir, tmp_path):
    figures = run_benchmark("bench_test_suite.py", tmp_path, "--spider-dir", spider_dir, "--repeats", 1, "--max-databases", 2)
    assert set(figures) == {"questions", "databases_per_question", "repeats", "suite_build_seconds", "one_database_seconds",
                            "three_databases_seconds", "peer_seconds", "speedup", "three_over_one_ratio", "per_database_ratio",
                            "background_load"}
    assert figures["databases_per_question"] == 3 and 0 < figures["questions"] < 200


def test_cocte_coverage_writes_the_shares_converted(spider_dir, tmp_path):
    figures = run_benchmark("bench_cocte_coverage.py", tmp_path, "--spider-dir", spider_dir, "--max-questions", 10, "--workers", 1)
    assert set(figures) == {"runnable_gold", "converted_share", "dev_two_or_more_steps_share", "wall_seconds"}
    assert figures["runnable_gold"] <= 20 and 0 <= figures["converted_share"] <= 1


def test_prm_learning_writes_the_auroc_beside_execution_alone(spider_dir, tmp_path):
    figures = run_benchmark("bench_prm_learning.py", tmp_path, "--spider-dir", spider_dir, "--train-questions", 40, "--dev-questions", 20,
                            "--epochs", 1, "--hidden-size", 16, "--num-layers", 1)
    assert set(figures) == {"train_trajectories", "dev_trajectories", "dev_steps", "dev_positive_share", "epochs", "hidden_size", "num_layers",
                            "auroc", "execution_auroc", "chance_auroc", "auroc_over_execution_ratio", "running_steps", "running_auroc",
                            "step_accuracy", "labelling_seconds", "training_seconds"}
    assert figures["chance_auroc"] == 0.5 and 0 <= figures["step_accuracy"] <= 1


GRPO_KEYS = {"timed_steps", "warmup_steps", "prompts_per_step", "num_generations", "max_completion_length", "hidden_size", "num_layers",
             "grpo_step_seconds", "prm_grpo_step_seconds", "step_time_ratio", "cpu_time_ratio", "decode_seconds", "execute_seconds",
             "prm_forward_seconds", "cocte_steps_per_completion", "scored_per_step", "background_cores"}


def test_grpo_step_time_figures_put_prm_grpo_against_stock_grpo():
    from bench_grpo_step_time import PHASES, step_figures

    def trainer(steps, cpu, phases):
        return {"steps": steps, "cpu": cpu, "phases": dict(zip(PHASES, phases)), "length": 20.0, "cocte_steps": 1.5, "valid": 0.5,
                "flat": 0.5, "scored": 2.0, "load": (0.1, sum(steps))}

    args = argparse.Namespace(steps=3, warmup=1, prompts_per_step=2, num_generations=4, max_completion_length=64, hidden_size=64, num_layers=2)
    figures = step_figures({"GRPOTrainer": trainer([1.0, 2.0, 3.0], 1.5, (0, 0, 0)),
                            "PRMGRPOTrainer": trainer([1.2, 2.4, 3.6], 1.8, (0.1, 0.2, 0.05))}, args)
    assert set(figures) == GRPO_KEYS
    assert figures["grpo_step_seconds"] == 2.0 and figures["prm_grpo_step_seconds"] == 2.4
    assert figures["step_time_ratio"] == 1.2 and figures["cpu_time_ratio"] == 1.2
    assert (figures["decode_seconds"], figures["execute_seconds"], figures["prm_forward_seconds"]) == (0.1, 0.2, 0.05)


@pytest.mark.slow
@pytest.mark.timeout(600)  # under half a minute on 2 cores
def test_grpo_step_time_writes_its_figures(tmp_path):
    figures = run_benchmark("bench_grpo_step_time.py", tmp_path / "results", "--work-dir", tmp_path / "work", "--sft-steps", 10, "--steps", 1,
                            "--warmup", 0, "--hidden-size", 16, "--num-layers", 1, "--prompts-per-step", 1, "--num-generations", 2,
                            "--max-completion-length", 16, "--quiet-wait", 0, "--threads", 1)
    assert set(figures) == GRPO_KEYS and figures["timed_steps"] == 1
