"""Loading the policy and the PRM for inference, with one clear error when a checkpoint will not load.

A checkpoint is a local folder or a Hub id; ``gguf_file`` names a GGUF file in that folder (or
repository), which transformers de-quantizes on load (it needs the ``gguf`` package).
"""

from __future__ import annotations

import os

__all__ = ["BACKENDS", "ModelLoadError", "load_prm", "load_sampler", "resolve_device"]


class ModelLoadError(RuntimeError):
    """A policy or PRM that cannot be loaded, with the reason on one line."""


BACKENDS = ("auto", "transformers", "vllm")  # what load_sampler samples with (auto: vLLM where it can run)

_CHECKPOINT_CONFIGS = ("config.json", "adapter_config.json", "prm_ensemble.json")  # the last: a PRM ensemble (prm.ensemble)


def resolve_device(device: str | None = None) -> str:
    """``device`` as given, or ``cuda`` when a GPU is there, else ``cpu``."""
    if device not in (None, "auto"):
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _reason(exc: BaseException) -> str:
    """The whole message of ``exc`` on one line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return " ".join(lines) if lines else type(exc).__name__


def _check_local(path: str | os.PathLike, what: str, gguf_file: str | None = None) -> None:
    """A path that can only be local (absolute, relative with a dot, or deeper than a Hub id) must exist,
    and a local folder must hold a checkpoint (``config.json``, a PEFT adapter, or the GGUF file named).

    Otherwise transformers would take it for a Hub id, or fail on a missing tokenizer, with a confusing message.
    """
    text = os.fspath(path)
    local = os.path.isabs(text) or text.startswith((".", "~")) or text.count("/") > 1
    if local and not os.path.exists(os.path.expanduser(text)):
        raise ModelLoadError(f"cannot load the {what} from {text}: no such file or directory")
    if os.path.isdir(text) and not gguf_file and not any(os.path.isfile(os.path.join(text, f)) for f in _CHECKPOINT_CONFIGS):
        found = ", ".join(sorted(os.listdir(text))[:8]) or "nothing"
        raise ModelLoadError(
            f"cannot load the {what} from {text}: the folder is not a transformers checkpoint "
            f"(no {', '.join(_CHECKPOINT_CONFIGS[:-1])} or {_CHECKPOINT_CONFIGS[-1]}; it holds {found})"
        )


def _load_causal_lm(path: str | os.PathLike, gguf_file: str | None, device: str, what: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _check_local(path, what, gguf_file)
    if gguf_file and os.path.isdir(path) and not os.path.isfile(os.path.join(path, gguf_file)):
        raise ModelLoadError(f"cannot load the {what}: no GGUF file {gguf_file} in {os.fspath(path)}")
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(path, dtype="auto", **kwargs)
    except (OSError, ValueError, ImportError, RuntimeError) as exc:
        source = f"{path}/{gguf_file}" if gguf_file else str(path)
        raise ModelLoadError(f"cannot load the {what} from {source}: {_reason(exc)}") from exc
    return model.to(device), tokenizer


def load_sampler(
    path: str | os.PathLike,
    *,
    backend: str = "transformers",
    gguf_file: str | None = None,
    device: str | None = None,
    **settings,
):
    """A sampler for the policy at ``path``: :class:`TransformersSampler` or, with ``backend="vllm"``,
    :class:`VLLMSampler` (``backend="auto"`` takes vLLM where it is installed, the device is a GPU and
    no GGUF file is named).

    ``settings`` go to the sampler (``temperature``, ``max_new_tokens``, ``format``, ...).
    """
    from .sampling import TransformersSampler, VLLMSampler

    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: choose transformers, vllm or auto")
    device = resolve_device(device)
    if backend == "auto":
        import importlib.util

        on_gpu = device.startswith("cuda")
        backend = "vllm" if on_gpu and not gguf_file and importlib.util.find_spec("vllm") else "transformers"
    if backend == "vllm":
        settings.pop("batch_size", None)
        try:
            return VLLMSampler(str(path), **settings)
        except Exception as exc:  # vLLM raises many kinds of error while starting an engine
            raise ModelLoadError(f"cannot start vLLM on {path}: {_reason(exc)}") from exc
    model, tokenizer = _load_causal_lm(path, gguf_file, device, "policy")
    try:
        return TransformersSampler(model, tokenizer, **settings)
    except ValueError as exc:
        raise ModelLoadError(f"cannot sample from {path}: {exc}") from exc


def load_prm(
    path: str | os.PathLike,
    *,
    step_tag: str | None = None,
    positive_token: str = "+",
    negative_token: str = "-",
    gguf_file: str | None = None,
    device: str | None = None,
    format: str = "processsql",
    **kwargs,
):
    """A :class:`~trl_processsql.prm.ProcessRewardModel`: a token classifier (what our trainer saves) or,
    with ``step_tag`` or ``format="rewardsql"``, a causal LM scored at the tag (a GGUF file must be one of those).

    Other keyword arguments go to the PRM (``aggregation``, ``batch_size``, ...).
    """
    from ..formats import get_format
    from ..prm.model import ProcessRewardModel

    device = resolve_device(device)
    _check_local(path, "process reward model", gguf_file)
    try:
        verdicts = dict(step_tag=step_tag, positive_token=positive_token, negative_token=negative_token, format=format)
        if gguf_file:
            if step_tag is None and get_format(format).step_tag is None:
                raise ValueError("a GGUF checkpoint is a causal LM: give the step tag it is scored at (step_tag=)")
            model, tokenizer = _load_causal_lm(path, gguf_file, device, "process reward model")
            return ProcessRewardModel(model, tokenizer, **verdicts, **kwargs)
        return ProcessRewardModel.from_pretrained(path, device=device, **verdicts, **kwargs)
    except ModelLoadError:
        raise
    except (OSError, ValueError, ImportError, RuntimeError) as exc:
        raise ModelLoadError(f"cannot load the process reward model from {path}: {_reason(exc)}") from exc
