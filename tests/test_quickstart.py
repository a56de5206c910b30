"""The README's main job, shrunk: every stage runs, hands its output to the next, and reports."""

import json

import pytest

from trl_processsql.cli import main
from trl_processsql.quickstart import QuickstartSettings, run_quickstart


def test_a_pretrained_base_gets_its_own_sizes_and_the_options_given_override_them(tmp_path, monkeypatch):
    ran = []
    monkeypatch.setattr("trl_processsql.quickstart.run_quickstart", ran.append)
    assert main(["quickstart", "--base", str(tmp_path), "--output-dir", str(tmp_path / "qs")]) == 0
    assert ran[-1] == QuickstartSettings.pretrained(str(tmp_path), output_dir=str(tmp_path / "qs"))
    assert (ran[-1].sft_steps, ran[-1].grpo_steps, ran[-1].label_questions, ran[-1].grpo_questions) == (24, 3, 40, 16)
    assert main(["quickstart", "--base", str(tmp_path), "--sft-steps", "7", "--grpo-steps", "2", "--test-questions", "9"]) == 0
    assert (ran[-1].sft_steps, ran[-1].grpo_steps, ran[-1].test_questions, ran[-1].label_questions) == (7, 2, 9, 40)
    assert main(["quickstart", "--grpo-steps", "3"]) == 0  # from scratch: every training question, the small model's sizes
    assert ran[-1] == QuickstartSettings(grpo_steps=3)
    assert (ran[-1].sft_steps, ran[-1].label_questions, ran[-1].grpo_questions, ran[-1].base) == (400, None, None, None)


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
    assert report["precision"] == "fp32" and "bf16 matrix units" not in out  # a small model trains in fp32 on any CPU, unannounced
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
    assert set(report["stage_seconds"]) == {"sft_data", "sft", "labels", "prm", "prm_grpo", "inference"}
    assert "not whether\n      process supervision helps" in out and "bench_method.py --base smollm2-135m-instruct" in out


@pytest.mark.slow
def test_quickstart_on_a_pretrained_base_reads_the_schema_and_reports_the_base_before_sft(tmp_path, capsys, monkeypatch):
    """A tiny checkpoint folder stands in for the pretrained base: its weights start the policy and the PRM. The CPU is
    taken for one without bf16 units, whose user is told that the run takes longer."""
    monkeypatch.setenv("PROCESSSQL_CPU_BF16", "0")
    from transformers import AutoConfig

    from trl_processsql.small_models import save_tiny_checkpoint

    base = save_tiny_checkpoint(tmp_path / "base", kind="causal-lm", hidden_size=32, num_layers=1)
    settings = QuickstartSettings(
        output_dir=str(tmp_path / "qs"), test_questions=6, sft_steps=2, samples=1, rollouts=2, prm_epochs=0.05, grpo_steps=1, n=2,
        max_new_tokens=16, base=str(base), label_questions=12, grpo_questions=5, grpo_micro_batches=2,
    )
    report = run_quickstart(settings)
    out = capsys.readouterr().out
    assert "SFT: the pretrained model learns" in out and "the base model before SFT" in out
    assert "no bf16 matrix units" in out and report["precision"] == "fp32"
    assert 0.0 <= report["sft"]["zero_shot_ex"] <= 1.0 and "before SFT" in out.split("[7/7]")[1]
    assert sum(report["grpo_prompts"].values()) == 5  # pass rates of the 5 questions GRPO may take
    by_source = report["labels"]["by_source"]  # the PRM learns from 12 questions, the policy from all 293
    assert 0 < by_source["gold"] <= 12 and by_source.get("policy", 0) <= 12 and report["sft_data"]["rows"] == 293
    assert AutoConfig.from_pretrained(tmp_path / "qs" / "policy-sft").processsql_prompt_style == "tables"
    assert AutoConfig.from_pretrained(tmp_path / "qs" / "prm").processsql_prompt_style == "tables"
    from datasets import load_from_disk

    assert "Foreign keys:" in load_from_disk(str(tmp_path / "qs" / "sft-data"))[0]["prompt"][0]["content"]  # the schema prompt
