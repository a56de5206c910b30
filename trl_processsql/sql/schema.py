"""A SQLite database's schema as prompt text for a text-to-SQL model.

:func:`read_schema` reads tables, columns, keys and a few example values into a small frozen
:class:`DatabaseSchema`; two renderings turn it into text:

- :func:`format_mschema`, a compact listing after XiYan-SQL's M-Schema: one line per column with
  its type, key flags and example values, then the foreign keys as join conditions;
- :func:`format_create`, the ``CREATE TABLE`` statements as SQLite stores them, each optionally
  followed by its first rows as SQL comments, so the whole text still runs as SQL.

:func:`render_schema` does both steps and caches the text by file (path, modification time, size)
and options: building prompts for thousands of questions on one database reads it once.

Database files are opened read-only and never changed. Identifiers are quoted in every query run
here; renderings quote a name wherever SQL would need it (spaces, quotes, keywords like ``order``).
"""

from __future__ import annotations

import functools
import os
import re
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from .render import format_value
from .sandbox import not_sqlite_reason

__all__ = [
    "SCHEMA_STYLES",
    "Column",
    "DatabaseSchema",
    "ForeignKey",
    "SchemaError",
    "Table",
    "format_create",
    "format_lines",
    "format_mschema",
    "quote_identifier",
    "read_schema",
    "render_schema",
]

SCHEMA_STYLES = ("mschema", "create", "lines")

# Example values come from this many first rows of a table, so a huge table costs no more than a
# small one.
_SAMPLE_ROWS = 1000

