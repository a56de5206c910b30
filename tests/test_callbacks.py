"""SQLExecutionCallback: greedy decoding, scoring, logging through the trainer, history file, checkpoint state."""

import copy
import json
from types import SimpleNamespace

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from trl import GRPOConfig, GRPOTrainer

from trl_processsql.callbacks import HISTORY_FILE, SQLExecutionCallback, greedy_completions
from trl_processsql.data import database_path, load_questions, sample_paths
from trl_processsql.rewards import execution_accuracy_reward
from trl_processsql.small_models import save_tiny_checkpoint

METRICS = ("sql_eval/execution_accuracy", "sql_eval/valid_rate", "sql_eval/mean_steps")


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("policy"), hidden_size=32)


@pytest.fixture(scope="module")
def rows():
    """Sample questions with short conversational prompts (the question alone keeps generation fast)."""
    questions_file, db_dir = sample_paths()
    return [
        {"prompt": [{"role": "user", "content": q["question"]}], "db_path": str(database_path(db_dir, q["db_id"])), "gold_sql": q["gold_sql"]}
        for q in load_questions(questions_file)[:8]
    ]


def _config(output_dir, **kwargs):
    defaults = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=8,
        max_steps=4,
        save_steps=2,
        logging_steps=1,
        beta=0.0,
        use_cpu=True,
        bf16=False,
        report_to="none",
        disable_tqdm=True,
        gradient_checkpointing=False,
        seed=0,
    )
    return GRPOConfig(**{**defaults, **kwargs})


def _trainer(policy, rows, output_dir, eval_rows, callback_kwargs, **kwargs):
    """A GRPO trainer with an SQLExecutionCallback made for it, as TRL's callbacks are."""
    trainer = GRPOTrainer(
        model=str(policy),
        reward_funcs=execution_accuracy_reward,
        args=_config(output_dir, **kwargs),
        train_dataset=Dataset.from_list(rows),
    )
    callback = SQLExecutionCallback(eval_rows, trainer=trainer, **callback_kwargs)
    trainer.add_callback(callback)
    return trainer, callback


def _answering(model, tokenizer, answers):
    """A ``generate`` that appends the next answers, right-padded, to the prompts it is given."""
    queue = list(answers)
    calls = []

    def generate(input_ids, attention_mask, generation_config, **kwargs):
        calls.append((input_ids, generation_config))
        batch = [tokenizer(queue.pop(0), add_special_tokens=False)["input_ids"] for _ in range(len(input_ids))]
        width = max(map(len, batch))
        new = torch.tensor([ids + [tokenizer.pad_token_id] * (width - len(ids)) for ids in batch])
        return torch.cat([input_ids, new], dim=1)

    return generate, calls


class _Spy(TrainerCallback):
    """Copies a callback's saved attributes when training begins."""

    def __init__(self, callback):
        self.callback, self.at_begin = callback, None

    def on_train_begin(self, args, state, control, **kwargs):
        self.at_begin = copy.deepcopy(self.callback.state()["attributes"])


