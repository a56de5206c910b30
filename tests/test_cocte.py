"""The CoCTE format: reading completions, step views, and the verified gold -> CoCTE converter."""

import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trl_processsql.cocte import (
    STEP_SEPARATOR,
    CoCTE,
    execute_steps,
    execute_steps_many,
    extract_sql,
    parse_cocte,
    step_view_sql,
)
from trl_processsql.sql import execute
from trl_processsql.sql.sandbox import ExecutionResult
from trl_processsql.sql.render import describe_result

SQL_KEYWORDS = {
    word.upper()
    for word in "abort action add after all alter always analyze and as asc attach autoincrement before begin between by "
    "cascade case cast check collate column commit conflict constraint create cross current current_date current_time "
    "current_timestamp database default deferrable deferred delete desc detach distinct do drop each else end escape "
    "except exclude exclusive exists explain fail filter first following for foreign from full generated glob group "
    "groups having if ignore immediate in index indexed initially inner insert instead intersect into is isnull join key "
    "last left like limit match materialized natural no not nothing notnull null nulls of offset on or order others "
    "outer over partition plan pragma preceding primary query raise range recursive references regexp reindex release "
    "rename replace restrict returning right rollback row rows savepoint select set table temp temporary then ties to "
    "transaction trigger unbounded union unique update using vacuum values view virtual when where window with without".split()
}

DESIGN_EXAMPLE = """WITH concerts_2014 AS (
  SELECT id FROM concert WHERE year = 2014
),

singers_2014 AS (
  SELECT DISTINCT c.singer_id
  FROM concert AS c
  JOIN concerts_2014 AS k ON c.id = k.id
)

SELECT s.name FROM singer AS s JOIN singers_2014 AS x ON s.id = x.singer_id ORDER BY s.name"""


def names(cocte: CoCTE) -> list:
    return [step.name for step in cocte.steps]


def assert_spans_index_the_completion(completion: str, cocte: CoCTE) -> None:
    for step in cocte.steps:
        assert completion[step.start : step.end] == step.text


# -- finding the SQL --------------------------------------------------------------------------


def test_plain_sql_is_extracted_as_is():
    assert extract_sql("SELECT name FROM singer") == "SELECT name FROM singer"


def test_fenced_sql_is_taken_from_its_block_without_prose_around():
    completion = "Let me write it.\n\n```sql\nSELECT name\nFROM singer;\n```\n\nThis lists every singer."
    assert extract_sql(completion) == "SELECT name\nFROM singer"


def test_last_sql_block_wins_and_sql_tags_beat_untagged_blocks():
    completion = "Draft:\n```sql\nSELECT 1\n```\nFinal:\n```sql\nSELECT 2\n```\nOutput:\n```\n| 2 |\n```"
    assert extract_sql(completion) == "SELECT 2"


def test_sql_inside_think_is_ignored_in_favour_of_the_answer_after_it():
    completion = "<think>Maybe ```sql\nSELECT wrong FROM t\n``` ... no.</think>\n```sql\nSELECT right FROM t\n```"
    assert extract_sql(completion) == "SELECT right FROM t"


def test_unfinished_think_has_no_answer_and_is_truncated():
    cocte = parse_cocte("<think>I will write SELECT name FROM singer")
    assert cocte.steps == () and cocte.truncated


def test_trailing_explanation_without_fence_is_left_out():
    completion = "SELECT name FROM singer\nWHERE age > 30\n\nThis query returns the names of older singers."
    assert extract_sql(completion) == "SELECT name FROM singer\nWHERE age > 30"


def test_only_the_first_statement_counts():
    assert extract_sql("SELECT 1; DROP TABLE singer;") == "SELECT 1"


def test_prose_line_starting_with_select_does_not_start_the_sql():
    assert extract_sql("Select the singers:\nSELECT name FROM singer") == "SELECT name FROM singer"


