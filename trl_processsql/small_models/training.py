"""The method at the scale of a CPU: small Qwen2-shaped models trained from scratch in minutes.

A 7B policy and PRM need GPUs; these helpers run the same stages with small models, so that the
whole method can be run, and measured, on a laptop. The setting is *in-domain*: a model trained
from scratch in minutes cannot learn SQL for databases it never saw, but it can learn the
databases of its training questions, so questions are split by question (:func:`split_by_question`)
and every test database is seen in training. The policy reads the compact prompt (database name
and question, :func:`~trl_processsql.prompts.build_prompt` with ``style="compact"``) and learns
each database's tables from its answers.

The PRM starts from the SFT policy's weights (:func:`train_small_prm` with ``init_from``): the
policy has already tied questions to SQL, which a PRM trained from scratch on a few thousand
labelled chains does not learn. It picks up surface cues of its training errors, such as the
size of a result, so its wrong rows (mutants and the policy's own answers alike) keep results
larger and smaller than the gold's in balance; ``benchmarks/bench_selection.py`` measures how
often it still prefers a wrong result for being larger.
"""

from __future__ import annotations

import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from transformers import TrainerCallback

from ..precision import cpu_has_bf16

__all__ = [
    "ProgressBarCallback",
    "PRETRAINED_PRM_ARGS",
    "SmallModelSettings",
    "cpu_training_args",
    "quiet_progress",
    "small_policy_trainer",
    "split_by_question",
    "train_small_policy",
    "train_small_prm",
    "with_both_prompt_styles",
]


@dataclass
class SmallModelSettings:
    """Sizes of a small Qwen2-shaped model and of its training.

    The defaults train a 3.4M-parameter policy (hidden 256, 4 layers, a 4,096-token BPE
    vocabulary) for 2,400 steps of 16 prompt-completion pairs (about six passes over Spider train),
    the policy of ``benchmarks/bench_method.py`` (its time and accuracy: docs/history.md).

    ``micro_batches`` cuts each step's batch into that many micro-batches of similar length
    (transformers' ``batch_rebalance`` sampler, with gradient accumulation): a step still learns
    from ``batch_size`` examples drawn at random, with its gradient averaged over all their tokens,
    but pads each example only to the longest of its micro-batch, since answers run from a few
    tokens to hundreds (``benchmarks/bench_sft_step_time.py`` measures the step time against 1, which pads
    the whole batch). Batches grouped by length across steps pad less still, but a policy trained on
    them with these settings did not learn: transformers' ``group_by_length`` sorts each run of 50
    batches from the longest answers to the shortest.

    ``base`` is a pretrained checkpoint folder (such as
    :func:`~trl_processsql.base_models.base_model_path`'s) fine-tuned in full instead of a random
    model; the size fields are then unused. ``max_length`` cuts longer examples (prompt and answer,
    in tokens). ``bf16`` is :func:`cpu_training_args`' (None: bf16 autocast where the CPU has
    bf16 matrix units).
    """

    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    max_steps: int = 2400
    batch_size: int = 16
    learning_rate: float = 3e-3
    seed: int = 0
    micro_batches: int = 4
    base: str | None = None
    max_length: int = 1024
    bf16: bool | None = False

    @classmethod
    def pretrained(cls, base: str | os.PathLike, max_steps: int, seed: int = 0, micro_batches: int = 2) -> SmallModelSettings:
        """Full fine-tuning of the pretrained ``base``: 8 examples a step, learning rate 2e-4, examples cut at 640 tokens
        (the schema prompt and a long answer), bf16 autocast where the CPU has bf16 matrix units."""
        return cls(base=str(base), max_steps=max_steps, batch_size=8, micro_batches=micro_batches, learning_rate=2e-4,
                   max_length=640, bf16=None, seed=seed)

    def __post_init__(self):
        if self.micro_batches < 1 or self.batch_size % self.micro_batches:
            raise ValueError(f"micro_batches must divide batch_size ({self.batch_size}) into equal parts, got {self.micro_batches}")


