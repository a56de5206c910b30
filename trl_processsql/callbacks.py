"""Execution accuracy during training: a held-out split greedy-decoded, executed and logged every N steps.

GRPO's rewards say how sampled completions fare on the training prompts; whether the policy gets
better at answering new questions is only seen by decoding held-out ones the way it will be used.
:class:`SQLExecutionCallback` does that inside any transformers ``Trainer`` (GRPO, PRM-GRPO, SFT).
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path
from typing import Sequence

import torch
from accelerate.utils import gather_object
from transformers import GenerationConfig, Trainer, TrainerCallback
from transformers.trainer_callback import ExportableState
from trl.models.utils import unwrap_model_for_generation

from .cocte import parse_cocte
from .rewards import REWARD_SQL_TIMEOUT
from .sql import COMPARISON_MODES, ExecutionLimits, SQLExecutor, judge

__all__ = ["HISTORY_FILE", "SQLExecutionCallback", "greedy_completions", "score_completions"]

HISTORY_FILE = "sql_execution_history.jsonl"
"""The history's file name in ``output_dir`` when no ``history_file`` is given."""


def greedy_completions(model, tokenizer, prompts: Sequence, max_new_tokens: int, batch_size: int) -> list[str]:
    """The completion of each prompt under greedy decoding, as GRPO would prompt the model.

    Conversational prompts go through the chat template with the generation prompt; prompts are
    padded on the left so that every completion starts right after its prompt.
    """
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=model.generation_config.eos_token_id or tokenizer.eos_token_id,
    )
    completions = []
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        conversational = not isinstance(batch[0], str)
        texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in batch] if conversational else list(batch)
        # A chat template writes its own special tokens; plain prompts get the tokenizer's, as in GRPO.
        inputs = tokenizer(texts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=not conversational)
        inputs = inputs.to(model.device)
        with torch.no_grad():
            output = model.generate(**inputs, generation_config=config)
        completions += tokenizer.batch_decode(output[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    return completions


def score_completions(
    completions: Sequence[str], db_paths: Sequence[str], gold_sql: Sequence[str], mode: str, executor: SQLExecutor
) -> dict[str, int]:
    """Counts over the completions: ``n``, ``correct`` (gold result), ``valid`` (SQL that runs) and ``steps``.

    >>> import sqlite3, tempfile, os
    >>> db = os.path.join(tempfile.mkdtemp(), "toy.sqlite")
    >>> with sqlite3.connect(db) as c:
    ...     _ = c.execute("CREATE TABLE t (x INTEGER)")
    >>> with SQLExecutor(num_workers=1) as executor:
    ...     score_completions(["SELECT count(*) FROM t", "SELECT y FROM t"], [db, db], ["SELECT 0", "SELECT 0"], "spider", executor)
    {'n': 2, 'correct': 1, 'valid': 1, 'steps': 2}
    """
    coctes = [parse_cocte(text) for text in completions]
    verdicts = judge(executor, [cocte.sql for cocte in coctes], gold_sql, db_paths, mode=mode)
    return {
        "n": len(coctes),
        "correct": sum(v.correct for v in verdicts),
        "valid": sum(v.ran for v in verdicts),
        "steps": sum(len(cocte.steps) for cocte in coctes),
    }


class SQLExecutionCallback(TrainerCallback, ExportableState):
    r"""
    Every `every_n_steps` optimizer steps, greedy-decodes a held-out split and logs its execution accuracy.

    Each process decodes its shard of the split; the counts are summed over processes and logged through the
    trainer's `log` as `sql_eval/execution_accuracy`, `sql_eval/valid_rate` and `sql_eval/mean_steps` (so they
    reach every `report_to` integration and `state.log_history`), and the main process appends one JSON line
    `{"step", "execution_accuracy", "valid_rate", "mean_steps", "n", "time"}` (`time`: seconds the evaluation took)
    to the history file.

    The best accuracy, its step, the last evaluated step and the history are saved in every checkpoint and
    restored when training resumes from one; the history file is then rewritten from the checkpoint's history, so
    steps evaluated after that checkpoint appear once. The callback restores itself: leave the trainer's
    `restore_callback_states_from_checkpoint` at `False` (it would rebuild the callback from the saved state
    alone, without its split).

    Usage:
    ```python
    trainer = PRMGRPOTrainer(...)
    trainer.add_callback(SQLExecutionCallback(eval_split, every_n_steps=50, trainer=trainer))
    trainer.train()
    ```

    Args:
        eval_dataset (`datasets.Dataset` or list of dicts):
            Rows with `prompt` (conversational or plain text), `db_path` and `gold_sql`.
        every_n_steps (`int`, *optional*, defaults to `100`):
            Evaluate when the global step is a multiple of it.
        max_new_tokens (`int`, *optional*, defaults to `512`):
            Completion length limit.
        batch_size (`int`, *optional*, defaults to `8`):
            Prompts per `generate` call.
        mode (`str`, *optional*, defaults to `"spider"`):
            Result comparison: `"spider"` (test-suite) or `"bird"`.
        history_file (`str` or `None`, *optional*, defaults to `None`):
            The JSONL history; `None` writes `sql_execution_history.jsonl` in the trainer's `output_dir`.
        executor ([`~trl_processsql.sql.SQLExecutor`] or `None`, *optional*, defaults to `None`):
            Runs the SQL; `None` uses the trainer's `executor` when it has one (as [`PRMGRPOTrainer`] does), else
            one the callback starts on first use.
        trainer ([`~transformers.Trainer`]):
            The trainer the callback logs through and decodes with; add the callback to it with `add_callback`.
    """

    def __init__(
        self,
        eval_dataset,
        every_n_steps: int = 100,
        max_new_tokens: int = 512,
        batch_size: int = 8,
        mode: str = "spider",
        history_file: str | None = None,
        executor: SQLExecutor | None = None,
        trainer: Trainer | None = None,
    ):
        if mode not in COMPARISON_MODES:
            raise ValueError(f"mode must be one of {', '.join(COMPARISON_MODES)}, got {mode!r}")
        if every_n_steps < 1 or batch_size < 1:
            raise ValueError(f"every_n_steps and batch_size must be positive, got {every_n_steps} and {batch_size}")
        rows = list(eval_dataset)
        if not rows:
            raise ValueError("eval_dataset is empty")
        missing = sorted({"prompt", "db_path", "gold_sql"} - set(rows[0]))
        if missing:
            raise ValueError(f"eval_dataset rows need prompt, db_path and gold_sql; missing: {', '.join(missing)}")
        self.prompts = [row["prompt"] for row in rows]
        self.db_paths = [os.fspath(row["db_path"]) for row in rows]
        self.gold_sql = [row["gold_sql"] for row in rows]
        self.every_n_steps, self.max_new_tokens, self.batch_size = every_n_steps, max_new_tokens, batch_size
        self.mode, self.history_file, self.executor = mode, history_file, executor
        self.trainer: Trainer | None = None
        if trainer is not None:
            self._attach(trainer)
        self.best_accuracy: float | None = None
        self.best_step: int | None = None
        self.last_step: int | None = None
        self.history: list[dict] = []

    def set_trainer(self, trainer: Trainer) -> None:
        """Log through ``trainer``, added to it if it is not there yet (deprecated: pass ``trainer=``)."""
        warnings.warn(
            "SQLExecutionCallback.set_trainer is deprecated: pass trainer= to SQLExecutionCallback and add the callback "
            "with trainer.add_callback",
            FutureWarning,
            stacklevel=2,
        )
        self._attach(trainer)
        if self not in trainer.callback_handler.callbacks:
            trainer.add_callback(self)

    def _attach(self, trainer: Trainer) -> None:
        if trainer.args.restore_callback_states_from_checkpoint:
            raise ValueError(
                "SQLExecutionCallback restores its own state from checkpoints; restore_callback_states_from_checkpoint=True "
                "would rebuild it without its eval split: set it to False"
            )
        self.trainer = trainer

    def _executor(self) -> SQLExecutor:
        if self.executor is None:
            self.executor = getattr(self.trainer, "executor", None)
        if self.executor is None:
            self.executor = SQLExecutor(limits=ExecutionLimits(timeout=REWARD_SQL_TIMEOUT))
        return self.executor

    def state(self) -> dict:
        return {
            "args": {
                "every_n_steps": self.every_n_steps,
                "max_new_tokens": self.max_new_tokens,
                "batch_size": self.batch_size,
                "mode": self.mode,
                "history_file": self.history_file,
            },
            "attributes": {
                "best_accuracy": self.best_accuracy,
                "best_step": self.best_step,
                "last_step": self.last_step,
                "history": list(self.history),
            },
        }

    def _history_path(self, args) -> Path:
        return Path(self.history_file or Path(args.output_dir) / HISTORY_FILE)

    def on_train_begin(self, args, state, control, **kwargs):
        if self.trainer is None:
            raise RuntimeError("SQLExecutionCallback logs through the trainer: pass trainer= to SQLExecutionCallback")
        saved = state.stateful_callbacks.get(type(self).__name__)  # this run's state, or the checkpoint's on resume
        if isinstance(saved, list):  # several of these callbacks: the Trainer appends each save's states
            mine = [cb for cb in self.trainer.callback_handler.callbacks if type(cb) is type(self)]
            saved = saved[-len(mine) :][mine.index(self)] if len(saved) >= len(mine) else None
        for name, value in (saved or {}).get("attributes", {}).items():
            setattr(self, name, value)
        if state.global_step > 0 and state.is_world_process_zero:
            path = self._history_path(args)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(json.dumps(record) + "\n" for record in self.history), encoding="utf-8")

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.every_n_steps or state.global_step == self.last_step:
            return
        started = time.perf_counter()
        accelerator = self.trainer.accelerator
        with accelerator.split_between_processes(list(range(len(self.prompts)))) as shard:
            with unwrap_model_for_generation(
                self.trainer.model_wrapped, accelerator, gradient_checkpointing_kwargs=args.gradient_checkpointing_kwargs
            ) as model:
                training = model.training
                model.eval()
                try:
                    completions = greedy_completions(
                        model, kwargs["processing_class"], [self.prompts[i] for i in shard], self.max_new_tokens, self.batch_size
                    )
                finally:
                    model.train(training)
            counts = score_completions(
                completions,
                [self.db_paths[i] for i in shard],
                [self.gold_sql[i] for i in shard],
                self.mode,
                self._executor(),
            )
        totals = {key: sum(c[key] for c in gather_object([counts])) for key in counts}
        n = totals["n"]
        accuracy, valid_rate, mean_steps = totals["correct"] / n, totals["valid"] / n, totals["steps"] / n
        self.last_step = state.global_step
        if self.best_accuracy is None or accuracy > self.best_accuracy:
            self.best_accuracy, self.best_step = accuracy, state.global_step
        record = {
            "step": state.global_step,
            "execution_accuracy": accuracy,
            "valid_rate": valid_rate,
            "mean_steps": mean_steps,
            "n": n,
            "time": round(time.perf_counter() - started, 3),
        }
        self.history.append(record)
        should_log = control.should_log
        # Trainer's own log: GRPOTrainer.log and SFTTrainer.log would fold in (and clear) their pending training metrics.
        Trainer.log(
            self.trainer,
            {"sql_eval/execution_accuracy": accuracy, "sql_eval/valid_rate": valid_rate, "sql_eval/mean_steps": mean_steps},
        )
        control.should_log = should_log  # on_log clears it, which would drop this step's regular training log
        if state.is_world_process_zero:
            path = self._history_path(args)
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
