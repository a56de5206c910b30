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
score 0): these functions only see rows. :func:`result_key` gives the same semantics as a hashable
key, row order aside, so that results can be grouped (execution votes) without comparing pairs.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections import Counter
from typing import Any, Callable, Hashable, Sequence

__all__ = [
    "COMPARISON_MODES",
    "bird_match",
    "first_failure",
    "get_comparator",
    "gold_orders_rows",
    "result_key",
    "results_match",
    "spider_match",
]

Rows = Sequence[Sequence[Any]]

_ORDER_BY = re.compile(r"\border\s+by\b", re.IGNORECASE)
_MAX_TIE_PERMUTATIONS = 720  # column orders a key tries when several columns hold the same values


@functools.lru_cache(maxsize=2**16)  # the same gold queries are judged again every epoch
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


def _value_order(value: Any) -> tuple:
    """A sort key across SQLite's types that keeps Python's ``==`` (``1`` and ``1.0`` sort together)."""
    if value is None:
        return (0, 0)
    if isinstance(value, (int, float)):
        return (1, value) if value == value else (1, math.inf)
    if isinstance(value, str):
        return (2, value)
    return (3, bytes(value))


def _row_order(row: tuple) -> tuple:
    return tuple(map(_value_order, row))


def _width(rows: Rows) -> int | None:
    """The common length of the rows, None when they differ (no result of SQLite looks like that)."""
    widths = {len(row) for row in rows}
    return widths.pop() if len(widths) == 1 else None


def _multiset(values) -> dict:
    """The values with their counts, as a plain dict: its equality runs in C, Counter's in Python."""
    return dict(Counter(values))


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
    if pred == gold:
        return True  # the same rows in the same order, as the same type: the commonest right answer, settled in C
    if not pred and not gold:
        return True
    if len(pred) != len(gold):
        return False
    width = len(gold[0])
    if {*map(len, pred), *map(len, gold)} != {width}:
        return False
    if list(map(tuple, pred)) == list(map(tuple, gold)):
        return True  # the same rows in the same order: the commonest right answer, settled without a search
    gold_columns = list(zip(*gold))
    pred_columns = list(zip(*pred))
    if order_matters:
        fits = [[j for j, p in enumerate(pred_columns) if p == g] for g in gold_columns]
    else:
        counts = [_multiset(p) for p in pred_columns]
        fits = [[j for j, p in enumerate(counts) if p == g] for g in map(_multiset, gold_columns)]
    gold_rows = list(map(tuple, gold)) if order_matters else _multiset(map(tuple, gold))

    def rows_under(permutation: list[int]):
        rows = [tuple(row[j] for j in permutation) for row in pred]
        return rows if order_matters else _multiset(rows)

    def search(i: int, chosen: list[int]) -> bool:
        # Depth-first over column assignments; a column can stand for one gold column only.
        if i == width:
            return rows_under(chosen) == gold_rows
        return any(search(i + 1, chosen + [j]) for j in fits[i] if j not in chosen)

    return search(0, [])


COMPARISON_MODES: dict[str, Callable[..., bool]] = {"spider": spider_match, "bird": bird_match}


def _spider_key(rows: Rows) -> Hashable:
    """The rows as a multiset, up to a permutation of the columns (Spider's test-suite semantics).

    Columns are put in the order of their signatures; columns with equal signatures can pair up
    differently with the rest, so their orders are tried and the least result kept. Past
    ``_MAX_TIE_PERMUTATIONS`` orders only one is tried: two results that match may then get
    different keys (never the reverse, since a key is one permutation of its rows).
    """
    rows = [tuple(row) for row in rows]
    if not rows:
        return ("spider", 0, ())
    width = _width(rows)
    if width is None:  # rows of different lengths match nothing: a key of their own
        return ("spider", None, tuple(rows))
    signatures = [tuple(sorted(_value_order(row[j]) for row in rows)) for j in range(width)]
    order = sorted(range(width), key=lambda j: signatures[j])
    ties = [list(group) for _, group in itertools.groupby(order, key=lambda j: signatures[j])]
    if math.prod(math.factorial(len(group)) for group in ties) > _MAX_TIE_PERMUTATIONS:
        ties = [[j] for j in order]
    best = None
    for choice in itertools.product(*(itertools.permutations(group) for group in ties)):
        columns = [j for group in choice for j in group]
        canonical = sorted((tuple(row[j] for j in columns) for row in rows), key=_row_order)
        ordered = [_row_order(row) for row in canonical]
        if best is None or ordered < best[0]:
            best = (ordered, canonical)
    return ("spider", width, tuple(best[1]))


def _bird_key(rows: Rows) -> Hashable:
    """The set of rows, columns in order (BIRD's semantics)."""
    return ("bird", tuple(sorted(set(map(tuple, rows)), key=_row_order)))


_KEYS: dict[str, Callable[[Rows], Hashable]] = {"spider": _spider_key, "bird": _bird_key}


def result_key(rows: Rows, mode: str = "spider") -> Hashable:
    """A hashable key equal for two results exactly when they match in ``mode``, row order aside.

    >>> result_key([(1, "a"), (2, "b")]) == result_key([("b", 2.0), ("a", 1)])
    True
    >>> result_key([(1,), (1,)]) == result_key([(1,)]), result_key([(1,), (1,)], "bird") == result_key([(1,)], "bird")
    (False, True)
    """
    get_comparator(mode)
    return _KEYS[mode](rows)


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
