"""The recipe comparison: nested label sets, its verdict per size, and its smoke mode end to end."""

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from trl_processsql.labeling import MUTATIONS

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))


def test_each_size_adds_questions_to_the_one_before():
    from bench_prm_recipe import new_questions

    questions = [{"index": i} for i in range(10)]
    chunks = new_questions(questions, [3, 7, 10])
    assert [len(c) for c in chunks] == [3, 4, 3]
    for k, size in enumerate([3, 7, 10]):  # a size's questions are the first `size`, whatever the larger sizes
        assert [q for chunk in chunks[: k + 1] for q in chunk] == questions[:size]


def test_a_kind_counts_above_random_only_when_the_prm_beats_it():
    from bench_prm_recipe import Judgement, mean

    judgement = Judgement(kinds={"limit": (0.6, 0.5), "count": (0.5, 0.5), "order": (0.4, 0.5)})
    assert judgement.wins() == 1  # a tie is not a win
    assert mean(v for v, _ in judgement.kinds.values()) == pytest.approx(0.5)
    assert math.isnan(mean([]))


def test_the_figures_give_each_size_against_random_among_running_and_the_first_size():
    from bench_prm_recipe import Judgement, recipe_figures

    def judgement(limit, count, own):
        return Judgement(kinds={"limit": (limit, 0.5), "count": (count, 0.25)}, own=[(own, 0.4), (own, 0.4)], check=[None, (own, 0.3)],
                         minutes=2.0)

    results = {(10, 0): judgement(0.6, 0.25, 0.5), (10, 1): judgement(0.4, 0.5, 0.5), (20, 0): judgement(0.7, 0.5, 0.6),
               (20, 1): judgement(0.7, 0.5, 0.6)}
    figures = recipe_figures(results, [10, 20], [0, 1])
    assert set(figures) == {"sizes", "seeds", "kinds", "by_size", "random_running", "by_kind"}
    assert figures["random_running"] == {"mean_over_kinds": 0.375, "own_held_out": 0.4, "own_unused": 0.3}
    first, second = figures["by_size"]["10"], figures["by_size"]["20"]
    assert set(first) == {"kinds_above_random", "mean_over_kinds", "own_held_out", "own_unused", "minutes"}
    assert first["kinds_above_random"] == 1.0 and first["mean_over_kinds"] == pytest.approx(0.4375) and first["own_unused"] == 0.5
    assert second["gain_over_first"] == pytest.approx({"mean_over_kinds": 0.6 - 0.4375, "own_held_out": 0.1, "own_unused": 0.1})
    assert figures["by_kind"]["limit"] == pytest.approx({"random_running": 0.5, "10": 0.5, "20": 0.7})


def test_sizes_out_of_order_are_refused_before_any_work(spider_dir):
    done = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "bench_prm_recipe.py"), "--spider-dir", str(spider_dir),
                           "--own-questions", "2500", "1000"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "--own-questions must be positive, distinct and increasing, got [2500, 1000]" in done.stderr


@pytest.mark.slow
@pytest.mark.timeout(1200)  # a few minutes on 2 cores
def test_the_quick_run_judges_every_size_on_the_same_pools(spider_dir, quick_work_dir, tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "bench_prm_recipe.py"), "--quick", "--spider-dir", str(spider_dir),
         "--work-dir", str(quick_work_dir), "--results-dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for size in (20, 40):
        assert re.search(rf"^   {size}\s+0\s+\d+ of \d+\s+\d+\.\d%", out, re.M), size
    assert re.search(r"^   random among running\s+\d+\.\d%", out, re.M)
    kinds = re.findall(r"^   ([a-z_]+)(?:\s+\d+\.\d%){3}$", out, re.M)  # a left-out kind: random, then each size
    assert len(kinds) >= 10 and set(kinds) <= set(MUTATIONS)
    assert re.search(r"^   40 own questions: .*\(([+-]\d+\.\d|-) / ", out, re.M)  # the larger size against the first
    figures = json.loads((tmp_path / "bench_prm_recipe.json").read_text())["figures"]
    assert figures["sizes"] == [20, 40] and set(figures["by_size"]) == {"20", "40"} and "gain_over_first" in figures["by_size"]["40"]
    assert set(figures["by_kind"]) == set(kinds)
