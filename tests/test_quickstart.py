"""The README's main job, shrunk: every stage runs and hands its output to the next."""

import json

import pytest

from trl_processsql.quickstart import QuickstartSettings, run_quickstart


@pytest.mark.slow
def test_quickstart_runs_every_stage_and_writes_its_report(tmp_path, capsys):
    settings = QuickstartSettings(output_dir=str(tmp_path / "qs"), sft_steps=2, prm_epochs=0.05, grpo_steps=1, eval_questions=2, n=2, max_new_tokens=16)
    report = run_quickstart(settings)
    out = capsys.readouterr().out
    assert [f"[{i}/6]" in out for i in range(1, 7)] == [True] * 6
    assert json.loads((tmp_path / "qs" / "report.json").read_text()) == json.loads(json.dumps(report))
    assert report["sft_data"]["rows"] == 254  # the sample minus the held-out database, all converted
    assert report["labels"]["trajectories"] > 400
    assert 0.0 <= report["prm"]["held_out_step_auroc"] <= 1.0
    assert report["prm_grpo"]["steps"] == 1 and report["best_of_n"]["n"] == 2
    for name in ("sft-data", "policy-sft", "prm-data", "prm", "policy-prm-grpo", "predictions.jsonl", "eval-report.json"):
        assert (tmp_path / "qs" / name).exists(), name
