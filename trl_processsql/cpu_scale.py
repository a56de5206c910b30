"""Training small models on a CPU: moved to :mod:`trl_processsql.small_models` (this alias goes in the next release)."""

import warnings

from .small_models.training import *  # noqa: F403
from .small_models.training import __all__  # noqa: F401

warnings.warn(
    "trl_processsql.cpu_scale moved: import from trl_processsql.small_models (trl_processsql.cpu_scale goes in the next release)",
    FutureWarning,
    stacklevel=2,
)
