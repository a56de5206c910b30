"""The models behind the demo's question mode: a policy that writes one CoCTE, and a PRM.

Both load from a local directory or a Hub id. A model that cannot load raises
:class:`ModelLoadError` with the reason: the CLI prints it and exits with code 2, the page
shows it. :class:`LazyModel` loads on first use, once, so a Space starts at once and a model
that fails to load leaves the rest of the page working.
"""

from __future__ import annotations

import os
import threading
from typing import Callable

__all__ = ["LazyModel", "ModelLoadError", "Policy", "load_policy", "load_prm"]


class ModelLoadError(RuntimeError):
    """A policy or PRM that cannot be loaded, with the reason."""


class Policy:
    """A causal LM with a chat template that answers a question with one completion (greedy)."""

    def __init__(self, model, tokenizer, max_new_tokens: int = 512):
        if not getattr(tokenizer, "chat_template", None):
            raise ModelLoadError("the policy's tokenizer has no chat template: the demo prompts it as a conversation")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens

    def generate(self, messages: list[dict]) -> str:
        """The completion for a conversation (the prompt from :func:`~trl_processsql.prompts.prompt_messages`)."""
        import torch

        inputs = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(self.model.device)
        pad_token_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        with torch.inference_mode():
            output = self.model.generate(
                **inputs, max_new_tokens=self.max_new_tokens, do_sample=False, pad_token_id=pad_token_id
            )
        return self.tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


def load_policy(name_or_path: str | os.PathLike, max_new_tokens: int = 512) -> Policy:
    """Load a policy checkpoint (local directory or Hub id) on the GPU if there is one."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype="auto")
    except Exception as exc:  # OSError, ValueError, a bad config: anything means "cannot load"
        raise ModelLoadError(f"cannot load a policy model from {name_or_path}: {_first_line(exc)}") from exc
    if torch.cuda.is_available():
        model = model.to("cuda")
    return Policy(model, tokenizer, max_new_tokens)


def load_prm(name_or_path: str | os.PathLike):
    """Load a token-classification PRM (what ``ProcessRewardTrainer`` saves) as a ``ProcessRewardModel``."""
    import torch

    from ..prm.model import ProcessRewardModel

    try:
        return ProcessRewardModel.from_pretrained(name_or_path, device="cuda" if torch.cuda.is_available() else None)
    except Exception as exc:
        raise ModelLoadError(f"cannot load a process reward model from {name_or_path}: {_first_line(exc)}") from exc


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


class LazyModel:
    """A model given as itself, as a name to load on first use, or as nothing.

    ``get()`` returns the model (``None`` when none was given) and raises the same
    :class:`ModelLoadError` on every call after a load failed, without trying again.
    """

    def __init__(self, model, loader: Callable):
        self.name = model if isinstance(model, (str, os.PathLike)) else None
        self._model = None if self.name is not None else model
        self._loader = loader
        self._error: ModelLoadError | None = None
        self._lock = threading.Lock()

    @property
    def given(self) -> bool:
        return self.name is not None or self._model is not None

    def get(self):
        with self._lock:
            if self._model is None and self.name is not None and self._error is None:
                try:
                    self._model = self._loader(self.name)
                except ModelLoadError as exc:
                    self._error = exc
            if self._error is not None:
                raise self._error
            return self._model
