"""A Hugging Face Space folder that runs the demo: ``trl-processsql space``.

The folder holds ``app.py``, ``README.md`` (the Space's front matter, then how the Space works),
``requirements.txt`` and the package itself as a wheel, built from the source tree the package is
imported from (or copied from ``--wheel``).

The wheel is not a line of ``requirements.txt``: a Gradio Space installs ``requirements.txt``
while its image is built, from that one file mounted alone, before the repository's other files
are copied in, so a path to a wheel in the repository is not there yet. ``requirements.txt``
therefore lists what the wheel requires (its dependencies and its ``demo`` extra, read from the
installed package's metadata and checked against the wheel's own), and ``app.py`` unpacks the
wheel at start, as pip lays a pure-Python wheel out in site-packages, and imports the demo from it.

The folder is reproducible: the wheel is built from a copy of the source tree with a fixed
``SOURCE_DATE_EPOCH``, so writing the folder twice from the same tree gives the same bytes.
"""

from __future__ import annotations

import email
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

__all__ = [
    "SpaceError",
    "SpaceFolder",
    "build_wheel",
    "check_repo_id",
    "is_hub_id",
    "push_space",
    "source_root",
    "space_requirements",
    "write_space",
]

DISTRIBUTION = "trl-processsql"
EXTRA = "demo"
SPACE_FILES = ("app.py", "README.md", "requirements.txt")
"""The files the command writes beside the wheel."""

HEADER = "# Written by `trl-processsql space`"
"""How requirements.txt starts: marks a folder the command may write again."""

SOURCE_DATE_EPOCH = "315532800"
"""1980-01-01, the earliest time a zip entry can carry: every file in the wheel gets it."""

_NOT_SOURCE_TOP = {".git", ".hg", ".venv", "venv", "build", "dist", "outputs"}
_NOT_SOURCE = ("*.egg-info", "__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache", ".ruff_cache", "_work", "*.whl")
"""What the copy of the source tree leaves out: version control, environments and build outputs at its top
(``_NOT_SOURCE_TOP``), caches and built files anywhere (``_NOT_SOURCE``)."""

_HUB_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*$")


class SpaceError(Exception):
    """Input the command cannot use, or a wheel it cannot build: the message says which, in one line."""


@dataclass
class SpaceFolder:
    """A folder :func:`write_space` wrote: its wheel's file name, the default models, and notes for the user."""

    path: Path
    wheel: str
    model: str | None = None
    prm: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def files(self) -> list[str]:
        """The files of the Space, as they are uploaded."""
        return sorted((*SPACE_FILES, self.wheel))

    @property
    def variables(self) -> list[dict[str, str]]:
        """The Space variables for the models given as Hub ids (a local path means nothing on a Space)."""
        return [
            {"key": key, "value": value}
            for key, value in (("PROCESSSQL_MODEL", self.model), ("PROCESSSQL_PRM", self.prm))
            if value and is_hub_id(value)
        ]


def is_hub_id(value: str) -> bool:
    """Whether ``value`` names a Hub repository (``org/name`` or ``name``) rather than a local path."""
    return not Path(value).expanduser().exists() and bool(_HUB_ID.match(value)) and ".." not in value


def _requirement(text: str):
    from packaging.requirements import Requirement

    return Requirement(text)


def space_requirements() -> tuple[list[str], list[str]]:
    """``(requirements, extra)``: what the installed trl-processsql requires, and what its demo extra adds.

    Read from the installed package's metadata, so they are pyproject.toml's own strings. A
    requirement of the extra loses its ``extra == "demo"`` marker (requirements.txt has no extras).
    """
    core, extra = [], []
    for text in importlib.metadata.requires(DISTRIBUTION) or ():
        requirement = _requirement(text)
        marker = str(requirement.marker) if requirement.marker else ""
        if "extra" not in marker:
            core.append(str(requirement))
        elif marker in (f'extra == "{EXTRA}"', f"extra == '{EXTRA}'"):
            requirement.marker = None
            extra.append(str(requirement))
        elif requirement.marker.evaluate({"extra": EXTRA}):
            raise SpaceError(f"cannot write requirement {text!r} of the {EXTRA} extra into requirements.txt: its marker is not only the extra")
    return core, extra


