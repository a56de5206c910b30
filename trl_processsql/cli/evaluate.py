"""``trl-processsql evaluate``: execution accuracy of predicted SQL, optionally predicting first."""

from __future__ import annotations

from dataclasses import dataclass

from ..sql.compare import COMPARISON_MODES
from ._common import DataOptions
from ._options import CommandError, option
from .predict import ModelOptions, predict_to_file

DESCRIPTION = (
    "Execute predicted and gold SQL on every question's database and report execution accuracy "
    "under the Spider test-suite or the BIRD semantics. Questions whose database file is missing are "
    "skipped and named; errors and timeouts score 0 and are counted apart."
)
EPILOG = (
    "predictions files:\n"
    "  .sql/.txt   one query per line, aligned with the questions (Spider; text after a tab is ignored)\n"
    "  .json       BIRD's {\"0\": \"SQL\\t----- bird -----\\tdb_id\", ...}\n"
    "  .jsonl      one {\"index\": i, \"sql\": \"...\"} per line (missing indices score 0)\n"
    "  gold        the gold queries themselves (checks the data and the databases)"
)
RAW = True


@dataclass(kw_only=True)
class EvaluateOptions(ModelOptions, DataOptions):
    GROUPS = {"model": "predicting first (with --model: predictions are written next to --output as <name>.predictions.jsonl)"}

    predictions: str | None = option(None, help="predictions file, or 'gold' (see predictions files below); not with --model")
    mode: str = option("spider", choices=tuple(COMPARISON_MODES), help="comparison semantics (default: %(default)s)")
    timeout: float = option(30.0, help="seconds per query (default: %(default)s)")
    workers: int | None = option(None, help="worker processes (default: one per CPU)")
    remove_distinct: bool = option(
        False, help="drop DISTINCT from gold and predicted SQL before running, as the Spider test-suite script does by default"
    )
    test_suite_dir: str | None = option(
        None,
        metavar="DIR",
        help="Spider test-suite databases (DIR/<db_id>/*.sqlite): a prediction is right only if it matches the gold on "
        "its own database and on every neighbour; the report names the first database where it failed",
    )
    output: str | None = option(None, help="write the JSON report here")
    quiet: bool = option(False, help="no progress bar and no table: only the one-line result")

    def check(self):
        if self.model and self.predictions:
            raise CommandError("--model writes its own predictions: give --predictions or --model, not both")
        if self.model and not self.output:
            raise CommandError("--model needs --output: the predictions are written next to the report")
        if not self.model and not self.predictions:
            raise CommandError("give --predictions, or --model to predict first")
        if not self.model and self.limit is not None:
            raise CommandError("--limit applies to predicting: give it with --model")
        if self.model:
            self.check_model()


OPTIONS = EvaluateOptions


def run(options: EvaluateOptions) -> int:
    from ..data import QuestionFileError
    from ..evaluation import PredictionFileError, evaluate_files, print_report

    questions, db_dir = options.paths()
    predictions = options.predictions
    if options.model:
        from pathlib import Path

        predictions = str(Path(options.output).with_suffix(".predictions.jsonl"))
        predict_to_file(options, *options.load(options.limit), predictions, quiet=options.quiet)
    settings = dict(
        mode=options.mode,
        timeout=options.timeout,
        num_workers=options.workers,
        remove_distinct=options.remove_distinct,
        test_suite_dir=options.test_suite_dir,
        progress=not options.quiet,
    )
    try:
        if options.limit is not None:  # score the questions that were predicted, not the others as missing
            from ..data import load_questions
            from ..evaluation import evaluate, load_predictions

            subset = load_questions(questions)[: options.limit]
            report = evaluate(subset, load_predictions(predictions, subset), db_dir, **settings)
            report.settings.update(questions=str(questions), db_dir=str(db_dir), predictions=predictions, limit=options.limit)
        else:
            report = evaluate_files(questions, db_dir, predictions, **settings)
    except (QuestionFileError, PredictionFileError, ValueError) as exc:
        raise CommandError(str(exc)) from exc
    if options.model:
        report.settings.update(
            model=options.model, prm=options.prm, strategy=options.strategy, n=options.n, aggregation=options.aggregation,
            format=options.format,
        )
    if options.output:
        report.save(options.output)
    if options.quiet:
        print(report.summary())
    else:
        print_report(report)
        if options.output:
            print(f"report written to {options.output}")
    failures = report.gold_failures()
    if failures and len(failures) == report.totals["n"]:
        first = failures[0]
        raise CommandError(
            f"every gold query failed, so nothing was scored; e.g. question {first['index']} ({first['db_id']}): {first['message']}"
        )
    return 0
