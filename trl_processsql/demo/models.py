"""The models behind the demo's question mode, loaded through :mod:`trl_processsql.inference`.

Both load from a local directory or a Hub id, with the inference module's errors. The CLI loads
them before serving (a failure exits with code 2); a Space names them and :class:`LazyModel`
loads them on first use, once, so the page comes up at once and a model that fails to load is
reported in the page while the rest keeps working. The inference module (torch, transformers)
is imported only when a model loads.
"""

from __future__ import annotations

import os
import threading
from typing import Callable

from .databases import DemoError

__all__ = ["LazyModel", "Policy", "load_policy", "load_prm"]


class Policy:
    """One policy model behind two samplers: greedy for a single answer, temperature 1 for best-of-N
    (the paper samples its candidates at T = 1.0); ``prompt_style`` is the prompt it was trained on."""

    def __init__(self, greedy):
        from ..inference import TransformersSampler
        from ..prompts import saved_prompt_style

        self.greedy = greedy
        self.prompt_style = saved_prompt_style(greedy.model.config)
        self.sampling = TransformersSampler(
            greedy.model, greedy.tokenizer, temperature=1.0, max_new_tokens=greedy.max_new_tokens, format=greedy.format
        )

    def sampler(self, n: int):
        """The sampler for ``n`` candidates."""
        return self.greedy if n == 1 else self.sampling


def load_policy(name_or_path: str | os.PathLike, max_new_tokens: int = 512, format: str = "processsql") -> Policy:
    """Load a policy checkpoint (on the GPU if there is one) that reads ``format``; raises ``ModelLoadError`` with the reason."""
    from ..inference import load_sampler

    return Policy(load_sampler(name_or_path, temperature=0.0, max_new_tokens=max_new_tokens, format=format))


def load_prm(name_or_path: str | os.PathLike, format: str = "processsql"):
    """Load a PRM as a ``ProcessRewardModel``: a token classifier (what ``ProcessRewardTrainer`` saves), or
    the causal LM of the ``rewardsql`` format."""
    from ..inference import load_prm as load

    return load(name_or_path, format=format)


class LazyModel:
    """A model given as itself, as a name to load on first use, or as nothing.

    ``get()`` returns the model (``None`` when none was given). A load that fails raises a
    :class:`DemoError` with the reason, on that call and every later one, without trying again.
    """

    def __init__(self, model, loader: Callable):
        self.name = model if isinstance(model, (str, os.PathLike)) else None
        self._model = None if self.name is not None else model
        self._loader = loader
        self._error: DemoError | None = None
        self._lock = threading.Lock()

    @property
    def given(self) -> bool:
        return self.name is not None or self._model is not None

    def get(self):
        with self._lock:
            if self._model is None and self.name is not None and self._error is None:
                from ..inference import ModelLoadError

                try:
                    self._model = self._loader(self.name)
                except ModelLoadError as exc:
                    self._error = DemoError(str(exc))
            if self._error is not None:
                raise self._error
            return self._model
