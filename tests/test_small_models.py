"""CPU-scale training: the compact prompt, the split, a small policy that records its prompt, a PRM from its weights."""

import pytest
import torch

from trl_processsql.small_models import SmallModelSettings, small_policy_trainer, split_by_question, train_small_policy, train_small_prm
from trl_processsql.data import database_path, load_questions, sample_paths
from trl_processsql.prompts import build_prompt, prompt_messages, saved_prompt_style


@pytest.fixture(scope="module")
def tokenizer():
    from trl_processsql.small_models import build_tokenizer

    return build_tokenizer(vocab_size=512)


@pytest.fixture(scope="module")
def sample():
    questions_file, db_dir = sample_paths()
    return load_questions(questions_file), db_dir


def test_compact_prompt_names_the_database_and_asks_the_question_only(sample):
    questions, db_dir = sample
    path = database_path(db_dir, "concert_singer")
    full = build_prompt("How many singers?", path)
    compact = build_prompt("How many singers?", path, style="compact")
    assert compact == "Database: concert_singer\nQuestion: How many singers?"
    assert compact.endswith(full.splitlines()[-1]) and len(full) > 5 * len(compact)  # same question, no schema
    assert prompt_messages("Q?", path, style="compact")[0]["content"].startswith("Database: concert_singer")
    with pytest.raises(ValueError, match="unknown prompt style 'tiny'"):
        build_prompt("Q?", path, style="tiny")


def test_split_by_question_is_a_seeded_partition(sample):
    questions, _ = sample
    test, train = split_by_question(questions, [40], seed=0)
    assert len(test) == 40 and len(train) == len(questions) - 40
    assert sorted(q["index"] for q in test + train) == [q["index"] for q in questions]
    assert {q["db_id"] for q in test} <= {q["db_id"] for q in train}  # in-domain: test databases are seen
    assert split_by_question(questions, [40], seed=0)[0] == test != split_by_question(questions, [40], seed=1)[0]
    with pytest.raises(ValueError, match="cannot cut"):
        split_by_question(questions[:5], [4, 2])


def _sft_rows(questions, db_dir, n=8):
    from datasets import Dataset

    return Dataset.from_list(
        [
            {"prompt": prompt_messages(q["question"], database_path(db_dir, q["db_id"]), style="compact"),
             "completion": [{"role": "assistant", "content": q["gold_sql"]}]}
            for q in questions[:n]
        ]
    )


def test_small_policy_trains_saves_and_records_its_prompt_style(sample, tokenizer, tmp_path, capsys):
    from transformers import AutoModelForCausalLM

    questions, db_dir = sample
    settings = SmallModelSettings(hidden_size=32, num_layers=1, max_steps=6, batch_size=4, learning_rate=1e-2)
    model = train_small_policy(_sft_rows(questions, db_dir), tokenizer, tmp_path / "policy", settings)
    saved = AutoModelForCausalLM.from_pretrained(tmp_path / "policy")
    assert saved_prompt_style(saved.config) == "compact"
    assert saved_prompt_style(type("Config", (), {})()) == "full"  # checkpoints without the field read the full prompt
    for name, param in saved.state_dict().items():
        assert torch.equal(param, model.state_dict()[name]), name
    err = capsys.readouterr().err
    assert "SFT" in err and "{'loss'" not in err  # a progress bar, not log dicts


def _varied_rows(n=16):
    """SFT rows whose answers run from one clause to five, so that padding depends on the batching."""
    from datasets import Dataset

    return Dataset.from_list(
        [{"prompt": [{"role": "user", "content": f"Question {i}?"}],
          "completion": [{"role": "assistant", "content": "SELECT a FROM t" + " WHERE b = 1" * (i % 5)}]} for i in range(n)]
    )


def test_micro_batches_pad_less_and_see_every_example_once_per_pass(tokenizer, tmp_path):
    rows = _varied_rows()
    settings = SmallModelSettings(hidden_size=32, num_layers=1, max_steps=2, batch_size=8, micro_batches=4)
    micro = list(small_policy_trainer(rows, tokenizer, tmp_path, settings).get_train_dataloader())
    assert len(micro) == 8 and all(len(b["input_ids"]) == 2 for b in micro)  # 2 steps of 4 micro-batches of 2
    seen = sorted(tuple(ids[mask.bool()].tolist()) for b in micro for ids, mask in zip(b["input_ids"], b["attention_mask"]))
    assert len(seen) == len(rows) == len(set(seen))  # a pass over the data holds each example once
    for step in (micro[:4], micro[4:]):
        lengths = [int(n) for b in step for n in b["attention_mask"].sum(1)]
        padded = sum(b["input_ids"].numel() for b in step)
        assert padded < len(lengths) * max(lengths)  # less than the step padded as one batch
    whole = list(small_policy_trainer(rows, tokenizer, tmp_path, SmallModelSettings(batch_size=8, micro_batches=1)).get_train_dataloader())
    assert [len(b["input_ids"]) for b in whole] == [8, 8]