def gradio_version(extra: list[str]) -> str:
    """The installed gradio's version, the Space's ``sdk_version``: it must satisfy the demo extra's range."""
    try:
        version = importlib.metadata.version("gradio")
    except importlib.metadata.PackageNotFoundError:
        raise SpaceError("the Space's sdk_version is the installed gradio's version, and gradio is not installed: "
                         'pip install -e ".[demo]"') from None
    for text in extra:
        requirement = _requirement(text)
        if requirement.name == "gradio" and not requirement.specifier.contains(version, prereleases=True):
            raise SpaceError(f"the installed gradio {version} is outside the demo extra's range gradio{requirement.specifier}: "
                             f'install one inside it (pip install -e ".[demo]")')
    return version


def wheel_name(version: str) -> str:
    """The file name of the pure-Python wheel of trl-processsql ``version``."""
    return f"trl_processsql-{version}-py3-none-any.whl"


def _wheel_requirements(path: Path, version: str, source: str) -> list[str]:
    """The Requires-Dist lines in a wheel's METADATA (``source`` names the wheel in errors)."""
    member = f"trl_processsql-{version}.dist-info/METADATA"
    try:
        with zipfile.ZipFile(path) as archive:
            metadata = archive.read(member).decode("utf-8")
    except zipfile.BadZipFile:
        raise SpaceError(f"{source} is not a wheel: it is not a zip archive") from None
    except KeyError:
        raise SpaceError(f"{source} is not the wheel of trl-processsql {version}: it holds no {member}") from None
    return email.message_from_string(metadata).get_all("Requires-Dist") or []


def _check_wheel(path: Path, version: str, source: str) -> None:
    """The wheel must require what the installed metadata says, or requirements.txt would not fit it."""
    wheel = sorted(str(_requirement(r)) for r in _wheel_requirements(path, version, source))
    installed = sorted(str(_requirement(r)) for r in importlib.metadata.requires(DISTRIBUTION) or ())
    if wheel != installed:
        raise SpaceError(f"{source} requires other packages than the installed trl-processsql {version} "
                         "(pyproject.toml changed since it was installed? pip install -e . again)")


def source_root() -> Path | None:
    """The source tree the package is imported from (pyproject.toml beside ``trl_processsql/``), or None."""
    root = Path(__file__).resolve().parents[2]
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and re.search(r'^name\s*=\s*"trl-processsql"', pyproject.read_text(encoding="utf-8"), re.M):
        return root
    return None


def _not_source(root: Path):
    """The ``ignore`` of ``shutil.copytree`` for the copy of the source tree at ``root``."""
    anywhere = shutil.ignore_patterns(*_NOT_SOURCE)

    def ignore(directory, names):
        skipped = set(anywhere(directory, names))
        return skipped | (_NOT_SOURCE_TOP & set(names)) if Path(directory) == root else skipped

    return ignore


def build_wheel(root: Path, destination: Path, log: Callable[[str], None] = print) -> Path:
    """Build the wheel of the source tree at ``root`` into ``destination``, offline, and return it.

    pip builds a copy of the tree (less what ``_NOT_SOURCE_TOP`` and ``_NOT_SOURCE`` name), so the
    checkout gets no ``build/`` of its own and no stale file there can reach the wheel, with the
    project's own setuptools (``--no-build-isolation``: setuptools is in the dev extra) and a fixed
    ``SOURCE_DATE_EPOCH``, so the same tree gives the same bytes.
    """
    log(f"building the trl-processsql wheel from {root} (pip wheel, offline) ...")
    with tempfile.TemporaryDirectory(prefix="trl-processsql-wheel-") as work:
        source, built = Path(work) / "source", Path(work) / "dist"
        shutil.copytree(root, source, ignore=_not_source(root), symlinks=True)
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                   "--disable-pip-version-check", "-q", "-w", str(built), str(source)]
        env = dict(os.environ, SOURCE_DATE_EPOCH=SOURCE_DATE_EPOCH, PIP_NO_INPUT="1")
        result = subprocess.run(command, capture_output=True, text=True, env=env)
        wheels = sorted(built.glob("trl_processsql-*.whl"))
        if result.returncode != 0 or len(wheels) != 1:
            lines = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
            reason = lines[-1] if lines else f"pip exited with {result.returncode}"
            raise SpaceError(f"building the wheel from {root} failed: {reason} (or pass --wheel)")
        destination.mkdir(parents=True, exist_ok=True)
        wheel = destination / wheels[0].name
        shutil.copyfile(wheels[0], wheel)
    log(f"built {wheel.name} ({wheel.stat().st_size // 1024} KiB)")
    return wheel


