"""``python -m trl_processsql``: the ``trl-processsql`` command line."""

import sys

from .cli import main

sys.exit(main())
