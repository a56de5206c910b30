"""Accuracy against the sample budget: curves on a hand-made pool whose every value is known."""

import json

import pytest

from trl_processsql.cli import main
from trl_processsql.evaluation import PredictionFileError
from trl_processsql.sweep import judge_pools, load_records, sweep


def _candidate(sql, scores, status="ok"):
    return {"sql": sql, "status": status, "prm_scores": scores, "prm_score": None, "votes": 0, "completion": sql}


# q0: gold 4. Only the late candidates are right and the PRM likes the wrong one best.
# q1: gold (Joe, Bo). The first is right; the PRM prefers a wrong one; the right answer is sampled twice.
POOLS = [
    [
        _candidate("SELECT 3", [0.9]),
        _candidate("SELECT count(*) FROM singer", [0.2]),
        _candidate("SELECT 4", [0.8]),
        _candidate("SELECT x FROM nowhere", [0.0], status="error"),
    ],
    [
        _candidate("SELECT name FROM singer WHERE age > 40", [0.8, 0.7]),
        _candidate("SELECT name FROM singer", [0.9, 0.95]),
        _candidate("SELECT name FROM singer WHERE age > 40", [0.3]),
        _candidate("SELECT name FROM singer WHERE age > 30", [0.6]),
    ],
]


@pytest.fixture
def pool_files(toy_db, tmp_path):
    questions = [
        {"db_id": "toy", "question": "How many singers?", "query": "SELECT count(*) FROM singer"},
        {"db_id": "toy", "question": "Singers over 40?", "query": "SELECT name FROM singer WHERE age > 40"},
    ]
    questions_path = tmp_path / "questions.json"
    questions_path.write_text(json.dumps(questions))
    records = [{"index": i, "db_id": "toy", "sql": pool[0]["sql"], "candidates": pool} for i, pool in enumerate(POOLS)]
    predictions = tmp_path / "preds.jsonl"
    predictions.write_text("".join(json.dumps(r) + "\n" for r in records))
    return questions_path, toy_db.parent.parent, predictions


def _judged(pool_files, executor, **kwargs):
    from trl_processsql.data import load_questions

    questions_path, db_dir, predictions = pool_files
    questions = load_questions(questions_path)
    return judge_pools(load_records(predictions, questions), questions, db_dir, executor, **kwargs)


def test_first_k_curves_match_hand_computed_values(pool_files, executor):
    pools, _, gold_failures = _judged(pool_files, executor)
    assert [p.correct for p in pools] == [[False, True, True, False], [True, False, True, False]]
    result = sweep(pools, aggregations=["min", "last"])
    assert result.ks == [1, 2, 4] and gold_failures == 0
    assert result.curves["pass@k"] == [0.5, 1.0, 1.0]
    assert result.curves["maj@k"] == [0.5, 0.5, 1.0]
    assert result.curves["best-of-k (min)"] == [0.5, 0.0, 0.0]
    assert result.curves["prm-vote@k (min)"] == [0.5, 0.0, 1.0]
    assert result.curves["best-of-k (last)"] == [0.5, 0.0, 0.0]
    assert list(result.curves) == ["pass@k", "maj@k", "best-of-k (min)", "prm-vote@k (min)", "best-of-k (last)", "prm-vote@k (last)"]


def test_random_subsets_average_to_the_share_of_right_candidates(pool_files, executor):
    pools, _, _ = _judged(pool_files, executor)
    result = sweep(pools, aggregations=["min"], resamples=400, seed=1)
    assert result.curves["pass@k"][0] == pytest.approx(0.5, abs=0.06)  # half of each pool is right
    assert result.curves["pass@k"][1] == pytest.approx(1 - 0.5 * (1 / 3), abs=0.06)  # P(both wrong) = 2/4 * 1/3
    assert result.curves["maj@k"][-1] == 1.0  # k = N: the whole pool, no randomness
    assert sweep(pools, aggregations=["min"], resamples=400, seed=1).curves == result.curves


