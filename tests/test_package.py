"""The package root: every public name importable from it, lazily, as TRL users expect."""

import importlib
import os
import pkgutil
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import trl_processsql

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILD_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "trl_processsql", "hub_cards")

NOT_RE_EXPORTED = {"cli", "scripts"}  # entry points, not a library API


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


def _cards_dir_seen_from(path_entry: Path, cwd: Path) -> Path:
    """CARDS_DIR as a fresh interpreter finds it with only ``path_entry`` in front of sys.path, and a card rendered from it."""
    code = (
        "from trl_processsql.hub import CARDS_DIR, dataset_card\n"
        "card = dataset_card('org/x', kind='SFT', title='Toy cards', description='D', columns={'a': 'b'})\n"
        "assert '# Toy cards' in card.text and 'load_dataset(\"org/x\")' in card.text, card.text\n"
        "print(CARDS_DIR)"
    )
    env = dict(os.environ, PYTHONPATH=str(path_entry))
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return Path(out.stdout.strip())


@pytest.mark.slow
def test_the_wheel_ships_every_module_the_sample_data_and_the_card_templates(tmp_path):
    source = tmp_path / "src"  # a copy: building in the checkout would leave build/ and egg-info there
    source.mkdir()
    for name in BUILD_INPUTS:
        if (REPO_ROOT / name).is_dir():
            shutil.copytree(REPO_ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO_ROOT / name, source / name)
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), str(source)]
    result = subprocess.run(build, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp_path / "dist").glob("trl_processsql-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())

    cards = {f"trl_processsql/hub_cards/{p.name}" for p in (REPO_ROOT / "hub_cards").glob("*.md")}
    assert cards and cards <= shipped
    modules = {p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "trl_processsql").rglob("*.py")}
    assert modules <= shipped, f"not in the wheel: {sorted(modules - shipped)}"
    assert "trl_processsql/sample_data/database/concert_singer/concert_singer.sqlite" in shipped

    installed = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(installed)  # what pip install puts in site-packages
    assert _cards_dir_seen_from(installed, tmp_path) == installed / "trl_processsql" / "hub_cards"
    # a checkout (what an editable install points to) reads the top-level folder
    assert _cards_dir_seen_from(source, tmp_path) == source / "hub_cards"
