"""``trl-processsql demo``: the Gradio demo, served locally."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..formats import FORMATS
from ._options import CommandError, Options, option

DESCRIPTION = (
    "Start the Gradio demo locally: pick a bundled Spider database or upload a SQLite file, paste SQL "
    "to see it as chain-of-CTE steps with every intermediate view executed, or (with --model) ask a question "
    "and see the model's steps, scored by the PRM with --prm. Needs gradio: from a clone, pip install -e \".[demo]\"."
)


@dataclass(kw_only=True)
class DemoOptions(Options):
    model: str | None = option(None, help="policy checkpoint (local directory or Hub id) that answers questions")
    prm: str | None = option(None, help="process reward model checkpoint (local directory or Hub id) that scores steps")
    format: str = option(
        "processsql",
        choices=FORMATS,
        help="input format of the models: processsql (what trl-processsql trains) or rewardsql (the paper's released "
        "checkpoints: the paper's own prompt as plain text, causal-LM PRM at the tag ' и'; see predict --help) (default: %(default)s)",
    )
    host: str = option(
        default_factory=lambda: os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        help="address to serve on; $GRADIO_SERVER_NAME, else 127.0.0.1 (now: %(default)s)",
    )
    port: int = option(
        default_factory=lambda: int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        help="port to serve on; $GRADIO_SERVER_PORT, else 7860 (now: %(default)s)",
    )
    share: bool = option(False, help="also open a public gradio.live link")


OPTIONS = DemoOptions


def run(options: DemoOptions) -> int:
    try:
        import gradio  # noqa: F401
    except ImportError as exc:
        raise CommandError('the demo needs gradio: from a clone of the repository, pip install -e ".[demo]"') from exc
    from ..demo.app import build_demo, launch
    from ..demo.models import load_policy, load_prm

    model = prm = None
    if options.model or options.prm:  # load before serving, so that a bad checkpoint stops here with its reason
        from ..inference import ModelLoadError

        try:
            model = load_policy(options.model, format=options.format) if options.model else None
            prm = load_prm(options.prm, format=options.format) if options.prm else None
        except ModelLoadError as exc:
            raise CommandError(str(exc)) from exc
    try:
        launch(build_demo(model, prm), server_name=options.host, server_port=options.port, share=options.share)
    except OSError as exc:  # the port is taken, the address cannot be bound
        raise CommandError(f"cannot serve on {options.host}:{options.port}: {exc}") from exc
    return 0
