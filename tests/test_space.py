"""trl-processsql space: the folder it writes, its push to the Hub, the checked-in spaces_demo/, and the folder
installed and served the way a Space builds and runs it."""

import importlib.metadata
import os
import re
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import types
import urllib.request
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

import test_demo
from trl_processsql.cli import main
from trl_processsql.demo import space

REPO_ROOT = Path(__file__).resolve().parents[1]
SPACES_DEMO = REPO_ROOT / "spaces_demo"
VERSION = importlib.metadata.version("trl-processsql")
WHEEL = f"trl_processsql-{VERSION}-py3-none-any.whl"
METADATA = f"trl_processsql-{VERSION}.dist-info/METADATA"

browser = test_demo.browser  # headless chromium, skipped where it or selenium is absent


def _metadata(*more: str) -> str:
    """A wheel's METADATA with the installed package's requirements (and ``more``)."""
    requires = [*importlib.metadata.requires("trl-processsql"), *more]
    return f"Metadata-Version: 2.4\nName: trl-processsql\nVersion: {VERSION}\n" + "".join(f"Requires-Dist: {r}\n" for r in requires)


@pytest.fixture
def fake_wheel(tmp_path) -> Path:
    """A stand-in for the package's wheel: its name and the installed METADATA (a real one is built in the slow test)."""
    path = tmp_path / "wheels" / WHEEL
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(METADATA, _metadata())
    return path


def _write(output: Path, wheel: Path, *args: str) -> Path:
    assert main(["space", "--output", str(output), "--wheel", str(wheel), *args]) == 0
    return output


def _front_matter(readme: str) -> dict:
    assert readme.startswith("---\n")
    return yaml.safe_load(readme.split("---\n")[1])


def _requires() -> tuple[list[str], list[str]]:
    """What the installed metadata requires, and what its demo extra adds, as requirements.txt should say."""
    core, demo = [], []
    for text in importlib.metadata.requires("trl-processsql"):
        requirement = Requirement(text)
        if requirement.marker is None:
            core.append(str(requirement))
        elif requirement.marker.evaluate({"extra": "demo"}):
            requirement.marker = None
            demo.append(str(requirement))
    return core, demo


# -- the folder ---------------------------------------------------------------------------------------


def test_the_card_is_a_gradio_space_pinned_to_the_installed_gradio(tmp_path, fake_wheel):
    out = _write(tmp_path / "space", fake_wheel)
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "app.py", "requirements.txt", WHEEL]
    readme = (out / "README.md").read_text()
    meta = _front_matter(readme)
    gradio = importlib.metadata.version("gradio")
    assert meta == {
        "title": "Chain-of-CTEs Text-to-SQL",
        "emoji": "🪜",
        "colorFrom": "indigo",
        "colorTo": "blue",
        "sdk": "gradio",
        "sdk_version": gradio,
        "app_file": "app.py",
        "pinned": False,
        "license": "apache-2.0",
        "short_description": "Text-to-SQL as chains of CTEs, every step executed",
        "tags": ["text-to-sql", "sql", "sqlite", "trl", "process-reward-model", "reward-sql"],
    }
    assert len(meta["short_description"]) <= 60  # the Hub's limit
    (gradio_range,) = [Requirement(r).specifier for r in _requires()[1] if Requirement(r).name == "gradio"]
    assert gradio_range.contains(str(meta["sdk_version"]))
    assert "  - `PROCESSSQL_MODEL`, the policy that answers: unset by default\n" in readme
    assert "  - `PROCESSSQL_PRM`, the PRM that scores the steps: unset by default\n" in readme
    assert f"`{WHEEL}`" in readme and "## Run it locally" in readme and "## Data and license" in readme


def test_requirements_are_the_packages_own_and_its_demo_extras_never_the_wheel(tmp_path, fake_wheel):
    out = _write(tmp_path / "space", fake_wheel)
    text = (out / "requirements.txt").read_text()
    lines = text.splitlines()
    assert lines[0].startswith("# Written by `trl-processsql space`") and WHEEL in lines[1]
    core, demo = _requires()
    assert [line for line in lines if not line.startswith("#")] == core + demo
    assert "gradio<7,>=6" in demo and "torch>=2.4" in core
    for line in lines:
        assert line.startswith("#") or not re.search(r"trl.processsql|\.whl", line), line
    # the installed metadata is pyproject.toml's (else: pip install -e . again)
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    stale = "the installed metadata is not pyproject.toml's: pip install -e . again"
    assert sorted(core) == sorted(str(Requirement(r)) for r in project["dependencies"]), stale
    assert sorted(demo) == sorted(str(Requirement(r)) for r in project["optional-dependencies"]["demo"]), stale


