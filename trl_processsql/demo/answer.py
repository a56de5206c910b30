"""The demo's question mode, with no UI: the policy answers, one answer is chosen, its steps explained.

With one candidate the policy decodes greedily. With ``n > 1`` it samples ``n`` candidates and
:mod:`trl_processsql.inference` chooses one: PRM best-of-N (among those that ran) when a PRM is
loaded, else the execution majority vote. The chosen candidate is then explained step by step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..formats import FORMATS
from ..sql.schema import SchemaError
from .databases import DemoError
from .explain import Explanation, explain_sql

__all__ = ["Answer", "answer_question"]


@dataclass(frozen=True)
class Answer:
    """What the policy wrote and the chosen answer's steps.

    Parameters:
        question (`str`), completion (`str`): the question and the chosen completion as the model wrote it.
        explanation ([`Explanation`] or `None`): its steps; None when it holds no SQL.
        candidates (`list[dict]`): with best-of-N, every candidate as
            :func:`~trl_processsql.inference.candidate_records` gives it (``sql``, ``status``,
            ``prm_score``, ``votes``, ...); empty for a single greedy answer.
        selected (`int`): the chosen candidate's index.
        strategy (`str` or `None`): ``best-of-n`` or ``vote`` with candidates, else None.
    """

    question: str
    completion: str
    explanation: Explanation | None
    candidates: list[dict] = field(default_factory=list)
    selected: int = 0
    strategy: str | None = None


def answer_question(db_path: str | os.PathLike, question: str, policy, executor, prm=None, n: int = 1) -> Answer:
    """Prompt ``policy`` (a :class:`~trl_processsql.demo.models.Policy`) with the question and the
    database's schema, choose among ``n`` candidates, then run and (with ``prm``) score every step
    of the chosen answer.

    Raises :class:`DemoError` for an empty question, an unreadable database, ``n < 1``, or when
    no policy is loaded.
    """
    question = (question or "").strip()
    if not question:
        raise DemoError("type a question first")
    if policy is None:
        raise DemoError(
            "no policy model is loaded, so questions cannot be answered: start the demo with "
            "`trl-processsql demo --model CHECKPOINT`, or paste SQL in the Explain tab"
        )
    if n < 1:
        raise DemoError(f"the number of candidates must be at least 1, got {n}")
    try:
        sampler = policy.sampler(n)
        policy_format = getattr(sampler, "format", FORMATS["processsql"])
        messages = [{"role": "user", "content": policy_format.question_prompt(question, db_path, style=getattr(policy, "prompt_style", "full"))}]
        prm_prompt = prm.prompt(question, db_path) if prm is not None else messages[-1]["content"]
    except SchemaError as exc:
        raise DemoError(str(exc)) from None
    completions = sampler.sample([messages], n)[0]
    candidates, selected, strategy = [], 0, None
    if n > 1:
        from ..inference import STRATEGIES, candidate_records, score_candidates

        pool = score_candidates([prm_prompt] * n, completions, [db_path] * n, executor, prm)
        strategy = "best-of-n" if prm is not None else "vote"
        aggregation = prm.aggregation if prm is not None else "min"
        selected = STRATEGIES[strategy](pool, aggregation=aggregation)
        candidates = candidate_records(pool, aggregation=aggregation)
    completion = completions[selected]
    try:
        explanation = explain_sql(db_path, completion, executor, prm, question)
    except DemoError:  # the model wrote no SQL: the page shows what it wrote instead
        explanation = None
    return Answer(question, completion, explanation, candidates, selected, strategy)
