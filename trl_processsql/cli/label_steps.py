"""``trl-processsql label-steps``: chains of CTEs with one label per step, saved as PRM data."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ..inference.loading import BACKENDS
from ..labeling.builder import ROUND_SIZE, SOURCES
from ..labeling.mutations import MUTATIONS
from ..sql.compare import COMPARISON_MODES
from ._common import DataOptions, at_least_one, load_policy
from ._datasets import DatasetOptions, prepare_output, save_and_push
from ._options import CommandError, command_line, option, shared_settings

DESCRIPTION = (
    "Label every step of chains of CTEs as right or wrong and save them in TRL's stepwise-supervision\n"
    "format (prompt, completions, labels) for PRM training: each completion is one step followed by the result\n"
    "of its executed view (save_to_disk, with a dataset card; optionally pushed to the Hub). Prints label statistics."
)
EPILOG = (
    "sources (--sources, comma separated):\n"
    "  mutations   each question's verified gold chain, and mutants of it with one step changed so that the answer\n"
    "              differs: steps before the change right, the rest wrong (no model needed)\n"
    "  execution   chains sampled from --policy; a step whose view fails is wrong and so is every step after it,\n"
    "              the last step is right when the answer matches the gold's\n"
    "  rollouts    chains sampled from --policy, labelled on top of the execution checks by the share of\n"
    "              --num-rollouts continuations from each step that reach the gold result\n"
    "\n"
    "shards: questions go in rounds of --round-size, each round sampled from its own seed. With --num-shards N,\n"
    "one process (or machine) per --shard-index 0..N-1 labels its share of the rounds; 'trl-processsql\n"
    "merge-labels' joins the shards into the dataset one process would have written with the same options."
)
RAW = True

# when the dataset card's command line repeats an option: where it shapes the data


def _mutations(options) -> bool:
    return "mutations" in options.sources


def _rollouts(options) -> bool:
    return "rollouts" in options.sources


def _with_policy(options) -> bool:
    return bool(options.policy)


def _sharded(options) -> bool:
    return options.num_shards > 1


def _new_rounds(options) -> bool:
    return options.round_size != ROUND_SIZE or options.num_shards > 1


def _shaping(**kwargs):
    """An option every shard of one run must share, repeated on the card when it applies."""
    return option(shared=True, **kwargs)


@dataclass(kw_only=True)
class LabelStepsOptions(DatasetOptions, DataOptions):
    GROUPS = {
        "policy": "policy (the execution and rollouts sources)",
        "shards": "shards (one run split across processes or machines)",
    }

    limit: int | None = _shaping(default=None, group="data", card=True, help="label only the first N questions")
    sources: str = _shaping(
        default="mutations", group="labels", card=True, help="comma-separated: mutations, execution, rollouts (default: %(default)s)"
    )
    seed: int = _shaping(default=0, group="labels", card=True, help="seed of the mutations and of the sampling (default: %(default)s)")
    mutants_per_question: int = _shaping(
        default=1, group="labels", card=_mutations, help="mutants kept per gold chain (default: %(default)s)"
    )
    equivalents: bool = _shaping(
        default=False,
        group="labels",
        card=_mutations,
        help="with the mutations source, also keep one mutant per gold chain whose answer equals the gold's, labelled right: "
        "execution, not the edit, decides what is wrong",
    )
    mutation_kinds: str | None = _shaping(
        default=None,
        group="labels",
        card=_mutations,
        metavar="KINDS",
        help="comma-separated kinds of error the mutations source plants (default: every kind; a wrong name lists "
        "them): plant some and test a PRM on the others to see how it judges errors it never saw",
    )
    mode: str = _shaping(
        default="spider", group="labels", card=_with_policy, choices=tuple(COMPARISON_MODES),
        help="how results are compared with gold (default: %(default)s)",
    )
    policy: str | None = _shaping(
        default=None, group="policy", card=_with_policy, metavar="MODEL",
        help="causal LM that writes the chains and the rollouts (a path or Hub id)",
    )
    samples_per_question: int = _shaping(default=1, group="policy", card=_with_policy, help="chains per question (default: %(default)s)")
    running_only: bool = _shaping(
        default=False, group="policy", card=_with_policy,
        help="keep only the samples whose answer runs: scoring floors the others without asking the PRM",
    )
    balance_sizes: bool = _shaping(
        default=False,
        group="policy",
        card=_with_policy,
        help="keep as many wrong answers larger than the gold's result as not (a seeded subset of the more common "
        "side): a policy's wrong answers are mostly too small, which teaches a PRM that a big result looks right",
    )
    mixed_only: bool = _shaping(
        default=False,
        group="policy",
        card=_with_policy,
        help="after the other filters, keep only the questions whose samples hold both a right answer and a wrong one: "
        "the choice best-of-N makes (with several --samples-per-question)",
    )
    num_rollouts: int = _shaping(
        default=8, group="policy", card=_rollouts, help="continuations sampled per step prefix (default: %(default)s)"
    )
    temperature: float = _shaping(default=1.0, group="policy", card=_with_policy, help="sampling temperature (default: %(default)s)")
    max_new_tokens: int = _shaping(default=256, group="policy", card=_with_policy, help="longest sample in tokens (default: %(default)s)")
    hard_labels: bool = _shaping(
        default=False, group="policy", card=_rollouts, help="a step is 1 if any rollout reaches gold (default: the share)"
    )
    no_binary_search: bool = _shaping(
        default=False, group="policy", card=_rollouts,
        help="roll out from every step prefix instead of bisecting for the first bad step (more rollouts)",
    )
    backend: str = _shaping(
        default="auto",
        group="policy",
        card=_with_policy,
        choices=BACKENDS,
        help="what samples: transformers generate, or vLLM; auto: vLLM where it is installed and a GPU is used "
        "(default: %(default)s)",
    )
    batch_size: int = _shaping(
        default=8, group="policy", card=_with_policy, help="prompts per generate call, transformers backend (default: %(default)s)"
    )
    device: str | None = option(None, group="policy", help="where the policy runs (default: cuda if available, else cpu)")
    round_size: int = _shaping(
        default=ROUND_SIZE,
        group="shards",
        card=_new_rounds,
        help="questions per round, the unit of seeding and of sharding; shards of one run must use the same "
        "(default: %(default)s)",
    )
    num_shards: int = option(1, group="shards", card=_sharded, help="split the rounds into this many shards (default: %(default)s)")
    shard_index: int = option(
        0, group="shards", card=_sharded, help="the shard this process labels, 0 to --num-shards - 1 (default: %(default)s)"
    )

    def check(self):
        sources = self.source_names()
        if not sources or any(name not in SOURCES for name in sources):
            raise CommandError(f"unknown source in --sources {self.sources!r}: choose from {', '.join(SOURCES)}")
        if self.uses_policy() and not self.policy:
            raise CommandError("the execution and rollouts sources sample chains from a policy: add --policy MODEL")
        if self.policy and not self.uses_policy():
            raise CommandError("--policy is used by the execution and rollouts sources: add one to --sources")
        if (self.running_only or self.balance_sizes or self.mixed_only) and not self.uses_policy():
            raise CommandError(
                "--running-only, --balance-sizes and --mixed-only filter the policy's samples: add execution or rollouts to --sources"
            )
        if (self.equivalents or self.mutation_kinds) and "mutations" not in sources:
            raise CommandError("--equivalents and --mutation-kinds shape the mutations source: add mutations to --sources")
        kinds = self.kinds()
        if not kinds or not set(kinds) <= set(MUTATIONS):
            raise CommandError(f"unknown kind in --mutation-kinds {self.mutation_kinds!r}: choose from {', '.join(MUTATIONS)}")
        at_least_one(self, "limit", "mutants_per_question", "samples_per_question", "num_rollouts", "max_new_tokens", "batch_size",
                     "round_size", "num_shards")
        if not 0 <= self.shard_index < self.num_shards:
            raise CommandError(
                f"--shard-index must lie between 0 and {self.num_shards - 1} (--num-shards {self.num_shards}), got {self.shard_index}"
            )
        if self.num_shards > 1 and (self.eval_fraction or self.push_to_hub):
            raise CommandError("a shard keeps its rows in one train split: give --eval-fraction and --push-to-hub to merge-labels")
        if not self.temperature > 0:
            raise CommandError(f"--temperature must be positive (chains and rollouts are sampled), got {self.temperature}")

    def source_names(self) -> list[str]:
        return [name.strip() for name in self.sources.split(",") if name.strip()]

    def uses_policy(self) -> bool:
        return bool({"execution", "rollouts"} & set(self.source_names()))

    def kinds(self) -> tuple[str, ...]:
        """The mutation kinds to plant: --mutation-kinds, else every kind."""
        if not self.mutation_kinds:
            return MUTATIONS
        return tuple(name.strip() for name in self.mutation_kinds.split(",") if name.strip())


OPTIONS = LabelStepsOptions


def label_run(options: LabelStepsOptions, questions, db_dir):
    """Label this shard's questions: ``(rows, run, mine)``, the stepwise rows, the :class:`LabelRun` that describes
    them and the range of the questions labelled."""
    from ..labeling import label_steps, shard_bounds
    from ..labeling.shards import LabelRun
    from ..sql import SQLExecutor

    mine = shard_bounds(len(questions), options.num_shards, options.shard_index, options.round_size)
    if not mine:
        rounds = -(-len(questions) // options.round_size)
        raise CommandError(
            f"shard {options.shard_index} of {options.num_shards} has no question: {len(questions)} questions make "
            f"{rounds} round{'s' * (rounds != 1)} of --round-size {options.round_size}; use fewer shards or smaller rounds"
        )
    with SQLExecutor(num_workers=options.workers) as executor:
        labeler = None
        if options.uses_policy():
            from ..labeling import RolloutLabeler

            labeler = RolloutLabeler(
                None,
                None,
                executor,
                sampler=load_policy(options.policy, options),
                num_rollouts=options.num_rollouts,
                soft=not options.hard_labels,
                binary_search=not options.no_binary_search,
                mode=options.mode,
            )
        rows, skipped = label_steps(
            questions,
            db_dir,
            executor,
            sources=options.source_names(),
            labeler=labeler,
            samples_per_question=options.samples_per_question,
            mutants_per_question=options.mutants_per_question,
            mutation_kinds=options.kinds(),
            equivalents=options.equivalents,
            running_only=options.running_only,
            balance_sizes=options.balance_sizes,
            mixed_only=options.mixed_only,
            seed=options.seed,
            progress=True,
            round_size=options.round_size,
            num_shards=options.num_shards,
            shard_index=options.shard_index,
        )
    run = LabelRun(
        settings=shared_settings(options),
        num_shards=options.num_shards,
        shard_index=options.shard_index,
        questions=len(mine),
        skipped=skipped,
        counts=Counter(labeler.counts if labeler else {}),
        command=command_line("label-steps", options),
    )
    return rows, run, mine


def run(options: LabelStepsOptions) -> int:
    from ..labeling import stepwise_dataset, stepwise_stats

    output, replace = prepare_output(options)
    questions, db_dir = options.load(options.limit)
    rows, run, mine = label_run(options, questions, db_dir)
    stats = {"questions": str(run.questions), **stepwise_stats(rows, run.skipped, run.counts)}
    if options.num_shards > 1:
        stats["questions"] += f" (shard {options.shard_index} of {options.num_shards}: questions {mine.start} to {mine.stop - 1})"
    for label, value in stats.items():
        print(f"{label}: {value}")
    if not rows and options.num_shards == 1:  # an empty shard is still saved: the merge needs every shard
        raise CommandError("no trajectory was labelled: nothing to save")
    save_stepwise(stepwise_dataset(rows), output, replace, options, stats, run)
    return 0


def save_stepwise(dataset, output, replace: bool, options, stats: dict, run) -> None:
    """Split (``--eval-fraction``, seeded by the run's seed), save with its card and run description, push if asked."""
    from datasets import DatasetDict

    from ..hub import dataset_card
    from ..labeling import stepwise_card
    from ..labeling.shards import write_run
    from ..sft_data import split_by_database

    splits = DatasetDict({"train": dataset})
    if options.eval_fraction:
        try:
            splits = split_by_database(dataset, options.eval_fraction, seed=run.settings["seed"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
    card = stepwise_card(splits, stats, command=run.command)

    def describe(folder):
        rows = sum(splits.num_rows.values())
        dataset_card(options.push_to_hub or folder.name, num_rows=rows, **card).save(folder / "README.md")
        write_run(folder, run)

    save_and_push(splits, output, replace, options, lambda: card, beside=describe)