def _run_app(app: Path, monkeypatch, tmp_path, **environ) -> list[dict]:
    """Run app.py as a module (not __main__: nothing is served) with a stand-in demo; what build_demo got."""
    calls = []
    stub = types.ModuleType("trl_processsql.demo.app")
    stub.build_demo = lambda **kwargs: calls.append(kwargs) or "demo"
    stub.launch = lambda demo: pytest.fail("app.py launched outside __main__")
    monkeypatch.setitem(sys.modules, "trl_processsql.demo.app", stub)
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "tmp").mkdir(exist_ok=True)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    for key in ("PROCESSSQL_MODEL", "PROCESSSQL_PRM"):
        monkeypatch.delenv(key, raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    runpy.run_path(str(app), run_name="space_app")
    return calls


def test_the_app_reads_the_space_variables_with_the_given_models_as_defaults(tmp_path, fake_wheel, monkeypatch):
    out = _write(tmp_path / "space", fake_wheel, "--model", "org/policy", "--prm", "org/prm")
    app = out / "app.py"
    assert _run_app(app, monkeypatch, tmp_path) == [{"model": "org/policy", "prm": "org/prm"}]
    (unpacked,) = (tmp_path / "tmp").glob(f"trl_processsql-{VERSION}-py3-none-any-*")
    assert (unpacked / METADATA).is_file() and sys.path[0] == str(unpacked)  # the wheel, unpacked, comes first
    assert _run_app(app, monkeypatch, tmp_path, PROCESSSQL_MODEL="other/policy", PROCESSSQL_PRM="") == [
        {"model": "other/policy", "prm": "org/prm"}
    ]
    assert len(list((tmp_path / "tmp").iterdir())) == 1  # unpacked once
    bare = _write(tmp_path / "bare", fake_wheel)
    assert _run_app(bare / "app.py", monkeypatch, tmp_path) == [{"model": None, "prm": None}]
    assert _run_app(bare / "app.py", monkeypatch, tmp_path, PROCESSSQL_PRM="org/prm") == [{"model": None, "prm": "org/prm"}]


def test_the_app_without_its_wheel_says_how_to_put_it_there(tmp_path, fake_wheel):
    out = _write(tmp_path / "space", fake_wheel)
    (out / WHEEL).unlink()
    result = subprocess.run([sys.executable, str(out / "app.py")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == f"{WHEEL} is missing beside app.py: trl-processsql space --output {out} puts it there"


def test_models_lists_hub_ids_and_a_local_path_is_only_the_apps_default(tmp_path, fake_wheel, capsys, monkeypatch):
    local = tmp_path / "checkpoints" / "prm"
    local.mkdir(parents=True)
    out = _write(tmp_path / "space", fake_wheel, "--model", "org/policy", "--prm", str(local))
    assert _front_matter((out / "README.md").read_text())["models"] == ["org/policy"]
    assert f"note: --prm {local} is a local path" in capsys.readouterr().out
    assert _run_app(out / "app.py", monkeypatch, tmp_path) == [{"model": "org/policy", "prm": str(local)}]
    both = _write(tmp_path / "both", fake_wheel, "--model", "org/policy", "--prm", "org/prm")
    assert _front_matter((both / "README.md").read_text())["models"] == ["org/policy", "org/prm"]
    assert "  - `PROCESSSQL_MODEL`, the policy that answers: default `org/policy`\n" in (both / "README.md").read_text()
    assert [space.is_hub_id(v) for v in ("org/name", "gpt2", "org/name.v2", "./prm", "/abs/prm", "a/b/c", "org/..", str(local))] == [
        True, True, True, False, False, False, False, False
    ]


def test_writing_again_replaces_the_files_with_the_same_bytes(tmp_path, fake_wheel):
    out = _write(tmp_path / "space", fake_wheel, "--model", "org/policy")
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / ".gitignore").write_text("*.whl\n")
    (out / "trl_processsql-0.0.1-py3-none-any.whl").write_bytes(b"an older wheel")
    _write(out, fake_wheel, "--model", "org/policy")
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name != ".gitignore"} == first  # the old wheel is gone
    assert (out / ".gitignore").read_text() == "*.whl\n"
    elsewhere = _write(tmp_path / "elsewhere", fake_wheel, "--model", "org/policy")
    assert {p.name: p.read_bytes() for p in elsewhere.iterdir()} == first


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing wheel", "--wheel {tmp}/no/such.whl: no such file"),
        ("misnamed wheel", f"--wheel {{tmp}}/trl_processsql-0.0.1-py3-none-any.whl: expected {WHEEL}, the wheel of the installed trl-processsql {VERSION}"),
        ("not a zip", f"--wheel {{tmp}}/junk/{WHEEL} is not a wheel: it is not a zip archive"),
        ("other requirements", f"--wheel {{tmp}}/other/{WHEEL} requires other packages than the installed trl-processsql {VERSION} "
                               "(pyproject.toml changed since it was installed? pip install -e . again)"),
        ("private alone", "--private applies to --push: give both or neither"),
        ("bad repo id", "--push org/a/b is not a Hub repository id: "),
        ("output is a file", "--output {tmp}/file.txt is a file, not a directory"),
        ("foreign folder", "--output {tmp}/notes is not empty and was not written by trl-processsql space: give a new or empty folder"),
    ],
)
def test_bad_input_exits_2_with_a_one_line_reason(case, message, tmp_path, fake_wheel, capsys):
    args = ["--output", str(tmp_path / "space"), "--wheel", str(fake_wheel)]
    if case == "missing wheel":
        args[3] = str(tmp_path / "no" / "such.whl")
    elif case == "misnamed wheel":
        args[3] = str(shutil.copy(fake_wheel, tmp_path / "trl_processsql-0.0.1-py3-none-any.whl"))
    elif case == "not a zip":
        (tmp_path / "junk").mkdir()
        (tmp_path / "junk" / WHEEL).write_text("not a zip")
        args[3] = str(tmp_path / "junk" / WHEEL)
    elif case == "other requirements":
        (tmp_path / "other").mkdir()
        with zipfile.ZipFile(tmp_path / "other" / WHEEL, "w") as archive:
            archive.writestr(METADATA, _metadata("numpy>=2"))
        args[3] = str(tmp_path / "other" / WHEEL)
    elif case == "private alone":
        args.append("--private")
    elif case == "bad repo id":
        args += ["--push", "org/a/b"]
    elif case == "output is a file":
        (tmp_path / "file.txt").write_text("x")
        args[1] = str(tmp_path / "file.txt")
    elif case == "foreign folder":
        (tmp_path / "notes").mkdir()
        (tmp_path / "notes" / "todo.md").write_text("x")
        args[1] = str(tmp_path / "notes")
    assert main(["space", *args]) == 2
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert len(err) == 1 and err[0].startswith("trl-processsql: error: " + message.format(tmp=tmp_path)), captured.err
    assert not (tmp_path / "space").exists() and "building" not in captured.out


