#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py) on a machine without network that has torch, transformers, accelerate
# and peft: installs the project and what it lacks from a folder of wheels made by benchmarks/build_wheelhouse.py,
# into a folder put first on PYTHONPATH, then runs the check from this checkout (its recipes).
#
#   bash benchmarks/gpu_check.sh WHEELHOUSE [gpu_check.py options]
set -euo pipefail
WHEELHOUSE=${1:?usage: benchmarks/gpu_check.sh WHEELHOUSE [gpu_check.py options]}
shift
REPO=$(cd "$(dirname "$0")/.." && pwd)
SITE=${PROCESSSQL_SITE:-$REPO/benchmarks/_work/site}
rm -rf "$SITE" && mkdir -p "$SITE"
# The project's wheel always; the others only where the machine lacks the package: a second copy of one it has
# would shadow it (numpy or torch built for another ABI).
WHEELS=$(python - "$WHEELHOUSE" <<'PY'
import importlib.metadata as metadata, pathlib, sys
for wheel in sorted(pathlib.Path(sys.argv[1]).glob("*.whl")):
    name = wheel.name.split("-")[0]
    try:
        metadata.version(name)
        installed = name != "trl_processsql"
    except metadata.PackageNotFoundError:
        installed = False
    if not installed:
        print(wheel)
PY
)
[ -n "$WHEELS" ] || { echo "no wheel to install in $WHEELHOUSE" >&2; exit 2; }
python -m pip install --no-index --no-deps --quiet --target "$SITE" $WHEELS
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
cd "$REPO"
exec python benchmarks/gpu_check.py "$@"
