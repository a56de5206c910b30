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

:func:`label_steps` builds the rows of any mix of sources (:data:`SOURCES`) for a list of
questions, :func:`stepwise_stats` summarises them and :func:`stepwise_card` describes them on the Hub.
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
from ..sql import COMPARISON_MODES, SQLExecutor, judge_results
from ..sql.schema import read_schema
from .execution import execution_labels
from .mutations import MUTATIONS, mutate_step

__all__ = [
    "ROUND_SIZE",
    "SOURCES",
    "STEPWISE_COLUMNS",
    "STEPWISE_COLUMN_DOCS",
    "GoldChain",
    "gold_chains",
    "label_statistics",
    "label_steps",
    "mutation_rows",
    "policy_rows",
    "shard_bounds",
    "stepwise_card",
    "stepwise_dataset",
    "stepwise_stats",
    "trajectory_rows",
]

STEPWISE_COLUMNS = ("prompt", "completions", "labels", "db_id", "question", "sql", "source", "mutation")

STEPWISE_COLUMN_DOCS = {
    "prompt": "the instruction to answer with a chain of CTEs, the database schema (tables, column types, keys, example "
    "values), BIRD's evidence where present, and the question: the text the policy answered",
    "completions": "the steps of the chain of CTEs, one string each: the step's SQL, then the result of its executed "
    "view (`WITH c1..ck SELECT * FROM ck`) as an SQL comment (row count, columns, first rows, or the error)",
    "labels": "one label in [0, 1] per step: 1 right, 0 wrong; Monte Carlo labels are the share of rollouts from the "
    "step that reach the gold result",
    "db_id": "the database the question is asked on",
    "question": "the question in English",
    "sql": "the whole chain of CTEs as one query (the steps joined by blank lines)",
    "source": "`gold` (the verified gold chain), `mutation` (the gold chain with one step changed so that the answer "
    "is wrong), `equivalent` (one step changed, the answer still the gold's) or `policy` (a chain sampled from a policy)",
    "mutation": "for mutants, the kind of change and the step it changed (`comparison@2`); empty otherwise",
}
"""What each column of a stepwise-supervision dataset holds, for its dataset card."""

SOURCES = ("mutations", "execution", "rollouts")
"""Where labels come from: gold chains and their mutants; policy samples checked by execution; and
policy samples labelled by Monte Carlo rollouts (on top of the execution checks)."""

ROUND_SIZE = 250
"""Questions labelled per round by default: a progress-bar tick, the unit of seeding and of sharding."""


class GoldChain:
    """A question with its database, prompt (of ``prompt_style``) and verified gold CoCTE."""

    def __init__(self, question: dict, db_path: str | os.PathLike, cocte: CoCTE, prompt_style: str = "full"):
        self.question, self.db_path, self.cocte = question, str(db_path), cocte
        self.prompt = build_prompt(question["question"], db_path, question.get("evidence", ""), style=prompt_style)


def gold_chains(
    questions: Sequence[dict], db_dir: str | os.PathLike, executor: SQLExecutor, *, prompt_style: str = "full"
) -> tuple[list[GoldChain], Counter]:
    """The gold CoCTE of every runnable question, and the count of questions skipped per reason.

    ``prompt_style`` is the prompt the policy reads (:data:`~trl_processsql.prompts.PROMPT_STYLES`).
    """
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
            chains.append(GoldChain(question, path, conversion.cocte, prompt_style))
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


def _answers_gold(result, gold, gold_sql: str) -> list[bool]:
    """Whether ``result`` gives the gold's answer, under each comparison mode (Spider's and BIRD's): all, surely
    right; none, surely wrong."""
    return [judge_results([result], [gold], [gold_sql], mode=mode)[0].correct for mode in COMPARISON_MODES]


def _kind(mutation: str) -> str:
    """``"column"`` of ``"column@2"``: the kind of a mutation as rows record it."""
    return mutation.split("@", 1)[0]


