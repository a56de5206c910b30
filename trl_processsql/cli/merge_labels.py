"""``trl-processsql merge-labels``: the shards of a label-steps run joined into one dataset."""

from __future__ import annotations

from dataclasses import dataclass

from ._datasets import DatasetOutputOptions, prepare_output
from ._options import CommandError, command_line, option
from .label_steps import save_stepwise

DESCRIPTION = (
    "Join the folders written by 'trl-processsql label-steps --num-shards N --shard-index I' (every "
    "shard of one run, once each, in any order) into one stepwise dataset: the rows in shard order, which are "
    "the rows one process would have labelled with the same options, and the label statistics of the whole, "
    "saved with its dataset card (and optionally a test split and a push to the Hub)."
)


@dataclass(kw_only=True)
class MergeLabelsOptions(DatasetOutputOptions):
    shards: list[str] = option(positional=True, nargs="+", metavar="SHARD", card=True, help="the output folders of the label-steps shards")


OPTIONS = MergeLabelsOptions


def run(options: MergeLabelsOptions) -> int:
    from pathlib import Path

    output, replace = prepare_output(options)
    if any(output.resolve() == Path(shard).resolve() for shard in options.shards):
        raise CommandError(f"--output {output} is one of the shards: write the merged dataset elsewhere")

    from ..labeling import stepwise_stats
    from ..labeling.shards import merge_shards

    try:
        dataset, run = merge_shards(options.shards)
    except (ValueError, FileNotFoundError) as exc:
        raise CommandError(str(exc)) from exc
    run.command += "\n" + command_line("merge-labels", options)
    rows = dataset.select_columns(["labels", "source", "mutation"]).to_list()
    stats = {"questions": str(run.questions), **stepwise_stats(rows, run.skipped, run.counts)}
    for label, value in stats.items():
        print(f"{label}: {value}")
    save_stepwise(dataset, output, replace, options, stats, run)
    return 0
