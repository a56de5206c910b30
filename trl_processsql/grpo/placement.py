"""Where the PRM lives during PRM-GRPO: whole on every process, in the training dtype, never wrapped.

The PRM only scores (no gradient, no optimizer state), so sharding it would buy little memory and
cost a gather per forward pass. But a launcher's settings reach every ``from_pretrained`` in the
process: under ZeRO-3 with ``zero3_init_flag``, any model built after the training arguments is
partitioned at init (its parameters become empty placeholders that only a DeepSpeed engine can
use). :func:`whole_model_loading` turns that off while the PRM loads; :func:`place_prm` then casts
it to the dtype the policy computes in (bf16 or fp16 mixed precision) on the process's own device.
Under FSDP nothing is needed at load time: transformers 5 loads the real weights on every process,
including with ``cpu_ram_efficient_loading`` (the tests check both layouts).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

__all__ = ["place_prm", "training_dtype", "whole_model_loading"]


@contextmanager
def whole_model_loading():
    """Models loaded inside are whole on this process, even where ZeRO-3 would partition them at init."""
    from transformers.integrations import deepspeed as hf_deepspeed

    reference = hf_deepspeed._hf_deepspeed_config_weak_ref  # what transformers reads to decide on zero.Init
    deepspeed_config = reference() if reference is not None else None
    hf_deepspeed.unset_hf_deepspeed_config()
    try:
        yield
    finally:
        if deepspeed_config is not None:
            hf_deepspeed.set_hf_deepspeed_config(deepspeed_config)


def training_dtype(args) -> torch.dtype | None:
    """The dtype mixed precision computes in (``bf16`` or ``fp16``), or None for full precision.

    >>> from types import SimpleNamespace
    >>> training_dtype(SimpleNamespace(bf16=True, fp16=False)), training_dtype(SimpleNamespace(bf16=False, fp16=False))
    (torch.bfloat16, None)
    """
    return torch.bfloat16 if args.bf16 else torch.float16 if args.fp16 else None


def place_prm(model: torch.nn.Module, device: torch.device, args) -> torch.nn.Module:
    """``model`` on ``device`` in the training dtype (unchanged in full precision), in eval mode."""
    return model.to(device=device, dtype=training_dtype(args)).eval()