def mutation_rows(
    chains: Sequence[GoldChain],
    executor: SQLExecutor,
    *,
    mutants_per_question: int = 1,
    attempts: int = 16,
    kinds: Sequence[str] = MUTATIONS,
    balance_sizes: bool = True,
    equivalents: bool = False,
    seed: int = 0,
) -> list[dict]:
    """Gold rows and mutant rows, one gold per question that has at least one mutant (balanced at 1).

    ``kinds`` are the mutations planted (:data:`~.mutations.MUTATIONS`); leaving some out tests a
    PRM on errors it never saw. With ``balance_sizes`` each question keeps, among its mutants that
    change the answer, those whose result is larger than the gold's when the kept mutants so far
    are mostly smaller, and the other way round: many mutations (changed literals, added filters)
    shrink a result, and a PRM trained on them learns that a big result looks right instead of
    what the question asks. Among those, the kind kept least so far goes first, so that kinds which
    fit few queries (a swapped ``INTERSECT``) are not drowned by those that fit most (a changed
    column). With ``equivalents`` each such question also keeps one mutant whose
    answer equals the gold's under every comparison mode, of the kind kept least so far, labelled
    right (source ``equivalent``): execution, not the edit, decides what is wrong, and a PRM that
    meets an edit only where it breaks the answer learns to distrust the edit itself (an added
    filter, a changed operator) instead of reading what the step returns.
    """
    unknown = sorted(set(kinds) - set(MUTATIONS))
    if unknown or not kinds:
        raise ValueError(f"unknown mutation kinds {unknown or '(none)'}: choose from {', '.join(MUTATIONS)}")
    kinds = tuple(kinds)
    candidates: list[tuple[int, str, CoCTE]] = []
    for i, chain in enumerate(chains):
        rng = random.Random(f"{seed}:{chain.question['index']}")
        schema = read_schema(chain.db_path)
        seen = {chain.cocte.render()}
        for _ in range(attempts):
            k, kind = rng.randrange(len(chain.cocte.steps)), rng.choice(kinds)
            mutant = mutate_step(chain.cocte, k, kind, schema, rng)
            if mutant is not None and mutant.render() not in seen:
                seen.add(mutant.render())
                candidates.append((i, f"{kind}@{k + 1}", mutant))
    gold_views = execute_steps_many([(c.cocte, c.db_path) for c in chains], executor)
    mutant_views = execute_steps_many([(m, chains[i].db_path) for i, _, m in candidates], executor)
    wrong: dict[int, list[tuple[str, CoCTE, list]]] = {}
    same: dict[int, list[tuple[str, CoCTE, list]]] = {}
    for (i, mutation, mutant), views in zip(candidates, mutant_views):
        chain, gold, final = chains[i], gold_views[i][-1].result, views[-1].result
        matches = _answers_gold(final, gold, chain.question["gold_sql"])
        if any(matches):
            if all(matches):
                same.setdefault(i, []).append((mutation, mutant, views))
            continue  # same answer: not an error, whatever the text says
        wrong.setdefault(i, []).append((mutation, mutant, views))
    kept: dict[int, list[dict]] = {}
    larger = Counter()  # kept mutants whose result is larger than the gold's (True) or not (False)
    planted = Counter()  # kinds of the wrong mutants kept
    used = Counter()  # kinds of the equivalents kept
    for i, found in sorted(wrong.items()):
        gold_size = len(gold_views[i][-1].result.rows)
        for _ in range(min(mutants_per_question, len(found))):
            grows = [views[-1].result.ok and len(views[-1].result.rows) > gold_size for _, _, views in found]
            wanted = larger[False] > larger[True]
            options = [j for j, g in enumerate(grows) if g == wanted] if balance_sizes else []
            pick = min(options or range(len(found)), key=lambda j: planted[_kind(found[j][0])])
            mutation, mutant, views = found.pop(pick)
            larger[grows[pick]] += 1
            planted[_kind(mutation)] += 1
            k = int(mutation.rsplit("@", 1)[1]) - 1
            labels = [min(a, b) for a, b in zip([1.0] * k + [0.0] * (len(views) - k), execution_labels(views))]
            kept.setdefault(i, []).append(_row(chains[i], mutant, views, labels, "mutation", mutation))
        if equivalents and i in same:  # of the kind kept least so far: some edits (DISTINCT) rarely change an answer
            mutation, mutant, views = min(same[i], key=lambda option: used[_kind(option[0])])
            used[_kind(mutation)] += 1
            kept[i].append(_row(chains[i], mutant, views, execution_labels(views, True), "equivalent", mutation))
    rows = []
    for i in sorted(kept):
        rows.append(_row(chains[i], chains[i].cocte, gold_views[i], execution_labels(gold_views[i], True), "gold"))
        rows.extend(kept[i])
    return rows


