"""PRM ensembles: the mean of the members' step scores, saved as one folder, loaded as one PRM."""

import json

import pytest
import torch

from trl_processsql.prm import ProcessRewardModel, StepScoreEnsemble, save_prm_ensemble
from trl_processsql.small_models import build_tiny_model, build_tokenizer

PROMPTS = ["Question: how many singers are there?\n", "Question: which stadiums?\n"]
STEPS = [["WITH a AS (SELECT id FROM singer)", "SELECT count(*) FROM a"], ["SELECT name FROM stadium"]]


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def _member(tokenizer, path, seed, **config):
    model = build_tiny_model(tokenizer, "token-classification", hidden_size=32, num_layers=1, seed=seed)
    for key, value in config.items():
        setattr(model.config, key, value)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_saved_ensemble_scores_the_mean_of_its_members(tokenizer, tmp_path):
    paths = [_member(tokenizer, tmp_path / f"m{s}", s) for s in range(3)]
    save_prm_ensemble(paths, tmp_path / "ensemble")
    ensemble = ProcessRewardModel.from_pretrained(tmp_path / "ensemble")
    singles = [ProcessRewardModel.from_pretrained(p).score_steps(PROMPTS, STEPS) for p in paths]
    expected = [[sum(s[i][k] for s in singles) / 3 for k in range(len(STEPS[i]))] for i in range(len(STEPS))]
    got = ensemble.score_steps(PROMPTS, STEPS)
    assert isinstance(ensemble.model, StepScoreEnsemble) and len(ensemble.model.members) == 3
    for row, want in zip(got, expected):
        assert row == pytest.approx(want, abs=1e-6)
    assert singles[0] != singles[1]  # the members differ, so the mean is not any one of them


def test_ensemble_keeps_the_members_step_separator(tokenizer, tmp_path):
    paths = [_member(tokenizer, tmp_path / f"m{s}", s, prm_step_separator="\n;\n") for s in range(2)]
    assert ProcessRewardModel.from_pretrained(save_prm_ensemble(paths, tmp_path / "ensemble")).step_suffix == "\n;\n"


def test_members_that_encode_steps_differently_are_refused(tokenizer, tmp_path):
    paths = [_member(tokenizer, tmp_path / "a", 0, prm_max_length=512), _member(tokenizer, tmp_path / "b", 1, prm_max_length=256)]
    save_prm_ensemble(paths, tmp_path / "ensemble")
    with pytest.raises(ValueError, match="disagree on prm_max_length"):
        ProcessRewardModel.from_pretrained(tmp_path / "ensemble")


def test_members_with_another_tokenizer_are_refused(tokenizer, tmp_path):
    other = build_tokenizer(["SELECT a FROM b"] * 10, vocab_size=300)
    first = _member(tokenizer, tmp_path / "a", 0)
    second = tmp_path / "b"
    build_tiny_model(other, "token-classification", hidden_size=32, num_layers=1).save_pretrained(second)
    other.save_pretrained(second)
    with pytest.raises(ValueError, match="another tokenizer"):
        save_prm_ensemble([first, second], tmp_path / "ensemble")
    assert not (tmp_path / "ensemble").exists()  # nothing half-written


def test_one_member_or_writing_into_a_member_is_refused(tokenizer, tmp_path):
    first = _member(tokenizer, tmp_path / "a", 0)
    with pytest.raises(ValueError, match="two member PRMs or more"):
        save_prm_ensemble([first], tmp_path / "ensemble")
    with pytest.raises(ValueError, match="is one of the members"):
        save_prm_ensemble([first, _member(tokenizer, tmp_path / "b", 1)], first)


def test_a_member_without_a_trained_head_is_named(tokenizer, tmp_path):
    from trl_processsql.small_models import save_tiny_checkpoint

    paths = [_member(tokenizer, tmp_path / "a", 0), save_tiny_checkpoint(tmp_path / "policy", "causal-lm", hidden_size=32)]
    save_prm_ensemble(paths, tmp_path / "ensemble")
    with pytest.raises(ValueError, match=r"ensemble/member-1 is not a trained token-classification PRM"):
        ProcessRewardModel.from_pretrained(tmp_path / "ensemble")


