"""Named input formats: how the policy reads its prompt and how the PRM reads a chain of steps.

==============  ==========================================  ==============================================
format          policy input                                PRM input and score
==============  ==========================================  ==============================================
``processsql``  ``build_prompt``'s text as one user         a token classifier; each step, then its view
(default)       message, through the model's chat           as :mod:`trl_processsql.sql.render` writes it,
                template                                    as an SQL comment, steps ending in a blank
                                                            line; ``sigmoid`` at each step's last token
``rewardsql``   the paper's own prompt, not                 a causal LM; the same prompt, then each step
                ``build_prompt``'s: M-Schema under 【】     with its whitespace collapsed, as
                headings, the question with the evidence    ``step<result>rows</result> и `` (the rows as
                after it; plain text, no chat template,     ``str(dict(Counter(rows)))``, 500 characters
                the answer right after its last space       at most); P(good) is the softmax of the
                                                            ``" + -"`` logits at each tag ``" и"``
==============  ==========================================  ==============================================

``rewardsql`` writes what the paper's released checkpoints (the ``Facdbe/RewardSQL-7B`` policy and
its PRM) were evaluated on, as the release's evaluation code and test set write it; ``processsql``
is what this package trains.

The ``rewardsql`` prompt's schema follows the release's reader (M-Schema over SQLAlchemy) rule by
rule: a column's type is the name SQLAlchemy gives SQLite's declared type (``int`` reads
``INTEGER``, ``varchar(20)`` ``VARCHAR``, ``bool`` ``BOOLEAN``, none ``NULL``); its examples are
the first 5 rows of ``SELECT DISTINCT column FROM table`` less NULL and empty text, read as
SQLAlchemy reads the type (NUMERIC as floats, dates parsed, BOOLEAN as ``True``/``False``; a value
that does not convert leaves the column without examples); a column holding an e-mail address or
a URL shows none, the others up to 3, only the first for a date or time column or where one is
longer than 20 characters, none where one is longer than 50; each foreign key is listed once, in
the order SQLAlchemy reflects them. Tables come in the database's own order: the release listed
them in the iteration order of a Python set, which no reader can reproduce.

A ``rewardsql`` step's result is its view's rows (:func:`~trl_processsql.cocte.step_view_sql`:
the final query, or ``SELECT * FROM`` the step's CTE on the chain so far), or, where the view
fails, ``Total SQL result:0, Execution error: {message}``; the last step ends in ``;`` where the
chain holds none, as the release appends one. The release runs each view in full
(:attr:`FormatProfile.view_rows`).
"""

from __future__ import annotations

import datetime
import functools
import re
import sqlite3
from collections import Counter
from contextlib import closing
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Iterable

from .cocte import VIEW_ROWS, StepResult, prm_completions
from .prompts import build_prompt, completion_prompt
from .sql.sandbox import ExecutionResult
from .sql.schema import SchemaError, Table, quote_identifier, read_schema

__all__ = ["FORMATS", "FormatProfile", "get_format"]