def test_each_distinct_query_runs_once_and_greedy_is_judged_alongside(pool_files, executor):
    calls = []

    class Counting:
        def execute_many(self, items, **kwargs):
            calls.append(list(items))
            return executor.execute_many(items, **kwargs)

        def execute_compared(self, items, against, **kwargs):
            calls.append(list(items))
            return executor.execute_compared(items, against, **kwargs)

    pools, greedy, _ = _judged(pool_files, Counting(), extra_sql=["SELECT 4", None])
    gold, candidates = calls
    # a batch runs each distinct query once (tests/test_pool.py)
    assert len(set(gold)) == 2 and len(candidates) == len(set(candidates)) == 6  # 6 distinct that ran; greedy is one of them
    assert not any("nowhere" in sql for _, sql in candidates)  # failed candidates are not run again
    assert greedy == [True, False]
    # The duplicate right answer of q1 votes with its twin.
    assert pools[1].candidates[0].rows == pools[1].candidates[2].rows != pools[1].candidates[1].rows


def test_without_prm_scores_only_the_execution_methods_are_swept(pool_files, executor):
    pools, _, _ = _judged(pool_files, executor)
    for pool in pools:
        for c in pool.candidates:
            c.prm_scores = None
    assert list(sweep(pools).curves) == ["pass@k", "maj@k"]


def test_records_that_do_not_belong_to_the_questions_are_refused(pool_files, tmp_path):
    from trl_processsql.data import load_questions

    questions = load_questions(pool_files[0])
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"index": 0, "db_id": "other", "candidates": POOLS[0]}) + "\n")
    with pytest.raises(PredictionFileError, match="question 0 is on 'toy'"):
        load_records(bad, questions)
    bad.write_text(json.dumps({"index": 0, "sql": "SELECT 1"}) + "\n")
    with pytest.raises(PredictionFileError, match="line 1"):
        load_records(bad, questions)


def test_cli_writes_json_csv_and_png(pool_files, tmp_path, capsys):
    questions_path, db_dir, predictions = pool_files
    out = tmp_path / "sweep"
    argv = ["sweep", str(predictions), "--questions", str(questions_path), "--db-dir", str(db_dir), "--output-dir", str(out)]
    assert main([*argv, "--aggregations", "min", "--greedy", str(predictions), "--workers", "1"]) == 0
    table = capsys.readouterr().out
    assert "best-of-k (min)" in table and "greedy" in table
    saved = json.loads((out / "sweep.json").read_text())
    assert saved["ks"] == [1, 2, 4] and saved["curves"]["maj@k"] == [0.5, 0.5, 1.0] and saved["greedy"] == 0.5
    header, *rows = (out / "sweep.csv").read_text().splitlines()
    assert header.split(",") == ["k", "pass@k", "maj@k", "best-of-k (min)", "prm-vote@k (min)", "greedy"]
    assert rows[0].startswith("1,0.500000,0.500000")
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_names_the_extra_when_matplotlib_is_missing(pool_files, tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    questions_path, db_dir, predictions = pool_files
    argv = ["sweep", str(predictions), "--questions", str(questions_path), "--db-dir", str(db_dir), "--output-dir", str(tmp_path)]
    assert main(argv) == 2
    assert "trl-processsql[plot]" in capsys.readouterr().err


def test_the_old_command_name_analyze_still_runs_and_says_the_new_one(pool_files, tmp_path, capsys):
    questions_path, db_dir, predictions = pool_files
    argv = ["analyze", str(predictions), "--questions", str(questions_path), "--db-dir", str(db_dir), "--output-dir", str(tmp_path)]
    assert main([*argv, "--no-plot", "--workers", "1"]) == 0
    assert "'trl-processsql analyze' is now 'trl-processsql sweep'" in capsys.readouterr().err
    assert (tmp_path / "sweep.json").exists()
