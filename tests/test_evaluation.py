"""The EX evaluator: prediction formats, verdicts, skipped databases, report contents."""

import json

import pytest

from trl_processsql.data import QuestionFileError, load_questions, sample_paths
from trl_processsql.evaluation import PredictionFileError, drop_distinct, evaluate_files, load_predictions


@pytest.fixture
def toy_questions(toy_db, tmp_path):
    """Four questions on the toy database plus one on a database that does not exist."""
    items = [
        {"db_id": "toy", "question": "How many singers?", "query": "SELECT count(*) FROM singer"},
        {"db_id": "toy", "question": "Names by age", "query": "SELECT name FROM singer ORDER BY age"},
        {"db_id": "toy", "question": "Countries", "query": "SELECT DISTINCT country FROM singer WHERE country IS NOT NULL"},
        {"db_id": "toy", "question": "Singer and year", "query": "SELECT s.name, c.year FROM singer s JOIN concert c ON s.id = c.singer_id"},
        {"db_id": "ghost", "question": "Anything", "query": "SELECT 1"},
    ]
    path = tmp_path / "questions.json"
    path.write_text(json.dumps(items))
    return path


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_gold_predictions_score_everything_runnable_and_skip_missing_database(toy_questions, toy_db, executor):
    report = evaluate_files(toy_questions, toy_db.parent.parent, "gold", executor=executor)
    assert report.totals["n"] == 4 and report.totals["correct"] == 4
    assert report.totals["skipped"] == 1
    assert report.examples[4]["status"] == "skipped" and "ghost" in report.examples[4]["message"]
    assert any("ghost" in name for name in report.totals["skipped_databases"])


def test_a_database_folder_that_is_missing_or_holds_none_of_the_databases_is_an_error(toy_questions, tmp_path, executor):
    with pytest.raises(ValueError, match="database folder not found: .*nowhere"):
        evaluate_files(toy_questions, tmp_path / "nowhere", "gold", executor=executor)
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(ValueError, match="none of the databases the questions use is in .*elsewhere .*ghost, toy"):
        evaluate_files(toy_questions, tmp_path / "elsewhere", "gold", executor=executor)


def test_verdicts_name_each_failure_kind(toy_questions, toy_db, executor, tmp_path):
    lines = [
        "SELECT count(*) FROM singer",  # correct
        "SELECT name FROM singer ORDER BY age DESC",  # wrong order, gold has ORDER BY
        "SELECT country FROM nowhere",  # error
        "DELETE FROM singer",  # rejected
        "SELECT 1",  # skipped (database missing)
    ]
    preds = _write(tmp_path, "pred.sql", "\n".join(lines) + "\n")
    report = evaluate_files(toy_questions, toy_db.parent.parent, preds, executor=executor)
    statuses = [(e["status"], e["correct"]) for e in report.examples]
    assert statuses == [("ok", True), ("ok", False), ("error", False), ("rejected", False), ("skipped", False)]
    assert "no such table" in report.examples[2]["message"]
    totals = report.totals
    assert (totals["n"], totals["correct"], totals["accuracy"], totals["errors"]) == (4, 1, 0.25, 2)


def test_bird_mode_ignores_duplicates_but_not_column_order(toy_questions, toy_db, executor, tmp_path):
    lines = [
        "SELECT count(*) FROM singer",
        "SELECT name FROM singer ORDER BY age DESC",  # BIRD ignores order
        "SELECT country FROM singer WHERE country IS NOT NULL",  # duplicates: France twice
        "SELECT c.year, s.name FROM singer s JOIN concert c ON s.id = c.singer_id",  # columns swapped
        "SELECT 1",
    ]
    preds = _write(tmp_path, "pred.sql", "\n".join(lines))
    bird = evaluate_files(toy_questions, toy_db.parent.parent, preds, executor=executor, mode="bird")
    spider = evaluate_files(toy_questions, toy_db.parent.parent, preds, executor=executor, mode="spider")
    assert [e["correct"] for e in bird.examples[:4]] == [True, True, True, False]
    assert [e["correct"] for e in spider.examples[:4]] == [True, False, False, True]


def test_timeout_is_counted_apart_from_errors(toy_questions, toy_db, tmp_path):
    runaway = "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT count(*) FROM r"
    preds = _write(tmp_path, "pred.jsonl", json.dumps({"index": 0, "sql": runaway}) + "\n")
    report = evaluate_files(toy_questions, toy_db.parent.parent, preds, timeout=0.3, num_workers=1)
    assert report.examples[0]["status"] == "timeout"
    assert report.totals["timeouts"] == 1 and report.totals["errors"] == 0
    assert report.totals["missing_predictions"] == 3
    assert report.settings["timeout"] == 0.3


def test_jsonl_and_bird_json_formats_read_the_same_predictions(toy_questions, tmp_path):
    questions = load_questions(toy_questions)
    jsonl = _write(tmp_path, "p.jsonl", '{"index": 3, "sql": "SELECT 3"}\n\n{"index": 0, "sql": "SELECT 0"}\n')
    bird = _write(tmp_path, "p.json", json.dumps({"0": "SELECT 0\t----- bird -----\ttoy", "3": "SELECT 3\t----- bird -----\ttoy"}))
    expected = ["SELECT 0", None, None, "SELECT 3", None]
    assert load_predictions(jsonl, questions) == expected
    assert load_predictions(bird, questions) == expected


