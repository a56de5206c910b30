"""``trl-processsql sweep``: accuracy against the number of candidates, from a predict JSONL file."""

from __future__ import annotations

from dataclasses import dataclass

from ..prm.aggregation import AGGREGATIONS
from ..sql.compare import COMPARISON_MODES
from ._common import DataOptions
from ._options import CommandError, option

DESCRIPTION = (
    "Replay every selection method on the first k candidates of each question of a predict JSONL "
    "file, for k = 1, 2, 4, ..., N (or, with --resamples, on random subsets of size k, averaged): pass@k (some "
    "candidate is right), maj@k (execution vote), PRM best-of-k and PRM vote@k for each aggregation. Each "
    "distinct candidate query runs once and is judged against the gold once, as the evaluator judges. Writes "
    "sweep.json, sweep.csv and sweep.png (accuracy against k on a log2 axis) to --output-dir and prints the table."
)


@dataclass(kw_only=True)
class SweepOptions(DataOptions):
    predictions: str = option(positional=True, help="a JSONL file written by trl-processsql predict (every candidate kept)")
    output_dir: str = option(help="folder for sweep.json, sweep.csv and sweep.png")
    greedy: str | None = option(None, metavar="JSONL", help="predictions of a greedy run on the same questions: drawn as a flat line")
    resamples: int | None = option(None, help="average over this many random subsets of size k (default: the first k)")
    seed: int = option(0, help="seed of the random subsets (default: %(default)s)")
    aggregations: str = option(
        ",".join(AGGREGATIONS), help="comma-separated step-score aggregations of the PRM methods (default: %(default)s)"
    )
    mode: str = option("spider", choices=tuple(COMPARISON_MODES), help="comparison semantics (default: %(default)s)")
    timeout: float = option(30.0, help="seconds per query (default: %(default)s)")
    workers: int | None = option(None, help="SQL worker processes (default: one per CPU)")
    title: str | None = option(None, help="title of the plot (default: the number of questions and how subsets were drawn)")
    no_plot: bool = option(False, help="write the JSON and CSV only (no matplotlib needed)")

    def check(self):
        if any(name not in AGGREGATIONS for name in self.aggregation_names()):
            raise CommandError(f"unknown aggregation in --aggregations {self.aggregations!r}: choose from {', '.join(AGGREGATIONS)}")
        if self.resamples is not None and self.resamples < 1:
            raise CommandError(f"--resamples must be at least 1, got {self.resamples}")

    def aggregation_names(self) -> list[str]:
        return [name.strip() for name in self.aggregations.split(",") if name.strip()]


OPTIONS = SweepOptions


def run(options: SweepOptions) -> int:
    import importlib.util
    from pathlib import Path

    from ..evaluation import PredictionFileError

    if not options.no_plot and importlib.util.find_spec("matplotlib") is None:
        raise CommandError("the plot needs matplotlib: pip install 'trl-processsql[plot]' (or add --no-plot)")
    questions, db_dir = options.load()
    from ..sweep import judge_pools, load_records, plot_sweep, sweep

    try:
        records = load_records(options.predictions, questions)
        greedy = None
        if options.greedy:
            chosen = {r["index"]: r["sql"] for r in load_records(options.greedy, questions)}
            greedy = [chosen.get(r["index"]) for r in records]
    except PredictionFileError as exc:
        raise CommandError(str(exc)) from exc

    from ..sql import ExecutionLimits, SQLExecutor

    with SQLExecutor(num_workers=options.workers, limits=ExecutionLimits(timeout=options.timeout)) as executor:
        try:
            pools, greedy_right, gold_failures = judge_pools(
                records, questions, db_dir, executor, mode=options.mode, extra_sql=greedy or (), progress=True
            )
        except FileNotFoundError as exc:
            raise CommandError(str(exc)) from exc
    result = sweep(
        pools, aggregations=options.aggregation_names(), mode=options.mode, resamples=options.resamples, seed=options.seed,
        progress=True,
    )
    if greedy is not None:
        result.greedy = sum(greedy_right) / len(greedy_right)
    questions_source = "sample" if options.sample else str(options.questions)
    result.settings.update(predictions=options.predictions, questions=questions_source, gold_failures=gold_failures)
    output = Path(options.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    result.save_json(output / "sweep.json")
    result.save_csv(output / "sweep.csv")
    print(result.table())
    if gold_failures:
        print(f"{gold_failures} gold queries failed: their questions count as wrong")
    written = ["sweep.json", "sweep.csv"]
    if not options.no_plot:
        plot_sweep(result, output / "sweep.png", title=options.title)
        written.append("sweep.png")
    print(f"{len(pools)} questions; {', '.join(written)} written to {output}")
    return 0
