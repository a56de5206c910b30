"""Spider- and BIRD-format question files, database paths, and the bundled sample data.

Both benchmarks ship a JSON list of questions; they differ in field names. :func:`load_questions`
reads either into one shape, so nothing downstream needs to know which benchmark it runs on:

=============  ===============  ===================
field          Spider           BIRD
=============  ===============  ===================
``db_id``      ``db_id``        ``db_id``
``question``   ``question``     ``question``
``gold_sql``   ``query``        ``SQL``
``evidence``   (absent: "")     ``evidence``
``difficulty`` (absent: None)   ``difficulty``
=============  ===============  ===================

Databases live at ``<db_dir>/<db_id>/<db_id>.sqlite`` in both layouts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["SAMPLE_DATA_DIR", "QuestionFileError", "database_path", "load_questions", "load_training_dataset", "sample_paths"]

SAMPLE_DATA_DIR = Path(__file__).parent / "sample_data"


class QuestionFileError(ValueError):
    """A questions file that cannot be read, with the place that is wrong."""


def database_path(db_dir: str | os.PathLike, db_id: str) -> Path:
    """Where the SQLite file of ``db_id`` lies under ``db_dir`` (Spider and BIRD layout)."""
    return Path(db_dir) / db_id / f"{db_id}.sqlite"


def neighbour_databases(test_suite_dir: str | os.PathLike, db_id: str) -> list[Path]:
    """The neighbour databases of ``db_id`` in a Spider test suite: ``<dir>/<db_id>/*.sqlite`` in name order.

    The file named like the original (``<db_id>.sqlite``, the original itself in Spider's
    release) is left out: the original is read from the question's own database folder.
    """
    folder = Path(test_suite_dir) / db_id
    return sorted(p for p in folder.glob("*.sqlite") if p.name != f"{db_id}.sqlite")


def load_questions(path: str | os.PathLike) -> list[dict]:
    """Read a Spider or BIRD questions file into dicts with the keys of the table above.

    Each dict also keeps ``index`` (its position in the file).
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise QuestionFileError(f"questions file not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise QuestionFileError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, list):
        raise QuestionFileError(f"{path}: expected a JSON list of questions, got {type(raw).__name__}")
    questions = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise QuestionFileError(f"{path}: item {index} is not an object")
        gold = item.get("query", item.get("SQL"))
        missing = [name for name, value in (("db_id", item.get("db_id")), ("query or SQL", gold)) if not isinstance(value, str)]
        if missing:
            raise QuestionFileError(f"{path}: item {index} has no {' and no '.join(missing)}")
        questions.append(
            {
                "index": index,
                "db_id": item["db_id"],
                "question": item.get("question", ""),
                "gold_sql": gold,
                "evidence": item.get("evidence") or "",
                "difficulty": item.get("difficulty"),
            }
        )
    return questions


def sample_paths() -> tuple[Path, Path]:
    """``(questions_file, db_dir)`` of the sample bundled with the package (5 Spider databases)."""
    return SAMPLE_DATA_DIR / "questions.json", SAMPLE_DATA_DIR / "database"


def load_training_dataset(name_or_path: str, config: str | None = None, streaming: bool = False):
    """A ``DatasetDict`` from a folder written by ``save_to_disk`` (what our builders write) or from the Hub."""
    from datasets import Dataset, DatasetDict, load_dataset, load_from_disk

    if Path(name_or_path).is_dir() and any((Path(name_or_path) / f).exists() for f in ("dataset_dict.json", "state.json")):
        dataset = load_from_disk(name_or_path)
        return DatasetDict({"train": dataset}) if isinstance(dataset, Dataset) else dataset
    return load_dataset(name_or_path, name=config, streaming=streaming)
