"""Training a process reward model: one binary verdict per step, read at the step's last token."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from datasets import Dataset, Features, IterableDataset, List, Value
from accelerate import PartialState
from transformers import AutoModelForTokenClassification, AutoTokenizer
from transformers.data.data_collator import DataCollatorMixin
from trl import RewardTrainer
from trl.trainer.utils import pad

from ..hub import ModelCardMixin
from .config import ProcessRewardConfig
from .encoding import encode_steps

__all__ = ["DataCollatorForStepwiseSupervision", "ProcessRewardTrainer", "compute_step_metrics"]

_PROCESSED_FEATURES = Features({"input_ids": List(Value("int32")), "labels": List(Value("float32"))})


@dataclass
class DataCollatorForStepwiseSupervision(DataCollatorMixin):
    """Right-pads ``input_ids`` (with ``pad_token_id``) and ``labels`` (with -100) into tensors.

    >>> collator = DataCollatorForStepwiseSupervision(pad_token_id=0)
    >>> batch = collator([{"input_ids": [5, 6, 7], "labels": [-100, -100, 1.0]}, {"input_ids": [8], "labels": [0.0]}])
    >>> batch["input_ids"].tolist(), batch["attention_mask"].tolist(), batch["labels"].tolist()
    ([[5, 6, 7], [8, 0, 0]], [[1, 1, 1], [1, 0, 0]], [[-100.0, -100.0, 1.0], [0.0, -100.0, -100.0]])
    """

    pad_token_id: int
    pad_to_multiple_of: int | None = None
    return_tensors: str = "pt"

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        ids = [torch.tensor(e["input_ids"], dtype=torch.long) for e in examples]
        labels = [torch.tensor(e["labels"], dtype=torch.float) for e in examples]
        kwargs = {"padding_side": "right", "pad_to_multiple_of": self.pad_to_multiple_of}
        return {
            "input_ids": pad(ids, padding_value=self.pad_token_id, **kwargs),
            "attention_mask": pad([torch.ones_like(i) for i in ids], padding_value=0, **kwargs),
            "labels": pad(labels, padding_value=-100.0, **kwargs),
        }


def _auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties); NaN with one class."""
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=float)
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks over runs of equal scores
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def compute_step_metrics(eval_pred) -> dict[str, float]:
    """Step accuracy, step AUROC and first-error-step accuracy from per-token logits and labels.

    A step is positive when its label is at least 0.5 and predicted positive when its score is. The
    first error step of a trajectory is the index of its first negative step (or "none"); the
    metric counts trajectories where prediction and label agree on it.
    """
    logits, labels = eval_pred.predictions, eval_pred.label_ids
    logits = np.asarray(logits[0] if isinstance(logits, tuple) else logits, dtype=np.float64)
    if logits.ndim == 3:
        logits = logits[..., 0]
    labels = np.asarray(labels, dtype=np.float64)
    mask = labels != -100
    probs = 1.0 / (1.0 + np.exp(-logits[mask]))
    truth = labels[mask] >= 0.5
    first_error_hits = []
    for row_logits, row_labels, row_mask in zip(logits, labels, mask):
        true_ok = row_labels[row_mask] >= 0.5
        pred_ok = row_logits[row_mask] >= 0.0
        if len(true_ok):
            first_true = int(np.argmin(true_ok)) if not true_ok.all() else len(true_ok)
            first_pred = int(np.argmin(pred_ok)) if not pred_ok.all() else len(pred_ok)
            first_error_hits.append(first_true == first_pred)
    return {
        "step_accuracy": float(((probs >= 0.5) == truth).mean()) if len(truth) else float("nan"),
        "step_auroc": _auroc(probs, truth),
        "first_error_accuracy": float(np.mean(first_error_hits)) if first_error_hits else float("nan"),
    }