def policy_rows(
    chains: Sequence[GoldChain],
    labeler,
    *,
    samples_per_question: int = 1,
    rollouts: bool = True,
    running_only: bool = False,
    balance_sizes: bool = False,
    mixed_only: bool = False,
    seed: int = 0,
) -> list[dict]:
    """Rows for trajectories the labeler's policy writes for each question, labelled by execution and rollouts.

    ``labeler`` is a :class:`~trl_processsql.labeling.rollouts.RolloutLabeler`; with
    ``rollouts=False`` only the execution checks label the steps (the last step: whether the
    answer matches the gold's). The filters are :func:`trajectory_rows`'.
    """
    trajectories = labeler.sample(chains, samples_per_question)
    labelled = labeler.label(trajectories, rollouts=rollouts)
    return trajectory_rows(
        trajectories, labelled, labeler.executor, running_only=running_only, balance_sizes=balance_sizes, mixed_only=mixed_only, seed=seed
    )


def trajectory_rows(
    trajectories: Sequence,
    labelled: Sequence,
    executor: SQLExecutor,
    *,
    running_only: bool = False,
    balance_sizes: bool = False,
    mixed_only: bool = False,
    seed: int = 0,
) -> list[dict]:
    """Rows for policy ``trajectories`` and their ``labelled`` steps (:meth:`RolloutLabeler.label`), filtered.

    Apart from :func:`policy_rows`, so that one set of samples can serve more than the PRM's
    labels (a question's share of right answers picks GRPO prompts too). With ``running_only`` the
    samples whose answer fails to run are left out: scoring floors a failing candidate without
    asking the PRM, so what the PRM must learn from the policy's own samples is which of those that
    run are wrong. With ``balance_sizes`` the wrong answers that run keep as many results larger
    than the gold's as not larger (a random subset, seeded by ``seed``, of the more common side): a
    small policy's wrong answers are mostly too small, and a PRM trained on them learns that a big
    result looks right. With ``mixed_only`` (after the other filters) only the questions whose kept
    samples hold both a right answer and a wrong one stay: best-of-N chooses among one question's
    samples, and a wrong sample beside a right one teaches that choice, while the samples of a
    question the policy never answers teach what hard questions and their wrong answers look like,
    which a PRM then mistakes for errors.
    """
    if len(trajectories) != len(labelled):
        raise ValueError(f"{len(trajectories)} trajectories but {len(labelled)} labelled")
    runs = [found.views[-1].result.ok for found in labelled]
    keep = [run or not running_only for run in runs]
    if balance_sizes:
        golds = executor.execute_many([(t.chain.db_path, t.chain.question["gold_sql"]) for t in trajectories], cache=True)
        sides: dict[bool, list[int]] = {True: [], False: []}
        for i, (found, gold) in enumerate(zip(labelled, golds)):
            if runs[i] and found.labels[-1] < 0.5:
                sides[len(found.views[-1].result.rows) > len(gold.rows)].append(i)
        common = max(sides.values(), key=len)
        excess = len(common) - min(len(side) for side in sides.values())
        for i in random.Random(seed).sample(common, excess):
            keep[i] = False
    if mixed_only:
        answers: dict[int, set[bool]] = {}
        for t, found, kept in zip(trajectories, labelled, keep):
            if kept:
                answers.setdefault(id(t.chain), set()).add(found.labels[-1] >= 0.5)
        keep = [kept and len(answers[id(t.chain)]) == 2 for t, kept in zip(trajectories, keep)]
    return [
        _row(t.chain, t.cocte, found.views, found.labels, "policy")
        for t, found, kept in zip(trajectories, labelled, keep)
        if kept
    ]