def test_spider_text_format_drops_the_db_id_after_a_tab(toy_questions, tmp_path):
    questions = load_questions(toy_questions)
    text = _write(tmp_path, "p.sql", "".join(f"SELECT {i}\ttoy\n" for i in range(5)))
    assert load_predictions(text, questions) == [f"SELECT {i}" for i in range(5)]


@pytest.mark.parametrize(
    "name, content, place",
    [
        ("p.sql", "SELECT 1\nSELECT 2\n", "2 lines of predictions for 5 questions"),
        ("p.jsonl", '{"index": 0, "sql": "SELECT 1"}\n{"index": 0, "sql"\n', "line 2"),
        ("p.jsonl", '{"index": 9, "sql": "SELECT 1"}\n', "index 9"),
        ("p.jsonl", '{"index": 1, "sql": "A"}\n{"index": 1, "sql": "B"}\n', "second prediction for index 1"),
        ("p.json", "{not json", "not valid JSON"),
        ("p.json", '{"7": "SELECT 1"}', "key '7'"),
        ("p.json", '{"0": "SELECT 1\\t----- bird -----\\tother_db"}', "names database 'other_db'"),
    ],
)
def test_malformed_predictions_get_one_clear_error_naming_the_place(toy_questions, tmp_path, name, content, place):
    path = _write(tmp_path, name, content)
    with pytest.raises(PredictionFileError, match=place):
        load_predictions(path, load_questions(toy_questions))


def test_malformed_questions_file_names_the_item(tmp_path):
    path = _write(tmp_path, "q.json", json.dumps([{"db_id": "a", "query": "SELECT 1"}, {"question": "no db"}]))
    with pytest.raises(QuestionFileError, match="item 1"):
        load_questions(path)


def test_bird_questions_use_sql_evidence_and_difficulty(toy_db, tmp_path, executor):
    items = [
        {"db_id": "toy", "question": "q", "evidence": "e", "SQL": "SELECT count(*) FROM singer", "difficulty": "simple"},
        {"db_id": "toy", "question": "q", "evidence": "", "SQL": "SELECT max(age) FROM singer", "difficulty": "moderate"},
    ]
    path = _write(tmp_path, "bird.json", json.dumps(items))
    assert load_questions(path)[0]["evidence"] == "e"
    preds = _write(tmp_path, "p.json", json.dumps({"0": "SELECT count(*) FROM singer", "1": "SELECT min(age) FROM singer"}))
    report = evaluate_files(path, toy_db.parent.parent, preds, executor=executor, mode="bird")
    assert report.by_difficulty == {
        "moderate": {"n": 1, "correct": 0, "accuracy": 0.0},
        "simple": {"n": 1, "correct": 1, "accuracy": 1.0},
    }


def test_drop_distinct_keeps_strings_and_is_reported(toy_questions, toy_db, executor, tmp_path):
    assert drop_distinct("SELECT DISTINCT a FROM t WHERE b = 'DISTINCT x'") == "SELECT a FROM t WHERE b = 'DISTINCT x'"
    lines = ["SELECT count(*) FROM singer", "SELECT name FROM singer ORDER BY age", "SELECT country FROM singer WHERE country IS NOT NULL", "SELECT 1", "SELECT 1"]
    preds = _write(tmp_path, "pred.sql", "\n".join(lines))
    plain = evaluate_files(toy_questions, toy_db.parent.parent, preds, executor=executor)
    rewritten = evaluate_files(toy_questions, toy_db.parent.parent, preds, executor=executor, remove_distinct=True)
    assert plain.examples[2]["correct"] is False and rewritten.examples[2]["correct"] is True
    assert rewritten.settings["query_rewrites"] == ["remove DISTINCT"] and plain.settings["query_rewrites"] == []


def test_report_round_trips_through_json(toy_questions, toy_db, executor, tmp_path):
    report = evaluate_files(toy_questions, toy_db.parent.parent, "gold", executor=executor)
    report.save(tmp_path / "out" / "report.json")
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["totals"]["correct"] == 4
    assert [e["index"] for e in saved["examples"]] == list(range(5))
    assert set(saved["examples"][0]) == {"index", "db_id", "correct", "status", "message"}
    assert {"mode", "timeout", "query_rewrites", "versions"} <= set(saved["settings"])


def test_bundled_sample_gold_scores_100_percent(executor):
    questions, db_dir = sample_paths()
    report = evaluate_files(questions, db_dir, "gold", executor=executor)
    assert report.totals["n"] == 299 and report.totals["accuracy"] == 1.0


@pytest.mark.spider
def test_spider_dev_gold_scores_100_percent_of_972_and_skips_62(spider_dir, executor):
    report = evaluate_files(spider_dir / "dev.json", spider_dir / "database", "gold", executor=executor)
    assert report.totals["n"] == 972 and report.totals["correct"] == 972
    assert report.totals["skipped"] == 62
    assert report.totals["skipped_databases"] == [str(spider_dir / "database" / "wta_1" / "wta_1.sqlite")]
