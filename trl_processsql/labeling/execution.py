"""Step labels from execution alone: a step whose view fails is wrong, and so is everything after it."""

from __future__ import annotations

from typing import Sequence

from ..cocte import StepResult

__all__ = ["execution_labels"]


def execution_labels(step_results: Sequence[StepResult], final_correct: bool | None = None) -> list[float]:
    """1.0 for each step up to the first one whose view fails, 0.0 from there on.

    Execution cannot tell a running step from a right one, so a running step counts as right,
    except the final step when ``final_correct`` (its result matches the gold's) is given.

    >>> from trl_processsql.cocte import Step
    >>> from trl_processsql.sql.sandbox import ExecutionResult
    >>> ok, bad = ExecutionResult("ok"), ExecutionResult("error", message="no such column: x")
    >>> views = [StepResult(Step("a", ""), "", r, "") for r in (ok, bad, ok)]
    >>> execution_labels(views)
    [1.0, 0.0, 0.0]
    >>> execution_labels(views[:1] + views[2:], final_correct=False)
    [1.0, 0.0]
    """
    labels = []
    failed = False
    for view in step_results:
        failed = failed or not view.result.ok
        labels.append(0.0 if failed else 1.0)
    if labels and not failed and final_correct is not None:
        labels[-1] = float(final_correct)
    return labels