def shard_bounds(num_questions: int, num_shards: int = 1, shard_index: int = 0, round_size: int = ROUND_SIZE) -> range:
    """The questions of one shard: a contiguous run of whole rounds, the shards in order covering every question.

    >>> [shard_bounds(10, 3, i, round_size=2) for i in range(3)]
    [range(0, 2), range(2, 6), range(6, 10)]
    """
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ValueError(f"shard index {shard_index} is not one of the {num_shards} shards (0 to {num_shards - 1})")
    rounds = -(-num_questions // round_size)
    first, last = rounds * shard_index // num_shards, rounds * (shard_index + 1) // num_shards
    return range(min(first * round_size, num_questions), min(last * round_size, num_questions))


def _round_seed(seed: int, start: int) -> int:
    """The sampling seed of the round that begins at question ``start`` (the same in every process)."""
    return random.Random(f"{seed}:{start}").getrandbits(31)


def label_steps(
    questions: Sequence[dict],
    db_dir: str | os.PathLike,
    executor: SQLExecutor,
    *,
    sources: Sequence[str] = ("mutations",),
    labeler=None,
    samples_per_question: int = 1,
    mutants_per_question: int = 1,
    mutation_kinds: Sequence[str] = MUTATIONS,
    equivalents: bool = False,
    running_only: bool = False,
    balance_sizes: bool = False,
    mixed_only: bool = False,
    seed: int = 0,
    progress: bool = False,
    round_size: int = ROUND_SIZE,
    num_shards: int = 1,
    shard_index: int = 0,
) -> tuple[list[dict], Counter]:
    """Stepwise rows for ``questions`` from ``sources`` (see :data:`SOURCES`), and the questions left out per reason.

    Every source starts from the questions whose gold SQL converts to a verified CoCTE
    (:func:`gold_chains`): a gold that does not run would make every rollout a miss. The policy
    sources need ``labeler`` (a :class:`~trl_processsql.labeling.rollouts.RolloutLabeler`);
    ``mutation_kinds`` are the errors the mutations source plants and ``equivalents`` adds right
    mutants to it (:func:`mutation_rows`);
    ``running_only``, ``balance_sizes`` and ``mixed_only`` filter their samples (:func:`trajectory_rows`).
    Questions go in rounds of ``round_size``, so that progress shows on large files; each round
    reseeds the labeler from ``seed`` and its first question, so its rows depend on nothing outside
    it. With ``num_shards``, only shard ``shard_index`` of the rounds is labelled
    (:func:`shard_bounds`): the shards' rows, concatenated in shard order, are the rows of one run.
    """
    from tqdm.auto import tqdm

    unknown = [name for name in sources if name not in SOURCES]
    if unknown or not sources:
        raise ValueError(f"unknown label source {', '.join(unknown) or '(none)'}: choose from {', '.join(SOURCES)}")
    if round_size < 1:
        raise ValueError(f"round_size must be at least 1, got {round_size}")
    policy = "execution" in sources or "rollouts" in sources
    if policy and labeler is None:
        raise ValueError("the execution and rollouts sources sample from a policy: pass a RolloutLabeler")
    mine = shard_bounds(len(questions), num_shards, shard_index, round_size)
    rows: list[dict] = []
    skipped: Counter = Counter()
    with tqdm(total=len(mine), desc="labelling steps", unit="question", disable=not progress) as bar:
        for start in range(mine.start, mine.stop, round_size):
            chunk = questions[start : min(start + round_size, mine.stop)]
            chains, chunk_skipped = gold_chains(chunk, db_dir, executor)
            skipped.update(chunk_skipped)
            if "mutations" in sources:
                found = mutation_rows(
                    chains,
                    executor,
                    mutants_per_question=mutants_per_question,
                    kinds=mutation_kinds,
                    equivalents=equivalents,
                    seed=seed,
                )
                skipped["no mutant changes the answer"] += len(chains) - sum(row["source"] == "gold" for row in found)
                rows.extend(found)
            if policy:
                round_seed = _round_seed(seed, start)
                labeler.reseed(round_seed)
                rows += policy_rows(
                    chains,
                    labeler,
                    samples_per_question=samples_per_question,
                    rollouts="rollouts" in sources,
                    running_only=running_only,
                    balance_sizes=balance_sizes,
                    mixed_only=mixed_only,
                    seed=round_seed,
                )
            bar.update(len(chunk))
    return rows, skipped


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
        "by_mutation": dict(Counter(row["mutation"].split("@")[0] for row in rows if row["source"] == "mutation")),
        "first_error": dict(sorted(first_error.items())),
    }


def _counts(counter: dict) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(counter.items(), key=lambda item: (-item[1], item[0]))) or "-"


