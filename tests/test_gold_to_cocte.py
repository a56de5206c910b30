"""Gold SQL -> CoCTE: what the converter rewrites, how it names steps, and that it never emits a wrong conversion."""

import re

import pytest

from trl_processsql import gold_to_cocte as converter_module
from trl_processsql.cocte import CoCTE
from trl_processsql.data import database_path, load_questions
from trl_processsql.gold_to_cocte import convert_gold_many, gold_to_cocte
from trl_processsql.sql import results_match


def names(cocte: CoCTE) -> list:
    return [step.name for step in cocte.steps]


def convert(gold: str, db, runner):
    result = gold_to_cocte(gold, db, runner)
    assert result.ok, (result.reason, result.detail)
    return result.cocte


def test_simple_single_table_query_stays_one_step(toy_db, sandbox):
    cocte = convert("SELECT name FROM singer WHERE age > 30 ORDER BY age", toy_db, sandbox)
    assert names(cocte) == [None]


def test_in_subquery_becomes_a_named_cte(toy_db, sandbox):
    cocte = convert("SELECT name FROM singer WHERE id IN (SELECT singer_id FROM concert WHERE year = 2014)", toy_db, sandbox)
    assert names(cocte) == ["concert_year_2014", None]
    assert cocte.steps[-1].text == "SELECT name FROM singer WHERE id IN (SELECT singer_id FROM concert_year_2014)"


def test_scalar_subquery_becomes_a_cte_with_a_named_column(toy_db, sandbox):
    cocte = convert("SELECT name FROM singer WHERE age > (SELECT avg(age) FROM singer)", toy_db, sandbox)
    assert cocte.render() == (
        "WITH singer_avg_age AS (\n  SELECT AVG(age) AS avg_age FROM singer\n)\n\n"
        "SELECT name FROM singer WHERE age > (SELECT avg_age FROM singer_avg_age)"
    )


def test_from_subquery_becomes_a_cte_keeping_its_alias(toy_db, sandbox):
    cocte = convert("SELECT T.country FROM (SELECT country, count(*) AS n FROM singer GROUP BY country) AS T WHERE T.n > 1", toy_db, sandbox)
    assert len(cocte.steps) == 2 and " AS T WHERE T.n > 1" in cocte.steps[-1].text


def test_set_operation_branches_become_ctes(toy_db, sandbox):
    cocte = convert("SELECT name FROM singer WHERE country = 'France' UNION SELECT name FROM singer WHERE age > 50", toy_db, sandbox)
    assert names(cocte) == ["singer_france", "singer_age_over_50", None]
    assert cocte.steps[-1].text == "SELECT * FROM singer_france UNION SELECT * FROM singer_age_over_50"


def test_filtered_join_feeding_an_aggregation_becomes_filter_and_join_steps(toy_db, sandbox):
    gold = (
        "SELECT T1.name, count(*) FROM singer AS T1 JOIN concert AS T2 ON T1.id = T2.singer_id "
        "WHERE T2.year >= 2014 GROUP BY T1.id ORDER BY count(*) DESC"
    )
    cocte = convert(gold, toy_db, sandbox)
    assert names(cocte) == ["concert_year_at_least_2014", "singer_concert", None]
    assert cocte.steps[-1].text == "SELECT name, COUNT(*) FROM singer_concert GROUP BY id ORDER BY COUNT(*) DESC"


def test_correlated_subquery_stays_in_place(toy_db, sandbox):
    gold = "SELECT name FROM singer AS s WHERE age > (SELECT avg(age) FROM singer WHERE country = s.country)"
    assert names(convert(gold, toy_db, sandbox)) == [None]


def test_double_quoted_strings_become_string_literals(toy_db, sandbox):
    cocte = convert('SELECT name FROM singer WHERE country = "France"', toy_db, sandbox)
    assert cocte.sql == "SELECT name FROM singer WHERE country = 'France'"


def test_cte_names_are_unique_snake_case_and_no_table_name(toy_db, sandbox):
    gold = "SELECT name FROM singer WHERE id IN (SELECT singer_id FROM concert) AND id NOT IN (SELECT singer_id FROM concert)"
    step_names = names(convert(gold, toy_db, sandbox))[:-1]
    assert len(set(step_names)) == 2 and not {"singer", "concert"} & set(step_names)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", name) for name in step_names)


