"""SFT data: every question's gold SQL as a verified chain of CTEs, in TRL's prompt-completion formats.

The paper asked large LLMs to rewrite gold SQL as CoCTE; :func:`build_sft_dataset` derives it
deterministically with :func:`~trl_processsql.gold_to_cocte.convert_gold_many`, so a conversion is
kept only when it returns the gold's result. Questions without a database file and conversions
that fail are skipped and counted by reason in the :class:`SFTBuildReport`, never silently dropped.

The prompt is :func:`~trl_processsql.prompts.build_prompt` (schema, evidence, question and the
CoCTE instruction), the same text GRPO, the PRM and inference see; the completion is the CoCTE
with its steps separated by blank lines, the form the policy learns to write.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from dataclasses import dataclass, field

from .data import database_path
from .gold_to_cocte import CONVERSION_FAILURES, convert_gold_many
from .prompts import build_prompt, prompt_messages

__all__ = [
    "SFT_COLUMNS",
    "SFT_FORMATS",
    "SKIP_REASONS",
    "SFTBuildReport",
    "build_sft_dataset",
    "sft_card",
    "split_by_database",
]

SFT_FORMATS = ("conversational", "prompt-completion")

SKIP_REASONS = {"no_database": "the question's database file is missing", **CONVERSION_FAILURES}
"""Why a question has no SFT example: the keys a :class:`SFTBuildReport` counts in ``skipped``."""

SFT_COLUMNS = {
    "prompt": "the instruction to answer with a chain of CTEs, the database schema (tables, column types, keys, "
    "example values), BIRD's evidence where present, and the question (one user message in the conversational format)",
    "completion": "the gold SQL as a chain of CTEs: one CTE per step, steps separated by one blank line, the final "
    "SELECT last (one assistant message in the conversational format)",
    "db_id": "the database the question is asked on",
    "question": "the question in English",
    "evidence": "BIRD's hint (external knowledge) for the question, empty where there is none",
    "gold_sql": "the original gold SQL",
    "num_steps": "the number of steps of the completion (CTEs plus the final statement)",
}
"""What each column of an SFT dataset holds, for its dataset card."""

_CHUNK = 250  # questions verified per executor batch: one progress-bar tick each


@dataclass
class SFTBuildReport:
    """What :func:`build_sft_dataset` made of the questions.

    ``runnable`` counts questions whose database file exists; ``steps`` maps a number of steps to
    the examples that have it; ``skipped`` maps a key of :data:`SKIP_REASONS` to its count;
    ``examples`` holds one ``(gold_sql, detail)`` per failed conversion reason, and
    ``missing_databases`` the ``db_id`` of every database file not found.

    >>> report = SFTBuildReport(total=4, runnable=3, converted=2, steps=Counter({1: 1, 3: 1}),
    ...                         skipped=Counter(no_database=1, result_differs=1))
    >>> for label, value in report.stats().items():
    ...     print(f"{label}: {value}")
    questions: 4
    runnable (database file present): 3
    converted: 2 / 3 runnable (66.7%)
    steps: 1: 1 (50.0%), 3: 1 (50.0%)
    skipped, no_database: 1 (the question's database file is missing)
    skipped, result_differs: 1 (the converted query returns another result than the gold)
    """

    total: int = 0
    runnable: int = 0
    converted: int = 0
    steps: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    examples: dict[str, tuple[str, str]] = field(default_factory=dict)
    missing_databases: list[str] = field(default_factory=list)

    def stats(self) -> dict[str, str]:
        """The figures as ``label -> value`` text, in the order the CLI prints them and the card shows them."""
        share = f" ({self.converted / self.runnable:.1%})" if self.runnable else ""
        stats = {
            "questions": str(self.total),
            "runnable (database file present)": str(self.runnable),
            "converted": f"{self.converted} / {self.runnable} runnable{share}",
            "steps": ", ".join(f"{k}: {n} ({n / self.converted:.1%})" for k, n in sorted(self.steps.items())) or "-",
        }
        for reason, count in self.skipped.most_common():
            stats[f"skipped, {reason}"] = f"{count} ({SKIP_REASONS[reason]})"
        return stats


def _features(conversational: bool, with_evidence: bool):
    from datasets import Features, List, Value

    text = List({"role": Value("string"), "content": Value("string")}) if conversational else Value("string")
    columns = {"prompt": text, "completion": text, "db_id": Value("string"), "question": Value("string")}
    if with_evidence:
        columns["evidence"] = Value("string")
    return Features({**columns, "gold_sql": Value("string"), "num_steps": Value("int32")})


def build_sft_dataset(
    questions: list[dict],
    db_dir: str | os.PathLike,
    *,
    format: str = "conversational",
    prompt_style: str = "full",
    executor=None,
    progress: bool = False,
):
    """SFT examples for the questions whose gold SQL converts to a verified CoCTE.

    ``questions`` are dicts from :func:`~trl_processsql.data.load_questions`; databases lie at
    ``db_dir/<db_id>/<db_id>.sqlite``. ``format`` is ``"conversational"`` (``prompt`` is one user
    message, ``completion`` one assistant message) or ``"prompt-completion"`` (plain strings);
    ``prompt_style`` is ``"full"`` (schema and instruction) or ``"compact"`` (database name and
    question, for small models trained from scratch; see :func:`~trl_processsql.prompts.build_prompt`).
    ``executor`` runs the checks (an :class:`~trl_processsql.sql.SQLExecutor`; by default one is
    started for the call, one worker per CPU).

    Returns ``(dataset, report)``: a ``datasets.Dataset`` with columns ``prompt``, ``completion``,
    ``db_id``, ``question``, ``evidence`` (only if some question has evidence), ``gold_sql`` and
    ``num_steps``, in question order; and an :class:`SFTBuildReport`.
    """
    from datasets import Dataset
    from tqdm.auto import tqdm

    if format not in SFT_FORMATS:
        raise ValueError(f"format must be one of {', '.join(SFT_FORMATS)}, got {format!r}")
    report = SFTBuildReport(total=len(questions))
    paths = [database_path(db_dir, q["db_id"]) for q in questions]
    runnable = [i for i, path in enumerate(paths) if path.is_file()]
    report.runnable = len(runnable)
    if len(runnable) < len(questions):
        report.skipped["no_database"] = len(questions) - len(runnable)
        report.missing_databases = sorted({q["db_id"] for q, path in zip(questions, paths) if not path.is_file()})

    conversions = {}
    own_executor = executor is None
    if own_executor:
        from .sql import SQLExecutor

        executor = SQLExecutor()
    try:
        with tqdm(total=len(runnable), desc="converting gold SQL", unit="question", disable=not progress) as bar:
            for start in range(0, len(runnable), _CHUNK):
                chunk = runnable[start : start + _CHUNK]
                results = convert_gold_many([(questions[i]["gold_sql"], paths[i]) for i in chunk], executor)
                conversions.update(zip(chunk, results))
                bar.update(len(chunk))
    finally:
        if own_executor:
            executor.close()

    conversational = format == "conversational"
    with_evidence = any(q.get("evidence") for q in questions)
    rows = []
    for i, result in sorted(conversions.items()):
        if not result.ok:
            report.skipped[result.reason] += 1
            report.examples.setdefault(result.reason, (result.gold_sql, result.detail))
            continue
        q, steps = questions[i], len(result.cocte.steps)
        report.converted += 1
        report.steps[steps] += 1
        completion = result.cocte.render()
        row = {
            "prompt": (prompt_messages if conversational else build_prompt)(
                q["question"], paths[i], q.get("evidence", ""), style=prompt_style
            ),
            "completion": [{"role": "assistant", "content": completion}] if conversational else completion,
            "db_id": q["db_id"],
            "question": q["question"],
        }
        if with_evidence:
            row["evidence"] = q.get("evidence", "")
        rows.append({**row, "gold_sql": q["gold_sql"], "num_steps": steps})
    return Dataset.from_list(rows, features=_features(conversational, with_evidence)), report


def split_by_database(dataset, test_fraction: float, *, seed: int = 0):
    """A ``DatasetDict`` with ``train`` and ``test`` splits that share no database.

    Whole databases, in a seeded random order, go to ``test`` until it holds at least
    ``test_fraction`` of the rows; at least one database stays in each split.

    >>> from datasets import Dataset
    >>> data = Dataset.from_dict({"db_id": ["a", "a", "b", "c", "c", "d"], "question": list("123456")})
    >>> splits = split_by_database(data, 0.3)
    >>> sorted(set(splits["train"]["db_id"]) & set(splits["test"]["db_id"])), splits.num_rows["test"] >= 2
    ([], True)
    """
    from datasets import DatasetDict

    if not 0 < test_fraction < 1:
        raise ValueError(f"the eval fraction must lie between 0 and 1, got {test_fraction}")
    sizes = Counter(dataset["db_id"])
    if len(sizes) < 2:
        raise ValueError(f"an eval split by database needs at least two databases, the data has {len(sizes)}")
    order = sorted(sizes)
    random.Random(seed).shuffle(order)
    test_dbs, test_rows = set(), 0
    for db_id in order[:-1]:
        if test_rows >= test_fraction * len(dataset):
            break
        test_dbs.add(db_id)
        test_rows += sizes[db_id]
    in_test = [db_id in test_dbs for db_id in dataset["db_id"]]
    return DatasetDict(
        {
            "train": dataset.select([i for i, test in enumerate(in_test) if not test]),
            "test": dataset.select([i for i, test in enumerate(in_test) if test]),
        }
    )


def sft_card(dataset, report: SFTBuildReport, *, format: str, command: str | None = None) -> dict:
    """The keyword arguments of :func:`~trl_processsql.hub.dataset_card` for SFT data built here."""
    splits = dataset if hasattr(dataset, "keys") else {"train": dataset}
    columns = next(iter(splits.values())).column_names
    stats = report.stats()
    if len(splits) > 1:
        sizes = [(name, len(split), len(set(split["db_id"]))) for name, split in splits.items()]
        stats["splits"] = ", ".join(f"{name}: {n} rows, {k} database{'s' * (k != 1)}" for name, n, k in sizes)
    layout = (
        "TRL's conversational prompt-completion format (`prompt` is a list with one user message, `completion` a "
        "list with one assistant message)"
        if format == "conversational"
        else "TRL's prompt-completion format (`prompt` and `completion` are strings)"
    )
    return {
        "kind": "SFT",
        "title": "Text-to-SQL as chains of CTEs: SFT data",
        "description": "Supervised fine-tuning data for text-to-SQL in which every answer is a chain of CTEs (CoCTE). "
        "Each completion is the question's gold SQL rewritten deterministically (subqueries, set-operation branches, "
        "filtered joins and joins that feed an aggregation become CTEs) and kept only if it returns the gold result "
        "under both the Spider and the BIRD comparison rules and every step's intermediate view runs. "
        f"The data is in {layout}, ready for `trl.SFTTrainer`.",
        "columns": {name: SFT_COLUMNS[name] for name in columns if name in SFT_COLUMNS},
        "stats": stats,
        "command": command,
        "tags": ["sft"],
    }
