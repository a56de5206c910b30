"""The Chain-of-CTEs (CoCTE) format: read a completion, split it into steps, execute every step.

A CoCTE trajectory is one SQL query written as steps: each common table expression of the
``WITH`` clause is one step, in order, and the final statement is the last step. Steps are
separated by one blank line (:data:`STEP_SEPARATOR`), the form the policy writes and the boundary
the PRM and GRPO score at::

    WITH concerts_2014 AS (
      SELECT concert_ID FROM concert WHERE Year = 2014
    ),

    singers_2014 AS (
      SELECT DISTINCT sic.Singer_ID
      FROM singer_in_concert AS sic
      JOIN concerts_2014 AS c ON sic.concert_ID = c.concert_ID
    )

    SELECT s.Name FROM singer AS s JOIN singers_2014 AS x ON s.Singer_ID = x.Singer_ID

Reading never raises. :func:`parse_cocte` finds the SQL in any completion (fences, prose, a
``<think>`` block, a cut-off answer) and splits it by scanning tokens, so every step keeps the
exact text the model wrote (sqlglot, which could rewrite it, is only asked whether it parses).
A completion whose structure cannot be read is split on blank lines instead, and says why.

Each step has a *view*, the query whose result shows what the step computed
(:func:`step_view_sql`); :func:`execute_steps_many` runs the views of many trajectories in one
batch and renders each result with :func:`~trl_processsql.sql.render.describe_result`, the one
rendering the PRM sees in training and at inference.

Gold SQL becomes CoCTE in :mod:`trl_processsql.gold_to_cocte`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Iterable, NamedTuple

import sqlglot

from .sql.render import describe_result
from .sql.sandbox import ExecutionResult

__all__ = [
    "STEP_SEPARATOR",
    "VIEW_ROWS",
    "CoCTE",
    "Step",
    "StepResult",
    "execute_steps",
    "execute_steps_many",
    "extract_sql",
    "parse_cocte",
    "prm_completions",
    "step_view_sql",
]

STEP_SEPARATOR = "\n\n"
"""One blank line: what separates two steps in the text the policy writes."""

VIEW_ROWS = 100
"""Rows a step view fetches: a CTE step with more is described as "more than 100 rows"."""


# -- tokens -----------------------------------------------------------------------------------

_LEXER = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))
    | (?P<string>'[^']*(?:''[^']*)*')
    | (?P<quoted>"[^"]*(?:""[^"]*)*"|`[^`]*(?:``[^`]*)*`|\[[^\]]*\])
    | (?P<word>[^\W\d]\w*)
    | (?P<open>['"`\[].*)
    | (?P<symbol>.)
    """,
    re.VERBOSE | re.DOTALL,
)


class _Token(NamedTuple):
    kind: str  # word, quoted (identifier), string, open (an unterminated quote), symbol
    start: int
    end: int
    text: str


def _tokens(sql: str) -> list[_Token]:
    """SQLite tokens that matter to the structure, without spaces and comments."""
    return [
        _Token(m.lastgroup, m.start(), m.end(), m.group())
        for m in _LEXER.finditer(sql)
        if m.lastgroup not in ("space", "comment")
    ]


def _is_word(token: _Token | None, *words: str) -> bool:
    return token is not None and token.kind == "word" and token.text.lower() in words


def _is_symbol(token: _Token | None, symbol: str) -> bool:
    return token is not None and token.kind == "symbol" and token.text == symbol


def _closing_paren(tokens: list[_Token], i: int) -> int | None:
    """Index of the ``)`` matching the ``(`` at ``i``, or None if the text ends first."""
    depth = 0
    for j in range(i, len(tokens)):
        if _is_symbol(tokens[j], "("):
            depth += 1
        elif _is_symbol(tokens[j], ")"):
            depth -= 1
            if depth == 0:
                return j
    return None


# -- finding the SQL in a completion -----------------------------------------------------------

