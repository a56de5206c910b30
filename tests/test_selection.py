"""Selection strategies on hand-made candidates: grouping by result, ties, execution filtering."""

import pytest

from trl_processsql.inference import (
    STRATEGIES,
    Candidate,
    best_of_n,
    greedy,
    majority_vote,
    prm_vote,
    result_groups,
    trajectory_score,
)
from trl_processsql.sql import result_key, results_match


def ran(rows, scores=None, sql="q"):
    return Candidate(sql, "ok", tuple(rows), scores)


def failed(scores=None, status="error"):
    return Candidate("bad", status, (), scores)


# -- result keys follow the evaluator -----------------------------------------------------------


@pytest.mark.parametrize(
    "a, b",
    [
        ([(1, "x"), (2, "y")], [(2, "y"), (1, "x")]),  # row order
        ([(1, "x")], [("x", 1)]),  # column order
        ([(1,)], [(1.0,)]),  # 1 == 1.0
        ([], []),
        ([(None, 1)], [(1, None)]),
        # columns with equal values pair up differently: still a permutation of each other
        ([(1, 2), (2, 3), (3, 1)], [(2, 1), (3, 2), (1, 3)]),
    ],
)
def test_results_the_spider_evaluator_finds_equal_share_a_key(a, b):
    assert results_match(a, b, "spider")
    assert result_key(a) == result_key(b)


@pytest.mark.parametrize(
    "a, b",
    [
        ([(1,), (1,)], [(1,)]),  # duplicates count
        ([(1,)], [("1",)]),  # "1" != 1
        ([(1, 2)], [(1, 2, 3)]),
        ([(1, 2), (2, 1)], [(1, 1), (2, 2)]),  # same column values, other pairs
        ([], [(None,)]),
    ],
)
def test_results_the_spider_evaluator_tells_apart_get_different_keys(a, b):
    assert not results_match(a, b, "spider")
    assert result_key(a) != result_key(b)


def test_bird_keys_ignore_duplicates_but_keep_column_order():
    assert result_key([(1, "a"), (1, "a")], "bird") == result_key([(1, "a")], "bird")
    assert result_key([(1, "a")], "bird") != result_key([("a", 1)], "bird")
    with pytest.raises(ValueError, match="unknown comparison mode"):
        result_key([], "exact")


def test_keys_sort_mixed_types_and_blobs():
    rows = [(None,), (2,), ("b",), (b"\x00",), (1.5,)]
    assert result_key(rows) == result_key(list(reversed(rows)))


def test_result_groups_skip_candidates_that_did_not_run_and_keep_first_appearance_order():
    pool = [failed(), ran([(2,)]), ran([(1,)]), ran([(2.0,)]), failed(status="timeout"), ran([(1,)])]
    assert result_groups(pool) == [[1, 3], [2, 5]]


# -- strategies ---------------------------------------------------------------------------------


def test_greedy_takes_the_first_candidate():
    assert greedy([failed(), ran([(1,)])]) == 0


def test_majority_vote_takes_the_largest_group_and_its_first_member():
    pool = [ran([(1,)]), ran([(2,)]), failed(), ran([(2,)]), ran([(2,)])]
    assert majority_vote(pool) == 1


def test_majority_vote_ties_go_to_the_group_seen_first():
    assert majority_vote([ran([(2,)]), ran([(1,)]), ran([(1,)]), ran([(2,)])]) == 0
    assert majority_vote([failed(), ran([(1,)]), ran([(2,)])]) == 1


def test_majority_vote_groups_by_mode():
    pool = [ran([(1,), (1,)]), ran([(2,)]), ran([(1,)]), ran([(2,)])]
    assert majority_vote(pool, mode="spider") == 1  # (1,)(1,) and (1,) differ: 1 vote each, 2 has 2
    pool = [ran([(1,), (1,)]), ran([(2,)]), ran([(1,)])]
    assert majority_vote(pool, mode="bird") == 0  # as sets they agree: 2 votes


def test_no_candidate_ran_falls_back_to_the_first():
    pool = [failed([0.0]), failed([0.2], status="no_sql")]
    assert majority_vote(pool) == best_of_n(pool) == prm_vote(pool) == 0


def test_best_of_n_filters_failures_before_the_prm_speaks():
    pool = [failed([0.99, 0.99]), ran([(1,)], [0.3, 0.9]), ran([(2,)], [0.6, 0.7])]
    assert best_of_n(pool, aggregation="min") == 2
    assert best_of_n(pool, aggregation="last") == 1


def test_best_of_n_ties_go_to_the_first():
    pool = [ran([(1,)], [0.5]), ran([(2,)], [0.5])]
    assert best_of_n(pool) == 0


def test_prm_vote_sums_scores_per_result_and_returns_the_groups_best_member():
    pool = [
        ran([(1,)], [0.9]),
        ran([(2,)], [0.5]),
        ran([(2,)], [0.6]),
        failed([0.95]),
    ]
    assert best_of_n(pool) == 0
    assert prm_vote(pool) == 2  # 0.5 + 0.6 > 0.9


def test_prm_vote_ties_go_to_the_group_seen_first():
    pool = [ran([(1,)], [0.2]), ran([(2,)], [0.4]), ran([(1,)], [0.2])]
    assert prm_vote(pool) == 0


def test_trajectory_score_is_zero_without_a_run_and_needs_prm_scores():
    assert trajectory_score(ran([], [0.8, 0.4]), "mean") == pytest.approx(0.6)
    assert trajectory_score(failed([0.8])) == 0.0
    assert trajectory_score(ran([], [])) == 0.0
    with pytest.raises(ValueError, match="needs a process reward model"):
        best_of_n([ran([(1,)])])


def test_every_strategy_refuses_an_empty_pool():
    for strategy in STRATEGIES.values():
        with pytest.raises(ValueError, match="no candidate"):
            strategy([])


def test_result_key_still_imports_from_inference_with_a_warning_and_is_the_sql_one():
    import trl_processsql.inference

    with pytest.warns(FutureWarning, match=r"import it from trl_processsql\.sql\.compare"):
        from_inference = trl_processsql.inference.result_key
    assert from_inference is result_key
