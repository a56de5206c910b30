"""Shared fixtures: a tiny database made per test, and the Spider data when it is present."""

import os
import sqlite3
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SPIDER_DIR = Path(os.environ.get("PROCESSSQL_SPIDER_DIR", REPO_ROOT.parent / "shared" / "data" / "spider"))


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run the tests marked slow (CI does: the whole method end to end, the demo in a browser)")


def _runs_slow(config) -> bool:
    """``--runslow``, or a ``-m`` expression of the user's own (``-m slow``), which then decides alone."""
    return config.getoption("--runslow") or bool(config.getoption("markexpr"))


def pytest_report_header(config):
    return None if _runs_slow(config) else "tests marked slow: deselected (run them with --runslow, as CI does)"


def pytest_collection_modifyitems(config, items):
    """Without ``--runslow``, the slow tests are deselected, so that a plain ``pytest`` stays a quick check."""
    if _runs_slow(config):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


@pytest.fixture
def spider_dir() -> Path:
    """The Spider data (set PROCESSSQL_SPIDER_DIR); tests using it skip where it is absent."""
    if not (SPIDER_DIR / "dev.json").is_file() or not (SPIDER_DIR / "database").is_dir():
        pytest.skip(f"Spider data not found at {SPIDER_DIR} (set PROCESSSQL_SPIDER_DIR to a folder with dev.json and database/)")
    return SPIDER_DIR


@pytest.fixture(scope="session")
def quick_work_dir(tmp_path_factory) -> Path:
    """A work folder shared by the benchmarks' quick runs: their SFT policy has the same settings, so it trains once."""
    return tmp_path_factory.mktemp("quick-work")


@pytest.fixture
def toy_db(tmp_path) -> Path:
    """A small database: singer(id, name, age, country) with 4 rows and concert(id, singer_id, year)."""
    path = tmp_path / "toy" / "toy.sqlite"
    path.parent.mkdir()
    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            CREATE TABLE singer (id INTEGER PRIMARY KEY, name TEXT NOT NULL, age INTEGER, country TEXT);
            CREATE TABLE concert (id INTEGER PRIMARY KEY, singer_id INTEGER REFERENCES singer(id), year INTEGER);
            INSERT INTO singer VALUES (1, 'Joe', 52, 'Netherlands'), (2, 'Ann', 32, 'France'),
                                      (3, 'Bo', 41, 'France'), (4, 'Cy', 29, NULL);
            INSERT INTO concert VALUES (1, 1, 2014), (2, 2, 2014), (3, 2, 2015), (4, 3, 2013);
            """
        )
    conn.close()
    return path


@pytest.fixture(scope="session")
def executor():
    """A two-worker SQLExecutor shared by the whole session (default limits)."""
    from trl_processsql.sql import SQLExecutor

    with SQLExecutor(num_workers=2) as ex:
        yield ex


@pytest.fixture(scope="session")
def sandbox():
    """An in-process SQLiteSandbox shared by the whole session (default limits)."""
    from trl_processsql.sql import SQLiteSandbox

    with SQLiteSandbox() as sb:
        yield sb