_THINK_OPEN = re.compile(r"<think\s*>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</think\s*>", re.IGNORECASE)
_FENCE_LINE = re.compile(r"^[ \t]*`{3,}[ \t]*([^\s`]*)[^\n]*$", re.MULTILINE)
_STRAY_FENCE = re.compile(r"[ \t]*`{3,}[^\n]*(?:\n|\Z)")
_SQL_STARTS = (  # where SQL starts in prose, most telling first: "Select the rows:" is prose
    re.compile(r"(?:^|:)[ \t]*(WITH|SELECT)\b", re.MULTILINE),
    re.compile(r"(?:^|:)[ \t]*(with|select)\b", re.IGNORECASE | re.MULTILINE),
    re.compile(r"\b(WITH|SELECT)\b"),
)
_SQL_LINE = re.compile(
    r"""[ \t]*(?:
        (?:select|with|from|where|group|order|having|limit|offset|union|intersect|except|join|inner
          |left|right|full|cross|natural|on|and|or|not|as|values|case|when|then|else|end|distinct
          |all|by|asc|desc|in|exists|between|like|glob|is|null|recursive|window)\b
      | [\w"`\[\]]+(?:[ \t]*\([^)\n]*\))?[ \t]+as[ \t]*(?:not[ \t]+)?(?:materialized[ \t]*)?\(
      | \w+\.\w
      | [(),;*'"`\[\-/0-9+<>=|]
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_MARKDOWN_LINE = re.compile(r"[ \t]*(?:\#{1,6}[ \t]|\*\*\w|[-*+][ \t]+[A-Za-z]|\d+\.[ \t]+[A-Za-z])")
_SENTENCE_LINE = re.compile(r"[ \t]*[^\W\d][^\n]*[.:!?][ \t]*$")


class _Span(NamedTuple):
    start: int
    end: int
    truncated: bool  # the completion stops before its answer does (open think, fence or quote)


def _answer_region(text: str) -> _Span:
    """Where the answer lies: after the last ``</think>``; nowhere if thinking never ended."""
    closes = list(_THINK_CLOSE.finditer(text))
    if closes:
        return _Span(closes[-1].end(), len(text), False)
    if _THINK_OPEN.search(text):
        return _Span(len(text), len(text), True)
    return _Span(0, len(text), False)


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Narrow ``text[start:end]`` past surrounding whitespace and stray fence lines."""
    while True:
        while start < end and text[start].isspace():
            start += 1
        stray = _STRAY_FENCE.match(text, start, end)
        if not stray or stray.end() == start:
            break
        start = stray.end()
    while True:
        while end > start and text[end - 1].isspace():
            end -= 1
        last_line = max(text.rfind("\n", start, end) + 1, start)
        if end == start or not _STRAY_FENCE.fullmatch(text, last_line, end):
            return start, end
        end = last_line


def _fenced_sql(text: str, region: _Span) -> _Span | None:
    """The last SQL-tagged code block of the region (else the last untagged one), if any."""
    body = text[region.start : region.end]
    blocks = []  # (tag, start, end, closed), offsets in body
    opened = None
    for fence in _FENCE_LINE.finditer(body):
        if opened is None:
            opened = (fence.group(1).lower(), min(fence.end() + 1, len(body)))
        elif not fence.group(1):  # a closing fence has no tag: a tagged one inside a block is content
            blocks.append((*opened, fence.start(), True))
            opened = None
    if opened is not None:
        blocks.append((*opened, len(body), False))
    spans = []
    for tag, start, end, closed in blocks:
        start, end = _trim(body, start, end)
        if start < end and ("sql" in tag or not tag):
            spans.append(("sql" in tag, _Span(region.start + start, region.start + end, not closed)))
    if not spans:
        return None
    tagged = [span for is_sql, span in spans if is_sql]
    return (tagged or [span for _, span in spans])[-1]


def _statement_end(text: str, start: int, end: int) -> int:
    """Where the statement starting at ``start`` ends: a top-level ``;``, or prose after it."""
    depth = 0
    previous = None
    for token in _tokens(text[start:end]):
        gap = text[start + previous.end : start + token.start] if previous is not None and depth == 0 else ""
        if "\n" in gap:
            line_end = text.find("\n", start + token.start, end)
            line = text[start + token.start : end if line_end < 0 else line_end]
            if _MARKDOWN_LINE.match(line) or _is_prose(line):
                return start + previous.end
            if gap.count("\n") >= 2 and not _SQL_LINE.match(line):
                return start + previous.end
        if _is_symbol(token, ";") and depth == 0:
            return start + token.start
        depth += _is_symbol(token, "(") - _is_symbol(token, ")")
        previous = token
    return end


def _is_prose(line: str) -> bool:
    """A sentence (at least four words, ending with punctuation) that is not a line of SQL."""
    return not _SQL_LINE.match(line) and len(re.findall(r"[^\W\d]+", line)) >= 4 and bool(_SENTENCE_LINE.match(line))


def _find_sql(completion: str) -> _Span:
    region = _answer_region(completion)
    fenced = _fenced_sql(completion, region)
    if fenced is not None:
        start, end, truncated = fenced
    else:
        answer = completion[region.start : region.end]
        found = next(filter(None, (pattern.search(answer) for pattern in _SQL_STARTS)), None)
        if found is None:
            return _Span(region.end, region.end, region.truncated)
        start, end, truncated = region.start + found.start(1), region.end, region.truncated
    end = _statement_end(completion, start, end)
    start, end = _trim(completion, start, end)
    return _Span(start, end, truncated)


def extract_sql(completion: str) -> str:
    """The SQL statement a completion answers with ("" when there is none).

    The answer comes after the last ``</think>``; inside it, the last ```` ```sql ```` block (else
    the last untagged block; else the text from the first line that starts with SELECT or WITH,
    upper case first).
    The statement ends at its first top-level ``;`` or where prose starts after it.

    >>> extract_sql("<think>SELECT 1</think>Here it is:\\n```sql\\nSELECT name FROM singer;\\n```\\nDone.")
    'SELECT name FROM singer'
    >>> extract_sql("The query is: SELECT count(*) FROM singer\\n\\nThis counts the singers.")
    'SELECT count(*) FROM singer'
    >>> extract_sql("I cannot answer that.")
    ''
    """
    span = _find_sql(completion)
    return completion[span.start : span.end]


# -- the parsed trajectory -----------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One step: a CTE (``name`` as written, quotes included) or the final statement (``name=None``).

    ``text`` is exactly ``completion[start:end]``, the span that GRPO maps to completion tokens.
    """

    name: str | None
    text: str
    start: int = 0
    end: int = 0


@dataclass(frozen=True)
class CoCTE:
    """A completion read as a chain of CTEs.

    Parameters:
        steps (`tuple[Step, ...]`):
            The CTEs in order, then the final statement. Empty when no SQL was found.
        parse_error (`str` or `None`):
            Why the SQL is not a clean query: sqlglot's parse error, a CTE chain that does not
            read, or "no SQL found". `None` when it parsed.
        truncated (`bool`):
            The completion stops before its answer does (inside a quote, a parenthesis, an open
            code fence or ``<think>``, or after a CTE with no final statement).
        fallback (`bool`):
            The structure could not be read, so ``steps`` are the blank-line separated chunks
            of the SQL and only the last one has a view that can answer.

    >>> cocte = parse_cocte("WITH a AS (SELECT 1 AS x), b AS (SELECT x + 1 AS y FROM a) SELECT y FROM b")
    >>> [step.name for step in cocte.steps]
    ['a', 'b', None]
    >>> print(cocte.render())
    WITH a AS (SELECT 1 AS x),
    <BLANKLINE>
    b AS (SELECT x + 1 AS y FROM a)
    <BLANKLINE>
    SELECT y FROM b
    """

    steps: tuple[Step, ...]
    parse_error: str | None = None
    truncated: bool = False
    fallback: bool = False

    def render(self) -> str:
        """The steps joined by :data:`STEP_SEPARATOR`: the form the policy writes, and a query
        that runs exactly like the SQL it was read from."""
        return STEP_SEPARATOR.join(step.text for step in self.steps)

    @property
    def sql(self) -> str:
        """The whole query (the same text as :meth:`render`)."""
        return self.render()


def _sqlglot_error(sql: str) -> str | None:
    """Why sqlglot cannot parse ``sql`` as SQLite (one short line), or None if it can.

    >>> _sqlglot_error("SELECT 1"), _sqlglot_error("SELECT (1")
    (None, 'Expecting ) (line 1, column 9)')
    """
    try:
        sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        where = f" (line {first['line']}, column {first['col']})" if "line" in first else ""
        return f"{first.get('description') or str(exc).splitlines()[0]}{where}"[:300]
    except RecursionError:
        return "too deeply nested to parse"
    except Exception as exc:  # TokenError and anything else sqlglot raises on hostile text
        return (str(exc).splitlines() or [type(exc).__name__])[0][:300]
    return None


def _chain_spans(sql: str) -> tuple[list[tuple[str | None, int, int]], bool, str | None]:
    """Split ``sql`` at the top level of its WITH clause.

    Returns ``(spans, truncated, mismatch)``: ``(name, start, end)`` per step; whether the text
    stops inside the chain; and why the chain does not read (the caller then falls back).
    """
    tokens = _tokens(sql)
    open_at_end = bool(tokens) and tokens[-1].kind == "open"

    def token(i: int) -> _Token | None:
        return tokens[i] if i < len(tokens) else None

    def skip_space(position: int) -> int:
        while position < len(sql) and sql[position].isspace():
            position += 1
        return position

    if not _is_word(token(0), "with"):
        depth = sum(_is_symbol(t, "(") - _is_symbol(t, ")") for t in tokens)
        return [(None, 0, len(sql))], open_at_end or depth > 0, None
    spans: list[tuple[str | None, int, int]] = []
    step_start = 0
    i = 2 if _is_word(token(1), "recursive") else 1
    while True:
        name = token(i)
        if name is None:
            break  # cut off after WITH or after a comma
        if name.kind not in ("word", "quoted") or _is_word(name, "select", "with", "as"):
            return spans, False, f"expected a CTE name at {name.text[:40]!r}"
        i += 1
        if _is_symbol(token(i), "("):  # a column list
            close = _closing_paren(tokens, i)
            if close is None:
                break
            i = close + 1
        if token(i) is None:
            break
        if not _is_word(token(i), "as"):
            return spans, False, f"expected AS after the CTE name {name.text}"
        i += 1
        if _is_word(token(i), "not"):
            i += 1
        if _is_word(token(i), "materialized"):
            i += 1
        if token(i) is None:
            break
        if not _is_symbol(token(i), "("):
            return spans, False, f"expected ( after {name.text} AS"
        close = _closing_paren(tokens, i)
        if close is None:
            break
        if _is_symbol(token(close + 1), ","):
            spans.append((name.text, step_start, tokens[close + 1].end))
            step_start = skip_space(tokens[close + 1].end)
            i = close + 2
            continue
        spans.append((name.text, step_start, tokens[close].end))
        if token(close + 1) is None:
            return spans, True, None  # the chain ends with no final statement
        spans.append((None, skip_space(tokens[close].end), len(sql)))
        return spans, open_at_end, None
    if step_start < len(sql):
        spans.append((None, step_start, len(sql)))  # the cut-off step: not a complete CTE
    return spans, True, None


_BLANK_LINES = re.compile(r"\n[ \t]*\n\s*")


def _blank_line_spans(sql: str) -> list[tuple[None, int, int]]:
    spans, start = [], 0
    for gap in _BLANK_LINES.finditer(sql):
        spans.append((None, start, gap.start()))
        start = gap.end()
    spans.append((None, start, len(sql)))
    return [(None, s, e) for _, s, e in spans if e > s]


def parse_cocte(completion: str) -> CoCTE:
    """Read a completion (or plain SQL) as a chain of CTEs; never raises.

    >>> cocte = parse_cocte("```sql\\nWITH big AS (SELECT * FROM t WHERE x > 2)\\n\\nSELECT count(*) FROM big\\n```")
    >>> [(s.name, s.text) for s in cocte.steps]
    [('big', 'WITH big AS (SELECT * FROM t WHERE x > 2)'), (None, 'SELECT count(*) FROM big')]
    >>> cut = parse_cocte("WITH big AS (SELECT * FROM t WHERE")
    >>> cut.truncated, cut.parse_error is not None, [s.name for s in cut.steps]
    (True, True, [None])
    """
    found = _find_sql(completion)
    sql = completion[found.start : found.end]
    if not sql:
        return CoCTE((), parse_error="no SQL found in the completion", truncated=found.truncated)
    error = _sqlglot_error(sql)
    spans, truncated, mismatch = _chain_spans(sql)
    fallback = mismatch is not None or (error is not None and all(name is None for name, _, _ in spans))
    if fallback:
        spans = _blank_line_spans(sql)
    steps = []
    for name, start, end in spans:
        start, end = _trim(sql, start, end)
        if start < end:
            steps.append(Step(name, sql[start:end], found.start + start, found.start + end))
    return CoCTE(
        tuple(steps),
        parse_error=error or mismatch,
        truncated=found.truncated or truncated,
        fallback=fallback and len(steps) > 1,
    )


# -- step views and their execution ------------------------------------------------------------


def step_view_sql(cocte: CoCTE, index: int, limit: int | None = None) -> str:
    """The query that shows what step ``index`` computed.

    A CTE step's view is ``WITH c1..ck SELECT * FROM ck`` (with ``LIMIT limit`` if given). Any
    other step's view is the text up to and including it: for the final step that is the whole
    query, whose result is the answer (``limit`` does not apply).

    >>> cocte = parse_cocte("WITH a AS (SELECT 1 AS x), b AS (SELECT x FROM a) SELECT * FROM b")
    >>> print(step_view_sql(cocte, 0, limit=101))
    WITH a AS (SELECT 1 AS x)
    SELECT * FROM a LIMIT 101
    >>> step_view_sql(cocte, -1) == cocte.sql
    True
    """
    index = range(len(cocte.steps))[index]
    prefix = STEP_SEPARATOR.join(step.text for step in cocte.steps[: index + 1])
    name = cocte.steps[index].name
    if name is None:
        return prefix
    bound = f" LIMIT {int(limit)}" if limit is not None else ""
    return f"{prefix.removesuffix(',')}\nSELECT * FROM {name}{bound}"


@dataclass(frozen=True)
class StepResult:
    """A step, its view query, the view's result and that result as the PRM sees it."""

    step: Step
    sql: str
    result: ExecutionResult
    text: str


def prm_completions(step_results: Iterable[StepResult]) -> list[str]:
    r"""What a PRM reads for each step: the step's SQL, then its view's result as an SQL comment.

    These are the ``completions`` of TRL's stepwise-supervision format, for labelling, PRM
    training and PRM scoring alike.

    >>> from trl_processsql.sql.sandbox import ExecutionResult
    >>> view = StepResult(Step(None, "SELECT 1", 0, 8), "SELECT 1", ExecutionResult("ok", ((1,),), ("1",)), "1 row (1): 1")
    >>> prm_completions([view])
    ['SELECT 1\n-- 1 row (1): 1']
    """
    return [f"{r.step.text}\n-- {r.text}" for r in step_results]


def _run_queries(runner, queries: list[tuple[str | os.PathLike, str]]) -> list[ExecutionResult]:
    """Run ``(db_path, sql)`` pairs on an :class:`SQLExecutor` (one batch) or an :class:`SQLiteSandbox`."""
    if hasattr(runner, "execute_many"):
        return runner.execute_many(queries)
    return [runner.execute(db_path, sql) for db_path, sql in queries]


def execute_steps_many(
    items: Iterable[tuple[CoCTE, str | os.PathLike]], runner, *, view_rows: int | None = VIEW_ROWS
) -> list[list[StepResult]]:
    """Execute the view of every step of many ``(cocte, db_path)`` pairs in one batch.

    CTE views fetch at most ``view_rows + 1`` rows, so that their text can say "more than
    ``view_rows`` rows" (``None``: all rows, for a PRM format that counts them); the final step
    runs in full. ``runner`` is an
    :class:`~trl_processsql.sql.SQLExecutor` or an :class:`~trl_processsql.sql.SQLiteSandbox`.
    """
    items = list(items)
    queries = [
        (db_path, step_view_sql(cocte, k, view_rows + 1 if step.name and view_rows is not None else None))
        for cocte, db_path in items
        for k, step in enumerate(cocte.steps)
    ]
    results = iter(zip(queries, _run_queries(runner, queries)))
    trajectories = []
    for cocte, _ in items:
        views = []
        for step in cocte.steps:
            (_, sql), result = next(results)
            text = describe_result(result, row_limit=view_rows if step.name else None)
            views.append(StepResult(step, sql, result, text))
        trajectories.append(views)
    return trajectories


def execute_steps(cocte: CoCTE, db_path: str | os.PathLike, runner, *, view_rows: int = VIEW_ROWS) -> list[StepResult]:
    """Execute and describe the view of every step of one trajectory.

    >>> import sqlite3, tempfile, os
    >>> from trl_processsql.sql import SQLiteSandbox
    >>> path = os.path.join(tempfile.mkdtemp(), "toy.sqlite")
    >>> with sqlite3.connect(path) as c:
    ...     _ = c.execute("CREATE TABLE t (x INTEGER)")
    ...     _ = c.execute("INSERT INTO t VALUES (1), (2), (3)")
    >>> cocte = parse_cocte("WITH big AS (SELECT x FROM t WHERE x > 1)\\n\\nSELECT count(*) FROM big")
    >>> [view.text for view in execute_steps(cocte, path, SQLiteSandbox())]
    ['2 rows (x): 2; 3', '1 row (count(*)): 2']
    """
    return execute_steps_many([(cocte, db_path)], runner, view_rows=view_rows)[0]