# SQLite's keywords (https://sqlite.org/lang_keywords.html): a column named like one of them is
# shown quoted, as a query has to write it.
_KEYWORDS = frozenset(
    """
    ABORT ACTION ADD AFTER ALL ALTER ALWAYS ANALYZE AND AS ASC ATTACH AUTOINCREMENT BEFORE BEGIN
    BETWEEN BY CASCADE CASE CAST CHECK COLLATE COLUMN COMMIT CONFLICT CONSTRAINT CREATE CROSS
    CURRENT CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP DATABASE DEFAULT DEFERRABLE DEFERRED
    DELETE DESC DETACH DISTINCT DO DROP EACH ELSE END ESCAPE EXCEPT EXCLUDE EXCLUSIVE EXISTS
    EXPLAIN FAIL FILTER FIRST FOLLOWING FOR FOREIGN FROM FULL GENERATED GLOB GROUP GROUPS HAVING
    IF IGNORE IMMEDIATE IN INDEX INDEXED INITIALLY INNER INSERT INSTEAD INTERSECT INTO IS ISNULL
    JOIN KEY LAST LEFT LIKE LIMIT MATCH MATERIALIZED NATURAL NO NOT NOTHING NOTNULL NULL NULLS OF
    OFFSET ON OR ORDER OTHERS OUTER OVER PARTITION PLAN PRAGMA PRECEDING PRIMARY QUERY RAISE RANGE
    RECURSIVE REFERENCES REGEXP REINDEX RELEASE RENAME REPLACE RESTRICT RETURNING RIGHT ROLLBACK
    ROW ROWS SAVEPOINT SELECT SET TABLE TEMP TEMPORARY THEN TIES TO TRANSACTION TRIGGER UNBOUNDED
    UNION UNIQUE UPDATE USING VACUUM VALUES VIEW VIRTUAL WHEN WHERE WINDOW WITH WITHOUT
    """.split()
)
_BARE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Pieces of stored SQL whose inside must not change (literals, quoted names, comments), and the
# whitespace between them, which may.
_SQL_PIECE = re.compile(
    r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\]|--[^\n]*|/\*.*?(?:\*/|\Z)|\s+""", re.DOTALL
)


class SchemaError(ValueError):
    """The database cannot be read (missing, not SQLite, unreadable) or a table name is unknown."""


@dataclass(frozen=True)
class Column:
    """One column: ``type`` as declared (may be empty); ``examples`` are shortened for display."""

    name: str
    type: str
    not_null: bool = False
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class ForeignKey:
    """``table.column`` refers to ``ref_table.ref_column`` (one pair per column of a composite key)."""

    table: str
    column: str
    ref_table: str
    ref_column: str


@dataclass(frozen=True)
class Table:
    """One table; ``primary_key`` lists its key columns in key order, ``sql`` is the stored CREATE text."""

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    sql: str = ""
    example_rows: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class DatabaseSchema:
    """The tables of one database, in the order they were created, and its foreign keys."""

    db_id: str
    tables: tuple[Table, ...]
    foreign_keys: tuple[ForeignKey, ...] = ()

    def select(self, names: Iterable[str]) -> DatabaseSchema:
        """The named tables only (matched ignoring case, as SQLite does), with the keys between them.

        >>> schema = DatabaseSchema("db", (Table("a", ()), Table("b", ())), (ForeignKey("b", "x", "a", "y"),))
        >>> [t.name for t in schema.select(["B"]).tables], schema.select(["B"]).foreign_keys
        (['b'], ())
        """
        wanted = {name.lower() for name in names}
        unknown = wanted - {table.name.lower() for table in self.tables}
        if unknown:
            raise SchemaError(f"no table {', '.join(sorted(unknown))} in database {self.db_id}")
        tables = tuple(t for t in self.tables if t.name.lower() in wanted)
        keys = tuple(k for k in self.foreign_keys if {k.table.lower(), k.ref_table.lower()} <= wanted)
        return DatabaseSchema(self.db_id, tables, keys)


def quote_identifier(name: str) -> str:
    """``name`` as a SQL identifier: quoted where a bare name would not parse, as-is otherwise.

    >>> quote_identifier("Singer_ID"), quote_identifier("Home Town"), quote_identifier("order"), quote_identifier('a"b')
    ('Singer_ID', '"Home Town"', '"order"', '"a""b"')
    """
    if _BARE_NAME.fullmatch(name) and name.upper() not in _KEYWORDS:
        return name
    return _quote(name)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _display(value) -> str:
    """A value on one short line: whitespace runs collapsed, long text cut, blobs by size."""
    if isinstance(value, str):
        value = " ".join(value.split())
    return format_value(value)


def _decode_text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def read_schema(db_path: str | os.PathLike, n_examples: int = 3) -> DatabaseSchema:
    """Read the schema of a SQLite file, with up to ``n_examples`` example values per column.

    Example values are distinct, neither NULL nor empty text, taken in table order from the first
    rows of the table; ``n_examples`` is also the number of example rows kept per table, and 0
    reads no data at all. Results are cached while the file keeps its modification time and size.

    >>> import sqlite3, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "shop.sqlite")
    >>> with sqlite3.connect(path) as c:
    ...     _ = c.executescript("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
    ...                         "INSERT INTO item VALUES (1, 'pen'), (2, 'ink'), (3, 'pen')")
    >>> schema = read_schema(path, n_examples=2)
    >>> schema.db_id, schema.tables[0].primary_key, schema.tables[0].columns[1]
    ('shop', ('id',), Column(name='name', type='TEXT', not_null=True, examples=('pen', 'ink')))
    >>> read_schema(os.path.join(tempfile.mkdtemp(), "missing.sqlite"))
    Traceback (most recent call last):
    ...
    trl_processsql.sql.schema.SchemaError: database not found: .../missing.sqlite
    """
    return _read_cached(*_file_key(db_path), n_examples)


def _file_key(db_path: str | os.PathLike) -> tuple[str, int, int]:
    """(resolved path, mtime in ns, size): a changed file gets a new cache entry."""
    path = Path(db_path).resolve()
    try:
        stat = path.stat()
    except OSError:
        raise SchemaError(f"database not found: {path}") from None
    if not path.is_file():
        raise SchemaError(f"database not found: {path} is not a file")
    reason = not_sqlite_reason(path)
    if reason:
        raise SchemaError(f"{path} is not a SQLite database: {reason}")
    return str(path), stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=256)
def _read_cached(path: str, mtime_ns: int, size: int, n_examples: int) -> DatabaseSchema:
    try:
        with closing(sqlite3.connect(Path(path).as_uri() + "?mode=ro", uri=True)) as conn:
            conn.text_factory = _decode_text
            return _read(conn, Path(path).stem, n_examples)
    except sqlite3.Error as exc:
        raise SchemaError(f"cannot read database {path}: {exc}") from None


def _read(conn: sqlite3.Connection, db_id: str, n_examples: int) -> DatabaseSchema:
    names_and_sql = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
        "ORDER BY rowid"
    ).fetchall()
    tables = tuple(_read_table(conn, name, sql or "", n_examples) for name, sql in names_and_sql)
    keys_by_table = {table.name.lower(): table.primary_key for table in tables}
    foreign_keys = []
    for table in tables:
        # SQLite numbers a table's foreign keys from the last declared: descending id is file order.
        for ref_table, column, ref_column, seq in conn.execute(
            'SELECT "table", "from", "to", seq FROM pragma_foreign_key_list(?) ORDER BY id DESC, seq', (table.name,)
        ):
            if ref_column is None:  # REFERENCES parent: the parent's primary key, column by column
                parent_key = keys_by_table.get(ref_table.lower(), ())
                if seq >= len(parent_key):
                    continue  # a reference SQLite itself cannot resolve
                ref_column = parent_key[seq]
            foreign_keys.append(ForeignKey(table.name, column, ref_table, ref_column))
    return DatabaseSchema(db_id, tables, tuple(foreign_keys))


def _read_table(conn: sqlite3.Connection, name: str, sql: str, n_examples: int) -> Table:
    info = conn.execute('SELECT name, type, "notnull", pk FROM pragma_table_info(?) ORDER BY cid', (name,)).fetchall()
    columns = tuple(
        Column(col, col_type or "", bool(not_null), _examples(conn, name, col, n_examples) if n_examples else ())
        for col, col_type, not_null, _ in info
    )
    primary_key = tuple(col for col, _, _, pk in sorted(info, key=lambda row: row[3]) if pk)
    rows = conn.execute(f"SELECT * FROM {_quote(name)} LIMIT ?", (n_examples,)).fetchall() if n_examples else []
    return Table(name, columns, primary_key, sql, tuple(tuple(_display(v) for v in row) for row in rows))


def _examples(conn: sqlite3.Connection, table: str, column: str, n: int) -> tuple[str, ...]:
    col = _quote(column)
    rows = conn.execute(
        f"SELECT DISTINCT {col} FROM (SELECT {col} FROM {_quote(table)} LIMIT {_SAMPLE_ROWS}) "
        f"WHERE {col} IS NOT NULL AND {col} <> '' LIMIT ?",
        (n,),
    )
    return tuple(_display(value) for (value,) in rows)


def format_mschema(schema: DatabaseSchema) -> str:
    """A compact M-Schema-like listing: a header, one block per table, then the foreign keys.

    >>> schema = DatabaseSchema("music", (
    ...     Table("singer", (Column("id", "int", True, ("1", "2")), Column("Home Town", "text", examples=("Oslo",))), ("id",)),
    ...     Table("concert", (Column("id", "int"), Column("singer_id", "int")), ("id",)),
    ... ), (ForeignKey("concert", "singer_id", "singer", "id"),))
    >>> print(format_mschema(schema))
    Database: music
    # Table: singer
    (id: INT, Primary Key, Not Null, Examples: [1, 2])
    ("Home Town": TEXT, Examples: [Oslo])
    # Table: concert
    (id: INT, Primary Key)
    (singer_id: INT)
    Foreign keys:
    concert.singer_id = singer.id
    """
    lines = [f"Database: {schema.db_id}"]
    for table in schema.tables:
        lines.append(f"# Table: {quote_identifier(table.name)}")
        for column in table.columns:
            parts = [quote_identifier(column.name) + (f": {column.type.upper()}" if column.type else "")]
            if column.name in table.primary_key:
                parts.append("Primary Key")
            if column.not_null:
                parts.append("Not Null")
            if column.examples:
                parts.append(f"Examples: [{', '.join(column.examples)}]")
            lines.append(f"({', '.join(parts)})")
    if schema.foreign_keys:
        lines.append("Foreign keys:")
        lines += [
            f"{quote_identifier(k.table)}.{quote_identifier(k.column)} = "
            f"{quote_identifier(k.ref_table)}.{quote_identifier(k.ref_column)}"
            for k in schema.foreign_keys
        ]
    return "\n".join(lines)


def format_lines(schema: DatabaseSchema) -> str:
    """One line per table with its column names, then the foreign keys on one line: the schema in
    about a fifth of M-Schema's tokens, for small models whose cost is the prompt's length.

    >>> schema = DatabaseSchema("music", (
    ...     Table("singer", (Column("id", "int"), Column("Home Town", "text"))),
    ...     Table("concert", (Column("id", "int"), Column("singer_id", "int"))),
    ... ), (ForeignKey("concert", "singer_id", "singer", "id"),))
    >>> print(format_lines(schema))
    Database: music
    singer(id, "Home Town")
    concert(id, singer_id)
    Foreign keys: concert.singer_id = singer.id
    """
    lines = [f"Database: {schema.db_id}"]
    lines += [f"{quote_identifier(t.name)}({', '.join(quote_identifier(c.name) for c in t.columns)})" for t in schema.tables]
    if schema.foreign_keys:
        keys = (f"{quote_identifier(k.table)}.{quote_identifier(k.column)} = {quote_identifier(k.ref_table)}.{quote_identifier(k.ref_column)}"
                for k in schema.foreign_keys)
        lines.append(f"Foreign keys: {', '.join(keys)}")
    return "\n".join(lines)


def format_create(schema: DatabaseSchema) -> str:
    """The stored ``CREATE TABLE`` statements, each followed by its example rows as ``--`` comments.

    Whitespace is tidied (indentation dropped, runs collapsed) outside literals, quoted names and
    comments, so the text still runs as SQL and rebuilds the same tables.

    >>> table = Table("t", (Column("a", "INT"), Column("b", "TEXT")), ("a",),
    ...               'CREATE TABLE t (\\n    a INT PRIMARY KEY,\\n    b   TEXT\\n)', (("1", "x y"), ("2", "NULL")))
    >>> print(format_create(DatabaseSchema("db", (table,))))
    CREATE TABLE t (
    a INT PRIMARY KEY,
    b TEXT
    );
    -- Example rows:
    -- a | b
    -- 1 | x y
    -- 2 | NULL
    """
    blocks = []
    for table in schema.tables:
        lines = [_tidy_sql(table.sql) + ";"]
        if table.example_rows:
            lines.append("-- Example rows:")
            lines.append("-- " + " | ".join(quote_identifier(column.name) for column in table.columns))
            lines += ["-- " + " | ".join(row) for row in table.example_rows]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _tidy_sql(sql: str) -> str:
    """Collapse whitespace between tokens: a run holding a line break becomes one, others one space."""

    def tidy(match: re.Match) -> str:
        piece = match.group()
        if not piece.isspace():
            return piece
        return "\n" if "\n" in piece else " "

    return _SQL_PIECE.sub(tidy, sql.strip())


def render_schema(
    db_path: str | os.PathLike,
    style: str = "mschema",
    *,
    tables: Sequence[str] | None = None,
    n_examples: int = 3,
) -> str:
    """The schema of a SQLite file as prompt text, cached by file and options.

    ``style`` is ``"mschema"`` (:func:`format_mschema`), ``"create"`` (:func:`format_create`) or
    ``"lines"`` (:func:`format_lines`, names only);
    ``tables`` restricts the text to those tables (kept in file order); ``n_examples=0`` leaves
    example values and rows out.

    >>> import sqlite3, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "music.sqlite")
    >>> with sqlite3.connect(path) as c:
    ...     _ = c.executescript('''
    ...         CREATE TABLE singer (id INTEGER PRIMARY KEY, name TEXT);
    ...         CREATE TABLE "order" (id INTEGER PRIMARY KEY, singer_id INTEGER REFERENCES singer(id));
    ...         INSERT INTO singer VALUES (1, 'Joe'), (2, 'Ann');
    ...         INSERT INTO "order" VALUES (1, 2);''')
    >>> print(render_schema(path))
    Database: music
    # Table: singer
    (id: INTEGER, Primary Key, Examples: [1, 2])
    (name: TEXT, Examples: [Joe, Ann])
    # Table: "order"
    (id: INTEGER, Primary Key, Examples: [1])
    (singer_id: INTEGER, Examples: [2])
    Foreign keys:
    "order".singer_id = singer.id
    >>> print(render_schema(path, "create", tables=["order"], n_examples=0))
    CREATE TABLE "order" (id INTEGER PRIMARY KEY, singer_id INTEGER REFERENCES singer(id));
    """
    if style not in SCHEMA_STYLES:
        raise ValueError(f"unknown schema style {style!r}: choose one of {', '.join(SCHEMA_STYLES)}")
    return _render_cached(*_file_key(db_path), style, None if tables is None else tuple(tables), n_examples)


@functools.lru_cache(maxsize=1024)
def _render_cached(
    path: str, mtime_ns: int, size: int, style: str, tables: tuple[str, ...] | None, n_examples: int
) -> str:
    schema = _read_cached(path, mtime_ns, size, n_examples)
    if tables is not None:
        schema = schema.select(tables)
    return {"mschema": format_mschema, "create": format_create, "lines": format_lines}[style](schema)
