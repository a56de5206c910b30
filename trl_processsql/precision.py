"""bf16 on the CPU, where the CPU has matrix units for it, in one place.

Recent x86 server CPUs multiply bf16 matrices in hardware (AMX tiles, AVX512-BF16): a matrix
product runs several times faster than in fp32 there, so training under ``torch.autocast`` in bf16
pays (weights and optimizer state stay fp32). Elsewhere bf16 is emulated and slower than fp32.
Training takes it through :func:`~trl_processsql.small_models.cpu_training_args` (autocast),
sampling through :class:`~trl_processsql.inference.TransformersSampler`'s ``bf16`` (a copy of the
weights in bf16: :func:`cpu_inference_model`).
"""

from __future__ import annotations

import contextlib
import copy
import os

__all__ = ["cpu_autocast", "cpu_has_bf16", "cpu_inference_model"]


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (AMX tiles or AVX512-BF16).

    ``PROCESSSQL_CPU_BF16=0`` or ``=1`` overrides the detection.
    """
    forced = os.environ.get("PROCESSSQL_CPU_BF16")
    if forced in ("0", "1"):
        return forced == "1"
    import torch

    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def cpu_autocast(device, bf16: bool | None):
    """A bf16 autocast context on the CPU where ``bf16`` is True, or None and :func:`cpu_has_bf16`; else nothing.

    >>> import torch
    >>> with cpu_autocast(torch.device("cpu"), True):
    ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
    torch.bfloat16
    >>> with cpu_autocast(torch.device("cpu"), False):
    ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
    torch.float32
    """
    import torch

    if getattr(device, "type", device) != "cpu" or not (cpu_has_bf16() if bf16 is None else bf16):
        return contextlib.nullcontext()
    return torch.autocast("cpu", dtype=torch.bfloat16)


def cpu_inference_model(model, bf16: bool | None):
    """The model to generate with: on the CPU with ``bf16`` on (None: where :func:`cpu_has_bf16`), a copy in bf16; else ``model``.

    Under autocast every weight is cast again at every forward call, which is once per generated
    token; a copy cast once costs one pass over the weights, and leaves ``model`` (which may train
    on in fp32 afterwards) as it is.

    >>> import torch
    >>> model = torch.nn.Linear(2, 2)
    >>> cpu_inference_model(model, True).weight.dtype, model.weight.dtype
    (torch.bfloat16, torch.float32)
    >>> cpu_inference_model(model, False) is model
    True
    """
    import torch

    weight = next(model.parameters())
    if weight.device.type != "cpu" or weight.dtype == torch.bfloat16 or not (cpu_has_bf16() if bf16 is None else bf16):
        return model
    return copy.deepcopy(model).to(torch.bfloat16)
