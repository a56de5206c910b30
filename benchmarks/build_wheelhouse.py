"""The folder of wheels that ``benchmarks/gpu_check.sh`` installs on a GPU machine without network.

Such a machine has torch, transformers, accelerate and peft but not trl, datasets or sqlglot. The
folder gets the project's own wheel and, at exactly the versions installed here, trl, datasets,
sqlglot and everything they need that torch, transformers, accelerate and peft do not already pull
in (those the GPU machine has). Run it with network, in this project's environment:

    python benchmarks/build_wheelhouse.py WHEELHOUSE [--python-version 3.12]   # then copy WHEELHOUSE over
    python benchmarks/build_wheelhouse.py --list                               # only print the pins

Give ``--python-version`` when the GPU machine's Python differs from this one: binary wheels
(pyarrow, xxhash) are made per Python version.
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import re
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement

REPO_ROOT = Path(__file__).resolve().parents[1]
MISSING_THERE = ("trl", "datasets", "sqlglot")
PRESENT_THERE = ("torch", "transformers", "accelerate", "peft")


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(names) -> set[str]:
    """The installed distributions ``names`` need, themselves included (no extras; markers of this interpreter)."""
    seen: set[str] = set()
    todo = [_key(name) for name in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue  # a requirement of another platform or Python, not installed here
        seen.add(name)
        for text in requires:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(_key(requirement.name))
    return seen


def pins() -> list[str]:
    """``name==version`` of every distribution the GPU machine lacks, at the versions installed here."""
    return sorted(f"{name}=={metadata.version(name)}" for name in closure(MISSING_THERE) - closure(PRESENT_THERE))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wheelhouse", nargs="?", help="folder to write the wheels to")
    parser.add_argument("--python-version", help="the GPU machine's Python, e.g. 3.12 (default: this one's)")
    parser.add_argument("--list", action="store_true", help="print the pinned packages and stop")
    args = parser.parse_args()
    if args.list:
        print("\n".join(pins()))
        return 0
    if not args.wheelhouse:
        parser.error("give the wheelhouse folder (or --list)")
    out = Path(args.wheelhouse)
    out.mkdir(parents=True, exist_ok=True)
    target = ["--python-version", args.python_version] if args.python_version else []
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "download", "--no-deps", "--only-binary=:all:", "--dest", str(out), *target, *pins()], check=True)
    subprocess.run([*pip, "wheel", "--no-deps", "--wheel-dir", str(out), str(REPO_ROOT)], check=True)
    wheels = sorted(path.name for path in out.glob("*.whl"))
    print(f"{len(wheels)} wheels in {out}: {', '.join(wheels)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
