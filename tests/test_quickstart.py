"""The README's main job, shrunk: every stage runs, hands its output to the next, and reports."""

import json

import pytest

from trl_processsql.quickstart import QuickstartSettings, run_quickstart


@pytest.mark.slow
def test_quickstart_runs_every_stage_and_writes_its_report(tmp_path, capsys):
    settings = QuickstartSettings(
        output_dir=str(tmp_path / "qs"), test_questions=6, hidden_size=32, sft_steps=3, samples=1, rollouts=2,
        prm_epochs=0.05, grpo_steps=2, n=2, max_new_tokens=24,
    )
    report = run_quickstart(settings)
    out = capsys.readouterr().out
    assert [f"[{i}/7]" in out for i in range(1, 8)] == [True] * 7
    assert "{'loss'" not in out and "train_runtime" not in out  # progress bars, not raw log dicts
    assert json.loads((tmp_path / "qs" / "report.json").read_text()) == json.loads(json.dumps(report))
    assert report["split"] == {"train_questions": 293, "test_questions": 6}
    assert report["sft_data"]["rows"] == 293  # every training question converts
    summary = report["summary"]
    assert set(summary) >= {"sft_greedy_ex", "best_of_n_ex", "grpo_rewards", "grpo_weights_changed", "prm_step_auroc", "seconds"}
    assert len(summary["grpo_rewards"]) == 2 and all(0.0 <= r <= 1.0 for r in summary["grpo_rewards"])
    assert isinstance(summary["grpo_weights_changed"], bool)
    assert 0.0 <= summary["prm_step_auroc"] <= 1.0 and summary["seconds"] > 0
    assert report["labels"]["by_source"]["policy"] > 0  # the PRM learns from the policy's own samples
    assert sum(report["grpo_prompts"].values()) == 293  # every training question: within reach, never or always answered
    for name in ("sft-data", "policy-sft", "prm-data", "prm", "policy-prm-grpo", "predictions.jsonl"):
        assert (tmp_path / "qs" / name).exists(), name
    assert "summary" in out and "PRM best-of-2" in out
    assert "not whether\n      process supervision helps" in out and "bench_method.py --base smollm2-135m-instruct" in out
