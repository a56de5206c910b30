"""Process-advantage rules: each built-in one by hand, user rules from Python and from a recipe YAML."""

import json
import pickle
import sys
import textwrap

import pytest
import torch
from trl import ModelConfig, TrlParser

from trl_processsql.grpo import (
    PROCESS_ADVANTAGES,
    PRMGRPOConfig,
    get_process_advantage,
    process_advantages,
    register_process_advantage,
    step_token_spans,
    step_weights,
)
from trl_processsql.scripts.prm_grpo import PRMGRPOScriptArguments

SPANS = [[(0, 2), (2, 4)], [(0, 3), (3, 4)]]
SCORES = [[0.9, 0.2], [0.5, 1.0]]
MASK = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
ONES = [[1.0, 1.0], [1.0, 1.0]]


def apply(rule, advantages, mask=MASK, spans=SPANS, scores=SCORES, weights=ONES, coef=1.0):
    """Both completions in one group, as the trainer passes them."""
    return process_advantages(
        rule,
        mask,
        advantages=advantages,
        step_spans=spans,
        step_scores=scores,
        step_weights=weights,
        group_ids=torch.zeros(len(scores), dtype=torch.long),
        group_step_scores=[scores] * len(scores),
        process_coef=coef,
    )


def config_with(tmp_path, **kwargs):
    return PRMGRPOConfig(str(tmp_path), use_cpu=True, bf16=False, report_to="none", **kwargs)


def z(value, group):
    mean = sum(group) / len(group)
    std = (sum((g - mean) ** 2 for g in group) / len(group)) ** 0.5
    return (value - mean) / (std + 1e-4)


# -- the built-in rules by hand --------------------------------------------------------------------


def test_rewardsql_scales_positive_advantages_by_s_and_negative_by_one_minus_s():
    out = apply("rewardsql", torch.tensor([2.0, -1.0]))
    assert torch.allclose(out, torch.tensor([[1.8, 1.8, 0.4, 0.4], [-0.5, -0.5, -0.5, 0.0]]))


def test_rewardsql_gives_a_zero_outcome_advantage_zero_and_says_so():
    assert torch.equal(apply("rewardsql", torch.tensor([0.0, 0.0])), torch.zeros(2, 4))
    assert PROCESS_ADVANTAGES["rewardsql"].outcome_gated
    assert not any(PROCESS_ADVANTAGES[name].outcome_gated for name in ("additive", "min_form", "none"))


def test_additive_adds_the_group_normalised_step_score():
    out = apply("additive", torch.tensor([1.0, 0.0]), coef=0.5)
    pooled = [0.9, 0.2, 0.5, 1.0]
    expected = torch.tensor(
        [[1 + 0.5 * z(0.9, pooled)] * 2 + [1 + 0.5 * z(0.2, pooled)] * 2, [0.5 * z(0.5, pooled)] * 3 + [0.0]]
    )
    assert torch.allclose(out, expected, atol=1e-5)


def test_min_form_credits_each_step_with_the_worst_step_from_it_on():
    scores = [[0.9, 0.1, 0.9], [0.6]]
    out = apply("min_form", torch.tensor([-1.0, 1.0]), torch.ones(2, 3), [[(0, 1), (1, 2), (2, 3)], [(0, 3)]], scores, [[1.0] * 3, [1.0]])
    minima = [0.1, 0.1, 0.9, 0.6]  # the first step shares the blame of the second
    expected = torch.tensor([[-1 + z(0.1, minima)] * 2 + [-1 + z(0.9, minima)], [1 + z(0.6, minima)] * 3])
    assert torch.allclose(out, expected, atol=1e-5)


def test_none_keeps_the_outcome_advantage_on_every_token():
    assert torch.equal(apply("none", torch.tensor([0.5, -2.0])), torch.tensor([[0.5] * 4, [-2.0] * 3 + [0.0]]))


def test_step_weights_move_credit_between_steps():
    weights = step_weights("prm_entropy", [0.5, 1.0])
    out = apply("rewardsql", torch.tensor([1.0]), torch.ones(1, 4), [SPANS[0]], [[0.5, 1.0]], [weights])
    assert weights == [0.0, 2.0]
    assert torch.allclose(out, torch.tensor([[0.0, 0.0, 2.0, 2.0]]))


@pytest.mark.parametrize("rule", ["rewardsql", "additive", "min_form"])
def test_a_completion_without_steps_keeps_its_outcome_advantage(rule):
    out = apply(rule, torch.tensor([-1.5]), torch.ones(1, 3), [[]], [[]], [[]])
    assert torch.equal(out, torch.full((1, 3), -1.5))