def test_gold_with_a_with_clause_keeps_its_ctes(toy_db, sandbox):
    cocte = convert("WITH old AS (SELECT * FROM singer WHERE age > 40) SELECT name FROM old", toy_db, sandbox)
    assert names(cocte) == ["old", None]


def test_converted_steps_follow_the_design_layout(toy_db, sandbox):
    cocte = convert("SELECT name FROM singer WHERE id IN (SELECT singer_id FROM concert WHERE year = 2014)", toy_db, sandbox)
    assert re.fullmatch(r"WITH \w+ AS \(\n  .+\n\)", cocte.steps[0].text)


@pytest.mark.parametrize(
    "gold, reason",
    [
        ("SELECT nope FROM singer", "gold_error"),
        ("SELECT name FROM singer WHERE (((", "parse_error"),
        ("DELETE FROM singer", "unsupported"),
    ],
)
def test_failures_come_back_with_their_reason(toy_db, sandbox, gold, reason):
    result = gold_to_cocte(gold, toy_db, sandbox)
    assert not result.ok and result.cocte is None and result.reason == reason and result.detail


@pytest.mark.parametrize(
    "proposal, reason",
    [
        ("SELECT name FROM singer WHERE age > 100", "result_differs"),
        ("WITH broken AS (\n  SELECT nope FROM singer\n)\n\nSELECT name FROM singer", "step_error"),
        ("SELECT nope FROM singer", "execution_error"),
    ],
)
def test_a_conversion_that_fails_or_changes_the_result_is_not_emitted(toy_db, sandbox, monkeypatch, proposal, reason):
    monkeypatch.setattr(converter_module._GoldConverter, "convert", lambda self, gold: proposal)
    result = gold_to_cocte("SELECT name FROM singer", toy_db, sandbox)
    assert result.cocte is None and result.reason == reason


def test_row_order_counts_when_the_gold_orders_rows(toy_db, sandbox, monkeypatch):
    monkeypatch.setattr(converter_module._GoldConverter, "convert", lambda self, gold: "SELECT name FROM singer ORDER BY name DESC")
    assert gold_to_cocte("SELECT name FROM singer ORDER BY name", toy_db, sandbox).reason == "result_differs"


def test_missing_database_is_reported_not_raised(tmp_path, executor):
    [result] = convert_gold_many([("SELECT 1", tmp_path / "absent.sqlite")], executor)
    assert result.reason == "gold_error" and "database not found" in result.detail


def test_batch_conversion_with_the_executor_matches_one_by_one(toy_db, sandbox, executor):
    golds = [
        "SELECT count(*) FROM singer",
        "SELECT name FROM singer WHERE id IN (SELECT singer_id FROM concert)",
        "SELECT country FROM singer INTERSECT SELECT country FROM singer WHERE age < 40",
    ]
    batched = convert_gold_many([(gold, toy_db) for gold in golds], executor)
    assert [r.cocte for r in batched] == [gold_to_cocte(gold, toy_db, sandbox).cocte for gold in golds]


@pytest.mark.spider
def test_spider_dev_sample_converts_with_identical_results(spider_dir, executor):
    questions = [q for q in load_questions(spider_dir / "dev.json") if database_path(spider_dir / "database", q["db_id"]).is_file()]
    sample = questions[::9][:100]
    pairs = [(q["gold_sql"], database_path(spider_dir / "database", q["db_id"])) for q in sample]
    results = convert_gold_many(pairs, executor)
    converted = [(gold, db, r.cocte) for (gold, db), r in zip(pairs, results) if r.ok]
    assert len(converted) >= 98, [(r.gold_sql, r.reason, r.detail) for r in results if not r.ok]
    runs = executor.execute_many([(db, sql) for gold, db, cocte in converted for sql in (gold, cocte.sql)])
    for (gold, _, _), gold_result, cocte_result in zip(converted, runs[::2], runs[1::2]):
        assert results_match(cocte_result.rows, gold_result.rows, "spider", gold_sql=gold)
        assert results_match(cocte_result.rows, gold_result.rows, "bird")
    assert sum(len(cocte.steps) >= 2 for _, _, cocte in converted) >= 30
