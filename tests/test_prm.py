"""Process reward model: step encoding, the trainer, scoring, aggregation, metrics."""

import inspect
import logging
import math
from unittest import mock

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import EvalPrediction

from trl_processsql.prm import (
    ProcessRewardConfig,
    ProcessRewardModel,
    ProcessRewardTrainer,
    aggregate,
    compute_step_metrics,
)
from trl_processsql.prm.encoding import encode_steps
from trl_processsql.small_models import build_tiny_model, build_tokenizer

PROMPT = "Question: how many singers are there?\n"
GOOD = ["WITH a AS (SELECT id FROM singer)", "SELECT count(*) FROM a"]
BAD = ["WITH a AS (SELECT id FROM singer)", "SELECT count(*) FROM concert"]


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def _config(tmp_path, **kwargs):
    defaults = dict(
        output_dir=str(tmp_path / "prm"),
        per_device_train_batch_size=8,
        per_device_eval_batch_size=8,
        learning_rate=3e-3,
        report_to="none",
        use_cpu=True,
        bf16=False,
        save_strategy="no",
        gradient_checkpointing=False,
        disable_tqdm=True,
    )
    return ProcessRewardConfig(**{**defaults, **kwargs})


def _toy_dataset(n=64):
    rows = []
    for i in range(n):
        good = i % 2 == 0
        rows.append({"prompt": PROMPT, "completions": GOOD if good else BAD, "labels": [True, good]})
    return Dataset.from_list(rows)


def test_encode_steps_puts_each_step_end_on_the_last_separator_token(tokenizer):
    encoded = encode_steps(tokenizer, PROMPT, GOOD, "\n\n")
    prompt_len = len(tokenizer(PROMPT)["input_ids"])
    first = tokenizer(GOOD[0] + "\n\n", add_special_tokens=False)["input_ids"]
    assert encoded.step_ends[0] == prompt_len + len(first) - 1
    assert encoded.step_ends[-1] == len(encoded.input_ids) - 1
    assert tokenizer.decode(encoded.input_ids[encoded.step_ends[0] + 1 :]).startswith("SELECT")


def test_encode_steps_keeps_the_end_of_a_long_prompt(tokenizer):
    encoded = encode_steps(tokenizer, "schema " * 100 + PROMPT, GOOD, "\n\n", max_prompt_length=12)
    steps_len = sum(len(tokenizer(s + "\n\n", add_special_tokens=False)["input_ids"]) for s in GOOD)
    assert len(encoded.input_ids) == 12 + steps_len
    assert tokenizer.decode(encoded.input_ids[:12]).endswith("singers are there?\n")


def test_encode_steps_drops_whole_steps_past_max_length(tokenizer):
    full = encode_steps(tokenizer, PROMPT, GOOD, "\n\n")
    cut = encode_steps(tokenizer, PROMPT, GOOD, "\n\n", max_length=full.step_ends[0] + 2)
    assert cut.step_ends == full.step_ends[:1] and cut.truncated
    assert len(cut.input_ids) == full.step_ends[0] + 1


def test_trainer_labels_only_step_ends_and_keeps_soft_labels(tokenizer, tmp_path):
    model = build_tiny_model(tokenizer, "token-classification")
    data = Dataset.from_list([{"prompt": PROMPT, "completions": GOOD, "labels": [0.75, 0.25]}])
    trainer = ProcessRewardTrainer(model=model, args=_config(tmp_path), train_dataset=data, processing_class=tokenizer)
    row = trainer.train_dataset[0]
    expected = encode_steps(tokenizer, PROMPT, GOOD, "\n\n")
    assert row["input_ids"] == expected.input_ids
    labelled = {i: v for i, v in enumerate(row["labels"]) if v != -100}
    assert labelled == {expected.step_ends[0]: 0.75, expected.step_ends[1]: 0.25}


def test_train_on_last_step_only_keeps_one_label(tokenizer, tmp_path):
    model = build_tiny_model(tokenizer, "token-classification")
    data = Dataset.from_list([{"prompt": PROMPT, "completions": GOOD, "labels": [True, False]}])
    args = _config(tmp_path, train_on_last_step_only=True)
    trainer = ProcessRewardTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)
    labels = trainer.train_dataset[0]["labels"]
    assert [v for v in labels if v != -100] == [0.0] and labels[-1] == 0.0


@pytest.mark.parametrize(
    "rows, message",
    [
        ([{"prompt": PROMPT, "completions": GOOD}], "missing: labels"),
        ([{"prompt": PROMPT, "completions": GOOD, "labels": [True]}], "2 steps but 1 labels"),
    ],
)
def test_malformed_stepwise_data_gets_a_clear_error(tokenizer, tmp_path, rows, message):
    model = build_tiny_model(tokenizer, "token-classification")
    with pytest.raises(ValueError, match=message):
        ProcessRewardTrainer(model=model, args=_config(tmp_path), train_dataset=Dataset.from_list(rows), processing_class=tokenizer)


