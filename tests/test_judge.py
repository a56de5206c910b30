"""The judge: one property of its verdicts per test, on real queries run by real workers.

The toy database (tests/conftest.py) has singer(id, name, age, country) with four rows; a second
database of the same schema with other rows stands for a test suite's neighbour.
"""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from trl_processsql.sql import ExecutionResult, judge, judge_results, result_key


@pytest.fixture
def neighbour(toy_db, tmp_path):
    """A copy of the toy database where Bo is older than Joe: same schema, other answers."""
    path = tmp_path / "suite" / "toy" / "toy_2.sqlite"
    path.parent.mkdir(parents=True)
    shutil.copy(toy_db, path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE singer SET age = 60 WHERE name = 'Bo'")
    conn.close()
    return path


def one(executor, prediction, gold, db, **kwargs):
    return judge(executor, [prediction], [gold], [db], **kwargs)[0]


def test_spider_ignores_row_order_when_the_gold_does_not_order(executor, toy_db):
    verdict = one(executor, "SELECT name FROM singer ORDER BY name DESC", "SELECT name FROM singer", toy_db)
    assert verdict.correct and verdict.status == "ok"


def test_spider_counts_row_order_when_the_gold_orders(executor, toy_db):
    verdict = one(executor, "SELECT name FROM singer ORDER BY age DESC", "SELECT name FROM singer ORDER BY age", toy_db)
    assert not verdict.correct and verdict.status == "ok"
    assert verdict.message == "result differs from gold (4 rows x 1 columns on both sides)"


def test_spider_accepts_columns_in_another_order(executor, toy_db):
    assert one(executor, "SELECT age, name FROM singer", "SELECT name, age FROM singer", toy_db).correct


def test_spider_counts_duplicates(executor, toy_db):
    verdict = one(executor, "SELECT country FROM singer WHERE country IS NOT NULL", "SELECT DISTINCT country FROM singer WHERE country IS NOT NULL", toy_db)
    assert not verdict.correct
    assert verdict.message == "result differs from gold: 3 rows x 1 columns, gold has 2 rows x 1 columns"


def test_bird_compares_sets_of_rows(executor, toy_db):
    prediction, gold = "SELECT country FROM singer WHERE country IS NOT NULL", "SELECT DISTINCT country FROM singer WHERE country IS NOT NULL"
    assert one(executor, prediction, gold, toy_db, mode="bird").correct


def test_bird_keeps_column_order(executor, toy_db):
    assert not one(executor, "SELECT age, name FROM singer", "SELECT name, age FROM singer", toy_db, mode="bird").correct


def test_a_prediction_that_fails_to_run_is_wrong_with_its_status_and_message(executor, toy_db):
    verdict = one(executor, "SELECT nope FROM singer", "SELECT name FROM singer", toy_db)
    assert (verdict.correct, verdict.status, verdict.ran) == (False, "error", False)
    assert "nope" in verdict.message and verdict.failed_on == 0


def test_a_gold_that_fails_scores_zero_and_is_blamed(executor, toy_db):
    verdict = one(executor, "SELECT name FROM singer", "SELECT nope FROM singer", toy_db)
    assert (verdict.correct, verdict.status, verdict.ran) == (False, "gold_error", True)
    assert verdict.message.startswith("gold query error: ") and verdict.gold_statuses == ("error",)


def test_no_prediction_is_missing(executor, toy_db):
    verdict = one(executor, None, "SELECT name FROM singer", toy_db)
    assert (verdict.correct, verdict.status, verdict.statuses, verdict.gold_statuses) == (False, "missing", (), ("ok",))


def test_a_test_suite_fails_a_prediction_right_only_on_the_first_database(executor, toy_db, neighbour):
    # the oldest singer is Joe on both databases only by luck of the first one's data
    lucky, gold = "SELECT name FROM singer WHERE name = 'Joe'", "SELECT name FROM singer ORDER BY age DESC LIMIT 1"
    assert one(executor, lucky, gold, toy_db).correct
    verdict = one(executor, lucky, gold, [toy_db, neighbour])
    assert not verdict.correct and verdict.failed_on == 1 and verdict.statuses == ("ok", "ok")
    assert verdict.message.endswith("(on toy/toy_2.sqlite)")
    assert one(executor, gold, gold, [toy_db, neighbour]).correct


def test_keys_group_results_as_the_comparison_does(executor, toy_db):
    verdicts = judge(executor, ["SELECT age, name FROM singer", "SELECT name, age FROM singer", "SELECT nope"],
                     ["SELECT name FROM singer"] * 3, [toy_db] * 3, keys=True)
    assert verdicts[0].key == verdicts[1].key == result_key(sqlite3.connect(toy_db).execute("SELECT name, age FROM singer").fetchall())
    assert verdicts[2].key is None
    assert judge(executor, ["SELECT 1"], ["SELECT 1"], [toy_db])[0].key is None  # only when asked


def test_results_at_hand_get_the_verdicts_the_workers_give(executor, toy_db, neighbour):
    predictions = ["SELECT age, name FROM singer", "SELECT nope", "SELECT name FROM singer WHERE name = 'Joe'", "SELECT 1"]
    golds = ["SELECT name, age FROM singer", "SELECT 1", "SELECT name FROM singer ORDER BY age DESC LIMIT 1", "SELECT nope"]
    suite = [toy_db, neighbour]
    in_workers = judge(executor, predictions, golds, [suite] * 4)
    ran = [[executor.execute(db, sql) for db in suite] for sql in predictions]
    gold_ran = [[executor.execute(db, sql) for db in suite] for sql in golds]
    at_hand = judge_results(ran, gold_ran, golds, databases=[suite] * 4)
    assert [(v.correct, v.status, v.message, v.failed_on, v.statuses) for v in at_hand] == [
        (v.correct, v.status, v.message, v.failed_on, v.statuses) for v in in_workers
    ]


def test_a_single_result_stands_for_a_list_of_one():
    ran = ExecutionResult("ok", ((1,),))
    assert judge_results([ran], [ran], ["SELECT 1"]) == judge_results([[ran]], [[ran]], ["SELECT 1"])


def test_an_unknown_mode_and_unequal_lengths_are_refused_before_anything_runs(executor, toy_db):
    with pytest.raises(ValueError, match="unknown comparison mode"):
        judge(executor, ["SELECT 1"], ["SELECT 1"], [toy_db], mode="exact")
    with pytest.raises(ValueError, match="2 predictions, 1 gold queries and 1 databases"):
        judge(executor, ["SELECT 1", "SELECT 2"], ["SELECT 1"], [toy_db])
