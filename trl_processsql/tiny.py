"""Tiny random models and a local tokenizer: moved to :mod:`trl_processsql.small_models` (this alias goes in the next release)."""

import warnings

from .small_models.models import *  # noqa: F403
from .small_models.models import __all__  # noqa: F401

warnings.warn(
    "trl_processsql.tiny moved: import from trl_processsql.small_models (trl_processsql.tiny goes in the next release)",
    FutureWarning,
    stacklevel=2,
)
