"""``python -m trl_processsql.cli``."""

import sys

from . import main

sys.exit(main())
