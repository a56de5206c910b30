"""Test-suite accuracy: a prediction counts only if it matches the gold on every database of its schema."""

import json
import shutil
import sqlite3

import pytest

from trl_processsql.cli import main
from trl_processsql.data import neighbour_databases
from trl_processsql.evaluation import evaluate_files
from trl_processsql.rewards import execution_accuracy_reward

GOLD = "SELECT name FROM singer WHERE age > 40"
RIGHT = "SELECT name FROM singer WHERE NOT age <= 40"
LUCKY = "SELECT name FROM singer WHERE id IN (1, 3)"  # matches on the original only
LUCKY_TWICE = "SELECT name FROM singer WHERE age > 40 AND id <> 2"  # fails on the second neighbour only


def _neighbour(original, path, statement):
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(original, path)
    with sqlite3.connect(path) as conn:
        conn.execute(statement)
    conn.close()


@pytest.fixture
def suite(toy_db, tmp_path):
    """toy_a: a new singer over 40; toy_b: France's young singer grows old. Plus a copy of the original."""
    folder = tmp_path / "suite"
    _neighbour(toy_db, folder / "toy" / "toy_a.sqlite", "INSERT INTO singer VALUES (5, 'Di', 60, 'Chile')")
    _neighbour(toy_db, folder / "toy" / "toy_b.sqlite", "UPDATE singer SET age = 45 WHERE id = 2")
    shutil.copyfile(toy_db, folder / "toy" / "toy.sqlite")
    return folder


@pytest.fixture
def questions(tmp_path):
    path = tmp_path / "questions.json"
    path.write_text(json.dumps([{"db_id": "toy", "question": "Singers over 40?", "query": GOLD}] * 4))
    return path


def test_neighbour_databases_lists_neighbours_in_name_order_without_the_original(suite):
    assert [p.name for p in neighbour_databases(suite, "toy")] == ["toy_a.sqlite", "toy_b.sqlite"]
    assert neighbour_databases(suite, "absent") == []


def test_lucky_predictions_pass_on_one_database_and_fail_on_the_suite(questions, toy_db, suite, tmp_path, executor):
    preds = tmp_path / "pred.sql"
    preds.write_text("\n".join([RIGHT, LUCKY, LUCKY_TWICE, "SELECT nope FROM singer"]) + "\n")
    single = evaluate_files(questions, toy_db.parent.parent, preds, executor=executor)
    assert [e["correct"] for e in single.examples] == [True, True, True, False]
    assert "failed_on" not in single.examples[0]

    report = evaluate_files(questions, toy_db.parent.parent, preds, executor=executor, test_suite_dir=suite)
    assert [e["correct"] for e in report.examples] == [True, False, False, False]
    assert [e["failed_on"] for e in report.examples] == [None, "toy/toy_a.sqlite", "toy/toy_b.sqlite", "toy/toy.sqlite"]
    assert "(on toy/toy_a.sqlite)" in report.examples[1]["message"]
    assert report.examples[3]["status"] == "error"
    assert report.totals["accuracy"] == 0.25
    assert report.settings["test_suite"]["databases_per_question"] == 3


def test_gold_that_breaks_on_a_neighbour_is_reported_as_a_gold_failure(questions, toy_db, suite, tmp_path, executor):
    with sqlite3.connect(suite / "toy" / "toy_b.sqlite") as conn:
        conn.execute("ALTER TABLE singer RENAME COLUMN age TO years")
    conn.close()
    report = evaluate_files(questions, toy_db.parent.parent, "gold", executor=executor, test_suite_dir=suite)
    assert {e["status"] for e in report.examples} == {"gold_error"}
    assert "toy/toy_b.sqlite" in report.examples[0]["message"]


def test_cli_test_suite_report(questions, toy_db, suite, tmp_path, capsys):
    preds = tmp_path / "pred.sql"
    preds.write_text("\n".join([RIGHT, LUCKY, RIGHT, RIGHT]) + "\n")
    out = tmp_path / "report.json"
    argv = ["evaluate", "--questions", str(questions), "--db-dir", str(toy_db.parent.parent), "--predictions", str(preds)]
    assert main([*argv, "--test-suite-dir", str(suite), "--output", str(out), "--workers", "1"]) == 0
    assert "3.00 databases per question" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["totals"]["correct"] == 3 and report["examples"][1]["failed_on"] == "toy/toy_a.sqlite"
    assert main([*argv, "--test-suite-dir", str(tmp_path / "nowhere")]) == 2
    assert "test suite folder not found" in capsys.readouterr().err


def test_reward_judges_on_every_database_of_the_row(toy_db, suite):
    neighbours = [str(p) for p in neighbour_databases(suite, "toy")]
    completions = [RIGHT, LUCKY, LUCKY_TWICE]
    kwargs = dict(db_path=[str(toy_db)] * 3, gold_sql=[GOLD] * 3)
    assert execution_accuracy_reward(completions, **kwargs) == [1.0, 1.0, 1.0]
    assert execution_accuracy_reward(completions, **kwargs, test_suite_paths=[neighbours] * 3) == [1.0, 0.0, 0.0]
    assert execution_accuracy_reward(completions, **kwargs, test_suite_paths=[[], neighbours[:1], neighbours[:1]]) == [1.0, 0.0, 1.0]


def test_grpo_script_adds_the_suite_column_the_reward_reads(toy_db, suite):
    from trl_processsql.scripts.prm_grpo import database_columns

    assert database_columns(toy_db.parent.parent)({"db_id": "toy"}) == {"db_path": str(toy_db)}
    row = database_columns(toy_db.parent.parent, suite)({"db_id": "toy"})
    assert row["test_suite_paths"] == [str(suite / "toy" / "toy_a.sqlite"), str(suite / "toy" / "toy_b.sqlite")]
