"""``trl-processsql ensemble-prms``: PRMs trained alike saved as one that scores with their mean."""

from __future__ import annotations

from dataclasses import dataclass

from ._options import CommandError, Options, option

DESCRIPTION = (
    "Write saved token-classification PRMs (folders as ProcessRewardTrainer saved them, with one "
    "tokenizer) as one ensemble folder: ProcessRewardModel.from_pretrained, predict --prm, evaluate --prm, the demo "
    "and PRM-GRPO then score every step with the mean of the members' scores. PRMs that differ only in their "
    "training seed disagree most on errors none of them was trained on, where one seed's verdict is partly luck "
    "and the mean's does not hang on one draw (benchmarks/bench_selection.py measures it against its members); "
    "each step costs one forward pass per member."
)


@dataclass(kw_only=True)
class EnsemblePrmsOptions(Options):
    members: list[str] = option(positional=True, nargs="+", metavar="PRM", help="two saved PRM folders or more")
    output: str = option(help="the ensemble folder to write (must not exist or be empty)")


OPTIONS = EnsemblePrmsOptions


def run(options: EnsemblePrmsOptions) -> int:
    import shutil
    from pathlib import Path

    output = Path(options.output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise CommandError(f"--output {output} exists and is not an empty folder")
    for member in options.members:
        if not (Path(member) / "config.json").is_file():
            raise CommandError(f"{member} is not a saved model folder (no config.json)")

    from ..inference import ModelLoadError, load_prm
    from ..prm import save_prm_ensemble

    try:
        save_prm_ensemble(options.members, output)
        prm = load_prm(str(output))  # a member that cannot score stops here, and no half-made ensemble stays
    except (ValueError, OSError, ModelLoadError) as exc:
        shutil.rmtree(output, ignore_errors=True)
        raise CommandError(str(exc)) from exc
    print(f"{len(options.members)} PRMs written to {output} as one: ProcessRewardModel.from_pretrained({str(output)!r}) "
          f"scores each step with the mean of theirs ({sum(p.numel() for p in prm.model.parameters()) / 1e6:.1f}M parameters in all)")
    return 0