@pytest.mark.parametrize("index", ['{"members": []}', "not json", '{"members": "member-0"}', "[1, 2]"])
def test_a_malformed_ensemble_index_gets_a_clear_error(tokenizer, tmp_path, index):
    paths = [_member(tokenizer, tmp_path / f"m{s}", s) for s in range(2)]
    save_prm_ensemble(paths, tmp_path / "ensemble")
    (tmp_path / "ensemble" / "prm_ensemble.json").write_text(index)
    with pytest.raises(ValueError, match="prm_ensemble.json"):
        ProcessRewardModel.from_pretrained(tmp_path / "ensemble")


def test_a_missing_member_folder_is_named(tokenizer, tmp_path):
    paths = [_member(tokenizer, tmp_path / f"m{s}", s) for s in range(2)]
    save_prm_ensemble(paths, tmp_path / "ensemble")
    (tmp_path / "ensemble" / "prm_ensemble.json").write_text(json.dumps({"members": ["member-0", "member-9"]}))
    with pytest.raises(ValueError, match="not there: member-9"):
        ProcessRewardModel.from_pretrained(tmp_path / "ensemble")


def test_the_ensemble_moves_and_casts_as_one_module(tokenizer, tmp_path):
    from types import SimpleNamespace

    from trl_processsql.grpo.placement import place_prm

    paths = [_member(tokenizer, tmp_path / f"m{s}", s) for s in range(2)]
    prm = ProcessRewardModel.from_pretrained(save_prm_ensemble(paths, tmp_path / "ensemble"))
    prm.model = place_prm(prm.model, torch.device("cpu"), SimpleNamespace(bf16=True, fp16=False))
    assert {p.dtype for p in prm.model.parameters()} == {torch.bfloat16} and not prm.model.training
    assert all(0.0 <= s <= 1.0 for row in prm.score_steps(PROMPTS, STEPS) for s in row)


def test_the_cli_writes_an_ensemble_that_scores_like_the_library(tokenizer, tmp_path, capsys):
    from trl_processsql.cli import main

    paths = [_member(tokenizer, tmp_path / f"m{s}", s) for s in range(2)]
    assert main(["ensemble-prms", *map(str, paths), "--output", str(tmp_path / "cli")]) == 0
    assert "2 PRMs written" in capsys.readouterr().out
    save_prm_ensemble(paths, tmp_path / "library")
    scores = [ProcessRewardModel.from_pretrained(tmp_path / name).score_steps(PROMPTS, STEPS) for name in ("cli", "library")]
    assert scores[0] == scores[1]


def test_the_cli_refuses_a_used_output_and_leaves_nothing_from_a_bad_member(tokenizer, tmp_path, capsys):
    from trl_processsql.cli import main
    from trl_processsql.small_models import save_tiny_checkpoint

    first = _member(tokenizer, tmp_path / "a", 0)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "keep.txt").write_text("mine")
    assert main(["ensemble-prms", str(first), str(first), "--output", str(tmp_path / "used")]) == 2
    assert "exists and is not an empty folder" in capsys.readouterr().err
    assert (tmp_path / "used" / "keep.txt").read_text() == "mine"

    policy = save_tiny_checkpoint(tmp_path / "policy", "causal-lm", hidden_size=32)
    assert main(["ensemble-prms", str(first), str(policy), "--output", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "not a trained token-classification PRM" in err and "Traceback" not in err
    assert not (tmp_path / "bad").exists()
    assert main(["ensemble-prms", str(first), str(tmp_path / "nowhere"), "--output", str(tmp_path / "bad")]) == 2
    assert "not a saved model folder" in capsys.readouterr().err
