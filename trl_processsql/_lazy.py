"""Lazy package namespaces: a name loads its submodule (and torch, transformers or trl if that needs them) on first use.

``import trl_processsql.prm.aggregation`` must not pay for the PRM trainer's imports just because the
package ``__init__`` ran, so every package lists its names here instead of importing them.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Callable


def lazy_namespace(
    package: str, exports: dict[str, tuple[str, ...]], moved: dict[str, str] | None = None
) -> tuple[list[str], Callable, Callable]:
    """``__all__``, ``__getattr__`` and ``__dir__`` for ``package``.

    ``exports`` maps a submodule (relative to ``package``) to the names it gives the package. ``moved`` maps a
    name that no longer belongs to the package to the module that holds it now: it still resolves, with a
    ``FutureWarning`` naming its new home, for one release. A name its own submodule shares (``predict`` in
    ``predict.py``) is bound now: importing that submodule later would otherwise bind the module under the name.
    """
    module_of = {name: module for module, names in exports.items() for name in names}
    moved = moved or {}
    namespace = importlib.import_module(package)
    for name, module in module_of.items():
        if name == module:
            setattr(namespace, name, getattr(importlib.import_module(f".{module}", package), name))

    def __getattr__(name: str):
        if name in module_of:
            value = getattr(importlib.import_module(f".{module_of[name]}", package), name)
            setattr(namespace, name, value)  # later lookups skip this function, and a submodule of that name is shadowed
            return value
        if name in moved:
            warnings.warn(
                f"{package}.{name} moved: import it from {moved[name]} ({package}.{name} goes in the next release)",
                FutureWarning,
                stacklevel=2,
            )
            return getattr(importlib.import_module(moved[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    public = sorted(module_of)

    def __dir__() -> list[str]:
        return sorted(set(vars(namespace)) | set(public))

    return public, __getattr__, __dir__
