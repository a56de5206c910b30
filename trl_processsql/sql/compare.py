"""Result equivalence under the two official execution-accuracy semantics.

========================  =====================================  ======================
case                      ``spider`` (test-suite evaluation)     ``bird``
========================  =====================================  ======================
row order                 counts only if the gold has ORDER BY   never counts
duplicate rows            counted (multiset)                     ignored (set)
column order              any permutation accepted               must match
values                    Python ``==`` (1 == 1.0, "1" != 1)     the same
========================  =====================================  ======================

Two empty results match under both. Errors and timeouts are decided before comparison (they
score 0): these functions only see rows.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Callable, Sequence

__all__ = [
    "COMPARISON_MODES",
    "bird_match",
    "first_failure",
    "get_comparator",
    "gold_orders_rows",
    "results_match",
    "spider_match",
]

Rows = Sequence[Sequence[Any]]

_ORDER_BY = re.compile(r"\border\s+by\b", re.IGNORECASE)


def gold_orders_rows(gold_sql: str) -> bool:
    """Whether row order counts for this gold query, as the Spider test-suite decides it.

    Like the official script, any ``ORDER BY`` in the gold text counts, subqueries included.

    >>> gold_orders_rows("SELECT name FROM singer ORDER BY age DESC")
    True
    >>> gold_orders_rows("SELECT count(*) FROM singer")
    False
    """
    return bool(_ORDER_BY.search(gold_sql))


def bird_match(pred: Rows, gold: Rows, order_matters: bool = False) -> bool:
    """BIRD: the sets of rows are equal; columns keep their order, duplicates and row order do not count.

    >>> bird_match([(1, "a"), (1, "a")], [(1, "a")])
    True
    >>> bird_match([("a", 1)], [(1, "a")])
    False
    """
    return set(map(tuple, pred)) == set(map(tuple, gold))


def spider_match(pred: Rows, gold: Rows, order_matters: bool = False) -> bool:
    """Spider test-suite: equal multisets of rows under some permutation of the columns.

    With ``order_matters`` (the gold query has ORDER BY) the rows must also come in the same order.

    >>> spider_match([("a", 1), ("b", 2)], [(2, "b"), (1, "a")])
    True
    >>> spider_match([(1,), (1,)], [(1,)])
    False
    >>> spider_match([(2,), (1,)], [(1,), (2,)], order_matters=True)
    False
    """
    if not pred and not gold:
        return True
    if len(pred) != len(gold):
        return False
    width = len(gold[0])
    if any(len(row) != width for row in pred) or any(len(row) != width for row in gold):
        return False
    gold_columns = list(zip(*gold))
    pred_columns = list(zip(*pred))
    if order_matters:
        fits = [[j for j, p in enumerate(pred_columns) if p == g] for g in gold_columns]
    else:
        counts = [Counter(p) for p in pred_columns]
        fits = [[j for j, p in enumerate(counts) if p == g] for g in map(Counter, gold_columns)]
    gold_rows = list(map(tuple, gold)) if order_matters else Counter(map(tuple, gold))

    def rows_under(permutation: list[int]):
        rows = [tuple(row[j] for j in permutation) for row in pred]
        return rows if order_matters else Counter(rows)

    def search(i: int, chosen: list[int]) -> bool:
        # Depth-first over column assignments; a column can stand for one gold column only.
        if i == width:
            return rows_under(chosen) == gold_rows
        return any(search(i + 1, chosen + [j]) for j in fits[i] if j not in chosen)

    return search(0, [])


COMPARISON_MODES: dict[str, Callable[..., bool]] = {"spider": spider_match, "bird": bird_match}


def get_comparator(mode: str) -> Callable[..., bool]:
    """The comparison function for ``mode`` (``"spider"`` or ``"bird"``)."""
    try:
        return COMPARISON_MODES[mode]
    except KeyError:
        raise ValueError(f"unknown comparison mode {mode!r}: choose one of {', '.join(COMPARISON_MODES)}") from None


def results_match(pred: Rows, gold: Rows, mode: str = "spider", *, gold_sql: str | None = None) -> bool:
    """Compare two results in ``mode``; ``gold_sql`` decides whether row order counts (spider only).

    >>> results_match([(1, 2)], [(2, 1)], "spider"), results_match([(1, 2)], [(2, 1)], "bird")
    (True, False)
    """
    order_matters = gold_sql is not None and gold_orders_rows(gold_sql)
    return get_comparator(mode)(pred, gold, order_matters)


def first_failure(preds: Sequence, golds: Sequence, mode: str = "spider", *, gold_sql: str = "") -> int | None:
    """Test-suite judgement: the index of the first database where the prediction fails, or None.

    ``preds[i]`` and ``golds[i]`` are the execution results (``.ok``, ``.rows``) of the predicted
    and gold queries on database ``i``; the prediction fails there if it or the gold did not run,
    or if the results differ in ``mode``. A prediction is right only when it fails nowhere.
    """
    compare, order_matters = get_comparator(mode), gold_orders_rows(gold_sql)
    for i, (pred, gold) in enumerate(zip(preds, golds)):
        if not (pred.ok and gold.ok and compare(pred.rows, gold.rows, order_matters)):
            return i
    return None
