"""Hugging Face Space entry point: the trl-processsql demo, run from the wheel beside this file.

Written by `trl-processsql space`: write the folder again rather than editing it. A Space
installs requirements.txt (trl-processsql's requirements and its demo extra) before this
folder's files are copied in, so the package itself comes from WHEEL: unpacked at start, as pip
lays it out in site-packages, and imported from there.

PROCESSSQL_MODEL (a policy checkpoint) and PROCESSSQL_PRM (a process reward model) are Hub ids or
paths, loaded on first use; unset, they are the ones the folder was written with. Without a
policy the Space explains pasted SQL only.
"""

import hashlib
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = Path(__file__).resolve().with_name("trl_processsql-0.1.0.dev0-py3-none-any.whl")
MODEL = os.environ.get("PROCESSSQL_MODEL") or None
PRM = os.environ.get("PROCESSSQL_PRM") or None


def unpack(wheel: Path) -> Path:
    """The folder the wheel is unpacked into: once per wheel (named by its hash), in the temporary folder."""
    if not wheel.is_file():
        sys.exit(f"{wheel.name} is missing beside app.py: trl-processsql space --output {wheel.parent} puts it there")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()[:16]
    target = Path(tempfile.gettempdir()) / f"{wheel.stem}-{digest}"
    if not target.is_dir():
        staging = tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent)
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(staging)
        try:
            os.rename(staging, target)
        except OSError:  # another process unpacked it first
            shutil.rmtree(staging)
    return target


sys.path.insert(0, str(unpack(WHEEL)))

import trl_processsql  # noqa: E402
from trl_processsql.demo.app import build_demo, launch  # noqa: E402

print(f"trl-processsql {trl_processsql.__version__} from {Path(trl_processsql.__file__).parent}", flush=True)
demo = build_demo(model=MODEL, prm=PRM)

if __name__ == "__main__":
    launch(demo)
