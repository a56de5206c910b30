"""Choosing one answer among sampled candidates: greedy, execution vote, PRM best-of-N, PRM-weighted vote.

Every strategy is a pure function of the candidates (their execution results and PRM step
scores) that returns the index of the chosen one, so strategies can be compared on the same
pool. Ties always go to the candidate (or result group) that comes first, which makes a choice
reproducible from the candidate order alone.

Candidates are grouped by execution result under the semantics of the evaluation
(:func:`~trl_processsql.sql.compare.result_key`): two candidates vote together
exactly when the evaluator would find their results equal, except for row order, which counts only when the unknown gold query orders rows
and so is ignored here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Hashable, Sequence

from ..prm.aggregation import aggregate
from ..sql.compare import result_key

__all__ = [
    "NEEDS_PRM",
    "STRATEGIES",
    "Candidate",
    "best_of_n",
    "greedy",
    "majority_vote",
    "prm_vote",
    "result_groups",
    "trajectory_score",
]


@dataclass
class Candidate:
    """One sampled answer: its SQL, how its final query ran, and the PRM's step scores.

    ``status`` is an :class:`~trl_processsql.sql.ExecutionResult` status (``ok``, ``error``,
    ``timeout``, ``rejected``), ``no_sql`` when the completion holds no SQL, or ``incomplete``
    when its chain of CTEs has no final statement. ``rows`` is the final result when it ran.
    ``prm_scores`` is one score per step (None when no PRM scored it); ``completion`` the text the
    policy wrote, kept for analysis.
    """

    sql: str
    status: str = "ok"
    rows: tuple = ()
    prm_scores: list[float] | None = None
    completion: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def result_groups(candidates: Sequence[Candidate], mode: str = "spider") -> list[list[int]]:
    """Indices of the candidates that ran, grouped by equal result, groups in order of first appearance.

    >>> result_groups([Candidate("a", rows=((1,),)), Candidate("b", "error"), Candidate("c", rows=((1.0,),))])
    [[0, 2]]
    """
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for i, candidate in enumerate(candidates):
        if candidate.ok:
            groups[result_key(candidate.rows, mode)].append(i)
    return list(groups.values())


def trajectory_score(candidate: Candidate, aggregation: str = "min") -> float:
    """The PRM's score of a candidate: its step scores aggregated; 0 without steps or a run.

    >>> trajectory_score(Candidate("s", prm_scores=[0.9, 0.6])), trajectory_score(Candidate("s", "error", prm_scores=[0.9]))
    (0.6, 0.0)
    """
    if candidate.prm_scores is None:
        raise ValueError("the candidate has no PRM scores: this strategy needs a process reward model")
    if not candidate.ok or not candidate.prm_scores:
        return 0.0
    return aggregate(candidate.prm_scores, aggregation)


def _first_max(values: Sequence[float]) -> int:
    """Index of the largest value, the first one on ties."""
    return max(range(len(values)), key=lambda i: (values[i], -i))


def greedy(candidates: Sequence[Candidate], **_) -> int:
    """The first candidate: the only one when decoding is greedy.

    >>> greedy([Candidate("SELECT 1"), Candidate("SELECT 2")])
    0
    """
    _require(candidates)
    return 0


def majority_vote(candidates: Sequence[Candidate], *, mode: str = "spider", **_) -> int:
    """Self-consistency: the first candidate of the largest group of equal results.

    Candidates that did not run have no vote; if none ran, the first candidate.

    >>> majority_vote([Candidate("a", rows=((1,),)), Candidate("b", rows=((2,),)), Candidate("c", rows=((2,),))])
    1
    """
    _require(candidates)
    groups = result_groups(candidates, mode)
    if not groups:
        return 0
    return groups[_first_max([len(g) for g in groups])][0]


def best_of_n(candidates: Sequence[Candidate], *, aggregation: str = "min", **_) -> int:
    """PRM best-of-N with execution filtering: the best-scored candidate among those that ran.

    If none ran, the first candidate.

    >>> best_of_n([Candidate("a", "error", prm_scores=[0.9]), Candidate("b", prm_scores=[0.4]), Candidate("c", prm_scores=[0.7])])
    2
    """
    _require(candidates)
    ran = [i for i, c in enumerate(candidates) if c.ok]
    if not ran:
        return 0
    scores = [trajectory_score(candidates[i], aggregation) for i in ran]
    return ran[_first_max(scores)]


def prm_vote(candidates: Sequence[Candidate], *, aggregation: str = "min", mode: str = "spider", **_) -> int:
    """PRM-weighted vote: the result group with the largest sum of PRM scores; its best-scored member.

    Many middling candidates that agree can outweigh one confident outlier, and the reverse.

    >>> pool = [Candidate("a", rows=((1,),), prm_scores=[0.9]), Candidate("b", rows=((2,),), prm_scores=[0.5]),
    ...         Candidate("c", rows=((2,),), prm_scores=[0.6])]
    >>> prm_vote(pool)
    2
    """
    _require(candidates)
    groups = result_groups(candidates, mode)
    if not groups:
        return 0
    scores = [[trajectory_score(candidates[i], aggregation) for i in group] for group in groups]
    winner = _first_max([sum(s) for s in scores])
    return groups[winner][_first_max(scores[winner])]


def _require(candidates: Sequence[Candidate]) -> None:
    if not candidates:
        raise ValueError("no candidate to choose from")


STRATEGIES: dict[str, Callable[..., int]] = {
    "greedy": greedy,
    "vote": majority_vote,
    "best-of-n": best_of_n,
    "prm-vote": prm_vote,
}
"""Selection over a finished pool, by the name ``trl-processsql predict --strategy`` takes (``beam``
chooses as it searches: see :mod:`.beam`)."""

NEEDS_PRM = frozenset({"best-of-n", "prm-vote", "beam"})
"""Strategies that need a process reward model."""