def stepwise_stats(rows: Sequence[dict], skipped: Counter | None = None, counts: Counter | None = None) -> dict[str, str]:
    """The label figures as ``label -> value`` text, in the order the CLI prints them and the card shows them.

    ``skipped`` counts questions with no row per reason; ``counts`` is a
    :class:`~trl_processsql.labeling.rollouts.RolloutLabeler`'s ``counts`` (samples, rollouts).

    >>> rows = [{"labels": [1.0, 1.0], "source": "gold", "mutation": ""},
    ...         {"labels": [1.0, 0.0], "source": "mutation", "mutation": "literal@2"}]
    >>> for label, value in stepwise_stats(rows).items():
    ...     print(f"{label}: {value}")
    trajectories: 2 (gold 1, mutation 1)
    steps: 4 (75.0% positive, mean label 0.750)
    mutations: literal 1
    first error: none 1, step 2 1
    """
    found = label_statistics(rows)
    stats = {
        "trajectories": f"{found['trajectories']} ({_counts(found['by_source'])})",
        "steps": f"{found['steps']} ({found['positive_step_share']:.1%} positive, mean label {found['mean_label']:.3f})",
    }
    if found["by_mutation"]:
        stats["mutations"] = _counts(found["by_mutation"])
    by_step = sorted(found["first_error"].items(), key=lambda item: 0 if item[0] == "none" else int(item[0].split()[1]))
    stats["first error"] = ", ".join(f"{name} {n}" for name, n in by_step) or "-"
    for reason, n in sorted((skipped or {}).items()):
        if n:
            stats[f"skipped, {reason}"] = f"{n} question{'s' * (n != 1)}"
    counts = counts or {}
    if counts.get("samples"):
        stats["policy samples"] = f"{counts['samples']} ({counts.get('samples without SQL', 0)} without SQL, dropped)"
    if "rollouts" in counts:
        stats["rollouts generated"] = (
            f"{counts.get('rollouts', 0)} from {counts.get('prefixes', 0)} step prefixes "
            f"(a scan of every prefix needs {counts.get('exhaustive rollouts', 0)})"
        )
    return stats


def stepwise_card(dataset, stats: dict[str, str], *, command: str | None = None) -> dict:
    """The keyword arguments of :func:`~trl_processsql.hub.dataset_card` for stepwise labels built here."""
    splits = dataset if hasattr(dataset, "keys") else {"train": dataset}
    columns = next(iter(splits.values())).column_names
    stats = dict(stats)
    if len(splits) > 1:
        sizes = [(name, len(split), len(set(split["db_id"]))) for name, split in splits.items()]
        stats["splits"] = ", ".join(f"{name}: {n} rows, {k} database{'s' * (k != 1)}" for name, n, k in sizes)
    return {
        "kind": "stepwise labels",
        "title": "Text-to-SQL as chains of CTEs: step labels for process reward models",
        "description": "Step-level labels for training a process reward model (PRM) on text-to-SQL. Every answer is a "
        "chain of CTEs; each step is shown with the result of executing it, and labelled right or wrong. Labels come "
        "from execution (a step whose view fails, and every step after it, is wrong), from synthetic errors planted "
        "in verified gold chains (steps before the changed one right, the changed one and the rest wrong, kept only "
        "when the final answer differs from the gold's), and from Monte Carlo rollouts of a policy (the share of "
        "continuations from a step that reach the gold result). The data is in TRL's stepwise-supervision format "
        "(`prompt`, `completions`, `labels`), ready for `trl_processsql.prm.ProcessRewardTrainer`.",
        "columns": {name: STEPWISE_COLUMN_DOCS[name] for name in columns if name in STEPWISE_COLUMN_DOCS},
        "stats": stats,
        "command": command,
        "tags": ["prm", "stepwise-supervision"],
        "task_categories": ["token-classification"],
    }


def stepwise_dataset(rows: Sequence[dict]):
    """The rows as a ``datasets.Dataset`` with explicit features (float labels stay floats; no row, no column lost)."""
    from datasets import Dataset, Features, List, Value

    features = Features(
        {
            "prompt": Value("string"),
            "completions": List(Value("string")),
            "labels": List(Value("float32")),
            **{name: Value("string") for name in STEPWISE_COLUMNS[3:]},
        }
    )
    return Dataset.from_dict({name: [row[name] for row in rows] for name in STEPWISE_COLUMNS}, features=features)