def _history(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_greedy_completions_pad_left_apply_the_chat_template_and_decode_only_the_answer(policy, rows, monkeypatch):
    model, tokenizer = AutoModelForCausalLM.from_pretrained(policy), AutoTokenizer.from_pretrained(policy)
    generate, calls = _answering(model, tokenizer, ["SELECT 1", "SELECT name FROM singer", "SELECT 2"])
    monkeypatch.setattr(model, "generate", generate)
    prompts = [rows[0]["prompt"], rows[2]["prompt"], rows[1]["prompt"]]  # a short prompt beside a long one
    texts = greedy_completions(model, tokenizer, prompts, max_new_tokens=5, batch_size=2)
    assert texts == ["SELECT 1", "SELECT name FROM singer", "SELECT 2"]
    input_ids, config = calls[0]
    assert [len(c[0]) for c in calls] == [2, 1]
    assert config.do_sample is False and config.max_new_tokens == 5
    assert input_ids[0, 0] == tokenizer.pad_token_id and input_ids[1, 0] != tokenizer.pad_token_id  # left padding
    prompt = tokenizer.decode(input_ids[1], skip_special_tokens=False)
    assert prompt.startswith("<|im_start|>user\n") and prompt.endswith("<|im_start|>assistant\n")


def test_callback_scores_gold_answers_one_and_garbage_zero_and_logs_through_the_trainer(policy, rows, tmp_path, monkeypatch):
    eval_rows = rows[:4]
    trainer, callback = _trainer(policy, rows, tmp_path / "out", Dataset.from_list(eval_rows), dict(every_n_steps=5, batch_size=3))
    model, tokenizer = trainer.model, trainer.processing_class
    steps = [("WITH a AS (SELECT * FROM singer)\n\n" + r["gold_sql"]) if i % 2 else r["gold_sql"] for i, r in enumerate(eval_rows)]
    answers = steps + ["Sorry, I do not know.", "SELECT nothing FROM nowhere", "SELECT 1", "WITH"]
    monkeypatch.setattr(model, "generate", _answering(model, tokenizer, answers)[0])
    state, control = trainer.state, trainer.control
    for step in (4, 5, 10):  # 4 is not a multiple of every_n_steps: nothing happens
        state.global_step = step
        control.should_log = True
        callback.on_step_end(trainer.args, state, control, model=model, processing_class=tokenizer)
        assert control.should_log  # the step's own training log still happens
    logged = [entry for entry in state.log_history if METRICS[0] in entry]
    assert [(e["step"], e[METRICS[0]], e[METRICS[1]], e[METRICS[2]]) for e in logged] == [(5, 1.0, 1.0, 1.5), (10, 0.0, 0.25, 0.75)]
    history = _history(tmp_path / "out" / HISTORY_FILE)
    assert [(h["step"], h["execution_accuracy"], h["valid_rate"], h["n"]) for h in history] == [(5, 1.0, 1.0, 4), (10, 0.0, 0.25, 4)]
    assert set(history[0]) == {"step", "execution_accuracy", "valid_rate", "mean_steps", "n", "time"}
    assert (callback.best_accuracy, callback.best_step, callback.last_step) == (1.0, 5, 10)


def test_grpo_run_logs_every_n_steps_and_a_resumed_run_restores_the_state(policy, rows, tmp_path):
    trainer, first = _trainer(policy, rows, tmp_path / "out", rows[:3], dict(every_n_steps=2, max_new_tokens=8))
    trainer.train()
    history_file = tmp_path / "out" / HISTORY_FILE
    assert [h["step"] for h in _history(history_file)] == [2, 4]
    logs = trainer.state.log_history
    assert [e["step"] for e in logs if METRICS[0] in e] == [2, 4]
    assert all(set(METRICS) <= set(e) for e in logs if METRICS[0] in e)
    # GRPO's metrics stay in the regular training log of each step, evaluated ones included.
    assert [e["step"] for e in logs if "loss" in e and "reward" in e] == [1, 2, 3, 4]
    assert not any("reward" in e for e in logs if METRICS[0] in e)
    saved = json.loads((tmp_path / "out" / "checkpoint-2" / "trainer_state.json").read_text())
    assert saved["stateful_callbacks"]["SQLExecutionCallback"]["attributes"]["history"] == first.history[:1]

    trainer, resumed = _trainer(policy, rows, tmp_path / "out", rows[:3], dict(every_n_steps=2, max_new_tokens=8))
    spy = _Spy(resumed)
    trainer.add_callback(spy)  # after the callback: sees what it restored before any new evaluation
    trainer.train(resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-2"))
    restored = spy.at_begin
    assert restored["history"] == first.history[:1] and restored["last_step"] == 2
    assert (restored["best_accuracy"], restored["best_step"]) == (first.history[0]["execution_accuracy"], 2)
    assert resumed.history[0] == first.history[0] and [h["step"] for h in resumed.history] == [2, 4]
    assert [h["step"] for h in _history(history_file)] == [2, 4]  # step 4 evaluated again, not written twice


def test_state_holds_only_what_json_can_carry(rows):
    callback = SQLExecutionCallback(rows, every_n_steps=3, mode="bird", history_file="h.jsonl")
    state = callback.state()
    assert json.loads(json.dumps(state)) == state
    assert state["args"] == {"every_n_steps": 3, "max_new_tokens": 512, "batch_size": 8, "mode": "bird", "history_file": "h.jsonl"}


def test_bad_arguments_are_refused_early(rows):
    with pytest.raises(ValueError, match="mode"):
        SQLExecutionCallback(rows, mode="sqlite")
    with pytest.raises(ValueError, match="gold_sql"):
        SQLExecutionCallback([{"prompt": "q", "db_path": "x.sqlite"}])
    with pytest.raises(ValueError, match="empty"):
        SQLExecutionCallback([])
    trainer = SimpleNamespace(args=SimpleNamespace(restore_callback_states_from_checkpoint=True))
    with pytest.raises(ValueError, match="restore_callback_states_from_checkpoint"):
        SQLExecutionCallback(rows, trainer=trainer)


def test_set_trainer_still_attaches_the_callback_and_warns(rows):
    trainer = SimpleNamespace(args=SimpleNamespace(restore_callback_states_from_checkpoint=False), callback_handler=SimpleNamespace(callbacks=[]))
    trainer.add_callback = trainer.callback_handler.callbacks.append
    callback = SQLExecutionCallback(rows)
    with pytest.warns(FutureWarning, match="trainer="):
        callback.set_trainer(trainer)
    assert callback.trainer is trainer and trainer.callback_handler.callbacks == [callback]