class ProgressBarCallback(TrainerCallback):
    """A progress bar per training run, with the latest loss beside it instead of raw log dicts.

    Use it in place of transformers' ``ProgressCallback`` (:func:`quiet_progress` swaps them).
    """

    def __init__(self, desc: str, keys: Sequence[str] = ("loss", "reward")):
        self.desc, self.keys, self.bar = desc, tuple(keys), None

    def on_train_begin(self, args, state, control, **kwargs):
        from tqdm.auto import tqdm

        if state.is_world_process_zero:
            self.bar = tqdm(total=state.max_steps, desc=self.desc, unit="step", dynamic_ncols=True)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is not None and logs:
            shown = {key: f"{logs[key]:.3f}" for key in self.keys if isinstance(logs.get(key), (int, float))}
            if shown:
                self.bar.set_postfix(shown, refresh=False)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def quiet_progress(trainer, desc: str | None, keys: Sequence[str] = ("loss", "reward")):
    """Replace the trainer's progress printing (a bar plus log dicts) by one :class:`ProgressBarCallback`,
    or by nothing when ``desc`` is None. Logs stay in ``trainer.state.log_history``."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    if desc is not None:
        trainer.add_callback(ProgressBarCallback(desc, keys))
    return trainer


PRETRAINED_PRM_ARGS = {"max_prompt_length": 448, "max_length": 768, "batch_size": 8, "learning_rate": 1e-4, "bf16": None}
""":func:`train_small_prm`'s arguments for a PRM started from a fine-tuned pretrained policy: its schema prompt kept
whole, a pretrained model's learning rate, bf16 autocast where the CPU has it."""


def cpu_training_args(output_dir: str | os.PathLike, *, bf16: bool | None = False, **kwargs) -> dict:
    """Trainer arguments for a short CPU run: no checkpoints, no reporting, logs kept in ``log_history``.

    ``bf16=None`` trains under bf16 autocast where :func:`cpu_has_bf16` (weights and optimizer
    state stay fp32), in fp32 elsewhere. The default stays fp32: the small models trained from
    scratch learn differently in bf16, and their measured figures were taken in fp32.
    """
    defaults = dict(
        output_dir=str(output_dir),
        use_cpu=True,
        bf16=cpu_has_bf16() if bf16 is None else bf16,
        report_to="none",
        save_strategy="no",
        logging_steps=10,
        activation_checkpointing=False,
        disable_tqdm=False,
    )
    return {**defaults, **kwargs}


def split_by_question(questions: Sequence[dict], sizes: Sequence[int], seed: int = 0) -> list[list[dict]]:
    """Shuffle ``questions`` with ``seed`` and cut off parts of ``sizes``; the rest is the last part.

    Parts keep the file order inside them. Every database can appear in every part: the in-domain
    setting of a model trained from scratch.

    >>> qs = [{"index": i} for i in range(10)]
    >>> [[q["index"] for q in part] for part in split_by_question(qs, [2, 3])]
    [[7, 8], [1, 3, 5], [0, 2, 4, 6, 9]]
    """
    order = list(range(len(questions)))
    random.Random(seed).shuffle(order)
    if sum(sizes) > len(order):
        raise ValueError(f"cannot cut parts of {list(sizes)} out of {len(order)} questions")
    parts, at = [], 0
    for size in sizes:
        parts.append([questions[i] for i in sorted(order[at : at + size])])
        at += size
    parts.append([questions[i] for i in sorted(order[at:])])
    return parts


