"""README's figures come from results files: each is a link into benchmarks/RESULTS.md naming the figure it quotes.

A figure is written ``[22.0%](benchmarks/RESULTS.md#<results name> "<key/path>")``: the link goes to the run's section of
the generated page, the title is the figure's key path in ``benchmarks/results/<results name>.json`` (parts joined by "/",
list positions are parts too: ``vs_greedy_ci95/0``). The link text is the number alone, with an optional sign, thousands
commas and unit (``%``, ``x``, `` s``, `` min``); it must equal the file's value, or 100 times it (a rate as a percentage or
in points), rounded to the decimals the text shows. Outside fenced code, README.md holds no other percentage or ratio
(``22%``, ``2.1x``); "95% CI" and "95% confidence" are no figures.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

from make_results import FIGURE_LINK, FIGURE_TEXT, check, flatten, load_results, relinked, render, resolve, shown  # noqa: E402

UNTAGGED = re.compile(r"\d[\d,]*(?:\.\d+)?%|(?<![\w.])\d[\d,]*(?:\.\d+)?[x×](?!\w)")
EXEMPT = re.compile(r"95% (?:CI|confidence)")


def quoted(text: str) -> tuple[float, int] | None:
    """The number a link text shows and its decimals; None where the text is not a figure alone.

    >>> quoted("+17.3"), quoted("1,024"), quoted("0.57 s"), quoted("vote@8 28.0%")
    ((17.3, 1), (1024.0, 0), (0.57, 2), None)
    """
    match = FIGURE_TEXT.fullmatch(text)
    if match is None:
        return None
    return float(match.group(1).replace(",", "")), len(match.group(2) or "")


def agrees(number: float, decimals: int, value: float) -> bool:
    """Whether ``number`` is ``value`` or ``100 * value`` rounded to ``decimals`` (either way at a half: 0.235 is 0.23 or 0.24)."""
    half = 0.5 * 10**-decimals * (1 + 1e-9)
    return any(abs(candidate - number) <= half for candidate in (value, 100 * value))


def link_errors(text: str, results: dict[str, dict]) -> list[str]:
    """Figure links of ``text`` whose results file, key path or number is wrong."""
    errors = []
    for shown_text, name, path in FIGURE_LINK.findall(text):
        where = f"[{shown_text}](…#{name} {path!r})"
        number = quoted(shown_text)
        if number is None:
            errors.append(f"{where}: the link text is not a figure alone (a number, a sign, a unit: %, x, s, min)")
        elif name not in results:
            errors.append(f"{where}: no results file benchmarks/results/{name}.json")
        else:
            try:
                value = resolve(results[name]["figures"], path)
            except KeyError as exc:
                errors.append(f"{where}: {name}.json has no figure {exc}")
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                errors.append(f"{where}: {name}.json's {path} is {value!r}, not a number")
            elif not agrees(*number, value):
                errors.append(f"{where}: {name}.json's {path} is {value}")
    return errors


def untagged_errors(text: str) -> list[str]:
    """Lines outside fenced code that show a percentage or a ratio that is no figure link, with their line numbers."""
    errors, fence = [], None
    for number, line in enumerate(text.splitlines(), 1):
        marker = re.match(r"\s*(```|~~~)", line)
        if marker and (fence is None or marker.group(1) == fence):
            fence = marker.group(1) if fence is None else None
            continue
        if fence is not None:
            continue
        found = UNTAGGED.search(EXEMPT.sub("", FIGURE_LINK.sub("", line)))
        if found:
            errors.append(f"line {number}: untagged figure {found.group(0)!r} (make it a link into benchmarks/RESULTS.md): {line.strip()[:160]}")
    return errors


def figure_errors(text: str, results: dict[str, dict]) -> list[str]:
    return link_errors(text, results) + untagged_errors(text)


# -- the checker itself, on small texts -------------------------------------------------------------

RESULTS = {"run": {"figures": {"ex": {"SFT": 0.22}, "ci": [0.173, 0.267], "speedup": 2.06, "batch_seconds": 0.235, "runnable": 7873,
                               "minutes": 24.1, "note": "busy machine"}}}


def test_figures_that_match_their_file_pass():
    text = ('SFT reaches [22.0%](benchmarks/RESULTS.md#run "ex/SFT") ([+17.3](benchmarks/RESULTS.md#run "ci/0"), 95% CI), '
            '[2.1x](benchmarks/RESULTS.md#run "speedup") faster, [0.23 s](benchmarks/RESULTS.md#run "batch_seconds") a batch,\n'
            '[7,873](benchmarks/RESULTS.md#run "runnable") queries in [24.1 min](benchmarks/RESULTS.md#run "minutes") '
            '(interval [[+17.3](benchmarks/RESULTS.md#run "ci/0"), [+26.7](benchmarks/RESULTS.md#run "ci/1")]); '
            'see [the run](benchmarks/RESULTS.md#run).')
    assert figure_errors(text, RESULTS) == []


@pytest.mark.parametrize("text, complaint", [
    ('[23.0%](benchmarks/RESULTS.md#run "ex/SFT")', "ex/SFT is 0.22"),
    ('[0.22 s](benchmarks/RESULTS.md#run "batch_seconds")', "batch_seconds is 0.235"),
    ('[22.0%](benchmarks/RESULTS.md#run "ex/GRPO")', "has no figure"),
    ('[22.0%](benchmarks/RESULTS.md#run "ci/2")', "has no figure"),
    ('[22.0%](benchmarks/RESULTS.md#other "ex/SFT")', "no results file benchmarks/results/other.json"),
    ('[busy](benchmarks/RESULTS.md#run "note")', "not a figure alone"),
    ('[2.1x faster](benchmarks/RESULTS.md#run "speedup")', "not a figure alone"),
    ('[1](benchmarks/RESULTS.md#run "ex")', "not a number"),
    ("SFT reaches 22.0% on dev", "line 1: untagged figure '22.0%'"),
    ("a\nbf16 is 2.6x faster", "line 2: untagged figure '2.6x'"),
])
def test_a_wrong_missing_or_untagged_figure_is_reported(text, complaint):
    errors = figure_errors(text, RESULTS)
    assert len(errors) == 1 and complaint in errors[0], errors


def test_stale_numbers_rewritten_from_their_file_pass_the_check_and_each_change_is_listed():
    stale = ('SFT reaches [19.5%](benchmarks/RESULTS.md#run "ex/SFT") ([+12.0](benchmarks/RESULTS.md#run "ci/0"), 95% CI), '
             '[1.9x](benchmarks/RESULTS.md#run "speedup") faster, [7,000](benchmarks/RESULTS.md#run "runnable") queries, '
             '[0.24 s](benchmarks/RESULTS.md#run "batch_seconds") a batch, [busy](benchmarks/RESULTS.md#run "note")')
    text, changes = relinked(stale, RESULTS)
    assert link_errors(text.replace('[busy](benchmarks/RESULTS.md#run "note")', ""), RESULTS) == []
    assert changes == ["run ex/SFT: 19.5% -> 22.0%", "run ci/0: +12.0 -> +17.3", "run speedup: 1.9x -> 2.1x", "run runnable: 7,000 -> 7,873"]
    assert "[busy]" in text and relinked(text, RESULTS) == (text, [])  # a link that is no figure stays; a second pass changes nothing


def test_figures_in_code_blocks_and_confidence_levels_are_not_quotes():
    text = "```\ngreedy 15.0%\n```\n~~~bash\n2.1x\n~~~\nwith a 95% CI over questions, at 95% confidence; 0x1F and 16x16 are no ratios"
    assert figure_errors(text, RESULTS) == []
    assert untagged_errors("```\nin code 15%\n```\nout of it 15%") == ["line 4: untagged figure '15%' (make it a link into "
                                                                       "benchmarks/RESULTS.md): out of it 15%"]


# -- the generated page ------------------------------------------------------------------------------


def test_the_page_has_a_linkable_section_per_results_file_in_name_order():
    record = {"date": "2026-01-01T00:00:00+00:00", "command": "python benchmarks/b.py", "git_revision": "abc", "machine": {"cpus": 2},
              "figures": {"greedy_ex": {"SFT": 0.22}, "ci": [0.1, 0.3], "batch_seconds": 0.5, "speedup": 0.9, "questions": 200}}
    page = render({"a_run": record, "b_run": record})
    assert page.index('<a id="a_run"></a>\n\n## a_run') < page.index('<a id="b_run"></a>\n\n## b_run')
    for line in ("- command: `python benchmarks/b.py`", "- git revision: abc", "- machine: cpus 2", "| greedy_ex/SFT | 0.22 (22.0%) |",
                 "| ci/1 | 0.3 (30.0%) |", "| batch_seconds | 0.5 |", "| speedup | 0.9 |", "| questions | 200 |"):
        assert line in page
    assert "python benchmarks/make_results.py" in page.split("\n\n")[1]  # the intro says how to regenerate it
    assert render({"a_run": record, "b_run": record}) == page
    assert flatten({"a": {"b": [1, {"c": 2}]}}) == [("a/b/0", 1), ("a/b/1/c", 2)]
    assert resolve({"a": {"b": [1, {"c": 2}]}}, "a/b/1/c") == 2
    assert shown("share", 1.0) == "1 (100.0%)" and shown("greedy_minutes", 0.5) == "0.5" and shown("step_time_ratio", 0.8) == "0.8"


def test_check_says_when_the_page_is_stale(tmp_path):
    results, page = tmp_path / "results", tmp_path / "RESULTS.md"
    results.mkdir()
    record = {"name": "run", "date": "d", "command": "c", "git_revision": "r", "machine": {}, "figures": {"x": 0.5}}
    (results / "run.json").write_text(json.dumps(record))
    assert "missing" in check(page, results)
    script = [sys.executable, str(REPO_ROOT / "benchmarks" / "make_results.py"), "--results-dir", str(results), "--output", str(page)]
    assert subprocess.run(script, capture_output=True, text=True).returncode == 0
    assert check(page, results) is None and subprocess.run([*script, "--check"], capture_output=True, text=True).returncode == 0
    (results / "run.json").write_text(json.dumps({**record, "figures": {"x": 0.6}}))
    done = subprocess.run([*script, "--check"], capture_output=True, text=True)
    assert done.returncode == 1 and "out of date" in done.stderr and "make_results.py" in done.stderr


# -- the repository ----------------------------------------------------------------------------------


def test_the_results_page_is_generated_from_the_results_files():
    problem = check()
    assert problem is None, problem
    assert (REPO_ROOT / "benchmarks" / "RESULTS.md").read_text() == render(load_results())


def test_every_figure_in_the_readme_matches_its_results_file():
    errors = link_errors((REPO_ROOT / "README.md").read_text(), load_results())
    assert not errors, "README.md figures that do not match their results file:\n" + "\n".join(errors)


def test_the_readme_quotes_no_figure_without_its_results_file():
    errors = untagged_errors((REPO_ROOT / "README.md").read_text())
    assert not errors, "README.md figures with no link into benchmarks/RESULTS.md:\n" + "\n".join(errors)
