"""The ``trl-processsql`` command line: one module per command, each a thin layer over the library.

A command module holds its help texts, its options dataclass ``OPTIONS`` (which makes its argparse
options, see ``_options``) and ``run(options)``, which returns the exit code or raises ``CommandError``. Commands import what they need
only when they run, so that ``--help`` answers at once.
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

COMMANDS = (
    "quickstart", "execute", "evaluate", "predict", "sweep", "build_sft", "label_steps", "merge_labels", "ensemble_prms",
    "tiny_model", "base_model", "demo", "space",
)  # the modules of this package, in the order --help lists them


_RENAMED = {"analyze": "sweep"}  # old command name -> new: it still runs, with a warning, for one release


def _runner(module):
    def run(args) -> int:
        return module.run(from_namespace(module.OPTIONS, args))

    return run


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="trl-processsql",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    for name in COMMANDS:
        module = importlib.import_module(f"{__name__}.{name}")
        raw = getattr(module, "RAW", False)  # keep the line breaks of its description and epilog
        command = subparsers.add_parser(
            name.replace("_", "-"),
            help=module.HELP,
            description=module.DESCRIPTION,
            epilog=getattr(module, "EPILOG", None),
            formatter_class=argparse.RawDescriptionHelpFormatter if raw else argparse.HelpFormatter,
            aliases=[old for old, new in _RENAMED.items() if new == name],
        )
        add_options(command, module.OPTIONS)
        command.set_defaults(run=_runner(module))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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
