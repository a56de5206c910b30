"""The package root: every public name importable from it, lazily, as TRL users expect."""

import importlib
import pkgutil
import subprocess
import sys

import pytest

import trl_processsql

NOT_RE_EXPORTED = {"cli", "quickstart", "scripts"}  # entry points, not a library API


def test_trainers_and_tools_import_from_the_root_like_trls():
    from trl_processsql import (  # noqa: F401
        PRMGRPOConfig,
        PRMGRPOTrainer,
        ProcessRewardConfig,
        ProcessRewardModel,
        ProcessRewardTrainer,
        SQLExecutionCallback,
        SQLExecutor,
    )
    from trl_processsql.grpo import PRMGRPOTrainer as from_submodule

    assert PRMGRPOTrainer is from_submodule


def test_every_exported_name_resolves_to_its_submodules_object():
    for name in trl_processsql.__all__:
        value = getattr(trl_processsql, name)
        if name != "__version__":
            module = importlib.import_module(f"trl_processsql.{trl_processsql._MODULE_OF[name]}")
            assert value is getattr(module, name), name


def test_every_public_name_of_every_submodule_is_exported():
    """All but a name its own module shadows (``gold_to_cocte``: the package attribute is the module)."""
    for info in pkgutil.iter_modules(trl_processsql.__path__):
        if info.name.startswith("_") or info.name in NOT_RE_EXPORTED:
            continue
        module = importlib.import_module(f"trl_processsql.{info.name}")
        missing = set(getattr(module, "__all__", ())) - set(trl_processsql.__all__) - {info.name}
        assert not missing, f"trl_processsql.{info.name} names {sorted(missing)} that the package root does not export"


def test_dir_lists_the_exports_and_unknown_names_raise_attribute_error():
    assert {"PRMGRPOTrainer", "SQLExecutor", "parse_cocte"} <= set(dir(trl_processsql))
    with pytest.raises(AttributeError, match="module 'trl_processsql' has no attribute 'PRMTrainer'"):
        trl_processsql.PRMTrainer  # noqa: B018


@pytest.mark.parametrize(
    "code",
    [
        "import trl_processsql",
        "from trl_processsql import SQLExecutor, parse_cocte, evaluate, sample_paths",
        "import contextlib, io\nfrom trl_processsql.cli import main\nwith contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n    main(['--help'])",
    ],
)
def test_importing_the_package_and_sql_names_loads_no_torch(code):
    check = code + "\nimport sys\nprint(sorted(m for m in ('torch', 'transformers', 'trl', 'datasets') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