def train_small_policy(
    train_dataset,
    tokenizer,
    output_dir: str | os.PathLike,
    settings: SmallModelSettings | None = None,
    *,
    prompt_style: str = "compact",
    progress: bool = True,
    callbacks: Sequence[TrainerCallback] = (),
):
    """Train a small random Qwen2 policy with TRL's ``SFTTrainer`` and save it to ``output_dir``.

    ``train_dataset`` is an SFT dataset in TRL's conversational prompt-completion format (what
    :func:`~trl_processsql.sft_data.build_sft_dataset` writes); ``prompt_style`` is recorded in
    the checkpoint's config, so that inference builds the prompt it was trained on; ``callbacks``
    go to the trainer. Returns the trained model.
    """
    trainer = small_policy_trainer(train_dataset, tokenizer, output_dir, settings, prompt_style=prompt_style, callbacks=callbacks)
    quiet_progress(trainer, "SFT" if progress else None, keys=("loss",))
    trainer.train()
    trainer.save_model(output_dir)
    tokenizer.save_pretrained(output_dir)
    return trainer.model


def small_policy_trainer(train_dataset, tokenizer, output_dir, settings=None, *, prompt_style="compact", callbacks=()):
    """The ``SFTTrainer`` of :func:`train_small_policy`, before training: a random policy of ``settings``,
    or its pretrained ``base``."""
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from .models import build_tiny_model

    settings = settings or SmallModelSettings()
    if settings.base:
        model = AutoModelForCausalLM.from_pretrained(settings.base)
    else:
        model = build_tiny_model(
            tokenizer, "causal-lm", hidden_size=settings.hidden_size, num_layers=settings.num_layers,
            num_heads=settings.num_heads, seed=settings.seed,
        )
    model.config.processsql_prompt_style = prompt_style
    columns = [c for c in train_dataset.column_names if c not in ("prompt", "completion")]
    args = SFTConfig(
        **cpu_training_args(
            output_dir,
            bf16=settings.bf16,
            max_steps=settings.max_steps,
            per_device_train_batch_size=settings.batch_size // settings.micro_batches,
            gradient_accumulation_steps=settings.micro_batches,
            train_sampling_strategy="batch_rebalance" if settings.micro_batches > 1 else "random",
            learning_rate=settings.learning_rate,
            lr_scheduler_type="cosine",
            warmup_steps=min(100, settings.max_steps // 10),
            weight_decay=0.01,
            max_length=settings.max_length,
            seed=settings.seed,
        )
    )
    return SFTTrainer(model=model, args=args, train_dataset=train_dataset.remove_columns(columns), processing_class=tokenizer,
                      callbacks=list(callbacks))


def train_small_prm(
    rows: Sequence[dict],
    tokenizer,
    *,
    init_from: str | os.PathLike | None = None,
    output_dir: str | os.PathLike | None = None,
    epochs: float = 2.0,
    hidden_size: int = 128,
    num_layers: int = 2,
    learning_rate: float | None = None,
    max_prompt_length: int = 64,
    max_length: int = 512,
    batch_size: int = 16,
    seed: int = 0,
    members: int = 1,
    bf16: bool | None = False,
    progress: bool = True,
):
    """Train a token-classification PRM on stepwise ``rows``; returns a ``ProcessRewardModel`` and the seconds.

    With ``init_from`` (a saved small policy that uses ``tokenizer``) the PRM starts from the
    policy's weights with a new one-logit head; otherwise from a random model of ``hidden_size``
    and ``num_layers``. ``max_prompt_length`` keeps the end of the prompt (the question, and the
    end of the schema where the prompt has one). With ``members`` above 1, that many PRMs are
    trained on the same rows with seeds ``seed``, ``seed + 1``, ... and score as one, the mean of
    their step scores (:class:`~trl_processsql.prm.StepScoreEnsemble`; ``prm.model.members`` holds
    them): a verdict on errors none of them was trained on that does not hang on one seed, at
    ``members`` times the cost. With ``output_dir`` the PRM is saved there (an ensemble as one folder), and
    ``ProcessRewardModel.from_pretrained(output_dir)`` scores exactly as the returned one. ``bf16`` is
    :func:`cpu_training_args`'.
    """
    from ..prm import ProcessRewardModel, StepScoreEnsemble, save_prm_ensemble

    if members < 1:
        raise ValueError(f"members must be at least 1, got {members}")
    settings = dict(init_from=init_from, epochs=epochs, hidden_size=hidden_size, num_layers=num_layers, learning_rate=learning_rate,
                    max_prompt_length=max_prompt_length, max_length=max_length, batch_size=batch_size, bf16=bf16)
    if members == 1:
        model, seconds = _train_prm_model(rows, tokenizer, output_dir=output_dir, seed=seed, progress="PRM" if progress else None, **settings)
    else:
        with tempfile.TemporaryDirectory() as scratch:
            trained, seconds, saved = [], 0.0, []
            for k in range(members):
                saved.append(Path(scratch) / f"member-{k}")
                name = f"PRM {k + 1}/{members}" if progress else None
                member, took = _train_prm_model(rows, tokenizer, output_dir=saved[-1] if output_dir else None, seed=seed + k, progress=name, **settings)
                trained.append(member)
                seconds += took
            if output_dir is not None:
                save_prm_ensemble(saved, output_dir)
        model = StepScoreEnsemble(trained)
    return ProcessRewardModel(model, tokenizer, max_length=max_length, max_prompt_length=max_prompt_length), seconds


def _train_prm_model(rows, tokenizer, *, init_from, output_dir, epochs, hidden_size, num_layers, learning_rate, max_prompt_length,
                     max_length, batch_size, seed, bf16, progress):
    """One PRM of :func:`train_small_prm`: the trained token-classification model and the seconds its training took."""
    import time

    import transformers
    from datasets import Dataset

    from ..prm import ProcessRewardConfig, ProcessRewardTrainer
    from .models import build_tiny_model

    if init_from is not None:
        verbosity = transformers.logging.get_verbosity()
        transformers.logging.set_verbosity_error()  # the new head is reported as newly initialised: it is
        try:
            model = transformers.AutoModelForTokenClassification.from_pretrained(init_from, num_labels=1)
        finally:
            transformers.logging.set_verbosity(verbosity)
        learning_rate = learning_rate or 5e-4
    else:
        model = build_tiny_model(tokenizer, "token-classification", hidden_size=hidden_size, num_layers=num_layers, seed=seed)
        learning_rate = learning_rate or 1e-3
    with tempfile.TemporaryDirectory() as scratch:
        config = ProcessRewardConfig(
            **cpu_training_args(
                output_dir or scratch,
                bf16=bf16,
                num_train_epochs=epochs,
                per_device_train_batch_size=batch_size,
                learning_rate=learning_rate,
                warmup_steps=50,
                max_length=max_length,
                max_prompt_length=max_prompt_length,
                seed=seed,
            )
        )
        train = Dataset.from_list([{k: r[k] for k in ("prompt", "completions", "labels")} for r in rows])
        trainer = ProcessRewardTrainer(model=model, args=config, train_dataset=train, processing_class=tokenizer)
        quiet_progress(trainer, progress, keys=("loss",))
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        if output_dir is not None:
            trainer.save_model(output_dir)
            tokenizer.save_pretrained(output_dir)
    return trainer.model, seconds


def with_both_prompt_styles(rows: Sequence[dict], db_dir: str | os.PathLike, seed: int = 0) -> list[dict]:
    """The stepwise rows, a seeded half of them with the full prompt (schema and question) instead of their own.

    A PRM trained on both judges steps whichever prompt it is given: the compact one a small
    policy reads, or the full one that gold-chain pools and real models use.
    """
    from ..data import database_path
    from ..prompts import build_prompt

    mixed = []
    for k, row in enumerate(rows):
        if random.Random(f"{seed}:{k}").random() < 0.5:
            row = {**row, "prompt": build_prompt(row["question"], database_path(db_dir, row["db_id"]))}
        mixed.append(row)
    return mixed
