"""Query results as text for people: aligned tables for the terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    from .sandbox import ExecutionResult

__all__ = ["describe_result", "format_table", "format_value"]


def format_value(value: Any, max_width: int = 40) -> str:
    """One cell: NULL for None, blobs by size, long text cut with an ellipsis.

    >>> format_value(None), format_value(b"abc"), format_value(2.5), format_value("x" * 50, max_width=8)
    ('NULL', '<blob 3 bytes>', '2.5', 'xxxxxxx…')
    """
    if value is None:
        text = "NULL"
    elif isinstance(value, bytes):
        text = f"<blob {len(value)} bytes>"
    else:
        text = str(value).replace("\n", " ")
    return text if len(text) <= max_width else text[: max_width - 1] + "…"


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], max_rows: int = 20) -> str:
    """An aligned text table of the first ``max_rows`` rows, saying how many were left out.

    >>> print(format_table(["id", "name"], [(1, "Joe"), (2, None)]))
    id | name
    ---+-----
    1  | Joe
    2  | NULL
    """
    shown = [[format_value(v) for v in row] for row in rows[:max_rows]]
    header = [format_value(c) for c in columns]
    widths = [max([len(header[i])] + [len(r[i]) for r in shown]) for i in range(len(header))]
    lines = [" | ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in shown]
    if len(rows) > max_rows:
        lines.append(f"… {len(rows) - max_rows} more rows")
    return "\n".join(lines)


def _describe_cell(value: Any, max_width: int) -> str:
    # Strings are quoted so that '1' and 1 read differently: execution accuracy tells them apart.
    if isinstance(value, str):
        return "'" + format_value(value, max_width) + "'"
    return format_value(value, max_width)


def describe_result(
    result: ExecutionResult,
    max_rows: int = 3,
    max_width: int = 40,
    max_columns: int = 8,
    row_limit: int | None = None,
) -> str:
    """One short line saying what a query returned: the one rendering of step results.

    Labelling, PRM training, PRM scoring, GRPO and the demo all call this, so the PRM reads at
    inference exactly what it read in training. It gives the row count, the column names and the
    first ``max_rows`` rows (strings quoted, cells cut at ``max_width`` characters, at most
    ``max_columns`` columns), or the status and the error message. ``row_limit`` is the bound a
    view ran with (``LIMIT row_limit + 1``): more rows than that reads "more than N rows".

    >>> from trl_processsql.sql.sandbox import ExecutionResult
    >>> describe_result(ExecutionResult("ok", ((1, "Joe"), (2, None), (3, "Bo"), (4, "Cy")), ("id", "name")))
    "4 rows (id, name): 1, 'Joe'; 2, NULL; 3, 'Bo'; …"
    >>> describe_result(ExecutionResult("ok", (), ("name",)))
    '0 rows (name)'
    >>> describe_result(ExecutionResult("ok", tuple((i,) for i in range(101)), ("x",)), row_limit=100)
    'more than 100 rows (x): 0; 1; 2; …'
    >>> describe_result(ExecutionResult("error", message="no such column: agee"))
    'error: no such column: agee'
    """
    if not result.ok:
        message = " ".join(result.message.split()) or "no message"
        return f"{result.status}: {format_value(message, 300)}"
    count = len(result.rows)
    if row_limit is not None and count > row_limit:
        size = f"more than {row_limit} rows"
    else:
        size = f"{count} row{'' if count == 1 else 's'}"
    more_columns = ["…"] if len(result.columns) > max_columns else []
    header = ", ".join([format_value(c, max_width) for c in result.columns[:max_columns]] + more_columns)
    if not count:
        return f"{size} ({header})"
    rows = [
        ", ".join([_describe_cell(v, max_width) for v in row[:max_columns]] + more_columns)
        for row in result.rows[:max_rows]
    ]
    more_rows = ["…"] if count > max_rows else []
    return f"{size} ({header}): " + "; ".join(rows + more_rows)
