"""Result equivalence: every row of the semantics table (DESIGN.md section 5) in both modes.

``CASES`` holds one row of the table per entry with the verdict of each mode; the table is
expanded into one test per (case, mode) cell, and each cell is also checked with the two results
swapped, since equivalence must not depend on which side is the gold.
"""

from __future__ import annotations

import pytest

from trl_processsql.sql import COMPARISON_MODES, get_comparator, gold_orders_rows, results_match
from trl_processsql.sql.compare import bird_match, result_key, spider_match

# name: (pred, gold, order_matters, spider verdict, bird verdict)
CASES = {
    # row order: counts in spider only when the gold orders rows; never in bird
    "row-order-unordered-gold": ([(2,), (1,)], [(1,), (2,)], False, True, True),
    "row-order-ordered-gold": ([(2,), (1,)], [(1,), (2,)], True, False, True),
    "same-order-ordered-gold": ([(1,), (2,)], [(1,), (2,)], True, True, True),
    # duplicates: a multiset in spider, a set in bird
    "extra-duplicate": ([(1,), (1,)], [(1,)], False, False, True),
    "duplicates-moved": ([(1,), (1,), (2,)], [(1,), (2,), (2,)], False, False, True),
    "same-duplicates": ([(1,), (2,), (1,)], [(1,), (1,), (2,)], False, True, True),
    # column order: any permutation in spider, must match in bird
    "columns-swapped": ([("a", 1), ("b", 2)], [(1, "a"), (2, "b")], False, True, False),
    "columns-rotated": ([(3, 1, 2)], [(1, 2, 3)], False, True, False),
    # values: Python ==
    "int-equals-float": ([(1,), (2.0,)], [(1.0,), (2,)], False, True, True),
    "text-is-not-int": ([("1",)], [(1,)], False, False, False),
    "text-is-not-float": ([("1.5",)], [(1.5,)], False, False, False),
    "blob-is-not-text": ([(b"a",)], [("a",)], False, False, False),
    # NULL
    "null-equals-null": ([(None, 1)], [(None, 1)], False, True, True),
    "null-is-not-zero": ([(None,)], [(0,)], False, False, False),
    "null-is-not-empty-text": ([(None,)], [("",)], False, False, False),
    # empty results
    "both-empty": ([], [], False, True, True),
    "both-empty-ordered": ((), [], True, True, True),
    "empty-vs-one-row": ([], [(1,)], False, False, False),
    "empty-vs-null-row": ([], [(None,)], False, False, False),
    # shapes
    "more-rows": ([(1,), (2,)], [(1,)], False, False, False),
    "more-columns": ([(1, 2)], [(1,)], False, False, False),
    "extra-constant-column": ([(1, 1), (2, 1)], [(1,), (2,)], False, False, False),
    "ragged-rows": ([(1,), (2, 3)], [(1,), (2,)], False, False, False),
    # a column permutation that exists only across the whole result: both columns hold {1, 2, 3},
    # and only swapping them gives the gold rows (the first assignment tried is wrong)
    "permutation-needs-backtracking": ([(2, 1), (3, 2), (1, 3)], [(1, 2), (2, 3), (3, 1)], False, True, False),
    "permutation-with-a-third-column": ([("x", 1, 2), ("y", 2, 1)], [(1, 2, "x"), (2, 1, "y")], False, True, False),
    # every column matches as a multiset, yet no assignment gives equal rows
    "columns-match-rows-do-not": ([(1, 2), (2, 1)], [(1, 1), (2, 2)], False, False, False),
    # order_matters combined with a column permutation
    "ordered-with-swapped-columns": ([("a", 1), ("b", 2)], [(1, "a"), (2, "b")], True, True, False),
    "ordered-swapped-columns-wrong-order": ([("b", 2), ("a", 1)], [(1, "a"), (2, "b")], True, False, False),
    # rows may arrive as lists (JSON) rather than tuples
    "list-rows": ([[1, "a"], [2, "b"]], [(1, "a"), (2, "b")], True, True, True),
}

CELLS = [
    pytest.param(pred, gold, order, mode, verdict, id=f"{name}-{mode}")
    for name, (pred, gold, order, spider, bird) in CASES.items()
    for mode, verdict in (("spider", spider), ("bird", bird))
]


@pytest.mark.parametrize(("pred", "gold", "order_matters", "mode", "verdict"), CELLS)
def test_semantics_table_cell(pred, gold, order_matters, mode, verdict):
    compare = get_comparator(mode)
    assert compare(pred, gold, order_matters) is verdict
    assert compare(gold, pred, order_matters) is verdict  # symmetric


