"""The recipe comparison: nested label sets, its verdict per size, and its smoke mode end to end."""

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


def test_sizes_out_of_order_are_refused_before_any_work(spider_dir):
    done = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "bench_prm_recipe.py"), "--spider-dir", str(spider_dir),
                           "--own-questions", "2500", "1000"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "--own-questions must be positive, distinct and increasing, got [2500, 1000]" in done.stderr


@pytest.mark.slow
@pytest.mark.timeout(1200)  # a few minutes on 2 cores
def test_the_quick_run_judges_every_size_on_the_same_pools(spider_dir, quick_work_dir):
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "bench_prm_recipe.py"), "--quick", "--spider-dir", str(spider_dir),
         "--work-dir", str(quick_work_dir)],
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
