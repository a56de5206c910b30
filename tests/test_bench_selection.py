"""The selection benchmark: its held-out design (two halves of mutation kinds), its figures, and its run on a pretrained base."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from trl_processsql.labeling import MUTATIONS

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))


def test_the_two_folds_split_every_mutation_kind_between_them():
    from bench_selection import FOLDS

    first, second = map(set, FOLDS)
    assert not first & second and first | second == set(MUTATIONS)


def _pool(right, scores, results):
    from bench_selection import Pool

    from trl_processsql.inference import Candidate

    pool = Pool("q", "db", [f"s{i}" for i in range(len(right))], list(right), ["policy"] * len(right))
    found = [Candidate(f"s{i}", rows=((r,),), prm_scores=[s]) if r is not None else Candidate(f"s{i}", "error", prm_scores=[s])
             for i, (s, r) in enumerate(zip(scores, results))]
    return pool, found


def test_random_answer_counts_each_distinct_result_once():
    from bench_selection import random_answer, random_running

    # three candidates agree on the right result, one is wrong, one fails: candidates 3 of 4, results 1 of 2
    pool, found = _pool([True, True, True, False, False], [0.5] * 5, [1, 1, 1, 2, None])
    assert random_running([pool], [found]) == 0.75
    assert random_answer([pool], [found]) == 0.5


def test_answer_pairs_compare_the_best_scored_candidate_of_each_result():
    from bench_selection import answer_pairs

    # right result: best 0.6; wrong results: 0.7 (above it) and 0.2 (below); a failing candidate is no result
    pool, found = _pool([True, True, False, False, False], [0.6, 0.1, 0.7, 0.2, 0.9], [1, 1, 2, 3, None])
    assert answer_pairs([pool], [found]) == (2, 0.5)
    tied, tied_found = _pool([True, False], [0.4, 0.4], [1, 2])
    assert answer_pairs([tied], [tied_found]) == (1, 0.5)


def test_each_member_of_an_ensemble_prm_is_judged_alone_with_the_ensembles_limits():
    from bench_selection import members_alone

    from trl_processsql.prm import ProcessRewardModel, StepScoreEnsemble
    from trl_processsql.small_models import build_tiny_model, build_tokenizer

    tokenizer = build_tokenizer(["SELECT name FROM singer"])
    members = [build_tiny_model(tokenizer, "token-classification", hidden_size=32, num_layers=1, seed=s) for s in (0, 1)]
    ensemble = ProcessRewardModel(StepScoreEnsemble(members), tokenizer, max_length=256, max_prompt_length=32)
    alone = members_alone(ensemble)
    assert [prm.model for prm in alone] == members
    assert {(prm.max_length, prm.max_prompt_length) for prm in alone} == {(256, 32)}
    assert members_alone(alone[0]) == []  # a single PRM has no members to judge apart


def test_a_set_of_pools_is_written_as_the_prm_against_random_among_running():
    from bench_selection import against_random

    # the PRM picks the right candidate in the first pool (0.9 > 0.2) and the wrong one in the second; random among running: 1/2 each
    first, first_found = _pool([True, False], [0.9, 0.2], [1, 2])
    second, second_found = _pool([True, False], [0.1, 0.8], [1, 2])
    figures = against_random([first, second], [[first_found, second_found]])
    assert figures == {"pools": 2, "prm": 0.5, "random_running": 0.5, "gain": 0.0}
    with_members = against_random([first], [[first_found], [first_found], [_pool([True, False], [0.1, 0.8], [1, 2])[1]]])
    assert with_members["members_alone"] == 0.5 and with_members["members_above_random"] == 1


@pytest.mark.slow
@pytest.mark.timeout(1200)  # about three minutes on 2 cores
def test_on_a_pretrained_base_it_judges_bench_methods_prm_with_its_policy_and_samples(spider_dir, tmp_path):
    """A tiny checkpoint stands in for the pretrained base. bench_method.py trains the policy and the PRM and draws the own
    samples; bench_selection.py reuses all three from the same work folder, trains the left-out-kind PRMs on the schema prompt,
    and judges the policy's samples on Spider dev questions."""
    from transformers import AutoConfig

    from trl_processsql.small_models import save_tiny_checkpoint

    base, work = save_tiny_checkpoint(tmp_path / "base", kind="causal-lm", hidden_size=32, num_layers=1), tmp_path / "work"
    method = subprocess.run([sys.executable, str(BENCHMARKS / "bench_method.py"), "--quick", "--base", str(base), "--spider-dir", str(spider_dir),
                             "--work-dir", str(work), "--stop-after", "selection", "--beam-width", "0"], capture_output=True, text=True)
    assert method.returncode == 0, method.stderr[-3000:]
    (prm,) = work.glob("prm-*")
    sizes = {"--sft-steps": 4, "--prm-questions": 4, "--own-questions": 8, "--test-questions": 8, "--check-questions": 4, "--dev-questions": 6,
             "--epochs": 1, "--prm-members": 1}  # the quick run's sizes, so that its stages are found
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_selection.py"), "--base", str(base), "--spider-dir", str(spider_dir), "--work-dir", str(work),
         "--prm", str(prm), *(str(part) for pair in sizes.items() for part in pair), "--results-dir", str(tmp_path / "results")],
        capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for stage in ("policy", "own"):
        assert re.search(rf"^{stage}: reusing {re.escape(str(work))}/{stage}-\w+", out, re.M), stage
    assert f"PRM: loaded from {prm}" in out
    assert "held-out Spider dev questions" in out and "a PRM trained without" in out
    figures = json.loads((tmp_path / "results" / "bench_selection_base.json").read_text())["figures"]
    assert figures["base"] == str(base) and not figures["trained"]
    assert set(figures["left_out"]) <= set(MUTATIONS) and figures["dev"]["pools"] > 0
    assert AutoConfig.from_pretrained(next(work.glob("policy-*"))).processsql_prompt_style == "tables"