def _check_output(output: Path) -> None:
    """A new or empty folder (hidden files aside: .gitignore, .git), or one this command wrote before (its files are replaced)."""
    if output.exists() and not output.is_dir():
        raise SpaceError(f"--output {output} is a file, not a directory")
    if output.is_dir() and any(not entry.name.startswith(".") for entry in output.iterdir()):
        requirements = output / "requirements.txt"
        if not (requirements.is_file() and requirements.read_text(encoding="utf-8").startswith(HEADER)):
            raise SpaceError(f"--output {output} is not empty and was not written by trl-processsql space: "
                             "give a new or empty folder")


def write_space(
    output: str | os.PathLike,
    *,
    model: str | None = None,
    prm: str | None = None,
    wheel: str | os.PathLike | None = None,
    log: Callable[[str], None] = print,
) -> SpaceFolder:
    """Write the Space folder at ``output``: app.py, README.md, requirements.txt and the wheel.

    ``model`` and ``prm`` are the app's defaults (a Space variable overrides them); ``wheel`` is a
    wheel to copy, else one is built from the source tree. Raises :class:`SpaceError` for bad input.
    """
    output = Path(output)
    _check_output(output)
    version = importlib.metadata.version(DISTRIBUTION)
    core, extra = space_requirements()
    sdk_version = gradio_version(extra)
    name = wheel_name(version)
    if wheel is not None:
        wheel = Path(wheel)
        if not wheel.is_file():
            raise SpaceError(f"--wheel {wheel}: no such file")
        if wheel.name != name:
            raise SpaceError(f"--wheel {wheel}: expected {name}, the wheel of the installed trl-processsql {version}")
        _check_wheel(wheel, version, f"--wheel {wheel}")
    elif source_root() is None:
        raise SpaceError("trl-processsql is not imported from a source tree (it was installed from a wheel), so there "
                         "is no wheel to build: pass --wheel PATH")

    folder = SpaceFolder(output, name, model=model, prm=prm)
    for flag, value in (("--model", model), ("--prm", prm)):
        if value and not is_hub_id(value):
            folder.notes.append(f"{flag} {value} is a local path: it is the app's default when the folder runs here, "
                                "but a Space cannot read it (give a Hub id)")
    with tempfile.TemporaryDirectory(prefix="trl-processsql-space-") as work:
        if wheel is None:
            built = build_wheel(source_root(), Path(work), log)
            if built.name != name:
                raise SpaceError(f"the source tree builds {built.name}, but the installed trl-processsql is {version}: "
                                 "pip install -e . again")
            _check_wheel(built, version, f"the wheel built from {source_root()}")
            wheel = built
        output.mkdir(parents=True, exist_ok=True)
        for stale in output.glob("trl_processsql-*.whl"):
            if stale.name != name:
                stale.unlink()
        if not (output / name).exists() or not (output / name).samefile(wheel):
            shutil.copyfile(wheel, output / name)
    texts = {
        "app.py": render_app(name, model, prm),
        "README.md": render_readme(name, sdk_version, model, prm),
        "requirements.txt": render_requirements(name, core, extra),
    }
    for file_name, text in texts.items():
        (output / file_name).write_text(text, encoding="utf-8")
    return folder


