"""Hugging Face Space entry point: the trl-processsql demo, configured by the Space's variables.

``PROCESSSQL_MODEL`` (a policy checkpoint) and ``PROCESSSQL_PRM`` (a process reward model) are
Hub ids or paths, loaded on first use; without them the Space explains pasted SQL only. The app
itself lives in the package (``trl_processsql.demo``), so ``trl-processsql demo`` runs the same page.
"""

import os

from trl_processsql.demo.app import build_demo, launch

demo = build_demo(model=os.environ.get("PROCESSSQL_MODEL") or None, prm=os.environ.get("PROCESSSQL_PRM") or None)

if __name__ == "__main__":
    launch(demo)
