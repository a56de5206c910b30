"""``trl-processsql tiny-model``: a small random checkpoint for CPU smoke runs."""

from __future__ import annotations

from dataclasses import dataclass

from ..small_models.models import MODEL_KINDS
from ._options import Options, option

DESCRIPTION = (
    "Train a byte-level BPE tokenizer on the bundled Spider sample and save it with a small, randomly "
    "initialised Qwen2 model: a policy (causal-lm) or a PRM (token-classification). The smoke recipes start "
    "from these; nothing is downloaded."
)


@dataclass(kw_only=True)
class TinyModelOptions(Options):
    output: str = option(help="directory to write the checkpoint to")
    kind: str = option(
        "causal-lm",
        choices=MODEL_KINDS,
        help="causal-lm: a policy that writes SQL; token-classification: a PRM with one score per token (default: %(default)s)",
    )
    hidden_size: int = option(64, help="width of the model; its MLP is twice as wide (default: %(default)s)")
    num_layers: int = option(2, help="transformer layers (default: %(default)s)")
    seed: int = option(0, help="seed of the random initial weights (default: %(default)s)")


OPTIONS = TinyModelOptions


def run(options: TinyModelOptions) -> int:
    from ..small_models.models import save_tiny_checkpoint

    path = save_tiny_checkpoint(
        options.output, kind=options.kind, hidden_size=options.hidden_size, num_layers=options.num_layers, seed=options.seed
    )
    print(f"{options.kind} checkpoint written to {path}")
    return 0