@dataclass(frozen=True)
class FormatProfile:
    """One way of writing the policy's and the PRM's inputs.

    Parameters:
        name (`str`): the name ``--format`` takes.
        chat_template (`bool`): the policy reads its prompt through the tokenizer's chat template;
            otherwise as plain text (:meth:`policy_prompt`).
        step_tag (`str` or `None`): for a causal-LM PRM, the text after each step where its verdict
            is read; `None` for a token-classification PRM.
        positive_token, negative_token (`str`): the verdicts of a step-tag PRM, each read after a space
            (:meth:`verdict_ids`).
        view_rows (`int` or `None`): rows a CTE step's view fetches for this format's PRM; `None` reads
            them all.
    """

    name: str
    chat_template: bool
    step_tag: str | None = None
    positive_token: str = "+"
    negative_token: str = "-"
    view_rows: int | None = VIEW_ROWS

    def question_prompt(self, question: str, db_path, evidence: str = "", **options) -> str:
        """The prompt for ``question`` on the database at ``db_path``: :func:`~trl_processsql.prompts.build_prompt`
        with ``options`` (its ``style``, ...)."""
        return build_prompt(question, db_path, evidence, **options)

    def policy_prompt(self, prompt: str) -> str:
        """The text a plain-text policy continues (only for formats without chat template)."""
        return completion_prompt(prompt)

    def prm_steps(self, views: Iterable[StepResult]) -> list[str]:
        """Each step with its executed view, as this format's PRM reads it.

        >>> from trl_processsql.cocte import Step
        >>> view = StepResult(Step(None, "SELECT 1", 0, 8), "SELECT 1", ExecutionResult("ok", ((1,),), ("1",)), "1 row (1): 1")
        >>> FORMATS["processsql"].prm_steps([view]), FORMATS["rewardsql"].prm_steps([view])
        (['SELECT 1\\n-- 1 row (1): 1'], ['SELECT 1;<result>{(1,): 1}</result>'])
        """
        return prm_completions(views)

    def verdict_ids(self, tokenizer) -> list[int]:
        """The positive and negative verdict ids of a step-tag PRM, as the released PRM's code computes them:
        ``tokenizer.encode(" + -")``."""
        ids = tokenizer.encode(f" {self.positive_token} {self.negative_token}")
        if len(ids) != 2:
            raise ValueError(
                f"this tokenizer encodes {f' {self.positive_token} {self.negative_token}'!r} as {len(ids)} ids, not the two "
                "verdicts a step-tag PRM is read at"
            )
        return ids

    def tag_id(self, tokenizer) -> int:
        """The token a step-tag PRM's verdict is read at, as the released PRM's code computes it: the last id of
        ``tokenizer.encode(" " + step_tag)``."""
        return tokenizer.encode(f" {self.step_tag}")[-1]


@dataclass(frozen=True)
class RewardSQLFormat(FormatProfile):
    """The inputs of the paper's released checkpoints (the module docstring gives the rules)."""

    name: str = "rewardsql"
    chat_template: bool = False
    step_tag: str | None = " и"
    view_rows: int | None = None

    def question_prompt(self, question: str, db_path, evidence: str = "", **options) -> str:
        """The released policy's prompt: the question line holds the evidence too, both stripped as one line, the
        evidence line the evidence as given (``options``, :func:`~trl_processsql.prompts.build_prompt`'s styles, do
        not apply: the policy was trained on this one prompt)."""
        return _PROMPT.format(schema=_mschema(db_path), question=f"{question} {evidence}".strip(), evidence=evidence)

    def policy_prompt(self, prompt: str) -> str:
        """The prompt as it is: it ends in the space the answer follows."""
        return prompt

    def prm_steps(self, views: Iterable[StepResult]) -> list[str]:
        """``step<result>rows</result>`` for each step, its whitespace collapsed to single spaces."""
        views = list(views)
        ended = any(";" in view.step.text for view in views)
        steps = []
        for k, view in enumerate(views):
            text = view.step.text + (";" if k == len(views) - 1 and not ended else "")
            steps.append(f"{' '.join(text.split())}<result>{_result_text(view.result)}</result>")
        return steps


_PROMPT = (
    "You are now a sqlite data analyst, and you are given a database schema as follows:\n\n"
    "    【Schema】\n    {schema}\n\n"
    "    【Question】\n    {question}\n\n"
    "    【Evidence】\n    {evidence}\n\n"
    "    Please read and understand the database schema carefully, and generate an executable SQL based on the "
    "user's question and evidence. "
)

_RESULT_CHARS = 500


def _result_text(result: ExecutionResult) -> str:
    """A view's rows as a ``Counter`` of row tuples, cut at 500 characters, or the failure.

    >>> _result_text(ExecutionResult("ok", ((1, "a"), (2, None), (1, "a")), ("x", "y")))
    "{(1, 'a'): 2, (2, None): 1}"
    >>> _result_text(ExecutionResult("error", message="no such column: agee"))
    'Total SQL result:0, Execution error: no such column: agee'
    """
    if not result.ok:
        return f"Total SQL result:0, Execution error: {result.message}"
    text = str(dict(Counter(result.rows)))
    return text[:_RESULT_CHARS] + "...}" if len(text) > _RESULT_CHARS else text