def test_unfenced_cocte_with_blank_lines_between_steps_is_kept_whole():
    completion = f"Here is my answer.\n\n{DESIGN_EXAMPLE}\n\nIt uses two steps."
    assert extract_sql(completion) == DESIGN_EXAMPLE


def test_prose_without_sql_yields_no_steps_and_says_so():
    cocte = parse_cocte("I am sorry, the question cannot be answered from this schema.")
    assert cocte.steps == () and cocte.parse_error == "no SQL found in the completion"


# -- parse, split, render -----------------------------------------------------------------------


def test_design_example_splits_into_its_steps_and_renders_back_unchanged():
    cocte = parse_cocte(f"```sql\n{DESIGN_EXAMPLE}\n```")
    assert names(cocte) == ["concerts_2014", "singers_2014", None]
    assert cocte.render() == DESIGN_EXAMPLE and cocte.parse_error is None


def test_render_puts_one_blank_line_between_steps():
    cocte = parse_cocte("WITH a AS (SELECT 1 AS x),b AS (SELECT x FROM a)   SELECT x FROM b")
    assert cocte.render() == "WITH a AS (SELECT 1 AS x),\n\nb AS (SELECT x FROM a)\n\nSELECT x FROM b"
    assert cocte.render().split(STEP_SEPARATOR) == [step.text for step in cocte.steps]


def test_plain_query_is_one_final_step():
    cocte = parse_cocte("SELECT name FROM singer WHERE id IN (SELECT singer_id FROM concert)")
    assert names(cocte) == [None] and cocte.parse_error is None


def test_step_spans_index_the_completion():
    completion = f"<think>plan</think>\nAnswer:\n```sql\n{DESIGN_EXAMPLE}\n```\nDone."
    cocte = parse_cocte(completion)
    assert len(cocte.steps) == 3
    assert_spans_index_the_completion(completion, cocte)


def test_comments_and_strings_with_parentheses_do_not_split_steps():
    sql = "WITH a AS (SELECT '), (' AS s -- not the end )\n),\n\n/* next */ b AS (SELECT s FROM a)\n\nSELECT s FROM b"
    cocte = parse_cocte(sql)
    assert names(cocte) == ["a", "b", None] and cocte.steps[1].text.startswith("/* next */")


def test_completion_cut_off_mid_step_keeps_the_finished_steps():
    cocte = parse_cocte("```sql\nWITH a AS (SELECT id FROM singer),\n\nb AS (SELECT id FROM a WHERE")
    assert cocte.truncated and cocte.parse_error
    assert names(cocte) == ["a", None] and cocte.steps[1].text == "b AS (SELECT id FROM a WHERE"


def test_chain_without_final_statement_is_truncated():
    cocte = parse_cocte("WITH a AS (SELECT 1)")
    assert names(cocte) == ["a"] and cocte.truncated


def test_unreadable_chain_falls_back_to_blank_lines_and_says_why():
    cocte = parse_cocte("WITH a (SELECT 1),\n\nb AS (SELECT 2)\n\nSELECT * FROM b")
    assert cocte.fallback and cocte.parse_error
    assert [s.text for s in cocte.steps] == ["WITH a (SELECT 1),", "b AS (SELECT 2)", "SELECT * FROM b"]


def test_chain_with_a_broken_step_keeps_its_structure_and_reports_the_error():
    cocte = parse_cocte("WITH a AS (SELECT FROM WHERE),\n\nb AS (SELECT 2)\n\nSELECT * FROM b")
    assert names(cocte) == ["a", "b", None] and not cocte.fallback and cocte.parse_error


