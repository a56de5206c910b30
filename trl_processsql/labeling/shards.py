"""Step labelling split across processes or machines, and the merge of its shards into one dataset.

``trl-processsql label-steps --num-shards N --shard-index I`` labels shard ``I`` of the questions
(whole rounds, see :func:`~.builder.shard_bounds`) and saves its rows with a :data:`RUN_FILE`
that records the run's settings and figures. :func:`merge_shards` checks that the shards belong
to one run and that none is missing, then concatenates their rows in shard order and adds their
figures up: since each round reseeds the sampling (:func:`~.builder.label_steps`), the result is
the dataset a single process would have written with the same settings.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

__all__ = ["RUN_FILE", "LabelRun", "merge_shards", "read_run", "write_run"]

RUN_FILE = "labeling_run.json"
"""The file beside a saved stepwise dataset that describes the run that wrote it."""


@dataclass
class LabelRun:
    """What one label-steps process did.

    ``settings`` are the options every shard of a run must share (sources, seed, policy, ...);
    ``questions`` is how many questions the shard covered, ``skipped`` the questions without a row
    per reason, ``counts`` the labeler's counts (samples, rollouts), ``command`` its command line.
    """

    settings: dict
    num_shards: int = 1
    shard_index: int = 0
    questions: int = 0
    skipped: Counter = field(default_factory=Counter)
    counts: Counter = field(default_factory=Counter)
    command: str = ""


def write_run(directory: str | os.PathLike, run: LabelRun) -> Path:
    """Save ``run`` as :data:`RUN_FILE` in ``directory``."""
    path = Path(directory) / RUN_FILE
    record = {**run.__dict__, "skipped": dict(run.skipped), "counts": dict(run.counts)}
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def read_run(directory: str | os.PathLike) -> LabelRun:
    """The :class:`LabelRun` saved in ``directory``; ``ValueError`` when there is none or it is unreadable."""
    path = Path(directory) / RUN_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return LabelRun(
            **{**record, "skipped": Counter(record.get("skipped", {})), "counts": Counter(record.get("counts", {}))}
        )
    except FileNotFoundError:
        raise ValueError(f"{directory} was not written by label-steps: it has no {RUN_FILE}") from None
    except (json.JSONDecodeError, TypeError) as exc:
        raise ValueError(f"{path} is not a label-steps run description: {exc}") from None


def _total(counters) -> Counter:
    """The sum of counters, keeping zero counts (``Counter.__add__`` drops them)."""
    total: Counter = Counter()
    for counter in counters:
        total.update(counter)
    return total


def merge_shards(directories: Sequence[str | os.PathLike]):
    """The shards of one label-steps run as one ``Dataset`` in shard order, and the :class:`LabelRun` of the whole.

    Raises ``ValueError`` with the reason when the folders are not every shard of one run exactly once.
    """
    from datasets import concatenate_datasets, load_from_disk

    if not directories:
        raise ValueError("no shard to merge")
    runs = [read_run(directory) for directory in directories]
    first = runs[0]
    for directory, run in zip(directories, runs):
        if run.num_shards != first.num_shards:
            raise ValueError(f"{directory} is one of {run.num_shards} shards, {directories[0]} one of {first.num_shards}")
        changed = sorted(k for k in first.settings.keys() | run.settings.keys() if first.settings.get(k) != run.settings.get(k))
        if changed:
            raise ValueError(f"{directory} and {directories[0]} come from different runs: they differ in {', '.join(changed)}")
    indices = Counter(run.shard_index for run in runs)
    missing = sorted(set(range(first.num_shards)) - set(indices))
    repeated = sorted(i for i, n in indices.items() if n > 1)
    if missing or repeated:
        problems = [f"missing shard {', '.join(map(str, missing))}"] * bool(missing)
        problems += [f"shard {', '.join(map(str, repeated))} given twice"] * bool(repeated)
        raise ValueError(f"cannot merge {first.num_shards} shards: {'; '.join(problems)}")
    order = sorted(range(len(runs)), key=lambda i: runs[i].shard_index)
    parts = []
    for i in order:
        saved = load_from_disk(str(directories[i]))
        if set(saved) != {"train"}:
            raise ValueError(f"{directories[i]} has splits {sorted(saved)}: a shard has one train split (split when merging)")
        parts.append(saved["train"])
    merged = LabelRun(
        settings=dict(first.settings),
        questions=sum(run.questions for run in runs),
        skipped=_total(run.skipped for run in runs),
        counts=_total(run.counts for run in runs),
        command="\n".join(runs[i].command for i in order),
    )
    return concatenate_datasets([part for part in parts if len(part)] or parts[:1]), merged  # empty tables do not concatenate