# SQLAlchemy's names of SQLite's declared types; other declarations go by SQLite's affinity rules.
_NAMED_TYPES = {
    **{name: name for name in "BIGINT BLOB BOOLEAN CHAR DATE DATETIME DECIMAL DOUBLE FLOAT INTEGER JSON NCHAR "
       "NUMERIC NVARCHAR REAL SMALLINT TEXT TIME TIMESTAMP VARCHAR".split()},
    "BOOL": "BOOLEAN", "DATE_CHAR": "DATE", "DATETIME_CHAR": "DATETIME", "INT": "INTEGER", "TIME_CHAR": "TIME",
}
_TIME_TYPES = ("DATE", "TIME", "DATETIME", "TIMESTAMP")
_EMAIL = re.compile(r"[\w.-]+@[\w.-]+\.\w+$")


def _column_type(declared: str) -> tuple[str, int]:
    """The type name the release shows for a declared type, and the decimals a NUMERIC value keeps.

    >>> [_column_type(t)[0] for t in ("int", "varchar(20)", "bool", "", "number", "double precision", "unsigned big int")]
    ['INTEGER', 'VARCHAR', 'BOOLEAN', 'NULL', 'NUMERIC', 'REAL', 'INTEGER']
    >>> _column_type("decimal(10,2)")
    ('DECIMAL', 2)
    """
    match = re.match(r"([\w ]+)(\(.*?\))?", declared.upper())
    word, args = (match.group(1), match.group(2) or "") if match else ("", "")
    if word in _NAMED_TYPES:
        name = _NAMED_TYPES[word]
    elif "INT" in word:
        name = "INTEGER"
    elif "CHAR" in word or "CLOB" in word or "TEXT" in word:
        name = "TEXT"
    elif "BLOB" in word or not word:
        name = "NULL"
    elif "REAL" in word or "FLOA" in word or "DOUB" in word:
        name = "REAL"
    else:
        name = "NUMERIC"
    numbers = re.findall(r"\d+", args)
    return name, int(numbers[1]) if name in ("NUMERIC", "DECIMAL") and len(numbers) > 1 else 10


def _reader(name: str, scale: int):
    """How SQLAlchemy 2 turns a stored value of this type into the Python value the release printed (None: as stored)."""
    readers = {
        "BOOLEAN": bool,
        "NUMERIC": lambda value: Decimal(f"%.{scale}f" % value),
        "DECIMAL": lambda value: Decimal(f"%.{scale}f" % value),
        "DATE": datetime.date.fromisoformat,
        "DATETIME": datetime.datetime.fromisoformat,
        "TIMESTAMP": datetime.datetime.fromisoformat,
        "TIME": datetime.time.fromisoformat,
    }
    return readers.get(name)


def _examples(conn: sqlite3.Connection, table: str, column: str, type_name: str, scale: int) -> list[str]:
    """The example values the release's schema shows for one column."""
    read = _reader(type_name, scale)
    try:
        rows = conn.execute(f"SELECT DISTINCT {quote_identifier(column)} FROM {quote_identifier(table)} LIMIT 5").fetchall()
        values = [read(value) if read and value is not None else value for (value,) in rows]
    except (sqlite3.Error, TypeError, ValueError, ArithmeticError):  # the release's reader failed there too and showed none
        return []
    texts = []
    for value in (v for v in values if v is not None and v != ""):
        if isinstance(value, datetime.date):  # a date or a datetime: that one alone
            texts = [str(value)]
            break
        text = str(float(value)) if isinstance(value, Decimal) else str(value)
        if _EMAIL.match(text) or "http://" in text or "https://" in text:
            return []
        texts.append(text)
    texts = [text for text in texts if text][:3]
    longest = max(map(len, texts), default=0)
    if type_name in _TIME_TYPES:
        return texts[:1]
    if longest > 50:
        return []
    return texts[:1] if longest > 20 else texts


