"""What the demo shows, with no UI: a query (or a model's completion) as executed CoCTE steps.

:func:`explain_sql` reads the SQL as a chain of CTEs, runs every step's view in the sandbox and,
with a PRM, scores each step exactly as GRPO does (:func:`~trl_processsql.prm.scoring.score_chains`). The Gradio
app only lays out the records returned here, so tests check them without a browser.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..cocte import VIEW_ROWS, CoCTE, StepResult, execute_steps, parse_cocte
from ..sql import DatabaseNotFoundError
from ..sql.render import format_value
from .databases import DemoError

__all__ = ["Explanation", "StepView", "explain_sql"]

CELL_WIDTH = 80
"""Characters of one table cell shown before it is cut with an ellipsis."""


@dataclass(frozen=True)
class StepView:
    """One step as the page shows it.

    Parameters:
        index (`int`): 1 for the first step.
        name (`str` or `None`): the CTE name as written; `None` for a statement that is not a CTE.
        sql (`str`): the step exactly as written.
        view_sql (`str`): the query that ran to show what the step computed.
        status (`str`): the view's status: `ok`, `error`, `timeout` or `rejected`.
        summary (`str`): the view's result in one line, as the PRM reads it (or the error message).
        headers (`list[str]`), rows (`list[list[str]]`): the result table, cells as display text, at most
            ``VIEW_ROWS`` rows (pandas-free, what ``gr.Dataframe`` takes).
        row_count (`int`): rows the view returned (a CTE view stops after ``VIEW_ROWS + 1``).
        final (`bool`): the last step, whose result is the answer (a chain cut off after a CTE has none).
        score (`float` or `None`): the PRM's score of the step, when a PRM scored it.
    """

    index: int
    name: str | None
    sql: str
    view_sql: str
    status: str
    summary: str
    headers: list[str]
    rows: list[list[str]]
    row_count: int
    final: bool
    score: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def size(self) -> str:
        """The row count in words: "3 rows", "more than 100 rows (first 100 shown)"."""
        if not self.ok:
            return self.status
        if self.name is not None and self.row_count > VIEW_ROWS:  # a CTE's view stops after VIEW_ROWS + 1
            return f"more than {VIEW_ROWS} rows (first {VIEW_ROWS} shown)"
        shown = f" (first {VIEW_ROWS} shown)" if self.row_count > VIEW_ROWS else ""
        return f"{self.row_count} row{'s' * (self.row_count != 1)}{shown}"


@dataclass(frozen=True)
class Explanation:
    """Every step of one query, and what went wrong reading or running it.

    ``notes`` say how the SQL was read (a parse error, a cut-off answer, blank-line chunks);
    ``score`` is the PRM's trajectory score (its step scores aggregated the PRM's way, ``min`` by
    default) when a PRM scored the steps.
    """

    steps: list[StepView]
    notes: list[str]
    score: float | None = None

    @property
    def failed(self) -> StepView | None:
        """The first step whose view did not run, if any."""
        return next((step for step in self.steps if not step.ok), None)

    @property
    def message(self) -> str:
        """One line for a person: which step failed and why, or the size of the answer."""
        failed = self.failed
        if failed is not None:
            label = f"step {failed.index}" + (f" ({failed.name})" if failed.name else "")
            return f"{label} failed: {failed.summary}"
        answer = self.steps[-1]
        steps = f"{len(self.steps)} step{'s' * (len(self.steps) != 1)}"
        if not answer.final:
            return f"{steps}, every view executed, but the chain ends before its final statement"
        return f"{steps}, every view executed; the answer has {answer.size}"


def _step_view(index: int, view: StepResult, final: bool, score: float | None) -> StepView:
    result = view.result
    return StepView(
        index=index,
        name=view.step.name,
        sql=view.step.text,
        view_sql=view.sql,
        status=result.status,
        summary=view.text,
        headers=[format_value(column, CELL_WIDTH) for column in result.columns],
        rows=[[format_value(value, CELL_WIDTH) for value in row] for row in result.rows[:VIEW_ROWS]],
        row_count=len(result.rows),
        final=final,
        score=score,
    )


def _notes(cocte: CoCTE) -> list[str]:
    if cocte.fallback:
        return [f"the steps could not be read as a chain of CTEs ({cocte.parse_error}): shown as blank-line chunks"]
    if cocte.truncated:  # the parse error of a cut-off query says nothing more
        return ["the SQL is cut off before it ends"]
    if cocte.parse_error:
        return [f"sqlglot cannot parse it: {cocte.parse_error}"]
    return []


def explain_sql(db_path: str | os.PathLike, sql: str, executor, prm=None, question: str = "") -> Explanation:
    """Read ``sql`` (plain SQL or a model's completion) as CoCTE steps and run every step's view.

    ``executor`` is an ``SQLExecutor`` or ``SQLiteSandbox``. With ``prm`` (a
    :class:`~trl_processsql.prm.ProcessRewardModel`) and a ``question``, every step is scored
    against the prompt that PRM reads for that question and database; a step whose view fails scores 0.
    Raises :class:`DemoError` when there is no SQL to explain or the database file is missing.

    >>> from trl_processsql.sql import SQLiteSandbox
    >>> from trl_processsql.demo.databases import sample_database
    >>> sql = "WITH t AS (SELECT Name, Age FROM singer WHERE Age > 40)\\n\\nSELECT count(*) FROM t"
    >>> explanation = explain_sql(sample_database("concert_singer"), sql, SQLiteSandbox())
    >>> [(step.name, step.headers, step.rows) for step in explanation.steps]
    [('t', ['Name', 'Age'], [['Joe Sharp', '52'], ['Rose White', '41'], ['John Nizinik', '43']]), (None, ['count(*)'], [['3']])]
    >>> explanation.message
    '2 steps, every view executed; the answer has 1 row'
    """
    if not sql or not sql.strip():
        raise DemoError("there is no SQL to explain: paste a query first")
    cocte = parse_cocte(sql)
    if not cocte.steps:
        raise DemoError("no SQL query found in the text: a query starts with SELECT or WITH")
    scores: list[float | None] = [None] * len(cocte.steps)
    trajectory = None
    try:
        if prm is not None and question.strip():
            from ..prm.aggregation import aggregate
            from ..prm.scoring import score_chains

            _, (views,), (scores,) = score_chains(prm, [prm.prompt(question, db_path)], [sql], [os.fspath(db_path)], executor)
            trajectory = aggregate(scores, prm.aggregation)
        else:
            views = execute_steps(cocte, db_path, executor)
    except DatabaseNotFoundError as exc:
        raise DemoError(str(exc)) from None
    last = len(views) - 1
    steps = [
        _step_view(k + 1, view, k == last and view.step.name is None, score)
        for k, (view, score) in enumerate(zip(views, scores))
    ]
    return Explanation(steps=steps, notes=_notes(cocte), score=trajectory)
