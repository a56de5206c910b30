"""Query results as text for people: aligned tables for the terminal."""

from __future__ import annotations

from typing import Any, Sequence

__all__ = ["format_table", "format_value"]


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