# The keys SQLAlchemy finds in a table's DDL, where the parent's name is double-quoted or bare, and their columns.
_DECLARED_KEY = re.compile(
    r'FOREIGN KEY *\( *(.+?) *\) +REFERENCES +(?:"(.+?)"|([a-z0-9_]+)) *\( *((?:(?:"[^"]+"|[a-z0-9_]+) *(?:, *)?)+)\)', re.I
)
_KEY_COLUMN = re.compile(r'"(.+?)"|([a-z0-9_]+)', re.I)


def _foreign_keys(conn: sqlite3.Connection, table: Table, primary_keys: dict[str, tuple[str, ...]]) -> list[str]:
    """A table's ``table.col=parent.col`` lines as the release lists them: each key once, those SQLAlchemy finds in
    the DDL in its order, then the others in SQLite's (a key naming no parent column refers to the parent's primary key)."""
    keys: dict[int, tuple[list, str, list]] = {}
    for key_id, parent, column, ref in conn.execute(
        'SELECT id, "table", "from", "to" FROM pragma_foreign_key_list(?) ORDER BY id, seq', (table.name,)
    ):
        columns, _, refs = keys.setdefault(key_id, ([], parent, [] if ref else list(primary_keys.get(parent.lower(), ()))))
        columns.append(column)
        if ref:
            refs.append(ref)
    by_signature = {(*columns, parent, *refs): (columns, parent, refs) for columns, parent, refs in keys.values()}
    ordered = []
    for match in _DECLARED_KEY.finditer(table.sql):
        columns, refs = ([a or b for a, b in _KEY_COLUMN.findall(match.group(i))] for i in (1, 4))
        found = by_signature.pop((*columns, match.group(2) or match.group(3), *refs), None)
        if found:
            ordered.append(found)
    ordered += by_signature.values()
    return [f"{table.name}.{c}={parent}.{r}" for columns, parent, refs in ordered for c, r in zip(columns, refs)]


def _mschema(db_path) -> str:
    """The database's schema as the release's prompt holds it, read once per file version."""
    path = Path(db_path).resolve()
    read_schema(path, n_examples=0)  # a missing or non-SQLite file raises SchemaError here
    stat = path.stat()
    return _mschema_cached(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _mschema_cached(path: str, mtime_ns: int, size: int) -> str:
    schema = read_schema(path, n_examples=0)
    lines, keys = [f"【DB_ID】 {schema.db_id}", "【Schema】"], []
    primary_keys = {table.name.lower(): table.primary_key for table in schema.tables}
    try:
        with closing(sqlite3.connect(Path(path).as_uri() + "?mode=ro", uri=True)) as conn:
            for table in schema.tables:
                keys += _foreign_keys(conn, table, primary_keys)
                columns = []
                for column in table.columns:
                    type_name, scale = _column_type(column.type)
                    parts = [f"{column.name}:{type_name}"] + (["Primary Key"] if column.name in table.primary_key else [])
                    examples = _examples(conn, table.name, column.name, type_name, scale)
                    if examples:
                        parts.append(f"Examples: [{', '.join(examples)}]")
                    columns.append(f"({', '.join(parts)})")
                lines += [f"# Table: {table.name}", "[", ",\n".join(columns), "]"]
    except sqlite3.Error as exc:
        raise SchemaError(f"cannot read database {path}: {exc}") from None
    if keys:
        lines += ["【Foreign keys】", *keys]
    return "\n".join(lines)


FORMATS: dict[str, FormatProfile] = {
    "processsql": FormatProfile("processsql", chat_template=True),
    "rewardsql": RewardSQLFormat(),
}
"""The formats by name; ``processsql`` is the default everywhere."""


def get_format(name: str | FormatProfile) -> FormatProfile:
    """The profile named ``name`` (a profile is returned as it is)."""
    if isinstance(name, FormatProfile):
        return name
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r}: choose one of {', '.join(FORMATS)}") from None
