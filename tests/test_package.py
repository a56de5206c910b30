"""The package root: every public name importable from it, lazily, as TRL users expect."""

import ast
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
    module_of = {name: module for module, names in trl_processsql.EXPORTS.items() for name in names}
    assert set(trl_processsql.__all__) == {"__version__", *module_of}
    for name, module in module_of.items():
        value = getattr(trl_processsql, name)
        assert value is getattr(importlib.import_module(f"trl_processsql.{module}"), name), name


def test_the_root_stays_small_like_trls():
    assert len(trl_processsql.__all__) <= 60


def test_every_name_a_subpackage_exports_lives_in_that_subpackage():
    """A subpackage's names are the public names of its modules: none listed twice, none missing."""
    for package in ("prm", "inference", "grpo", "labeling", "small_models"):
        namespace = importlib.import_module(f"trl_processsql.{package}")
        for name in namespace.__all__:
            assert getattr(namespace, name) is not None, (package, name)
        for info in pkgutil.iter_modules(namespace.__path__):
            module = importlib.import_module(f"trl_processsql.{package}.{info.name}")
            missing = set(getattr(module, "__all__", ())) - set(namespace.__all__)
            assert not missing, f"trl_processsql.{package}.{info.name} names {sorted(missing)} its package does not export"


@pytest.mark.parametrize("name", ["SQLITE_HEADER", "gold_chains", "AGGREGATIONS", "UNSCORED"])
def test_a_root_name_of_the_last_release_still_works_and_says_where_it_lives(name):
    module = next(module for module, names in trl_processsql.MOVED.items() if name in names)
    with pytest.warns(FutureWarning, match=rf"import it from trl_processsql\.{module}\b"):
        value = getattr(trl_processsql, name)
    assert value is getattr(importlib.import_module(f"trl_processsql.{module}"), name)


@pytest.mark.parametrize(
    ("package", "name", "home"),
    [
        ("grpo", "pass_rates", "inference.pass_rates"),
        ("grpo", "within_reach", "inference.pass_rates"),
        ("inference", "score_steps", "prm.scoring"),
        ("inference", "UNSCORED", "prm.scoring"),
    ],
)
def test_a_name_that_moved_between_subpackages_warns_and_still_works(package, name, home):
    namespace = importlib.import_module(f"trl_processsql.{package}")
    with pytest.warns(FutureWarning, match=rf"trl_processsql\.{package}\.{name} moved: import it from trl_processsql\.{home}"):
        value = getattr(namespace, name)
    assert value is getattr(importlib.import_module(f"trl_processsql.{home}"), name)
    assert name not in namespace.__all__


def test_a_function_named_like_its_module_is_the_function_even_after_the_module_loads():
    importlib.import_module("trl_processsql.inference.predict")
    importlib.import_module("trl_processsql.inference.pass_rates")
    from trl_processsql.inference import pass_rates, predict

    assert callable(predict) and callable(pass_rates)
    assert predict.__module__ == "trl_processsql.inference.predict"


def test_dir_lists_the_exports_and_unknown_names_raise_attribute_error():
    assert {"PRMGRPOTrainer", "SQLExecutor", "parse_cocte"} <= set(dir(trl_processsql))
    with pytest.raises(AttributeError, match="module 'trl_processsql' has no attribute 'PRMTrainer'"):
        trl_processsql.PRMTrainer  # noqa: B018


@pytest.mark.parametrize(
    "code",
    [
        "import trl_processsql",
        "from trl_processsql import SQLExecutor, parse_cocte, evaluate, sample_paths",
        "import trl_processsql.prm.aggregation, trl_processsql.prm.scoring, trl_processsql.labeling.builder",
        "from trl_processsql.inference import best_of_n, majority_vote, predict, pass_rates",
        "import contextlib, io\nfrom trl_processsql.cli import main\nwith contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n    main(['--help'])",
    ],
)
def test_importing_the_package_and_pure_python_modules_loads_no_torch(code):
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


def _imported_packages(package: str) -> set[str]:
    """The trl_processsql subpackages that the modules of ``package`` import (relative or absolute)."""
    found = set()
    for path in (REPO_ROOT / "trl_processsql" / package).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 2:
                found.update([node.module.split(".")[0]] if node.module else [alias.name for alias in node.names])
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("trl_processsql."):
                found.add(node.module.split(".")[1])
    return found - {package}


@pytest.mark.parametrize(
    ("package", "never"),
    [
        ("prm", {"grpo", "inference", "demo", "sweep"}),
        ("grpo", {"inference", "demo", "sweep"}),
        ("inference", {"grpo", "demo", "sweep"}),
        ("demo", {"grpo"}),
    ],
)
def test_data_flows_down_step_scoring_in_prm_grpo_and_inference_side_by_side(package, never):
    assert not _imported_packages(package) & never
