"""The PRM script end to end on CPU: mutation labels in, a PRM out that loads and scores."""

import subprocess
import sys
from pathlib import Path

from trl_processsql.data import load_questions, sample_paths
from trl_processsql.labeling import gold_chains, mutation_rows, stepwise_dataset
from trl_processsql.prm import ProcessRewardModel
from trl_processsql.sft_data import split_by_database

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def test_prm_script_trains_saves_and_the_prm_loads_and_scores(tmp_path, executor):
    """The smoke recipe with its paths pointed at tmp_path, three steps and one evaluation."""
    from trl_processsql.small_models import save_tiny_checkpoint

    questions_file, db_dir = sample_paths()
    questions = [q for q in load_questions(questions_file) if q["db_id"] in ("concert_singer", "pets_1")]
    chains, _ = gold_chains(questions[:6] + questions[-6:], db_dir, executor)
    rows = mutation_rows(chains, executor)
    split_by_database(stepwise_dataset(rows), 0.5).save_to_disk(tmp_path / "data")
    save_tiny_checkpoint(tmp_path / "tiny-prm", "token-classification", hidden_size=32)
    output = tmp_path / "prm"
    overrides = {
        "model_name_or_path": tmp_path / "tiny-prm",
        "dataset_name": tmp_path / "data",
        "output_dir": output,
        "max_steps": 3,
        "eval_strategy": "steps",
        "eval_steps": 3,
        "dataset_test_split": "test",
    }
    args = [f"--{key}={value}" for key, value in overrides.items()]
    result = subprocess.run(
        [sys.executable, "-m", "trl_processsql.scripts.prm", "--config", str(RECIPES / "smoke" / "prm.yaml"), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    logs = result.stdout + result.stderr
    assert "eval_step_auroc" in logs and f"PRM saved to {output}" in logs

    prm = ProcessRewardModel.from_pretrained(output)
    assert prm.step_suffix == "\n\n" and prm.max_prompt_length == 2048 and prm.max_length == 2560
    row = rows[0]
    scores = prm.score_steps([row["prompt"]], [row["completions"]])[0]
    assert len(scores) == len(row["completions"]) and all(0.0 < s < 1.0 for s in scores)
