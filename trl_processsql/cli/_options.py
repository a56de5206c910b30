"""Command options as dataclasses: one field makes the argparse option, the value and its part of a card's command line.

A field is declared with :func:`option`; its annotation gives the type (``bool`` fields are flags),
its metadata the help, choices, group and whether a dataset card's command line repeats it.
The parser is built here rather than with ``HfArgumentParser`` so that ``--help`` imports no
transformers, and so that commands keep their positional arguments and argument groups.
"""

from __future__ import annotations

import dataclasses
import shlex
from typing import Any, Callable

__all__ = ["CommandError", "Options", "add_options", "command_line", "from_namespace", "option", "shared_settings"]

_TYPES = {"int": int, "float": float}


class CommandError(ValueError):
    """Why a command cannot run or stopped: options that do not go together, a missing file, a model that will not load."""


class Options:
    """Base of the options classes: each class in the hierarchy may define ``check`` to validate its own fields."""

    def __post_init__(self):
        for klass in reversed(type(self).__mro__):
            if "check" in vars(klass):
                vars(klass)["check"](self)


def option(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    choices=None,
    metavar: str | None = None,
    positional: bool = False,
    nargs: str | None = None,
    group: str | None = None,
    default_factory: Callable[[], Any] | None = None,
    card: bool | Callable[[Any], bool] = False,
    card_rank: int = 0,
    shared: bool = False,
):
    """A dataclass field that is also a command-line option.

    ``group`` names an argument group (its title may be overridden by the class's ``GROUPS``);
    ``card`` says whether (or, a predicate of the options, when) the dataset card's command line
    repeats the option, and ``card_rank`` moves it towards the end of that line (the output last);
    ``shared`` marks the settings every shard of one run must share.
    """
    metadata = dict(help=help, choices=choices, metavar=metavar, positional=positional, nargs=nargs, group=group,
                    card=card, card_rank=card_rank, shared=shared)
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _default(field: dataclasses.Field):
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def add_options(parser, cls) -> None:
    """Add one argparse argument per field of ``cls``, in field order, each in its group."""
    groups: dict[str, Any] = {}
    titles = getattr(cls, "GROUPS", {})
    for field in dataclasses.fields(cls):
        meta = field.metadata
        if meta.get("group"):
            title = titles.get(meta["group"], meta["group"])
            if title not in groups:
                groups[title] = parser.add_argument_group(title)
            target = groups[title]
        else:
            target = parser
        kwargs = {"help": meta["help"]}
        for key in ("choices", "metavar", "nargs"):
            if meta[key] is not None:
                kwargs[key] = meta[key]
        kind = str(field.type).removesuffix(" | None")
        default = _default(field)
        if kind == "bool":
            kwargs["action"] = "store_true"
        else:
            if kind in _TYPES:
                kwargs["type"] = _TYPES[kind]
            if default is not dataclasses.MISSING:
                kwargs["default"] = default
            elif not meta["positional"]:
                kwargs["required"] = True
        if meta["positional"]:
            target.add_argument(field.name, **kwargs)
        else:
            target.add_argument("--" + field.name.replace("_", "-"), **kwargs)


def from_namespace(cls, namespace):
    """The options ``cls`` from parsed arguments; the class's checks raise :class:`CommandError`."""
    return cls(**{field.name: getattr(namespace, field.name) for field in dataclasses.fields(cls)})


def shared_settings(options) -> dict:
    """The values of the fields marked ``shared``, by name."""
    return {f.name: getattr(options, f.name) for f in dataclasses.fields(options) if f.metadata.get("shared")}


def command_line(command: str, options) -> str:
    """The ``trl-processsql`` command line that repeats the options marked for the card."""
    words = ["trl-processsql", command]
    for field in sorted(dataclasses.fields(options), key=lambda f: f.metadata.get("card_rank", 0)):
        card, value = field.metadata.get("card"), getattr(options, field.name)
        if not card or (callable(card) and not card(options)) or value is None or value is False:
            continue
        if field.metadata["positional"]:
            words += [str(v) for v in value] if isinstance(value, list) else [str(value)]
        elif value is True:
            words.append("--" + field.name.replace("_", "-"))
        else:
            words += ["--" + field.name.replace("_", "-"), str(value)]
    return shlex.join(words)