def test_a_step_over_micro_batches_averages_the_loss_over_the_whole_batch(tokenizer, tmp_path):
    """One step on the 16 rows: the loss is the same whether the 16 are one batch or four micro-batches of unequal length."""
    losses = []
    for micro_batches in (1, 4):
        settings = SmallModelSettings(hidden_size=32, num_layers=1, max_steps=1, batch_size=16, micro_batches=micro_batches)
        trainer = small_policy_trainer(_varied_rows(), tokenizer, tmp_path / str(micro_batches), settings)
        losses.append(trainer.train().training_loss)
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)  # a mean per micro-batch would be 6e-4 off here


def test_micro_batches_must_cut_the_batch_into_equal_parts():
    with pytest.raises(ValueError, match="micro_batches must divide batch_size"):
        SmallModelSettings(batch_size=16, micro_batches=3)
    with pytest.raises(ValueError, match="micro_batches must divide"):
        SmallModelSettings(micro_batches=0)


def test_prm_from_the_policy_starts_from_its_weights_and_reloads_identically(sample, tokenizer, tmp_path):
    from transformers import AutoModelForTokenClassification

    from trl_processsql.prm import ProcessRewardModel
    from trl_processsql.small_models import build_tiny_model

    policy = build_tiny_model(tokenizer, "causal-lm", hidden_size=32, num_layers=1)
    policy.save_pretrained(tmp_path / "policy")
    tokenizer.save_pretrained(tmp_path / "policy")
    start = AutoModelForTokenClassification.from_pretrained(tmp_path / "policy", num_labels=1)
    assert torch.equal(start.model.layers[0].mlp.up_proj.weight, policy.model.layers[0].mlp.up_proj.weight)

    rows = [{"prompt": "Question: how many?", "completions": ["SELECT 1", "SELECT 2"], "labels": [1.0, 0.0]}] * 16
    prm, seconds = train_small_prm(rows, tokenizer, init_from=tmp_path / "policy", output_dir=tmp_path / "prm",
                                   epochs=1, batch_size=8, progress=False)
    assert seconds > 0
    reloaded = ProcessRewardModel.from_pretrained(tmp_path / "prm")
    prompts, steps = ["Question: how many?", "Question: which?"], [["SELECT 1", "SELECT 2"], ["SELECT 3"]]
    assert reloaded.score_steps(prompts, steps) == prm.score_steps(prompts, steps)  # same batches: the very same floats
    assert reloaded.max_prompt_length == prm.max_prompt_length == 64 and reloaded.batch_size == prm.batch_size


def test_an_ensemble_prm_trains_each_member_with_its_seed_and_reloads_identically(tokenizer, tmp_path):
    from trl_processsql.prm import ProcessRewardModel, StepScoreEnsemble

    rows = [{"prompt": "Question: how many?", "completions": ["SELECT 1", "SELECT 2"], "labels": [1.0, 0.0]}] * 16
    settings = dict(hidden_size=32, num_layers=1, epochs=1, batch_size=8, progress=False)
    prm, _ = train_small_prm(rows, tokenizer, output_dir=tmp_path / "prm", members=2, **settings)
    single, _ = train_small_prm(rows, tokenizer, seed=1, **settings)
    assert isinstance(prm.model, StepScoreEnsemble) and len(prm.model.members) == 2
    for name, param in single.model.state_dict().items():  # member 2 is the PRM of seed 1
        assert torch.equal(param, prm.model.members[1].state_dict()[name]), name
    reloaded = ProcessRewardModel.from_pretrained(tmp_path / "prm")
    prompts, steps = ["Question: how many?", "Question: which?"], [["SELECT 1", "SELECT 2"], ["SELECT 3"]]
    assert reloaded.score_steps(prompts, steps) == prm.score_steps(prompts, steps)
    with pytest.raises(ValueError, match="members must be at least 1"):
        train_small_prm(rows, tokenizer, members=0, **settings)