ROUND_TRIPS = {
    "recursive": (
        "WITH RECURSIVE counter(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM counter WHERE n < 5) SELECT n FROM counter",
        ["counter", None],
    ),
    "quoted names and a set operation": (
        "WITH \"french singers\" AS (SELECT name FROM singer WHERE country = 'France'), [older] AS "
        "(SELECT name FROM singer WHERE age > 40) SELECT * FROM \"french singers\" UNION SELECT * FROM [older]",
        ['"french singers"', "[older]", None],
    ),
    "column list and materialized": (
        "WITH per_country(country, n) AS MATERIALIZED (SELECT country, count(*) FROM singer GROUP BY country) "
        "SELECT country FROM per_country WHERE n > 1",
        ["per_country", None],
    ),
    "nested WITH in a step and in the final query": (
        "WITH a AS (WITH inner_q AS (SELECT id FROM singer WHERE age > 30) SELECT id FROM inner_q) "
        "SELECT * FROM (WITH b AS (SELECT count(*) AS n FROM a) SELECT n FROM b)",
        ["a", None],
    ),
}


@pytest.mark.parametrize("sql, expected_names", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_parse_then_render_executes_identically(toy_db, sql, expected_names):
    cocte = parse_cocte(sql)
    assert names(cocte) == expected_names and cocte.parse_error is None
    original, rendered = execute(toy_db, sql), execute(toy_db, cocte.render())
    assert original.ok and rendered.rows == original.rows


@pytest.mark.parametrize("sql", [v[0] for v in ROUND_TRIPS.values()], ids=ROUND_TRIPS.keys())
def test_every_step_view_runs(toy_db, sandbox, sql):
    views = execute_steps(parse_cocte(sql), toy_db, sandbox)
    assert all(view.result.ok for view in views), [view.text for view in views]


HOSTILE = [
    "", " ", "\n\n\n", "Sorry, I cannot help.", "SELECT", "WITH", "WITH a AS", "WITH a AS (", "WITH a AS (SELECT 1),",
    "WITH RECURSIVE", "SELECT ((((1", "SELECT 1))))", ")))(((", "```sql\n```sql\nSELECT 1\n```\n```", "```", "``````",
    "```sql", "```sql\nSELECT 'unterminated", "<think>SELECT 1</think>", "<think>SELECT 1", "</think></think>SELECT 2",
    "<think><think></think>", "SELECT '日本語' AS \"名前\" FROM t -- ✓", "\x00\x01SELECT\x00", "SELECT \"unterminated",
    "/* unterminated comment SELECT 1", "-- only a comment", "WITH a AS (SELECT 1) b AS (SELECT 2) SELECT 3",
    "WITH , AS ( ) SELECT", "WITH a AS (SELECT [x FROM t) SELECT 1", "SELECT `x` FROM ```", "SELECT 1;;;;",
    ";SELECT 1", "```sql\nSELECT 1\n" + "```sql\n" * 3000, "(" * 50_000, "SELECT " + "(" * 5000 + "1" + ")" * 5000,
    "SELECT\n\n" * 5000, "WITH " + ", ".join(f"c{i} AS (SELECT {i})" for i in range(500)) + " SELECT 1",
]


@pytest.mark.parametrize("completion", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_completions_never_raise(completion):
    cocte = parse_cocte(completion)
    assert_spans_index_the_completion(completion, cocte)
    assert all(step.text.strip() == step.text and step.text for step in cocte.steps)


def test_hundred_kilobytes_of_garbage_parse_fast():
    rng = random.Random(0)
    pieces = ["SELECT", "WITH", "AS", "(", ")", ",", "\n", "\n\n", " ", "'", '"', "x", "```sql\n", "</think>", "é"]
    garbage = "".join(rng.choice(pieces) for _ in range(40_000))
    start = time.perf_counter()
    cocte = parse_cocte(garbage)
    assert time.perf_counter() - start < 3
    assert_spans_index_the_completion(garbage, cocte)


SQLISH_PIECES = [*"SELECTWIHAS()'\"`[],;\n -*/<>x", "```sql\n", "```\n", "<think>", "</think>", "é", "\n\n"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(SQLISH_PIECES)).map("".join))
def test_any_text_parses_into_steps_that_index_it(completion):
    cocte = parse_cocte(completion)
    assert_spans_index_the_completion(completion, cocte)
    assert cocte.render() == STEP_SEPARATOR.join(step.text for step in cocte.steps)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        # CTE names as a model writes them: identifiers, never SQL keywords ("as", "on", ...)
        st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(lambda name: name.upper() not in SQL_KEYWORDS),
        min_size=1,
        max_size=5,
        unique=True,
    ),
    st.sampled_from([" ", "\n", "\n\n", "\n\n\n", " \n \n "]),
)
def test_any_chain_round_trips_through_parse_and_render(step_names, gap):
    ctes = [f"{name} AS (SELECT {i} AS x)" for i, name in enumerate(step_names)]
    sql = "WITH " + f",{gap}".join(ctes) + f"{gap}SELECT x FROM {step_names[-1]}"
    cocte = parse_cocte(sql)
    assert names(cocte) == [*step_names, None] and cocte.parse_error is None
    reparsed = parse_cocte(cocte.render())
    assert [(s.name, s.text) for s in reparsed.steps] == [(s.name, s.text) for s in cocte.steps]