class ProcessRewardTrainer(ModelCardMixin, RewardTrainer):
    """Trainer for process reward models (PRMs) on stepwise-supervision data.

    A subclass of [`~trl.RewardTrainer`]: PEFT, DeepSpeed, chat templates, logging and the Hub work as there.
    The model is a token-classification model with one logit per token (`num_labels=1`); each step's label
    sits on the last token of the step plus `args.step_separator`, every other position is -100, and the loss
    is binary cross-entropy, so soft labels (Monte Carlo estimates in [0, 1]) train as they are.

    Args:
        model (`str` or [`~transformers.PreTrainedModel`] or [`~peft.PeftModel`]):
            A path or Hub id, loaded with `AutoModelForTokenClassification.from_pretrained(num_labels=1,
            **args.model_init_kwargs)`, or a token-classification model with `num_labels=1`.
        args ([`ProcessRewardConfig`], *optional*):
            Training configuration; the trainer does not change it.
        train_dataset ([`~datasets.Dataset`]):
            Stepwise supervision: `prompt` (str), `completions` (list of step texts) and `labels` (list of bool or
            float in [0, 1]); or already processed `input_ids` and `labels` columns.
        eval_dataset ([`~datasets.Dataset`] or `dict`, *optional*):
            The same format. Evaluation reports `step_accuracy`, `step_auroc` and `first_error_accuracy`.
        processing_class ([`~transformers.PreTrainedTokenizerBase`], *optional*):
            Loaded from the model's path when not given.
        quantization_config ([`~transformers.BitsAndBytesConfig`], *optional*):
            Loads the model quantized (QLoRA with `peft_config`), on this process's GPU unless
            `args.model_init_kwargs` names a `device_map`. Only for a model given by path, and not together with a
            `quantization_config` in `args.model_init_kwargs`.
        peft_config ([`~peft.PeftConfig`], *optional*):
            Wraps the model with PEFT (e.g. LoRA); keep the head trainable with `modules_to_save=["score"]`.

    Other arguments are those of [`~trl.RewardTrainer`].
    """

    _tag_names = ["trl", "trl-processsql", "process-reward-model", "text-to-sql"]
    _name = "Process Reward"
    card_kind = "prm"
    card_description = (
        "A process reward model for text-to-SQL: given a question with its schema and a chain of CTEs, each step "
        "followed by its executed view, it gives every step the probability that it is right."
    )

    def __init__(
        self,
        model,
        args: ProcessRewardConfig | None = None,
        data_collator=None,
        train_dataset: Dataset | IterableDataset | None = None,
        eval_dataset=None,
        processing_class=None,
        compute_metrics=None,
        callbacks=None,
        optimizers=(None, None),
        optimizer_cls_and_kwargs=None,
        preprocess_logits_for_metrics=None,
        quantization_config=None,
        peft_config=None,
    ):
        if args is None:
            name = model if isinstance(model, str) else model.config._name_or_path
            args = ProcessRewardConfig(f"{str(name).rstrip('/').split('/')[-1]}-PRM")
        if isinstance(model, str):
            init_kwargs = {"trust_remote_code": args.trust_remote_code, **(args.model_init_kwargs or {}), "num_labels": 1}
            if quantization_config is not None:
                if "quantization_config" in init_kwargs:
                    raise ValueError("quantization_config is given both to the trainer and in args.model_init_kwargs: give it once")
                init_kwargs["quantization_config"] = quantization_config
                # k-bit weights cannot move after loading: each process loads its copy on its own GPU
                init_kwargs.setdefault("device_map", {"": PartialState().local_process_index} if torch.cuda.is_available() else None)
            model = AutoModelForTokenClassification.from_pretrained(model, **init_kwargs)
            # Used here: RewardTrainer would warn that they are ignored, the model being built.
            args, quantization_config = copy.copy(args), None
            args.model_init_kwargs = None
        if processing_class is None:
            processing_class = AutoTokenizer.from_pretrained(model.config._name_or_path)
        if data_collator is None:
            pad_token = processing_class.pad_token or processing_class.eos_token
            data_collator = DataCollatorForStepwiseSupervision(
                pad_token_id=processing_class.convert_tokens_to_ids(pad_token),
                pad_to_multiple_of=args.pad_to_multiple_of if isinstance(args.pad_to_multiple_of, int) else None,
            )
        # The scoring side (ProcessRewardModel) reads these back from the saved config.
        model.config.prm_step_separator = args.step_separator
        model.config.prm_max_length = args.max_length
        model.config.prm_max_prompt_length = args.max_prompt_length
        super().__init__(
            model=model,
            args=args,
            data_collator=data_collator,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=processing_class,
            compute_metrics=compute_metrics or compute_step_metrics,
            callbacks=callbacks,
            optimizers=optimizers,
            optimizer_cls_and_kwargs=optimizer_cls_and_kwargs,
            preprocess_logits_for_metrics=preprocess_logits_for_metrics,
            quantization_config=quantization_config,
            peft_config=peft_config,
        )
        self.label_names = ["labels"]  # evaluation hands logits and labels to compute_metrics

    def _prepare_dataset(self, dataset, processing_class, args: ProcessRewardConfig, dataset_name: str):
        columns = dataset.column_names or []
        if "input_ids" in columns and "labels" in columns:
            return dataset
        missing = {"prompt", "completions", "labels"} - set(columns)
        if missing:
            raise ValueError(
                f"the {dataset_name} dataset needs stepwise-supervision columns prompt, completions and labels "
                f"(missing: {', '.join(sorted(missing))})"
            )

        def tokenize(example):
            if len(example["completions"]) != len(example["labels"]):
                raise ValueError(
                    f"{len(example['completions'])} steps but {len(example['labels'])} labels in an example of the "
                    f"{dataset_name} dataset"
                )
            encoded = encode_steps(
                processing_class,
                example["prompt"],
                list(example["completions"]),
                args.step_separator,
                max_length=args.max_length,
                max_prompt_length=args.max_prompt_length,
                max_completion_length=args.max_completion_length,
            )
            labels = [-100.0] * len(encoded.input_ids)
            kept = list(zip(encoded.step_ends, example["labels"]))
            if args.train_on_last_step_only:
                kept = kept[-1:] if len(encoded.step_ends) == len(example["labels"]) else []
            for position, label in kept:
                labels[position] = float(label)
            return {"input_ids": encoded.input_ids, "labels": labels}

        map_kwargs = {"features": _PROCESSED_FEATURES, "remove_columns": columns}
        if isinstance(dataset, Dataset):
            map_kwargs.update(num_proc=args.dataset_num_proc, desc=f"Tokenizing {dataset_name} steps")
        dataset = dataset.map(tokenize, **map_kwargs)
        return dataset.filter(lambda example: any(label != -100 for label in example["labels"]))

    def _set_signature_columns_if_needed(self):
        if self._signature_columns is None:
            self._signature_columns = ["input_ids", "labels"]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if self.model.training else "eval"
        outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        logits = outputs.logits.squeeze(-1).float()
        labels = inputs["labels"]
        mask = labels != -100
        loss = F.binary_cross_entropy_with_logits(logits[mask], labels[mask], reduction="sum") / mask.sum().clamp(min=1)
        with torch.no_grad():
            correct = ((logits[mask] >= 0) == (labels[mask] >= 0.5)).float().sum()
            counts = self.accelerator.gather_for_metrics(torch.stack([correct, mask.sum().float()]).reshape(1, 2)).sum(0)
            if counts[1] > 0:
                self._metrics[mode]["step_accuracy"].append((counts[0] / counts[1]).item())
        return (loss, outputs) if return_outputs else loss