def test_tables_prompt_lists_every_table_and_key_without_example_values(sample):
    questions, db_dir = sample
    path = database_path(db_dir, "concert_singer")
    full, tables = build_prompt("How many singers?", path), build_prompt("How many singers?", path, style="tables", evidence="singers sing")
    lines = tables.splitlines()
    assert lines[0] == "Database: concert_singer" and lines[-2:] == ["Evidence: singers sing", "Question: How many singers?"]
    assert "singer(Singer_ID, Name, Country, Song_Name, Song_release_year, Age, Is_male)" in lines
    assert lines[-3].startswith("Foreign keys: ") and lines[-3].count(" = ") == 3
    assert "Examples" not in tables and len(full) > 3 * len(tables)


def test_cpu_training_args_take_bf16_from_the_cpu_when_asked(monkeypatch, tmp_path):
    from trl_processsql.small_models import cpu_training_args
    from trl_processsql.precision import cpu_has_bf16

    assert cpu_training_args(tmp_path)["bf16"] is False  # small models from scratch stay fp32 unless asked
    for forced in ("0", "1"):
        monkeypatch.setenv("PROCESSSQL_CPU_BF16", forced)
        assert cpu_has_bf16() is (forced == "1")
        assert cpu_training_args(tmp_path, bf16=None)["bf16"] is (forced == "1")
        assert cpu_training_args(tmp_path, bf16=True)["bf16"] is True


def test_sampling_runs_in_bf16_only_when_asked_and_leaves_the_model_in_fp32(tokenizer):
    """bf16 sampling runs a bf16 copy of the weights: the model itself may go on training in fp32."""
    from trl_processsql.inference import TransformersSampler
    from trl_processsql.small_models import build_tiny_model

    model = build_tiny_model(tokenizer, "causal-lm", hidden_size=32, num_layers=1)
    seen = []
    model.lm_head.register_forward_hook(lambda module, args, output: seen.append(output.dtype))
    messages = [[{"role": "user", "content": "How many singers?"}]]
    for bf16, dtype in ((False, torch.float32), (True, torch.bfloat16)):
        seen.clear()
        TransformersSampler(model, tokenizer, temperature=0, max_new_tokens=2, bf16=bf16).sample(messages)
        assert seen and set(seen) == {dtype}
        assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_a_pretrained_base_is_fine_tuned_in_bf16_from_its_own_weights(sample, tokenizer, tmp_path):
    from transformers import AutoModelForCausalLM

    from trl_processsql.small_models import build_tiny_model

    questions, db_dir = sample
    base = build_tiny_model(tokenizer, "causal-lm", hidden_size=32, num_layers=1, seed=7)
    base.save_pretrained(tmp_path / "base")
    settings = SmallModelSettings(base=str(tmp_path / "base"), max_steps=2, batch_size=4, micro_batches=2, learning_rate=1e-3, bf16=True)
    trainer = small_policy_trainer(_sft_rows(questions, db_dir), tokenizer, tmp_path / "policy", settings, prompt_style="tables")
    start = {name: param.clone() for name, param in trainer.model.state_dict().items()}
    assert all(torch.equal(param, base.state_dict()[name]) for name, param in start.items())  # the base's weights, not a new model
    assert trainer.args.bf16 and trainer.model.config.processsql_prompt_style == "tables"
    trainer.train()
    assert trainer.model.dtype == torch.float32  # autocast: the weights stay fp32
    assert not torch.equal(trainer.model.state_dict()["lm_head.weight"], start["lm_head.weight"])
    trainer.save_model(tmp_path / "policy")
    assert saved_prompt_style(AutoModelForCausalLM.from_pretrained(tmp_path / "policy").config) == "tables"


@pytest.mark.parametrize(("old", "name"), [("tiny", "build_tiny_model"), ("cpu_scale", "SmallModelSettings")])
def test_the_modules_of_the_last_release_still_import_and_say_where_they_went(old, name):
    import importlib
    import sys

    import trl_processsql.small_models

    sys.modules.pop(f"trl_processsql.{old}", None)
    with pytest.warns(FutureWarning, match=rf"trl_processsql\.{old} moved: import from trl_processsql\.small_models"):
        module = importlib.import_module(f"trl_processsql.{old}")
    assert getattr(module, name) is getattr(trl_processsql.small_models, name)
