"""The ``trl-processsql`` command line.

Every subcommand imports what it needs only when it runs, so ``--help`` answers at once and
never loads torch. Each ``_run_*`` function returns the process exit code.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]

_DESCRIPTION = """\
Process-supervised text-to-SQL on TRL: models write SQL as chains of CTEs, every step is
executed against the database, and a process reward model scores each step.
"""

_EPILOG = """\
examples:
  trl-processsql execute --db path/to/db.sqlite "SELECT count(*) FROM singer"
  trl-processsql evaluate --sample --predictions gold
  trl-processsql evaluate --questions dev.json --db-dir database/ --predictions pred.sql --output report.json
  trl-processsql build-sft --questions train.json --db-dir database/ --output sft-data --eval-fraction 0.05
  trl-processsql label-steps --sample --sources mutations --output prm-data
"""


def _add_execute(subparsers):
    parser = subparsers.add_parser(
        "execute",
        help="run one query in the read-only sandbox and print the result",
        description="Run one SQL query against a SQLite file in the read-only sandbox (a worker process with a "
        "deadline, row and memory caps) and print the result table or the reason it was refused.",
    )
    parser.add_argument("sql", help="the SQL query (exactly one statement)")
    parser.add_argument("--db", required=True, help="path to the .sqlite file")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds the query may run (default: %(default)s)")
    parser.add_argument("--max-rows", type=int, default=20, help="rows to print (default: %(default)s)")
    parser.set_defaults(run=_run_execute)


def _add_evaluate(subparsers):
    parser = subparsers.add_parser(
        "evaluate",
        help="execution accuracy of predicted SQL (Spider or BIRD semantics)",
        description="Execute predicted and gold SQL on every question's database and report execution accuracy "
        "under the Spider test-suite or the BIRD semantics. Questions whose database file is missing are "
        "skipped and named; errors and timeouts score 0 and are counted apart.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="predictions formats:\n"
        "  .sql/.txt   one query per line, aligned with the questions (Spider; text after a tab is ignored)\n"
        "  .json       BIRD's {\"0\": \"SQL\\t----- bird -----\\tdb_id\", ...}\n"
        "  .jsonl      one {\"index\": i, \"sql\": \"...\"} per line (missing indices score 0)\n"
        "  gold        the gold queries themselves (checks the data and the databases)",
    )
    source = parser.add_argument_group("data")
    source.add_argument("--questions", help="Spider- or BIRD-format questions JSON")
    source.add_argument("--db-dir", help="folder with <db_id>/<db_id>.sqlite")
    source.add_argument("--sample", action="store_true", help="use the sample questions and databases bundled with the package")
    parser.add_argument("--predictions", required=True, help="predictions file, or 'gold' (see formats below)")
    parser.add_argument("--mode", choices=("spider", "bird"), default="spider", help="comparison semantics (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per query (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: one per CPU)")
    parser.add_argument(
        "--remove-distinct",
        action="store_true",
        help="drop DISTINCT from gold and predicted SQL before running, as the Spider test-suite script does by default",
    )
    parser.add_argument("--output", help="write the JSON report here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no table")
    parser.set_defaults(run=_run_evaluate)


def _add_tiny_model(subparsers):
    parser = subparsers.add_parser(
        "tiny-model",
        help="save a small randomly initialised model and tokenizer (for CPU smoke runs)",
        description="Train a byte-level BPE tokenizer on the bundled Spider sample and save it with a small, randomly "
        "initialised Qwen2 model: a policy (causal-lm) or a PRM (token-classification). The smoke recipes start "
        "from these; nothing is downloaded.",
    )
    parser.add_argument("--output", required=True, help="directory to write the checkpoint to")
    parser.add_argument("--kind", choices=("causal-lm", "token-classification"), default="causal-lm", help="(default: %(default)s)")
    parser.add_argument("--hidden-size", type=int, default=64, help="(default: %(default)s)")
    parser.add_argument("--num-layers", type=int, default=2, help="(default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    parser.set_defaults(run=_run_tiny_model)


def _add_build_sft(subparsers):
    parser = subparsers.add_parser(
        "build-sft",
        help="SFT data: gold SQL rewritten as verified chains of CTEs, in TRL's formats",
        description="Rewrite every question's gold SQL as a chain of CTEs, keep the conversions that return the gold "
        "result, and save them with their prompts (schema, evidence, question, instruction) as a datasets folder "
        "for trl.SFTTrainer (save_to_disk; optionally pushed to the Hub with a dataset card). Prints the coverage "
        "and why the other questions were skipped.",
    )
    source = parser.add_argument_group("data")
    source.add_argument("--questions", help="Spider- or BIRD-format questions JSON")
    source.add_argument("--db-dir", help="folder with <db_id>/<db_id>.sqlite")
    source.add_argument("--sample", action="store_true", help="use the sample questions and databases bundled with the package")
    parser.add_argument("--output", required=True, help="directory to save the dataset to (must not exist or be empty)")
    parser.add_argument("--overwrite", action="store_true", help="replace a dataset already saved at --output")
    parser.add_argument(
        "--format",
        choices=("conversational", "prompt-completion"),
        default="conversational",
        help="conversational: prompt and completion are chat messages; prompt-completion: plain strings "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--eval-fraction",
        type=float,
        default=None,
        help="hold out about this share of the rows as a test split, whole databases at a time (default: no test split)",
    )
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: one per CPU)")
    parser.add_argument("--push-to-hub", metavar="REPO", help="also push the dataset and its card to this Hub dataset repository")
    parser.add_argument("--private", action="store_true", help="make the Hub repository private (with --push-to-hub)")
    parser.set_defaults(run=_run_build_sft)


def _run_build_sft(args) -> int:
    import shlex
    import shutil
    from pathlib import Path

    from .data import QuestionFileError, load_questions, sample_paths

    if args.sample:
        if args.questions or args.db_dir:
            return _fail("--sample replaces --questions and --db-dir: give one or the other")
        questions_file, db_dir = sample_paths()
    elif args.questions and args.db_dir:
        questions_file, db_dir = args.questions, args.db_dir
    else:
        return _fail("give --questions and --db-dir, or --sample")
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        return _fail(f"--output {output} is a file, not a directory")
    replace = output.is_dir() and any(output.iterdir())
    if replace and not args.overwrite:
        return _fail(f"--output {output} exists and is not empty (add --overwrite to replace the dataset in it)")
    if replace and not any((output / name).is_file() for name in ("dataset_dict.json", "state.json")):
        return _fail(f"refusing to overwrite {output}: it does not hold a saved dataset")
    if args.eval_fraction is not None and not 0 < args.eval_fraction < 1:
        return _fail(f"--eval-fraction must lie between 0 and 1, got {args.eval_fraction}")
    if args.workers is not None and args.workers < 1:
        return _fail(f"--workers must be at least 1, got {args.workers}")
    if args.private and not args.push_to_hub:
        return _fail("--private applies to --push-to-hub: give both or neither")
    if not Path(db_dir).is_dir():
        return _fail(f"database folder not found: {db_dir}")
    try:
        questions = load_questions(questions_file)
    except QuestionFileError as exc:
        return _fail(str(exc))

    from datasets import DatasetDict

    from .sft_data import build_sft_dataset, sft_card, split_by_database
    from .sql import SQLExecutor

    with SQLExecutor(num_workers=args.workers) as executor:
        dataset, report = build_sft_dataset(questions, db_dir, format=args.format, executor=executor, progress=True)
    for label, value in report.stats().items():
        print(f"{label}: {value}")
        if label == "skipped, no_database":
            print(f"    databases not found in {db_dir}: {', '.join(report.missing_databases)}")
        elif label.startswith("skipped, "):
            gold_sql, detail = report.examples[label.removeprefix("skipped, ")]
            print(f"    e.g. {gold_sql[:120]}\n         -> {detail[:160]}")
    if not report.converted:
        return _fail("no question could be converted: nothing to save")
    try:
        splits = split_by_database(dataset, args.eval_fraction) if args.eval_fraction else DatasetDict({"train": dataset})
    except ValueError as exc:
        return _fail(str(exc))
    if replace:
        shutil.rmtree(output)
    splits.save_to_disk(output)
    sizes = [(name, len(split), len(set(split["db_id"]))) for name, split in splits.items()]
    print(f"dataset written to {output}: " + ", ".join(f"{name} {n} rows ({k} database{'s' * (k != 1)})" for name, n, k in sizes))
    if args.push_to_hub:
        from .hub import push_dataset

        source = ["--sample"] if args.sample else ["--questions", args.questions, "--db-dir", args.db_dir]
        fraction = ["--eval-fraction", str(args.eval_fraction)] if args.eval_fraction else []
        command = shlex.join(["trl-processsql", "build-sft", *source, "--format", args.format, *fraction, "--output", args.output])
        try:
            url = push_dataset(
                splits, args.push_to_hub, private=args.private, **sft_card(splits, report, format=args.format, command=command)
            )
        except Exception as exc:  # network, authentication, permissions: the dataset is saved, say why the push failed
            return _fail(f"the dataset is saved in {output} but pushing it to {args.push_to_hub} failed: {exc}")
        print(f"dataset pushed to {url}")
    return 0


def _add_label_steps(subparsers):
    parser = subparsers.add_parser(
        "label-steps",
        help="PRM data: chains of CTEs with one label per step (mutations, execution, rollouts)",
        description="Label every step of chains of CTEs as right or wrong and save them in TRL's stepwise-supervision "
        "format (prompt, completions, labels) for PRM training: each completion is one step followed by the result of "
        "its executed view (save_to_disk; optionally pushed to the Hub with a dataset card). Prints label statistics.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="sources (--sources, comma separated):\n"
        "  mutations   each question's verified gold chain, and mutants of it with one step changed so that the answer\n"
        "              differs: steps before the change right, the rest wrong (no model needed)\n"
        "  execution   chains sampled from --policy; a step whose view fails is wrong and so is every step after it,\n"
        "              the last step is right when the answer matches the gold's\n"
        "  rollouts    chains sampled from --policy, labelled on top of the execution checks by the share of\n"
        "              --num-rollouts continuations from each step that reach the gold result",
    )
    source = parser.add_argument_group("data")
    source.add_argument("--questions", help="Spider- or BIRD-format questions JSON")
    source.add_argument("--db-dir", help="folder with <db_id>/<db_id>.sqlite")
    source.add_argument("--sample", action="store_true", help="use the sample questions and databases bundled with the package")
    source.add_argument("--limit", type=int, default=None, help="label only the first N questions")
    labels = parser.add_argument_group("labels")
    labels.add_argument("--sources", default="mutations", help="comma-separated: mutations, execution, rollouts (default: %(default)s)")
    labels.add_argument("--mutants-per-question", type=int, default=1, help="mutants kept per gold chain (default: %(default)s)")
    labels.add_argument("--seed", type=int, default=0, help="seed of the mutations and of the sampling (default: %(default)s)")
    labels.add_argument("--mode", choices=("spider", "bird"), default="spider", help="how a result is compared with the gold's (default: %(default)s)")
    policy = parser.add_argument_group("policy (the execution and rollouts sources)")
    policy.add_argument("--policy", metavar="MODEL", help="causal LM that writes the chains and the rollouts (a path or Hub id)")
    policy.add_argument("--samples-per-question", type=int, default=1, help="chains sampled per question (default: %(default)s)")
    policy.add_argument("--num-rollouts", type=int, default=8, help="continuations sampled from each step prefix (default: %(default)s)")
    policy.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default: %(default)s)")
    policy.add_argument("--max-new-tokens", type=int, default=256, help="longest chain or continuation in tokens (default: %(default)s)")
    policy.add_argument("--hard-labels", action="store_true", help="label a step 1 when any rollout reaches gold (default: the share)")
    policy.add_argument(
        "--no-binary-search",
        action="store_true",
        help="roll out from every step prefix instead of bisecting for the first bad step (more rollouts)",
    )
    policy.add_argument("--batch-size", type=int, default=8, help="prompts per generate call (default: %(default)s)")
    policy.add_argument("--device", help="where the policy runs (default: cuda if available, else cpu)")
    parser.add_argument("--output", required=True, help="directory to save the dataset to (must not exist or be empty)")
    parser.add_argument("--overwrite", action="store_true", help="replace a dataset already saved at --output")
    parser.add_argument(
        "--eval-fraction",
        type=float,
        default=None,
        help="hold out about this share of the rows as a test split, whole databases at a time (default: no test split)",
    )
    parser.add_argument("--workers", type=int, default=None, help="SQL worker processes (default: one per CPU)")
    parser.add_argument("--push-to-hub", metavar="REPO", help="also push the dataset and its card to this Hub dataset repository")
    parser.add_argument("--private", action="store_true", help="make the Hub repository private (with --push-to-hub)")
    parser.set_defaults(run=_run_label_steps)


def _label_steps_command(args) -> str:
    """The command line that rebuilds the data, for the dataset card (no Hub or machine options)."""
    import shlex

    words = ["trl-processsql", "label-steps"]
    words += ["--sample"] if args.sample else ["--questions", args.questions, "--db-dir", args.db_dir]
    if args.limit:
        words += ["--limit", str(args.limit)]
    words += ["--sources", args.sources, "--seed", str(args.seed)]
    if "mutations" in args.sources:
        words += ["--mutants-per-question", str(args.mutants_per_question)]
    if args.policy:
        words += ["--policy", args.policy, "--samples-per-question", str(args.samples_per_question)]
        words += ["--temperature", str(args.temperature), "--max-new-tokens", str(args.max_new_tokens), "--mode", args.mode]
    if "rollouts" in args.sources:
        words += ["--num-rollouts", str(args.num_rollouts)]
        words += ["--hard-labels"] * args.hard_labels + ["--no-binary-search"] * args.no_binary_search
    if args.eval_fraction:
        words += ["--eval-fraction", str(args.eval_fraction)]
    return shlex.join([*words, "--output", args.output])


def _run_label_steps(args) -> int:
    import shutil
    from pathlib import Path

    from .data import QuestionFileError, load_questions, sample_paths

    if args.sample:
        if args.questions or args.db_dir:
            return _fail("--sample replaces --questions and --db-dir: give one or the other")
        questions_file, db_dir = sample_paths()
    elif args.questions and args.db_dir:
        questions_file, db_dir = args.questions, args.db_dir
    else:
        return _fail("give --questions and --db-dir, or --sample")
    sources = [name.strip() for name in args.sources.split(",") if name.strip()]
    known = ("mutations", "execution", "rollouts")
    unknown = [name for name in sources if name not in known]
    if unknown or not sources:
        return _fail(f"unknown source in --sources {args.sources!r}: choose from {', '.join(known)}")
    uses_policy = "execution" in sources or "rollouts" in sources
    if uses_policy and not args.policy:
        return _fail("the execution and rollouts sources sample chains from a policy: add --policy MODEL")
    if args.policy and not uses_policy:
        return _fail("--policy is used by the execution and rollouts sources: add one to --sources")
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        return _fail(f"--output {output} is a file, not a directory")
    replace = output.is_dir() and any(output.iterdir())
    if replace and not args.overwrite:
        return _fail(f"--output {output} exists and is not empty (add --overwrite to replace the dataset in it)")
    if replace and not any((output / name).is_file() for name in ("dataset_dict.json", "state.json")):
        return _fail(f"refusing to overwrite {output}: it does not hold a saved dataset")
    for name in ("limit", "workers", "mutants_per_question", "samples_per_question", "num_rollouts", "max_new_tokens", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            return _fail(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if not args.temperature > 0:
        return _fail(f"--temperature must be positive (chains and rollouts are sampled), got {args.temperature}")
    if args.eval_fraction is not None and not 0 < args.eval_fraction < 1:
        return _fail(f"--eval-fraction must lie between 0 and 1, got {args.eval_fraction}")
    if args.private and not args.push_to_hub:
        return _fail("--private applies to --push-to-hub: give both or neither")
    if not Path(db_dir).is_dir():
        return _fail(f"database folder not found: {db_dir}")
    try:
        questions = load_questions(questions_file)[: args.limit]
    except QuestionFileError as exc:
        return _fail(str(exc))

    from datasets import DatasetDict

    from .labeling import label_steps, stepwise_card, stepwise_dataset, stepwise_stats
    from .sft_data import split_by_database
    from .sql import SQLExecutor

    with SQLExecutor(num_workers=args.workers) as executor:
        labeler = None
        if uses_policy:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed

            from .labeling import RolloutLabeler

            device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
            try:
                tokenizer = AutoTokenizer.from_pretrained(args.policy)
                model = AutoModelForCausalLM.from_pretrained(args.policy, dtype="auto").to(device)
            except (OSError, ValueError, RuntimeError) as exc:
                return _fail(f"cannot load the policy {args.policy}: {(str(exc).splitlines() or [type(exc).__name__])[0]}")
            set_seed(args.seed)
            labeler = RolloutLabeler(
                model,
                tokenizer,
                executor,
                num_rollouts=args.num_rollouts,
                temperature=args.temperature,
                max_new_tokens=args.max_new_tokens,
                soft=not args.hard_labels,
                binary_search=not args.no_binary_search,
                batch_size=args.batch_size,
                mode=args.mode,
                progress=True,
            )
        rows, skipped = label_steps(
            questions,
            db_dir,
            executor,
            sources=sources,
            labeler=labeler,
            samples_per_question=args.samples_per_question,
            mutants_per_question=args.mutants_per_question,
            seed=args.seed,
            progress=True,
        )
    print(f"questions: {len(questions)}")
    stats = stepwise_stats(rows, skipped, labeler.counts if labeler else None)
    for label, value in stats.items():
        print(f"{label}: {value}")
    if not rows:
        return _fail("no trajectory was labelled: nothing to save")
    dataset = stepwise_dataset(rows)
    try:
        splits = split_by_database(dataset, args.eval_fraction, seed=args.seed) if args.eval_fraction else DatasetDict({"train": dataset})
    except ValueError as exc:
        return _fail(str(exc))
    if replace:
        shutil.rmtree(output)
    splits.save_to_disk(output)
    sizes = [(name, len(split), len(set(split["db_id"]))) for name, split in splits.items()]
    print(f"dataset written to {output}: " + ", ".join(f"{name} {n} rows ({k} database{'s' * (k != 1)})" for name, n, k in sizes))
    if args.push_to_hub:
        from .hub import push_dataset

        card = stepwise_card(splits, {"questions": str(len(questions)), **stats}, command=_label_steps_command(args))
        try:
            url = push_dataset(splits, args.push_to_hub, private=args.private, **card)
        except Exception as exc:  # network, authentication, permissions: the dataset is saved, say why the push failed
            return _fail(f"the dataset is saved in {output} but pushing it to {args.push_to_hub} failed: {exc}")
        print(f"dataset pushed to {url}")
    return 0


def _run_tiny_model(args) -> int:
    from .tiny import save_tiny_checkpoint

    path = save_tiny_checkpoint(args.output, kind=args.kind, hidden_size=args.hidden_size, num_layers=args.num_layers, seed=args.seed)
    print(f"{args.kind} checkpoint written to {path}")
    return 0


def _run_execute(args) -> int:
    from .sql import ExecutionLimits, SQLExecutor
    from .sql.render import format_table

    try:
        limits = ExecutionLimits(timeout=args.timeout)
    except ValueError as exc:
        return _fail(str(exc))
    with SQLExecutor(num_workers=1, limits=limits) as executor:
        try:
            result = executor.execute(args.db, args.sql)
        except FileNotFoundError as exc:
            return _fail(str(exc))
    if not result.ok:
        return _fail(f"{result.status}: {result.message}")
    print(format_table(result.columns, result.rows, max_rows=args.max_rows))
    print(f"({len(result.rows)} row{'s' * (len(result.rows) != 1)}, {result.elapsed * 1000:.1f} ms)")
    return 0


def _run_evaluate(args) -> int:
    from .data import QuestionFileError, sample_paths
    from .evaluation import PredictionFileError, evaluate_files, print_report

    if args.sample:
        if args.questions or args.db_dir:
            return _fail("--sample replaces --questions and --db-dir: give one or the other")
        questions, db_dir = sample_paths()
    elif args.questions and args.db_dir:
        questions, db_dir = args.questions, args.db_dir
    else:
        return _fail("give --questions and --db-dir, or --sample")
    try:
        report = evaluate_files(
            questions,
            db_dir,
            args.predictions,
            mode=args.mode,
            timeout=args.timeout,
            num_workers=args.workers,
            remove_distinct=args.remove_distinct,
            progress=not args.quiet,
        )
    except (QuestionFileError, PredictionFileError, ValueError) as exc:
        return _fail(str(exc))
    if args.output:
        report.save(args.output)
    if not args.quiet:
        print_report(report)
        if args.output:
            print(f"report written to {args.output}")
    return 0


def _fail(message: str) -> int:
    print(f"trl-processsql: error: {message}", file=sys.stderr)
    return 2


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="trl-processsql",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for add in (_add_execute, _add_evaluate, _add_build_sft, _add_label_steps, _add_tiny_model):
        add(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except KeyboardInterrupt:
        return _fail("interrupted")


if __name__ == "__main__":
    sys.exit(main())
