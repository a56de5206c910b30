"""README's figures come from results files: each is a link into benchmarks/RESULTS.md naming the figure it quotes.

A figure is written ``[22.0%](benchmarks/RESULTS.md#<results name> "<key/path>")``: the link goes to the run's
section of the generated page, the title is the figure's key path in ``benchmarks/results/<results name>.json``.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

from make_results import load_results, render, resolve  # noqa: E402

FIGURE_LINK = re.compile(r'\[([^\]]*)\]\(benchmarks/RESULTS\.md#([\w.-]+) "([^"]+)"\)')
UNTAGGED = re.compile(r"(?<![\w.])[+-]?\d[\d,]*(?:\.\d+)?(?:%|x\b)")
EXEMPT = re.compile(r"95% (?:CI|confidence)")


def figure_errors(text: str, results: dict[str, dict]) -> list[str]:
    """What is wrong with the figures of ``text``: links whose number is not their results file's value (as is, or times
    100 for a rate), links to no file or no key, and figures (percentages, ratios) outside fenced code with no link."""
    errors = []
    for shown, name, path in FIGURE_LINK.findall(text):
        number = re.search(r"[+-]?\d[\d,]*(?:\.(\d+))?", shown)
        if name not in results:
            errors.append(f"{shown}: no results file {name}.json")
            continue
        try:
            value = resolve(results[name]["figures"], path)
        except KeyError as exc:
            errors.append(f"{shown}: {name}.json has no figure {exc}")
            continue
        if number is None or not isinstance(value, (int, float)):
            errors.append(f"{shown}: {name}.json's {path} is {value!r}, not a number to quote")
            continue
        decimals, quoted = len(number.group(1) or ""), float(number.group(0).replace(",", ""))
        if all(round(candidate, decimals) != quoted for candidate in (value, value * 100)):
            errors.append(f"{shown}: {name}.json's {path} is {value}")
    prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    for number, line in enumerate(prose.splitlines(), 1):
        bare = EXEMPT.sub("", FIGURE_LINK.sub("", line))
        if UNTAGGED.search(bare):
            errors.append(f"untagged figure {UNTAGGED.search(bare).group(0)!r} in: {line.strip()[:120]}")
    return errors


RESULTS = {"run": {"figures": {"ex": {"SFT": 0.22}, "ci": [0.173, 0.267], "speedup": 2.06}}}


def test_a_figure_that_matches_its_file_passes():
    text = ('SFT reaches [22.0%](benchmarks/RESULTS.md#run "ex/SFT") ([+17.3](benchmarks/RESULTS.md#run "ci/0"), 95% CI), '
            '[2.1x](benchmarks/RESULTS.md#run "speedup") faster.')
    assert figure_errors(text, RESULTS) == []


@pytest.mark.parametrize("text, complaint", [
    ('[23.0%](benchmarks/RESULTS.md#run "ex/SFT")', "ex/SFT is 0.22"),
    ('[22.0%](benchmarks/RESULTS.md#run "ex/GRPO")', "has no figure"),
    ('[22.0%](benchmarks/RESULTS.md#other "ex/SFT")', "no results file other.json"),
    ("SFT reaches 22.0% on dev", "untagged figure '22.0%'"),
    ("bf16 is 2.6x faster", "untagged figure '2.6x'"),
])
def test_a_wrong_missing_or_untagged_figure_is_reported(text, complaint):
    errors = figure_errors(text, RESULTS)
    assert len(errors) == 1 and complaint in errors[0], errors


def test_figures_in_code_blocks_and_confidence_levels_are_not_quotes():
    assert figure_errors("```\ngreedy 15.0%\n```\nwith a 95% CI over questions", RESULTS) == []


def test_every_figure_in_the_readme_matches_its_results_file():
    errors = figure_errors((REPO_ROOT / "README.md").read_text(), load_results())
    assert not errors, "\n".join(errors)


def test_the_results_page_is_generated_from_the_results_files():
    assert (REPO_ROOT / "benchmarks" / "RESULTS.md").read_text() == render(load_results()), (
        "benchmarks/RESULTS.md is out of date: run python benchmarks/make_results.py")
    done = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "make_results.py"), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