def test_modes_differ_on_duplicates_and_column_order_exactly_as_the_table_says():
    differing = {name for name, (_, _, _, spider, bird) in CASES.items() if spider != bird}
    assert differing == {
        "row-order-ordered-gold",
        "extra-duplicate",
        "duplicates-moved",
        "columns-swapped",
        "columns-rotated",
        "permutation-needs-backtracking",
        "permutation-with-a-third-column",
        "ordered-with-swapped-columns",
    }


def test_spider_column_search_does_not_reuse_one_predicted_column_for_two_gold_columns():
    # gold (1, 1) could be read off pred column 0 twice; the other column holds 2s.
    assert spider_match([(1, 2), (1, 2)], [(1, 1), (1, 1)]) is False


def test_spider_width_mismatch_is_not_saved_by_a_matching_first_row():
    assert spider_match([(1, 2), (3,)], [(1, 2), (3, 4)]) is False


# -- gold_orders_rows ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gold_sql", "ordered"),
    [
        ("SELECT name FROM singer ORDER BY age DESC", True),
        ("select name from singer order by age", True),
        ("SELECT name FROM singer Order By age", True),
        ("SELECT name FROM singer ORDER\n  BY age", True),
        ("SELECT name FROM (SELECT name, age FROM singer ORDER BY age LIMIT 3)", True),
        ("SELECT name FROM singer WHERE age > (SELECT age FROM singer ORDER BY age LIMIT 1)", True),
        ("SELECT count(*) FROM singer", False),
        ("SELECT name FROM singer GROUP BY name", False),
        ("SELECT recorder_by, border FROM t", False),
        ("SELECT ordering FROM t WHERE by_year = 1", False),
    ],
    ids=["upper", "lower", "mixed-case", "newline", "from-subquery", "where-subquery", "none", "group-by", "lookalike-column", "lookalike-words"],
)
def test_gold_orders_rows(gold_sql, ordered):
    assert gold_orders_rows(gold_sql) is ordered


# -- dispatch -------------------------------------------------------------------------------------


def test_comparison_modes_are_spider_and_bird():
    assert COMPARISON_MODES == {"spider": spider_match, "bird": bird_match}
    assert get_comparator("spider") is spider_match
    assert get_comparator("bird") is bird_match


@pytest.mark.parametrize("mode", ["sqlite", "Spider", "BIRD", ""])
def test_unknown_mode_raises_value_error_naming_the_valid_modes(mode):
    with pytest.raises(ValueError, match=rf"unknown comparison mode {mode!r}: choose one of spider, bird"):
        get_comparator(mode)


def test_results_match_rejects_an_unknown_mode():
    with pytest.raises(ValueError, match="choose one of spider, bird"):
        results_match([(1,)], [(1,)], "exact")


def test_results_match_defaults_to_spider():
    assert results_match([(1, "a")], [("a", 1)]) is True  # permuted columns pass only in spider
    assert results_match([(1,), (1,)], [(1,)]) is False  # duplicates count only in spider


def test_results_match_orders_rows_only_when_the_gold_sql_has_order_by():
    pred, gold = [(2,), (1,)], [(1,), (2,)]
    assert results_match(pred, gold, "spider") is True
    assert results_match(pred, gold, "spider", gold_sql="SELECT x FROM t") is True
    assert results_match(pred, gold, "spider", gold_sql="SELECT x FROM t ORDER BY x") is False
    assert results_match(pred, gold, "spider", gold_sql="select x from t order by x") is False


def test_results_match_never_orders_rows_in_bird():
    assert results_match([(2,), (1,)], [(1,), (2,)], "bird", gold_sql="SELECT x FROM t ORDER BY x") is True


def test_results_match_uses_each_modes_column_rule():
    pred, gold = [("a", 1)], [(1, "a")]
    assert results_match(pred, gold, "spider") is True
    assert results_match(pred, gold, "bird") is False


KEYED_CELLS = [
    pytest.param(pred, gold, mode, id=f"{name}-{mode}")
    for name, (pred, gold, *_) in CASES.items()
    if name != "ragged-rows"  # rows of different lengths match nothing, not even themselves: no key can say that
    for mode in COMPARISON_MODES
]


@pytest.mark.parametrize(("pred", "gold", "mode"), KEYED_CELLS)
def test_result_keys_are_equal_exactly_when_the_results_match_row_order_aside(pred, gold, mode):
    assert (result_key(pred, mode) == result_key(gold, mode)) is get_comparator(mode)(pred, gold, False)


def test_ragged_rows_get_a_key_no_regular_result_shares():
    assert result_key([(1,), (2, 3)]) != result_key([(1,), (2,)])