def test_training_learns_the_toy_task_and_reports_step_metrics(tokenizer, tmp_path):
    model = build_tiny_model(tokenizer, "token-classification")
    data = _toy_dataset()
    args = _config(tmp_path, num_train_epochs=5)
    trainer = ProcessRewardTrainer(model=model, args=args, train_dataset=data, eval_dataset=data, processing_class=tokenizer)
    before = trainer.evaluate()
    trainer.train()
    after = trainer.evaluate()
    assert after["eval_loss"] < before["eval_loss"]
    assert after["eval_step_auroc"] > 0.95 and after["eval_first_error_accuracy"] > 0.95


def test_saved_prm_loads_and_scores_like_the_trained_model(tokenizer, tmp_path):
    model = build_tiny_model(tokenizer, "token-classification")
    args = _config(tmp_path, num_train_epochs=3, step_separator="\n;\n")
    trainer = ProcessRewardTrainer(model=model, args=args, train_dataset=_toy_dataset(), processing_class=tokenizer)
    trainer.train()
    trainer.save_model(tmp_path / "saved")
    loaded = ProcessRewardModel.from_pretrained(tmp_path / "saved")
    in_memory = ProcessRewardModel(trainer.model, tokenizer)
    assert loaded.step_suffix == "\n;\n"
    assert loaded.score_steps([PROMPT], [BAD])[0] == pytest.approx(in_memory.score_steps([PROMPT], [BAD])[0], abs=1e-5)


def test_lora_training_runs_with_peft(tokenizer, tmp_path):
    from peft import LoraConfig

    model = build_tiny_model(tokenizer, "token-classification")
    peft_config = LoraConfig(task_type="TOKEN_CLS", r=4, target_modules=["q_proj", "v_proj"], modules_to_save=["score"])
    args = _config(tmp_path, max_steps=2)
    trainer = ProcessRewardTrainer(model=model, args=args, train_dataset=_toy_dataset(16), processing_class=tokenizer, peft_config=peft_config)
    score_before = trainer.model.base_model.model.score.modules_to_save["default"].weight.detach().clone()
    trainer.train()
    assert trainer.state.global_step == 2
    assert not torch.equal(score_before, trainer.model.base_model.model.score.modules_to_save["default"].weight)


def test_a_lora_prm_on_a_base_without_head_loads_its_trained_head_from_the_adapter(tmp_path):
    """The base checkpoint lacks the scoring head, the adapter carries it: not refused as newly initialised."""
    from peft import LoraConfig

    from trl_processsql.small_models import save_tiny_checkpoint

    base = save_tiny_checkpoint(tmp_path / "base", "causal-lm", hidden_size=32)
    peft_config = LoraConfig(task_type="TOKEN_CLS", r=4, target_modules=["q_proj", "v_proj"], modules_to_save=["score"])
    trainer = ProcessRewardTrainer(model=str(base), args=_config(tmp_path, max_steps=1), train_dataset=_toy_dataset(8), peft_config=peft_config)
    trainer.train()
    trainer.save_model(tmp_path / "adapter")
    scores = ProcessRewardModel.from_pretrained(tmp_path / "adapter").score_steps([PROMPT], [GOOD])[0]
    assert len(scores) == len(GOOD) and all(0.0 < s < 1.0 for s in scores)
    with pytest.raises(ValueError, match="not a trained token-classification PRM"):
        ProcessRewardModel.from_pretrained(base)


def test_the_trainer_takes_reward_trainers_arguments_in_its_order():
    from trl import RewardTrainer

    assert list(inspect.signature(ProcessRewardTrainer.__init__).parameters) == list(inspect.signature(RewardTrainer.__init__).parameters)


def test_quantization_config_reaches_from_pretrained_and_the_config_stays_as_it_was(tmp_path):
    """As RewardTrainer takes it: a trainer argument, merged into a copy of model_init_kwargs."""
    from transformers import AutoModelForTokenClassification, BitsAndBytesConfig

    from trl_processsql.small_models import save_tiny_checkpoint

    path = save_tiny_checkpoint(tmp_path / "tiny", "token-classification", hidden_size=32)
    quantization = BitsAndBytesConfig(load_in_4bit=True)
    load = AutoModelForTokenClassification.from_pretrained
    args = _config(tmp_path, max_steps=1, model_init_kwargs={"revision": "main"})
    before = args.to_dict()
    with mock.patch.object(
        AutoModelForTokenClassification,
        "from_pretrained",
        side_effect=lambda name, quantization_config, device_map, **kwargs: load(name, **kwargs),  # no GPU to quantize on
    ) as loader:
        trainer = ProcessRewardTrainer(model=str(path), args=args, train_dataset=_toy_dataset(8), quantization_config=quantization)
    kwargs = loader.call_args.kwargs
    assert kwargs["quantization_config"] is quantization and kwargs["revision"] == "main" and kwargs["num_labels"] == 1
    assert kwargs["device_map"] == ({"": 0} if torch.cuda.is_available() else None)
    assert args.to_dict() == before and args.model_init_kwargs == {"revision": "main"}
    assert trainer.args.model_init_kwargs is None
    twice = _config(tmp_path, model_init_kwargs={"quantization_config": quantization})
    with pytest.raises(ValueError, match="give it once"):
        ProcessRewardTrainer(model=str(path), args=twice, train_dataset=_toy_dataset(8), quantization_config=quantization)


