"""The demo's question mode, with no UI: the policy answers with one CoCTE, which is then explained."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..prompts import prompt_messages
from ..sql.schema import SchemaError
from .databases import DemoError
from .explain import Explanation, explain_sql

__all__ = ["Answer", "answer_question"]


@dataclass(frozen=True)
class Answer:
    """What the policy wrote (``completion``) and its steps; ``explanation`` is None when it wrote no SQL."""

    question: str
    completion: str
    explanation: Explanation | None


def answer_question(db_path: str | os.PathLike, question: str, policy, executor, prm=None) -> Answer:
    """Prompt ``policy`` (a :class:`~trl_processsql.demo.models.Policy`) with the question and the
    database's schema, then run and (with ``prm``) score every step of its answer.

    Raises :class:`DemoError` for an empty question, an unreadable database, or when no policy is loaded.
    """
    question = (question or "").strip()
    if not question:
        raise DemoError("type a question first")
    if policy is None:
        raise DemoError(
            "no policy model is loaded, so questions cannot be answered: start the demo with "
            "`trl-processsql demo --model CHECKPOINT`, or paste SQL in the Explain tab"
        )
    try:
        messages = prompt_messages(question, db_path)
    except SchemaError as exc:
        raise DemoError(str(exc)) from None
    completion = policy.generate(messages)
    try:
        explanation = explain_sql(db_path, completion, executor, prm, question)
    except DemoError:  # the model wrote no SQL: the page shows what it wrote instead
        explanation = None
    return Answer(question, completion, explanation)
