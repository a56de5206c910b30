"""Every ```python block of README.md and docs/ runs as written: offline, in a fresh folder, in its own interpreter.

A block is skipped only when the line right before its opening fence is the marker
``<!-- readme-test: skip (why) -->`` (an HTML comment, invisible on the rendered page) with a
reason in the parentheses; use it only for code that cannot run here (a GPU, the network).
"""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
PAGES = [README, *sorted((README.parent / "docs").glob("*.md"))]
"""The pages whose code is tested: the README and the guide and history it links to."""


def _text() -> str:
    return "\n".join(page.read_text(encoding="utf-8") for page in PAGES)
_BLOCK = re.compile(r"^(?P<before>[^\n]*)\n```python\n(?P<code>.*?)^```$", re.MULTILINE | re.DOTALL)
_SKIP = re.compile(r"^<!-- readme-test: skip \((?P<why>[^)]+)\) -->$")


def _blocks(text: str, name: str = "README.md") -> list:
    """One pytest param per ```python block of ``text`` (the page ``name``), named by its line, skipped where marked."""
    params = []
    for match in _BLOCK.finditer(text):
        line = text.count("\n", 0, match.start("code"))  # the line of the opening fence, counted from 1
        skip = _SKIP.match(match.group("before").strip())
        marks = [pytest.mark.skip(reason=f"README marks it: {skip.group('why')}")] if skip else []
        params.append(pytest.param(match.group("code"), id=f"{name}:{line}", marks=marks))
    return params


def test_the_extraction_sees_every_block_and_skips_only_marked_ones():
    text = _text()
    assert len(_blocks(text)) == text.count("```python\n") >= 3
    sample = "intro\n```python\nx = 1\n```\n<!-- readme-test: skip (needs a GPU) -->\n```python\ny = 2\n```\n"
    run, skipped = _blocks(sample)
    assert (run.values, run.id, list(run.marks)) == (("x = 1\n",), "README.md:2", [])
    assert skipped.values == ("y = 2\n",) and skipped.marks[0].kwargs["reason"] == "README marks it: needs a GPU"


@pytest.mark.slow
@pytest.mark.parametrize("code", [block for page in PAGES for block in _blocks(page.read_text(encoding="utf-8"), page.relative_to(README.parent).as_posix())])
def test_readme_python_block_runs_as_written(code, tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"the block failed:\n{code}\n--- stderr ---\n{result.stderr[-4000:]}"


def _shell_commands(text: str) -> list[list[str]]:
    """Each command of the README's ```bash blocks as words: lines joined at ``\\``, split at ``&&``,
    comments and optional ``[--option ...]`` parts dropped."""
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```$", text, re.MULTILINE | re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            for command in line.split("&&"):
                words = shlex.split(re.sub(r"\[-[^\]]*\]", "", command), comments=True)
                if words:
                    commands.append(words)
    return commands


def test_every_readme_cli_command_parses_with_the_options_it_names():
    from trl_processsql.cli import build_parser

    commands = [words[1:] for words in _shell_commands(_text()) if words[0] == "trl-processsql"]
    assert len(commands) >= 6
    for argv in commands:
        args = build_parser().parse_args(argv)  # an unknown command or option exits with code 2
        assert hasattr(args, "run"), argv


def test_the_newcomer_commands_install_torch_and_test_as_ci_does():
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    ci_torch = re.search(r"pip install --quiet (torch\S*)", ci).group(1)
    commands = _shell_commands(README.read_text(encoding="utf-8"))
    quickstart = next(i for i, words in enumerate(commands) if words[:2] == ["trl-processsql", "quickstart"])
    tests = next(i for i, words in enumerate(commands) if words[:3] == ["python", "-m", "pytest"])
    for last in (quickstart, tests):
        assert commands[last - 2] == ["pip", "install", ci_torch], commands[last - 2]
    assert commands[tests - 1] == ["pip", "install", "-e", ".[dev]"] and 'install --quiet -e ".[dev]"' in ci
    assert re.search(rf"^{re.escape(' '.join(commands[tests]))}$", ci, re.M), "the README's test command is the one CI runs"