def test_without_a_source_tree_it_asks_for_a_wheel(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(space, "source_root", lambda: None)
    assert main(["space", "--output", str(tmp_path / "space")]) == 2
    assert capsys.readouterr().err == (
        "trl-processsql: error: trl-processsql is not imported from a source tree (it was installed from a wheel), "
        "so there is no wheel to build: pass --wheel PATH\n"
    )


def _needs_the_checkout():
    """The wheel is built from the source tree the package is imported from: this checkout, installed editable."""
    if Path(space.__file__).resolve().parents[2] != REPO_ROOT:
        pytest.skip(f"trl_processsql is imported from {Path(space.__file__).parents[2]}, not from this checkout (pip install -e .)")


def test_the_source_tree_is_this_checkout():
    _needs_the_checkout()
    assert space.source_root() == REPO_ROOT


# -- the push -----------------------------------------------------------------------------------------


class FakeHfApi:
    """Records the calls made on HfApi; create_repo answers as the Hub does."""

    calls: list = []
    fail: str | None = None

    def create_repo(self, *args, **kwargs):
        from huggingface_hub import RepoUrl

        self.calls.append(("create_repo", args, kwargs))
        return RepoUrl(f"https://huggingface.co/spaces/{args[0]}")

    def add_space_variable(self, *args, **kwargs):
        self.calls.append(("add_space_variable", args, kwargs))

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", (), kwargs))
        if self.fail:
            raise RuntimeError(self.fail)


@pytest.fixture
def hub(monkeypatch):
    import huggingface_hub

    FakeHfApi.calls, FakeHfApi.fail = [], None
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHfApi)
    return FakeHfApi


