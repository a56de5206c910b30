"""Step scores to one trajectory score.

Each method takes the step scores ``s_1..s_K`` (probabilities that each step is correct):

- ``min``: ``min_k s_k`` (a chain is as good as its worst step; the paper's default)
- ``mean``: ``(1/K) sum_k s_k``
- ``prod``: ``prod_k s_k`` (the probability that every step is right, if steps were independent)
- ``last``: ``s_K``
- ``entropy``: ``sum_k w_k s_k / sum_k w_k`` with ``w_k = 1 - H(s_k) / ln 2`` and
  ``H(s) = -s ln s - (1 - s) ln(1 - s)``: confident verdicts weigh more, a step scored 0.5 weighs
  nothing (if every weight is 0, the plain mean).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

__all__ = ["AGGREGATIONS", "aggregate", "entropy_weights", "weighted_mean"]


def entropy_weights(scores: Sequence[float]) -> list[float]:
    """``1 - H(s)/ln 2`` for each score: 1 for a certain verdict, 0 for a coin flip.

    >>> [round(w, 3) for w in entropy_weights([0.5, 0.9, 1.0])]
    [0.0, 0.531, 1.0]
    """
    weights = []
    for s in scores:
        s = min(max(s, 0.0), 1.0)
        h = -sum(p * math.log(p) for p in (s, 1.0 - s) if p > 0.0)
        weights.append(1.0 - h / math.log(2.0))
    return weights


def weighted_mean(scores: Sequence[float], weights: Sequence[float]) -> float:
    """``sum w s / sum w``, or the plain mean when the weights sum to 0.

    >>> weighted_mean([1.0, 0.0], [3.0, 1.0])
    0.75
    """
    total = sum(weights)
    if total <= 0.0:
        return sum(scores) / len(scores)
    return sum(w * s for w, s in zip(weights, scores)) / total


AGGREGATIONS: dict[str, Callable[[Sequence[float]], float]] = {
    "min": min,
    "mean": lambda scores: sum(scores) / len(scores),
    "prod": math.prod,
    "last": lambda scores: scores[-1],
    "entropy": lambda scores: weighted_mean(scores, entropy_weights(scores)),
}


def aggregate(scores: Sequence[float], method: str = "min") -> float:
    """One score for a trajectory from its step scores (see the module docstring for formulas).

    >>> aggregate([0.9, 0.2, 0.8], "min"), aggregate([0.9, 0.2, 0.8], "last")
    (0.2, 0.8)
    >>> round(aggregate([0.9, 0.5], "prod"), 2)
    0.45
    """
    if method not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {method!r}: choose one of {', '.join(AGGREGATIONS)}")
    if not scores:
        raise ValueError("cannot aggregate an empty list of step scores")
    return float(AGGREGATIONS[method](list(scores)))