# -- step views --------------------------------------------------------------------------------


def test_cte_view_selects_from_the_step_with_a_row_bound():
    cocte = parse_cocte(DESIGN_EXAMPLE)
    view = step_view_sql(cocte, 1, limit=11)
    assert view.startswith("WITH concerts_2014 AS (") and view.endswith("\nSELECT * FROM singers_2014 LIMIT 11")
    assert "SELECT s.name" not in view


def test_final_view_is_the_whole_query_without_a_bound():
    cocte = parse_cocte(DESIGN_EXAMPLE)
    assert step_view_sql(cocte, 2, limit=11) == DESIGN_EXAMPLE == step_view_sql(cocte, -1)


def test_views_of_the_design_example_show_each_step(toy_db, sandbox):
    texts = [view.text for view in execute_steps(parse_cocte(DESIGN_EXAMPLE), toy_db, sandbox)]
    assert texts == ["2 rows (id): 1; 2", "2 rows (singer_id): 1; 2", "2 rows (name): 'Ann'; 'Joe'"]


def test_failing_step_shows_its_error(toy_db, sandbox):
    cocte = parse_cocte("WITH a AS (SELECT agee FROM singer)\n\nSELECT * FROM a")
    texts = [view.text for view in execute_steps(cocte, toy_db, sandbox)]
    assert texts == ["error: no such column: agee"] * 2


def test_cut_off_step_view_fails_instead_of_guessing(toy_db, sandbox):
    cocte = parse_cocte("WITH a AS (SELECT id FROM singer),\n\nb AS (SELECT id FROM a WHERE")
    first, cut = execute_steps(cocte, toy_db, sandbox)
    assert first.result.ok and cut.result.status == "error"


def test_large_cte_view_reads_more_than_the_bound(toy_db, sandbox):
    cocte = parse_cocte("WITH pairs AS (SELECT a.id FROM singer AS a, singer AS b)\n\nSELECT count(*) FROM pairs")
    pairs, total = execute_steps(cocte, toy_db, sandbox, view_rows=10)
    assert pairs.text.startswith("more than 10 rows (id): ") and total.text == "1 row (count(*)): 16"


def test_batched_views_through_the_executor_match_the_sandbox(toy_db, sandbox, executor):
    trajectories = [parse_cocte(DESIGN_EXAMPLE), parse_cocte("SELECT nope"), parse_cocte("nothing here")]
    batched = execute_steps_many([(c, toy_db) for c in trajectories], executor)
    assert [[v.text for v in views] for views in batched] == [
        [v.text for v in execute_steps(c, toy_db, sandbox)] for c in trajectories
    ]


def test_result_description_quotes_strings_and_cuts_wide_results():
    result = ExecutionResult("ok", (tuple(range(10)) + ("x" * 100,),), tuple(f"c{i}" for i in range(11)))
    text = describe_result(result, max_width=8, max_columns=3)
    assert text == "1 row (c0, c1, c2, …): 0, 1, 2, …"
    assert describe_result(ExecutionResult("ok", (("1",), (1,)), ("v",))) == "2 rows (v): '1'; 1"
