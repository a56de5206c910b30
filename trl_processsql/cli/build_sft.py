"""``trl-processsql build-sft``: gold SQL rewritten as verified chains of CTEs, saved as SFT data."""

from __future__ import annotations

from dataclasses import dataclass

from ..prompts import PROMPT_STYLES
from ..sft_data import SFT_FORMATS
from ._common import DataOptions
from ._datasets import DatasetOptions, prepare_output, save_and_push
from ._options import CommandError, command_line, option

DESCRIPTION = (
    "Rewrite every question's gold SQL as a chain of CTEs, keep the conversions that return the gold "
    "result, and save them with their prompts (in --prompt-style) as a datasets folder for trl.SFTTrainer "
    "(save_to_disk; optionally pushed to the Hub with a dataset card). The folder's processsql_sft.json records "
    "the prompt style, which the SFT script writes into the model's config so that inference builds the same "
    "prompt. Prints the coverage and why the other questions were skipped."
)


@dataclass(kw_only=True)
class BuildSftOptions(DatasetOptions, DataOptions):
    format: str = option(
        "conversational",
        choices=SFT_FORMATS,
        help="conversational: prompt and completion are chat messages; prompt-completion: plain strings (default: %(default)s)",
        card=True,
    )
    prompt_style: str = option(
        "full",
        choices=PROMPT_STYLES,
        help="full: the instruction, the schema with example values and the question, for large models; tables: one "
        "line per table with its columns, the foreign keys and the question, for small pretrained models trained on "
        "a CPU; compact: the database name and the question, for small models trained from scratch "
        "(default: %(default)s)",
        card=True,
    )


OPTIONS = BuildSftOptions


def run(options: BuildSftOptions) -> int:
    import json

    output, replace = prepare_output(options)
    questions, db_dir = options.load()

    from datasets import DatasetDict

    from ..sft_data import build_sft_dataset, sft_card, split_by_database
    from ..sql import SQLExecutor

    with SQLExecutor(num_workers=options.workers) as executor:
        dataset, report = build_sft_dataset(
            questions, db_dir, format=options.format, prompt_style=options.prompt_style, executor=executor, progress=True
        )
    for label, value in report.stats().items():
        print(f"{label}: {value}")
        if label == "skipped, no_database":
            print(f"    databases not found in {db_dir}: {', '.join(report.missing_databases)}")
        elif label.startswith("skipped, "):
            gold_sql, detail = report.examples[label.removeprefix("skipped, ")]
            print(f"    e.g. {gold_sql[:120]}\n         -> {detail[:160]}")
    if not report.converted:
        raise CommandError("no question could be converted: nothing to save")
    try:
        splits = split_by_database(dataset, options.eval_fraction) if options.eval_fraction else DatasetDict({"train": dataset})
    except ValueError as exc:
        raise CommandError(str(exc)) from exc

    def record_prompt_style(folder):
        # beside the data, where trl_processsql.scripts.sft reads it into the model's config (DATA_RECORD)
        (folder / "processsql_sft.json").write_text(json.dumps({"prompt_style": options.prompt_style}) + "\n")

    card = lambda: sft_card(splits, report, format=options.format, command=command_line("build-sft", options))  # noqa: E731
    save_and_push(splits, output, replace, options, card, beside=record_prompt_style)
    return 0
