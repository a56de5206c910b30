"""The one prompt every stage uses: schema, evidence, question, and the chain-of-CTEs instruction.

SFT data, GRPO prompts, PRM inputs, inference and the demo all build their prompt here, so the
policy and the PRM see the same text in training and at inference.

Three styles (:data:`PROMPT_STYLES`): ``"full"`` (the default, for large models) gives the
instruction, the database schema with example values and the question; ``"tables"`` gives one line
per table with its column names, the foreign keys and the question, for small pretrained models
fine-tuned on a CPU, where the prompt's length is the cost (about a fifth of ``"full"``'s tokens)
but the schema must be there to answer about databases never seen in training; ``"compact"``
gives only the database name and the question, for small models trained from scratch, which learn
each database's tables from the training answers. A checkpoint records the style it was trained
with (:func:`saved_prompt_style`).
"""

from __future__ import annotations

import os
from pathlib import Path

from .sql.schema import render_schema

__all__ = ["INSTRUCTION", "PROMPT_STYLES", "build_prompt", "completion_prompt", "prompt_messages", "saved_prompt_style"]

PROMPT_STYLES = ("full", "tables", "compact")

INSTRUCTION = (
    "Answer the question with one SQLite query written as a chain of common table expressions (CTEs). "
    "Each CTE is one step that builds on the earlier ones; separate steps with one blank line; the last step "
    "is the final SELECT. A simple question may be answered by the final SELECT alone."
)


def build_prompt(
    question: str,
    db_path: str | os.PathLike,
    evidence: str = "",
    *,
    style: str = "full",
    schema_style: str = "mschema",
    n_examples: int = 3,
) -> str:
    """The prompt text for ``question`` on the database at ``db_path`` (BIRD's ``evidence`` if any).

    >>> from trl_processsql.data import database_path, sample_paths
    >>> print(build_prompt("How many singers are there?", database_path(sample_paths()[1], "concert_singer"), style="compact"))
    Database: concert_singer
    Question: How many singers are there?
    >>> print(build_prompt("How many singers are there?", database_path(sample_paths()[1], "concert_singer"), style="tables"))
    Database: concert_singer
    stadium(Stadium_ID, Location, Name, Capacity, Highest, Lowest, Average)
    singer(Singer_ID, Name, Country, Song_Name, Song_release_year, Age, Is_male)
    concert(concert_ID, concert_Name, Theme, Stadium_ID, Year)
    singer_in_concert(concert_ID, Singer_ID)
    Foreign keys: concert.Stadium_ID = stadium.Stadium_ID, singer_in_concert.concert_ID = concert.concert_ID, singer_in_concert.Singer_ID = singer.Singer_ID
    Question: How many singers are there?
    """
    if style not in PROMPT_STYLES:
        raise ValueError(f"unknown prompt style {style!r}: choose one of {', '.join(PROMPT_STYLES)}")
    if style == "compact":
        parts = [f"Database: {Path(db_path).stem}"]
    elif style == "tables":
        parts = [render_schema(db_path, "lines", n_examples=0)]
    else:
        parts = [INSTRUCTION, "", render_schema(db_path, schema_style, n_examples=n_examples), ""]
    if evidence:
        parts.append(f"Evidence: {evidence}")
    parts.append(f"Question: {question}")
    return "\n".join(parts)


def prompt_messages(question: str, db_path: str | os.PathLike, evidence: str = "", **kwargs) -> list[dict]:
    """:func:`build_prompt` as a conversational prompt (one user message), TRL's conversational format."""
    return [{"role": "user", "content": build_prompt(question, db_path, evidence, **kwargs)}]


def completion_prompt(prompt: str) -> str:
    r"""A prompt as plain text for a model read without chat template (the ``rewardsql`` format): the answer starts on the next line.

    >>> completion_prompt("Question: How many singers?")
    'Question: How many singers?\n'
    """
    return prompt + "\n"


def saved_prompt_style(config) -> str:
    """The prompt style a checkpoint was trained with (its config's ``processsql_prompt_style``), else ``"full"``."""
    return getattr(config, "processsql_prompt_style", None) or "full"