def test_push_creates_the_space_sets_its_variables_and_uploads_the_folder(tmp_path, fake_wheel, hub, capsys):
    local = tmp_path / "prm"
    local.mkdir()
    out = _write(tmp_path / "space", fake_wheel, "--model", "org/policy", "--prm", str(local), "--push", "org/demo", "--private")
    variables = [{"key": "PROCESSSQL_MODEL", "value": "org/policy"}]  # a local path means nothing on a Space
    assert hub.calls == [
        ("create_repo", ("org/demo",), {"repo_type": "space", "space_sdk": "gradio", "exist_ok": True, "private": True,
                                        "space_variables": variables}),
        ("add_space_variable", ("org/demo", "PROCESSSQL_MODEL", "org/policy"), {}),  # an existing Space gets it too
        ("upload_folder", (), {"folder_path": str(out), "repo_id": "org/demo", "repo_type": "space",
                               "allow_patterns": ["README.md", "app.py", "requirements.txt", WHEEL],
                               "delete_patterns": ["trl_processsql-*.whl"], "commit_message": f"trl-processsql space: {WHEEL}"}),
    ]
    assert capsys.readouterr().out.splitlines()[-1] == "pushed to https://huggingface.co/spaces/org/demo"


def test_push_without_models_sets_no_variables_and_a_failure_keeps_the_folder(tmp_path, fake_wheel, hub, capsys):
    _write(tmp_path / "space", fake_wheel, "--push", "org/demo")
    assert [name for name, _, _ in hub.calls] == ["create_repo", "upload_folder"]
    assert hub.calls[0][2]["space_variables"] is None and hub.calls[0][2]["private"] is False
    hub.calls, hub.fail = [], "401 Unauthorized"
    assert main(["space", "--output", str(tmp_path / "space"), "--wheel", str(fake_wheel), "--push", "org/demo"]) == 2
    assert capsys.readouterr().err == (
        f"trl-processsql: error: push to org/demo failed (401 Unauthorized); the Space folder is in {tmp_path / 'space'}\n"
    )
    assert (tmp_path / "space" / WHEEL).is_file()


# -- spaces_demo/ -------------------------------------------------------------------------------------


def test_spaces_demo_is_what_the_command_writes(tmp_path, fake_wheel):
    """spaces_demo/ is the command's output, wheel aside (git ignores it): trl-processsql space --output spaces_demo."""
    out = _write(tmp_path / "space", fake_wheel)
    assert (SPACES_DEMO / ".gitignore").read_text().splitlines()[-1] == "*.whl"
    checked_in = sorted(p.name for p in SPACES_DEMO.iterdir() if p.name not in (".gitignore", "__pycache__") and p.suffix != ".whl")
    assert checked_in == sorted(space.SPACE_FILES)
    pinned = _front_matter((SPACES_DEMO / "README.md").read_text())["sdk_version"]
    for name in checked_in:
        expected = (out / name).read_text()
        if name == "README.md":  # the gradio installed here may differ from the one the folder was written with
            expected = expected.replace(f"sdk_version: {importlib.metadata.version('gradio')}\n", f"sdk_version: {pinned}\n")
        assert (SPACES_DEMO / name).read_text() == expected, f"spaces_demo/{name} is out of date: trl-processsql space --output spaces_demo"
    (gradio_range,) = [Requirement(r).specifier for r in _requires()[1] if Requirement(r).name == "gradio"]
    assert gradio_range.contains(str(pinned))


# -- the folder, built and served as a Space does it ----------------------------------------------------