def test_tokens_before_and_after_the_steps_join_the_first_and_last_step():
    # token ends: "```sql\n" (7), "SELECT" (13), " 1" (15), "\n\n" (17), "SELECT" (23), " 2" (25), "```" (28)
    assert step_token_spans([7, 13, 15, 17, 23, 25, 28], [15, 25]) == [(0, 3), (3, 7)]


@pytest.mark.parametrize("rule", sorted(PROCESS_ADVANTAGES))
def test_every_registered_rule_returns_float_advantages_shaped_like_the_mask_with_padding_zeroed(rule):
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1]])
    spans = [[(0, 1), (1, 4)], [(0, 2)], []]
    scores = [[0.3, 0.8], [0.1], []]
    out = apply(rule, torch.tensor([1.0, -0.5, 0.25]), mask, spans, scores, [[1.0, 1.0], [1.0], []])
    assert out.shape == mask.shape and out.dtype == torch.float32 and out.device == mask.device
    assert torch.equal(out[mask == 0], torch.zeros(int((mask == 0).sum())))
    assert torch.isfinite(out).all()


# -- user rules ------------------------------------------------------------------------------------


@register_process_advantage("last_step_only", outcome_gated=True)
def last_step_only(advantages, completion_mask, step_spans, **kwargs):
    """The outcome advantage on the final step's tokens only."""
    out = torch.zeros(completion_mask.shape)
    for i, spans in enumerate(step_spans):
        if spans:
            out[i, spans[-1][0] : spans[-1][1]] = advantages[i]
    return out


def test_a_registered_user_rule_is_found_by_name_and_applied():
    assert get_process_advantage("last_step_only") is last_step_only and last_step_only.outcome_gated
    out = apply("last_step_only", torch.tensor([2.0, -1.0]))
    assert torch.equal(out, torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 0.0, 0.0]]))


def test_a_plain_callable_is_a_rule_too_and_the_config_holds_only_names(tmp_path):
    def halve(advantages, completion_mask, **kwargs):
        return advantages.unsqueeze(1).expand(completion_mask.shape) / 2

    out = apply(halve, torch.tensor([2.0, -1.0]))
    assert torch.equal(out, torch.tensor([[1.0] * 4, [-0.5] * 3 + [0.0]]))
    with pytest.raises(TypeError, match="'last_step_only'.*PRMGRPOTrainer\\(process_advantage="):
        config_with(tmp_path, process_advantage=last_step_only)


def test_the_config_round_trips_through_json_and_pickle(tmp_path):
    config = config_with(tmp_path, process_advantage="last_step_only")
    assert json.loads(json.dumps(config.to_dict()))["process_advantage"] == "last_step_only"
    assert pickle.loads(pickle.dumps(config)).to_dict() == config.to_dict()  # checkpoints pickle the config


def test_a_rule_returning_the_wrong_shape_fails_with_a_clear_error():
    with pytest.raises(ValueError, match=r"must return a float tensor of shape \(2, 4\), got \(2,\)"):
        apply(lambda advantages, **kwargs: advantages, torch.tensor([1.0, 0.0]))


def test_built_in_names_cannot_be_taken_and_unknown_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match="built-in"):
        register_process_advantage("rewardsql")(last_step_only)
    with pytest.raises(ValueError, match="unknown process advantage 'sparse'"):
        config_with(tmp_path, process_advantage="sparse")
    with pytest.raises(ValueError, match="cannot be imported"):
        get_process_advantage("no_such_module_here:rule")


CPU = "use_cpu: true\nbf16: false\nreport_to: none\n"


def _parse(yaml_file):
    parser = TrlParser((PRMGRPOScriptArguments, PRMGRPOConfig, ModelConfig))
    return parser.parse_args_and_config(["--config", str(yaml_file)])[1]


def test_a_recipe_yaml_names_a_user_rule_by_its_registered_name(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"output_dir: {tmp_path / 'out'}\nprocess_advantage: last_step_only\n{CPU}")
    config = _parse(recipe)
    assert get_process_advantage(config.process_advantage) is last_step_only


def test_a_recipe_yaml_names_a_user_rule_in_a_module_the_command_never_imported(tmp_path, monkeypatch):
    (tmp_path / "my_rules.py").write_text(
        textwrap.dedent(
            """
            def sign_only(advantages, completion_mask, **kwargs):
                return advantages.sign().unsqueeze(1).expand(completion_mask.shape).float()
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"output_dir: {tmp_path / 'out'}\nprocess_advantage: my_rules:sign_only\n{CPU}")
    config = _parse(recipe)
    assert get_process_advantage(config.process_advantage) is sys.modules["my_rules"].sign_only
    assert torch.equal(apply(config.process_advantage, torch.tensor([3.0, -0.5])), torch.tensor([[1.0] * 4, [-1.0] * 3 + [0.0]]))
