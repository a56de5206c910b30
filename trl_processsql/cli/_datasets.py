"""Where a dataset-building command writes: the output options, the overwrite check, and one save-and-push."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ._options import CommandError, Options, option

__all__ = ["DatasetOptions", "DatasetOutputOptions", "prepare_output", "save_and_push"]


@dataclass(kw_only=True)
class DatasetOutputOptions(Options):
    """Where a dataset builder writes, its held-out split and the Hub."""

    output: str = option(help="directory to save the dataset to (must not exist or be empty)", card=True, card_rank=2)
    overwrite: bool = option(False, help="replace a dataset already saved at --output")
    eval_fraction: float | None = option(
        None,
        help="hold out about this share of the rows as a test split, whole databases at a time (default: no test split)",
        card=True,
        card_rank=1,
    )
    push_to_hub: str | None = option(None, metavar="REPO", help="also push the dataset and its card to this Hub dataset repository")
    private: bool = option(False, help="make the Hub repository private (with --push-to-hub)")

    def check(self):
        if self.eval_fraction is not None and not 0 < self.eval_fraction < 1:
            raise CommandError(f"--eval-fraction must lie between 0 and 1, got {self.eval_fraction}")
        if self.private and not self.push_to_hub:
            raise CommandError("--private applies to --push-to-hub: give both or neither")


@dataclass(kw_only=True)
class DatasetOptions(DatasetOutputOptions):
    """The output options of a builder that runs SQL."""

    workers: int | None = option(None, help="SQL worker processes (default: one per CPU)")

    def check(self):
        if self.workers is not None and self.workers < 1:
            raise CommandError(f"--workers must be at least 1, got {self.workers}")


def prepare_output(options: DatasetOutputOptions) -> tuple[Path, bool]:
    """``(output, replace)``: refuses a file, and a non-empty folder without --overwrite or without a saved dataset."""
    output = Path(options.output)
    if output.exists() and not output.is_dir():
        raise CommandError(f"--output {output} is a file, not a directory")
    replace = output.is_dir() and any(output.iterdir())
    if replace and not options.overwrite:
        raise CommandError(f"--output {output} exists and is not empty (add --overwrite to replace the dataset in it)")
    if replace and not any((output / name).is_file() for name in ("dataset_dict.json", "state.json")):
        raise CommandError(f"refusing to overwrite {output}: it does not hold a saved dataset")
    return output, replace


def save_and_push(splits, output: Path, replace: bool, options: DatasetOutputOptions, card, beside=None) -> None:
    """Save the splits (replacing the dataset there), let ``beside(output)`` add its files, print the sizes, push if asked.

    ``card()`` gives the dataset card's fields for the push. The push comes last, so that a failed one
    leaves the dataset saved, and says so.
    """
    import shutil

    if replace:
        shutil.rmtree(output)
    empty = {name: 1 for name, split in splits.items() if not len(split)}  # else an empty split saves no file to load
    splits.save_to_disk(output, num_shards=empty or None)
    if beside is not None:
        beside(output)
    sizes = [(name, len(split), len(set(split["db_id"]))) for name, split in splits.items()]
    print(f"dataset written to {output}: " + ", ".join(f"{name} {n} rows ({k} database{'s' * (k != 1)})" for name, n, k in sizes))
    if options.push_to_hub:
        from ..hub import push_dataset

        try:
            url = push_dataset(splits, options.push_to_hub, private=options.private, **card())
        except Exception as exc:  # network, authentication, permissions: the dataset is saved, say why the push failed
            raise CommandError(f"the dataset is saved in {output} but pushing it to {options.push_to_hub} failed: {exc}") from exc
        print(f"dataset pushed to {url}")