# -- the files --------------------------------------------------------------------------------------


_APP = '''\
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

WHEEL = Path(__file__).resolve().with_name({wheel})
MODEL = os.environ.get("PROCESSSQL_MODEL") or {model}
PRM = os.environ.get("PROCESSSQL_PRM") or {prm}


def unpack(wheel: Path) -> Path:
    """The folder the wheel is unpacked into: once per wheel (named by its hash), in the temporary folder."""
    if not wheel.is_file():
        sys.exit(f"{{wheel.name}} is missing beside app.py: trl-processsql space --output {{wheel.parent}} puts it there")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()[:16]
    target = Path(tempfile.gettempdir()) / f"{{wheel.stem}}-{{digest}}"
    if not target.is_dir():
        staging = tempfile.mkdtemp(prefix=f".{{target.name}}-", dir=target.parent)
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

print(f"trl-processsql {{trl_processsql.__version__}} from {{Path(trl_processsql.__file__).parent}}", flush=True)
demo = build_demo(model=MODEL, prm=PRM)

if __name__ == "__main__":
    launch(demo)
'''


def render_app(wheel: str, model: str | None, prm: str | None) -> str:
    """app.py: unpack the wheel, then serve the demo with the Space variables' models (defaults: ``model``, ``prm``)."""
    return _APP.format(wheel=_literal(wheel), model=_literal(model), prm=_literal(prm))


def _literal(value: str | None) -> str:
    """A Python literal for ``value``, in double quotes."""
    return "None" if value is None else json.dumps(value)


def _front_matter(sdk_version: str, models: list[str]) -> str:
    lines = [
        "---",
        "title: Chain-of-CTEs Text-to-SQL",
        "emoji: 🪜",
        "colorFrom: indigo",
        "colorTo: blue",
        "sdk: gradio",
        f"sdk_version: {sdk_version}",
        "app_file: app.py",
        "pinned: false",
        "license: apache-2.0",
        "short_description: Text-to-SQL as chains of CTEs, every step executed",
        "tags:",
        *(f"  - {tag}" for tag in ("text-to-sql", "sql", "sqlite", "trl", "process-reward-model", "reward-sql")),
    ]
    if models:
        lines += ["models:", *(f"  - {m}" for m in models)]
    return "\n".join([*lines, "---", ""])


def _model_line(variable: str, role: str, value: str | None) -> str:
    return f"  - `{variable}`, {role}: " + (f"default `{value}`" if value else "unset by default")


_README = """\
# Chain-of-CTEs text-to-SQL, step by step

A demo of **trl-processsql**, process-supervised text-to-SQL on TRL (the
[Reward-SQL](https://arxiv.org/abs/2505.04671) method): the policy writes SQL as a **chain of common table
expressions** (CoCTE), one CTE per reasoning step. The page executes every step on its own and shows:

- each step's SQL and its intermediate result as a table,
- the step's score from the **process reward model** (PRM), when one is loaded,
- the final answer table.

Pick one of the bundled sample databases or upload your own `.sqlite` file (it is checked to be
SQLite, copied, and only ever opened read-only, with a 10 s limit per query).

- **Explain SQL** works with no model: paste any query and see it as CoCTE steps with every
  intermediate view executed. Add the question it answers to have a PRM score the steps.
- **Ask a question** needs a policy model. The Space reads its models from two variables, Hub ids
  (or paths) set under *Settings → Variables and secrets*, and loads them on first use; a model that
  cannot load is reported in the page.
{model_line}
{prm_line}

## How this Space is built

`trl-processsql space` writes this folder: `app.py`, this card, `requirements.txt`, and the package
itself as a wheel, `{wheel}`, built from a checkout. Spaces install
`requirements.txt` before the folder's other files are copied into the image, so the wheel cannot be a
line of it: `requirements.txt` lists what the wheel requires (its dependencies and its `demo` extra), and
`app.py` unpacks the wheel when it starts and runs the demo from it. To update the Space, write the
folder again from a clone of the repository (`--push` also creates the Space, sets its variables and
uploads the folder):

```bash
trl-processsql space --output my-space --model ORG/POLICY --prm ORG/PRM --push ORG/SPACE
```

## Run it locally

From this folder, with the wheel beside `app.py`:

```bash
pip install -r requirements.txt
python app.py                                          # http://127.0.0.1:7860
PROCESSSQL_MODEL=MODEL PROCESSSQL_PRM=PRM python app.py
```

or from a clone of the repository:

```bash
pip install -e ".[demo]"
trl-processsql demo                                   # explain mode only
trl-processsql demo --model MODEL --prm PRM           # questions, with step scores
```

## Data and license

The code is Apache-2.0. The sample databases (`concert_singer`, `pets_1`, `car_1`,
`dog_kennels`, `employee_hire_evaluation`) come with the package and are part of
**Spider 1.0** (Yu et al., "Spider: A Large-Scale Human-Labeled Dataset for Complex and
Cross-Domain Semantic Parsing and Text-to-SQL Task", EMNLP 2018), released under
[CC BY-SA 4.0](https://creativecommons.org/licenses/by-sa/4.0/); see
`trl_processsql/sample_data/SOURCE.md` in the package.
"""


