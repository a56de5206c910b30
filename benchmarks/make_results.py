"""Write ``benchmarks/RESULTS.md`` from the JSON files the benchmarks leave in ``benchmarks/results/``.

Each benchmark records its figures with the date, the machine, the command and the git revision
(``_common.write_results``). This page lists them all, one section per file, so a figure quoted in
README.md links to the run that produced it; ``tests/test_results_files.py`` checks that every
quoted figure matches its file and that this page is up to date.

    python benchmarks/make_results.py           # rewrite RESULTS.md
    python benchmarks/make_results.py --check   # exit 1 if RESULTS.md is not what the files give
    python benchmarks/make_results.py --readme  # also rewrite the numbers README.md quotes, listing each change

README quotes a figure as a link whose title is its key path, ``[22.0%](benchmarks/RESULTS.md#<name> "greedy_ex/SFT")``:
after a rerun, ``--readme`` writes each such number from its file in the shape it had (sign, thousands commas, decimals,
unit; a rate as a percentage or in points) and lists what changed, so that the sentences around them can be reread.

A figure whose value is a float between -1 and 1 is a rate (a share, an accuracy, a difference of two) and is shown as
a percentage too, unless its key path names a unit or a ratio (seconds, minutes, ratio, speedup, ...; see NOT_RATES).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
RESULTS_DIR = BENCHMARKS / "results"
RESULTS_PAGE = BENCHMARKS / "RESULTS.md"
README = BENCHMARKS.parent / "README.md"

FIGURE_LINK = re.compile(r'\[([^\[\]]*)\]\(benchmarks/RESULTS\.md#([\w.-]+) "([^"]+)"\)')
"""A figure quoted in README: ``[number](benchmarks/RESULTS.md#<results name> "<key path>")``."""
FIGURE_TEXT = re.compile(r"([+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?)(%|x| s| min)?")
"""A link text that is a figure alone: a number with an optional sign, thousands commas, decimals and unit."""


def flatten(figures, prefix: str = "") -> list[tuple[str, object]]:
    """Every leaf of ``figures`` with its key path, parts joined by "/" (list positions are parts too).

    >>> flatten({"greedy_ex": {"SFT": 0.22}, "ci": [0.1, 0.3]})
    [('greedy_ex/SFT', 0.22), ('ci/0', 0.1), ('ci/1', 0.3)]
    """
    if isinstance(figures, dict):
        items = figures.items()
    elif isinstance(figures, list):
        items = enumerate(figures)
    else:
        return [(prefix, figures)]
    return [leaf for key, value in items for leaf in flatten(value, f"{prefix}/{key}" if prefix else str(key))]


def resolve(figures, path: str):
    """The value at a "/"-separated key path of ``figures``; ``KeyError`` naming the first part not found.

    >>> resolve({"selection": {"greedy": {"vs_greedy_ci95": [0.0, 0.1]}}}, "selection/greedy/vs_greedy_ci95/1")
    0.1
    """
    value = figures
    for part in path.split("/"):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise KeyError(f"{path}: no {part!r}")
    return value


NOT_RATES = ("seconds", "minutes", "ratio", "speedup", "auroc", "difference", "cores", "_mb", "_mib", "per_", "above_random")
"""Words of a key path whose float figure is not a rate, though it may lie between -1 and 1."""


def is_rate(key: str, value) -> bool:
    """Whether a figure is a rate (a fraction: not a time, a ratio, ...), shown as a percentage or in points."""
    return isinstance(value, float) and abs(value) <= 1.0 and not any(word in key for word in NOT_RATES)


def shown(key: str, value) -> str:
    """A figure as the page shows it: rates also as a percentage.

    >>> shown("greedy_ex/SFT", 0.22), shown("ours_batch_seconds", 0.0569), shown("step_time_ratio", 0.8)
    ('0.22 (22.0%)', '0.0569', '0.8')
    """
    if is_rate(key, value):
        return f"{value:.4g} ({value * 100:.1f}%)"
    return str(value)


def relinked(text: str, results: dict[str, dict]) -> tuple[str, list[str]]:
    """``text`` with the number of each figure link written from its results file, and a line for each that changed.

    A link whose text, file or figure is not right for a figure is left as it is (``tests/test_results_files.py`` names it).

    >>> results = {"run": {"figures": {"ex": 0.247, "ci": [-0.013, 0.04], "seconds": 1234.5}}}
    >>> relinked('[21.7%](benchmarks/RESULTS.md#run "ex") [+0.7](benchmarks/RESULTS.md#run "ci/0") '
    ...          '[1,200 s](benchmarks/RESULTS.md#run "seconds")', results)[1]
    ['run ex: 21.7% -> 24.7%', 'run ci/0: +0.7 -> -1.3', 'run seconds: 1,200 s -> 1,234 s']
    """
    changes = []

    def rewritten(link: re.Match) -> str:
        text, name, path = link.groups()
        number = FIGURE_TEXT.fullmatch(text)
        try:
            value = resolve(results[name]["figures"], path)
        except KeyError:
            return link.group(0)
        if number is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            return link.group(0)
        digits, decimals, unit = number.groups()
        places, scaled = len(decimals or ""), value * 100 if is_rate(path, value) else value
        if abs(float(digits.replace(",", "")) - scaled) <= 0.5 * 10**-places * (1 + 1e-9):
            return link.group(0)  # already right (a value at a half may read either way)
        new = format(scaled, f"{'+' if digits.startswith('+') else ''}{',' if ',' in digits else ''}.{places}f") + (unit or "")
        changes.append(f"{name} {path}: {text} -> {new}")
        return f'[{new}](benchmarks/RESULTS.md#{name} "{path}")'

    return FIGURE_LINK.sub(rewritten, text), changes


def load_results(results_dir: Path = RESULTS_DIR) -> dict[str, dict]:
    """Every results file, by name."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(results_dir.glob("*.json"))}


def render(results: dict[str, dict]) -> str:
    """The page: an index, then one section per results file with what produced it and its figures."""
    lines = [
        "# Benchmark results",
        "",
        "Generated by `python benchmarks/make_results.py` from `benchmarks/results/*.json`, which each benchmark",
        "writes at the end of a run (smoke runs and tests write elsewhere: `--results-dir`, or beside the work folder",
        "of a `--quick` run). Do not edit by hand: rerun the benchmark, then `python benchmarks/make_results.py`.",
        "",
        *(f"- [{name}](#{name})" for name in results),
    ]
    for name, record in results.items():
        machine = ", ".join(f"{key} {value}" for key, value in record.get("machine", {}).items())
        lines += [
            "",
            f'<a id="{name}"></a>',
            "",
            f"## {name}",
            "",
            f"- command: `{record['command']}`",
            f"- date: {record['date']}",
            f"- git revision: {record['git_revision']}",
            f"- machine: {machine}",
            "",
            "| figure | value |",
            "| --- | --- |",
            *(f"| {key} | {shown(key, value)} |".replace("\n", " ") for key, value in flatten(record["figures"])),
        ]
    return "\n".join(lines) + "\n"


def check(page_path: Path = RESULTS_PAGE, results_dir: Path = RESULTS_DIR) -> str | None:
    """Why ``page_path`` is not what the results files of ``results_dir`` give; None when it is."""
    if not page_path.is_file():
        return f"{page_path} is missing: run python benchmarks/make_results.py"
    if page_path.read_text() != render(load_results(results_dir)):
        return f"{page_path} is out of date with {results_dir}/*.json: run python benchmarks/make_results.py"
    return None


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="do not write: exit 1 if the page differs from what the results files give")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, metavar="DIR", help="read DIR/*.json (default: benchmarks/results)")
    parser.add_argument("--output", type=Path, default=RESULTS_PAGE, metavar="FILE", help="the page written or checked (default: benchmarks/RESULTS.md)")
    parser.add_argument("--readme", action="store_true", help="also write the numbers README.md quotes from the results files and list "
                        "each change (reread the sentences around them)")
    args = parser.parse_args(argv)
    if args.check:
        problem = check(args.output, args.results_dir)
        if problem:
            sys.exit(problem)
        print(f"{args.output} is up to date")
        return
    results = load_results(args.results_dir)
    args.output.write_text(render(results))
    print(f"wrote {args.output} ({len(results)} results files)")
    if args.readme:
        text, changes = relinked(README.read_text(), results)
        README.write_text(text)
        print(f"wrote {README}: {len(changes)} figures changed", *changes, sep="\n  ")


if __name__ == "__main__":
    main()
