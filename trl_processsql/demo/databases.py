"""The databases a demo visitor can query: the bundled Spider sample, or a SQLite file they upload.

An upload is untrusted: it is checked to be SQLite (the 16-byte header, then a read of
``sqlite_master`` through the sandbox) and copied into a folder the demo owns before any query
runs on it, so a later upload cannot change a file a query is reading. The copy is only ever
opened read-only by the sandbox.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

from ..data import database_path, sample_paths
from ..sql import not_sqlite_reason

__all__ = ["DemoError", "prepare_upload", "sample_database", "sample_databases"]


class DemoError(ValueError):
    """Input the demo cannot use (not a SQLite file, an empty question, no SQL): the message is shown in the page."""


def sample_databases() -> list[str]:
    """The ``db_id`` of every database bundled with the package, sorted."""
    db_dir = sample_paths()[1]
    return sorted(p.name for p in db_dir.iterdir() if database_path(db_dir, p.name).is_file())


def sample_database(db_id: str) -> Path:
    """The file of a bundled database (a :class:`DemoError` names the choices if there is none)."""
    choices = sample_databases()
    if db_id not in choices:
        raise DemoError(f"no sample database {db_id!r}: choose one of {', '.join(choices)}")
    return database_path(sample_paths()[1], db_id)


def prepare_upload(path: str | os.PathLike, workdir: str | os.PathLike, executor, name: str | None = None) -> Path:
    """Check that an uploaded file is a readable SQLite database and return the demo's own copy of it.

    The copy lies at ``workdir/<content hash>/<name>.sqlite`` (``name`` defaults to the upload's
    file name, whose stem becomes the database name in the schema prompt); the same content
    uploaded again reuses it. ``executor`` (an ``SQLExecutor`` or ``SQLiteSandbox``) reads it.

    >>> import tempfile
    >>> from trl_processsql.sql import SQLiteSandbox
    >>> text = Path(tempfile.mkdtemp()) / "notes.sqlite"
    >>> _ = text.write_text("not a database")
    >>> prepare_upload(text, tempfile.mkdtemp(), SQLiteSandbox())
    Traceback (most recent call last):
    ...
    trl_processsql.demo.databases.DemoError: notes.sqlite is not a SQLite database: its first bytes are not 'SQLite format 3'
    """
    path = Path(path)
    name = Path(name or path.name).name
    if not path.is_file():
        raise DemoError(f"the uploaded file {name} cannot be found: upload it again")
    reason = not_sqlite_reason(path)
    if reason:
        raise DemoError(f"{name} is not a SQLite database: {reason}")
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(2**20), b""):
            digest.update(block)
    stem = re.sub(r"[^\w-]+", "_", Path(name).stem).strip("_")[:64] or "uploaded"
    copy = Path(workdir) / digest.hexdigest()[:16] / f"{stem}.sqlite"
    if not copy.is_file():
        copy.parent.mkdir(parents=True, exist_ok=True)
        partial = copy.with_suffix(".partial")
        shutil.copyfile(path, partial)
        partial.replace(copy)  # a concurrent reader never sees half a file
    result = executor.execute(copy, "SELECT count(*) FROM sqlite_master WHERE type = 'table'")
    if not result.ok:
        raise DemoError(f"{name} cannot be read as a SQLite database: {result.message}")
    if result.rows[0][0] == 0:
        raise DemoError(f"{name} is a SQLite database with no tables: there is nothing to query")
    return copy