def _fresh_venv(tmp_path: Path) -> Path:
    """A new virtualenv that sees this environment's packages, but not this checkout's trl_processsql.

    The packages are a folder of links to this site-packages' entries, less trl_processsql's editable
    finder, .pth and dist-info, added as a site directory (so its other .pth files work) by a .pth file.
    """
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    here = Path(sysconfig.get_paths()["purelib"])
    deps = tmp_path / "deps"
    deps.mkdir()
    for entry in here.iterdir():
        ours = "trl_processsql" in entry.name or (entry.suffix == ".pth" and str(REPO_ROOT) in entry.read_text(errors="replace"))
        if not ours:
            (deps / entry.name).symlink_to(entry)
    (site,) = (venv / "lib").glob("python*/site-packages")
    (site / "installed_packages.pth").write_text(f"import site; site.addsitedir({str(deps)!r})\n")
    return venv


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_served(url: str, server: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"app.py exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    pytest.fail(f"app.py did not serve {url} in {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _stop(server: subprocess.Popen) -> None:
    """End the server and its SQL workers (its own session's process group)."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        if server.poll() is not None:
            break
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            break
        try:
            server.wait(wait)
        except subprocess.TimeoutExpired:
            pass


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_folder_installs_and_serves_as_a_space_does(tmp_path, browser, capsys):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _needs_the_checkout()
    # the folder with a wheel built from this checkout, written twice: the same bytes, the wheel's too
    folder, again = tmp_path / "space", tmp_path / "space-again"
    for out in (folder, again):
        assert main(["space", "--output", str(out)]) == 0
    assert "building the trl-processsql wheel from" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == {p.name: p.read_bytes() for p in again.iterdir()}
    with zipfile.ZipFile(folder / WHEEL) as archive:
        assert "trl_processsql/demo/app.py" in archive.namelist()

    venv = _fresh_venv(tmp_path)
    python = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1",
               GRADIO_ANALYTICS_ENABLED="False", PIP_DISABLE_PIP_VERSION_CHECK="1")
    alone = subprocess.run([python, "-c", "import trl_processsql"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert "No module named 'trl_processsql'" in alone.stderr  # the checkout's editable install is not seen

    # the build: requirements.txt mounted alone, installed from a working directory without the folder's files
    mount, workdir = tmp_path / "mount", tmp_path / "workdir"
    mount.mkdir()
    workdir.mkdir()
    shutil.copy(folder / "requirements.txt", mount)
    install = subprocess.run([python, "-m", "pip", "install", "--no-index", "-r", str(mount / "requirements.txt")],
                             cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stdout + install.stderr
    assert "Requirement already satisfied: gradio" in install.stdout

    # the run: the folder copied in, python app.py, gradio's address from the environment as on a Space
    app, run_tmp = tmp_path / "app", tmp_path / "run-tmp"
    shutil.copytree(folder, app)
    run_tmp.mkdir()
    port = _free_port()
    env.update(GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port), TMPDIR=str(run_tmp))
    log = tmp_path / "server.log"
    with open(log, "w") as sink:
        server = subprocess.Popen([python, "app.py"], cwd=app, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_until_served(url, server, log)
        loaded = re.search(r"^trl-processsql (\S+) from (\S+)$", log.read_text(), re.M)
        assert loaded and loaded.group(1) == VERSION, log.read_text()
        package = Path(loaded.group(2))
        assert package.parent.parent == run_tmp and package.parent.name.startswith(f"trl_processsql-{VERSION}-py3-none-any-")
        assert not package.is_relative_to(REPO_ROOT)

        try:
            wait = WebDriverWait(browser, 120)
            browser.get(url)
            wait.until(lambda d: d.find_elements(By.ID, "explain-button"))
            titles = test_demo.explain_dog_owners(browser, wait)
            assert titles[0].startswith("Step 1 · dogs · 2 rows")
            assert titles[1].startswith("Step 2 · dog_owners · 1 row")
            assert titles[2].startswith("Step 3 · final answer · 1 row")
            grids = [browser.find_element(By.CSS_SELECTOR, f"#step-{k}-table [role=grid]") for k in (1, 2, 3)]
            assert [int(grid.get_attribute("aria-rowcount")) - 1 for grid in grids] == [2, 1, 1]
            assert "19.0" in grids[2].text

            screenshot = tmp_path / "space_explain.png"
            browser.save_screenshot(str(screenshot))
            print(f"screenshot: {screenshot}")
            assert screenshot.stat().st_size > 10_000
        except Exception:  # what the page and the server showed, for the report
            browser.save_screenshot(str(tmp_path / "space_failure.png"))
            print(f"screenshot: {tmp_path / 'space_failure.png'}\nserver log:\n{log.read_text()[-3000:]}")
            raise
    finally:
        _stop(server)
    assert server.poll() is not None