def test_one_pass_scores_equal_one_pass_per_step_prefix(tokenizer):
    prm = ProcessRewardModel(build_tiny_model(tokenizer, "token-classification", seed=3), tokenizer, batch_size=3)
    trajectories = [GOOD, BAD, GOOD[:1], BAD + ["SELECT 1"]]
    batched = prm.score_steps([PROMPT] * 4, trajectories)
    for steps, scores in zip(trajectories, batched):
        for k in range(len(steps)):
            alone = prm.score_steps([PROMPT], [steps[: k + 1]])[0][-1]
            assert scores[k] == pytest.approx(alone, abs=1e-4)


def test_step_tag_causal_lm_scores_p_plus_over_plus_and_minus(tokenizer):
    model = build_tiny_model(tokenizer, "causal-lm", seed=1)
    prm = ProcessRewardModel(model, tokenizer, step_tag=" ки", positive_token="+", negative_token="-")
    scores = prm.score_steps([PROMPT], [GOOD])[0]
    encoded = encode_steps(tokenizer, PROMPT, GOOD, " ки")
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([encoded.input_ids])).logits[0]
    plus, minus = tokenizer("+", add_special_tokens=False)["input_ids"][0], tokenizer("-", add_special_tokens=False)["input_ids"][0]
    for score, position in zip(scores, encoded.step_ends):
        p = torch.softmax(logits[position, [plus, minus]], dim=-1)[0].item()
        assert score == pytest.approx(p, abs=1e-5)


def test_step_tag_verdicts_must_be_single_tokens(tokenizer):
    model = build_tiny_model(tokenizer, "causal-lm")
    with pytest.raises(ValueError, match="must be exactly one"):
        ProcessRewardModel(model, tokenizer, step_tag=" ки", positive_token="correct step")


def test_bad_trajectories_get_the_floor_with_a_warning(tokenizer, caplog):
    prm = ProcessRewardModel(build_tiny_model(tokenizer, "token-classification"), tokenizer, failure_floor=-1.0, max_length=40)
    long_steps = ["SELECT " + ", ".join(f"c{i}" for i in range(50)) + " FROM t"]
    with caplog.at_level(logging.WARNING):
        scores = prm.score([PROMPT, PROMPT, PROMPT, PROMPT], [[], long_steps, GOOD, GOOD], failed=[False, False, False, True])
    assert scores[0] == -1.0 and scores[1] == -1.0 and scores[3] == -1.0
    assert 0.0 <= scores[2] <= 1.0
    assert "no step to score" in caplog.text and "does not fit in max_length=40" in caplog.text


def test_aggregations_follow_their_formulas():
    s = [0.9, 0.6, 0.99]
    assert aggregate(s, "min") == 0.6 and aggregate(s, "last") == 0.99
    assert aggregate(s, "mean") == pytest.approx(sum(s) / 3) and aggregate(s, "prod") == pytest.approx(0.9 * 0.6 * 0.99)
    h = [-(p * math.log(p) + (1 - p) * math.log(1 - p)) for p in s]
    w = [1 - x / math.log(2) for x in h]
    assert aggregate(s, "entropy") == pytest.approx(sum(a * b for a, b in zip(w, s)) / sum(w))
    assert aggregate([0.5, 0.5], "entropy") == 0.5
    with pytest.raises(ValueError, match="unknown aggregation"):
        aggregate(s, "median")


def test_step_metrics_on_hand_made_predictions():
    labels = np.array([[-100, 1.0, -100, 0.0], [-100, 1.0, 1.0, -100]])
    logits = np.array([[0.0, 2.0, 0.0, -1.0], [0.0, 1.0, -0.5, 0.0]])
    metrics = compute_step_metrics(EvalPrediction(predictions=logits[..., None], label_ids=labels))
    assert metrics["step_accuracy"] == pytest.approx(3 / 4)  # only the positive at logit -0.5 is missed
    assert metrics["step_auroc"] == 1.0  # the negative (-1) ranks below every positive
    assert metrics["first_error_accuracy"] == pytest.approx(1 / 2)  # row 2 predicts an error that is not there
    logits[0, 3] = 0.5  # now the negative outranks the positive at -0.5: 2 of 3 pairs ordered right
    metrics = compute_step_metrics(EvalPrediction(predictions=logits[..., None], label_ids=labels))
    assert metrics["step_auroc"] == pytest.approx(2 / 3)
    assert metrics["step_accuracy"] == pytest.approx(2 / 4) and metrics["first_error_accuracy"] == 0.0