def render_readme(wheel: str, sdk_version: str, model: str | None, prm: str | None) -> str:
    """README.md: the Space's front matter (``models:`` lists the Hub ids among ``model`` and ``prm``), then the card."""
    models = [value for value in (model, prm) if value and is_hub_id(value)]
    body = _README.format(
        wheel=wheel,
        model_line=_model_line("PROCESSSQL_MODEL", "the policy that answers", model),
        prm_line=_model_line("PROCESSSQL_PRM", "the PRM that scores the steps", prm),
    )
    return _front_matter(sdk_version, models) + "\n" + body


def render_requirements(wheel: str, core: list[str], extra: list[str]) -> str:
    """requirements.txt: what the wheel requires, then what its demo extra adds; a header says why not the wheel."""
    header = [
        f"{HEADER}: what the Space installs before it starts app.py.",
        f"# The demo itself is {wheel}, which `trl-processsql space --output <this folder>`",
        "# puts beside app.py and app.py unpacks at start: a Space installs this file before the folder's other",
        "# files are copied in, so the wheel cannot be a line of it. Below, trl-processsql's requirements and",
        f"# its {EXTRA} extra's, as the package's metadata lists them.",
    ]
    return "\n".join([*header, *core, f"# the {EXTRA} extra", *extra, ""])


# -- the Hub ----------------------------------------------------------------------------------------


def push_space(folder: SpaceFolder, repo_id: str, *, private: bool = False) -> str:
    """Create the Space ``repo_id`` (Gradio SDK, variables for the Hub ids among the models) and upload the folder.

    ``create_repo`` sets variables only on a Space it creates, so each is also set with
    ``add_space_variable`` (which adds or updates), for a Space that exists. Only the folder's own
    files are uploaded, and a wheel of another version left in the Space is deleted. Returns the
    Space's URL.
    """
    from huggingface_hub import HfApi

    api = HfApi()
    variables = folder.variables
    url = api.create_repo(
        repo_id, repo_type="space", space_sdk="gradio", exist_ok=True, private=private, space_variables=variables or None
    )
    repo_id = getattr(url, "repo_id", None) or repo_id
    for variable in variables:
        api.add_space_variable(repo_id, variable["key"], variable["value"])
    api.upload_folder(
        folder_path=str(folder.path),
        repo_id=repo_id,
        repo_type="space",
        allow_patterns=folder.files,
        delete_patterns=["trl_processsql-*.whl"],
        commit_message=f"trl-processsql space: {folder.wheel}",
    )
    return str(url)


def check_repo_id(repo_id: str) -> None:
    """Raise :class:`SpaceError` unless ``repo_id`` is a valid Hub repository id (checked before the slow build)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise SpaceError(f"--push {repo_id} is not a Hub repository id: {str(exc).splitlines()[0]}") from None
