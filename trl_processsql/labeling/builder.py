"""Stepwise-supervision datasets for PRM training, from gold SQL, a policy, or both.

Rows follow TRL's stepwise-supervision format, ``{"prompt": str, "completions": list[str],
"labels": list[float]}``, where each completion is one CoCTE step followed by its executed view
(:func:`~trl_processsql.cocte.prm_completions`), plus ``db_id``, ``question``, ``sql`` (the whole
chain), ``source`` (``gold``, ``mutation`` or ``policy``) and ``mutation`` (e.g. ``comparison@2``).

Sources, combinable:

- ``mutations``: the verified gold CoCTE of each question (every step right) and mutants of it
  (:mod:`.mutations`) whose final result differs from the gold's: steps before the mutated one
  are right, the mutated step and the rest wrong. No model needed.
- ``policy``: chains sampled from a policy, labelled by execution (:mod:`.execution`) and, with
  a :class:`~trl_processsql.labeling.rollouts.RolloutLabeler`, by Monte Carlo rollouts.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from typing import Iterable, Sequence

from ..cocte import CoCTE, execute_steps_many, prm_completions
from ..data import database_path
from ..gold_to_cocte import convert_gold_many
from ..prompts import build_prompt
from ..sql import SQLExecutor
from ..sql.compare import COMPARISON_MODES, gold_orders_rows
from ..sql.schema import read_schema
from .execution import execution_labels
from .mutations import MUTATIONS, mutate_step

__all__ = ["STEPWISE_COLUMNS", "GoldChain", "gold_chains", "label_statistics", "mutation_rows", "stepwise_dataset"]

STEPWISE_COLUMNS = ("prompt", "completions", "labels", "db_id", "question", "sql", "source", "mutation")


class GoldChain:
    """A question with its database, prompt and verified gold CoCTE."""

    def __init__(self, question: dict, db_path: str | os.PathLike, cocte: CoCTE):
        self.question, self.db_path, self.cocte = question, str(db_path), cocte
        self.prompt = build_prompt(question["question"], db_path, question.get("evidence", ""))


def gold_chains(
    questions: Sequence[dict], db_dir: str | os.PathLike, executor: SQLExecutor
) -> tuple[list[GoldChain], Counter]:
    """The gold CoCTE of every runnable question, and the count of questions skipped per reason."""
    skipped: Counter = Counter()
    runnable = []
    for question in questions:
        path = database_path(db_dir, question["db_id"])
        if path.is_file():
            runnable.append((question, path))
        else:
            skipped["database missing"] += 1
    conversions = convert_gold_many([(q["gold_sql"], path) for q, path in runnable], executor)
    chains = []
    for (question, path), conversion in zip(runnable, conversions):
        if conversion.ok:
            chains.append(GoldChain(question, path, conversion.cocte))
        else:
            skipped[f"gold not converted ({conversion.reason})"] += 1
    return chains, skipped


def _row(chain: GoldChain, cocte: CoCTE, views, labels: list[float], source: str, mutation: str = "") -> dict:
    return {
        "prompt": chain.prompt,
        "completions": prm_completions(views),
        "labels": labels,
        "db_id": chain.question["db_id"],
        "question": chain.question["question"],
        "sql": cocte.render(),
        "source": source,
        "mutation": mutation,
    }


def _differs(rows, gold_rows, gold_sql: str) -> bool:
    order = gold_orders_rows(gold_sql)
    return not any(match(rows, gold_rows, order) for match in COMPARISON_MODES.values())


def mutation_rows(
    chains: Sequence[GoldChain],
    executor: SQLExecutor,
    *,
    mutants_per_question: int = 1,
    attempts: int = 8,
    seed: int = 0,
) -> list[dict]:
    """Gold rows and mutant rows, one gold per question that has at least one mutant (balanced at 1)."""
    candidates: list[tuple[int, str, CoCTE]] = []
    for i, chain in enumerate(chains):
        rng = random.Random(f"{seed}:{chain.question['index']}")
        schema = read_schema(chain.db_path)
        seen = {chain.cocte.render()}
        for _ in range(attempts):
            k, kind = rng.randrange(len(chain.cocte.steps)), rng.choice(MUTATIONS)
            mutant = mutate_step(chain.cocte, k, kind, schema, rng)
            if mutant is not None and mutant.render() not in seen:
                seen.add(mutant.render())
                candidates.append((i, f"{kind}@{k + 1}", mutant))
    gold_views = execute_steps_many([(c.cocte, c.db_path) for c in chains], executor)
    mutant_views = execute_steps_many([(m, chains[i].db_path) for i, _, m in candidates], executor)
    wrong: dict[int, list[tuple[bool, str, CoCTE, list]]] = {}
    for (i, mutation, mutant), views in zip(candidates, mutant_views):
        chain, gold, final = chains[i], gold_views[i][-1].result, views[-1].result
        if final.ok and not _differs(final.rows, gold.rows, chain.question["gold_sql"]):
            continue  # same answer: not an error, whatever the text says
        runs = all(view.result.ok for view in views)
        wrong.setdefault(i, []).append((runs, mutation, mutant, views))
    kept: dict[int, list[dict]] = {}
    for i, found in wrong.items():
        # Mutants whose steps all run come first: execution alone cannot tell they are wrong.
        for _, mutation, mutant, views in sorted(found, key=lambda item: not item[0])[:mutants_per_question]:
            k = int(mutation.rsplit("@", 1)[1]) - 1
            planted = [1.0] * k + [0.0] * (len(views) - k)
            labels = [min(a, b) for a, b in zip(planted, execution_labels(views))]
            kept.setdefault(i, []).append(_row(chains[i], mutant, views, labels, "mutation", mutation))
    rows = []
    for i in sorted(kept):
        rows.append(_row(chains[i], chains[i].cocte, gold_views[i], execution_labels(gold_views[i], True), "gold"))
        rows.extend(kept[i])
    return rows


def label_statistics(rows: Iterable[dict]) -> dict:
    """Counts a person checks before training: trajectories, steps, positive share, where errors start."""
    rows = list(rows)
    labels = [label for row in rows for label in row["labels"]]
    first_error = Counter()
    for row in rows:
        wrong = [k for k, label in enumerate(row["labels"]) if label < 0.5]
        first_error["none" if not wrong else f"step {wrong[0] + 1}"] += 1
    return {
        "trajectories": len(rows),
        "steps": len(labels),
        "positive_step_share": sum(label >= 0.5 for label in labels) / len(labels) if labels else 0.0,
        "mean_label": sum(labels) / len(labels) if labels else 0.0,
        "by_source": dict(Counter(row["source"] for row in rows)),
        "by_mutation": dict(Counter(row["mutation"].split("@")[0] for row in rows if row["mutation"])),
        "first_error": dict(sorted(first_error.items())),
    }


def stepwise_dataset(rows: Sequence[dict]):
    """The rows as a ``datasets.Dataset`` with explicit features (float labels stay floats)."""
    from datasets import Dataset, Features, List, Value

    features = Features(
        {
            "prompt": Value("string"),
            "completions": List(Value("string")),
            "labels": List(Value("float32")),
            **{name: Value("string") for name in STEPWISE_COLUMNS[3:]},
        }
    )
    return Dataset.from_list([{name: row[name] for name in STEPWISE_COLUMNS} for row in rows], features=features)
