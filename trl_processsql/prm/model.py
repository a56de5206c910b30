"""Scoring chains of steps with a trained process reward model.

Two kinds of PRM load here:

- **token classification** (what :class:`ProcessRewardTrainer` trains): the score of a step is
  ``sigmoid(logit)`` at the last token of the step plus the step separator;
- **step-tag causal LM** (the paper's released PRM, Math-Shepherd style): a tag is written after
  each step and the score is ``P(positive) / (P(positive) + P(negative))`` of the next token at
  the tag, with the tag and the two label tokens given as text.

Either way every step of a whole batch is scored in one forward pass per batch of trajectories
(not one pass per step prefix), through the same :func:`encode_steps` the trainer used.
``format="rewardsql"`` reads the paper's released PRM as its own code does: a causal LM reading the
prompt and the steps as one text, at the tag ``" и"`` (the last id of ``tokenizer.encode("  и")``),
with the verdicts ``tokenizer.encode(" + -")`` (:mod:`trl_processsql.formats`).
"""

from __future__ import annotations

import logging
import os
from typing import Sequence

import torch

from ..formats import FormatProfile, get_format
from .aggregation import AGGREGATIONS, aggregate
from .encoding import encode_steps, encode_tagged_steps
from .ensemble import StepScoreEnsemble, ensemble_members

__all__ = ["ProcessRewardModel"]

logger = logging.getLogger(__name__)


class ProcessRewardModel:
    """Scores every step of trajectories; aggregates step scores into one score per trajectory.

    Parameters:
        model: a token-classification model with one label, or a causal LM when ``step_tag`` is set.
        tokenizer: its tokenizer.
        step_separator (`str`, *optional*): text after each step for token-classification PRMs; defaults to
            what the trainer saved in the model config, else one blank line.
        step_tag, positive_token, negative_token (`str`, *optional*): for step-tag causal-LM PRMs, the text written
            after each step and the two verdict tokens (each must be a single token).
        aggregation (`str`, defaults to `"min"`): default of :meth:`score` (`min`, `mean`, `prod`, `last`, `entropy`).
        failure_floor (`float`, defaults to `0.0`): the score of a trajectory with a step that failed to execute,
            with no step, or too long to score.
        max_length, max_prompt_length (`int`, *optional*): token limits, defaulting to the trainer's saved values
            (else 2048, or the model's context in a step-tag format, and three quarters of it for the prompt, which
            keeps its end).
        batch_size (`int`, defaults to `16`): trajectories per forward pass.
        format (`str`, defaults to `"processsql"`): the input format (:data:`~trl_processsql.formats.FORMATS`);
            `"rewardsql"` fixes the step tag and verdict ids of the paper's released PRM, tokenizes the prompt and
            the steps as one text, and by default reads as many tokens as the model's context holds.
    """

    def __init__(
        self,
        model,
        tokenizer,
        *,
        step_separator: str | None = None,
        step_tag: str | None = None,
        positive_token: str = "+",
        negative_token: str = "-",
        aggregation: str = "min",
        failure_floor: float = 0.0,
        max_length: int | None = None,
        max_prompt_length: int | None = None,
        batch_size: int = 16,
        format: str | FormatProfile = "processsql",
    ):
        self.format = get_format(format)
        if self.format.step_tag is not None:
            if step_tag not in (None, self.format.step_tag):
                raise ValueError(f"the {self.format.name} format reads its verdicts at {self.format.step_tag!r}, not {step_tag!r}")
            step_tag = self.format.step_tag
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {aggregation!r}: choose one of {', '.join(AGGREGATIONS)}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        config = model.config
        self.step_tag = step_tag
        self.step_suffix = step_tag if step_tag is not None else (
            step_separator if step_separator is not None else getattr(config, "prm_step_separator", "\n\n")
        )
        self.aggregation = aggregation
        self.failure_floor = failure_floor
        # A step-tag format reads whole texts, as the released PRM did: its default is the model's context.
        context = getattr(config, "max_position_embeddings", None) if self.format.step_tag is not None else None
        self.max_length = max_length or getattr(config, "prm_max_length", None) or context or 2048
        # A fixed prompt budget (never one that depends on the steps) keeps a step's score
        # independent of the steps after it.
        self.max_prompt_length = (
            max_prompt_length or getattr(config, "prm_max_prompt_length", None) or self.max_length * 3 // 4
        )
        self.batch_size = batch_size
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if self.format.step_tag is not None:
            self.verdict_ids, self.tag_id = self.format.verdict_ids(tokenizer), self.format.tag_id(tokenizer)
        elif step_tag is not None:
            self.verdict_ids = [self._single_token(positive_token), self._single_token(negative_token)]
        elif getattr(config, "num_labels", 1) != 1:
            raise ValueError(
                f"a token-classification PRM needs num_labels=1, this model has {config.num_labels}; "
                "for a causal-LM PRM that scores at a step tag, pass step_tag="
            )

    def _single_token(self, text: str) -> int:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise ValueError(f"verdict token {text!r} is {len(ids)} tokens for this tokenizer; it must be exactly one")
        return ids[0]

    @classmethod
    def from_pretrained(
        cls, path_or_repo_id: str | os.PathLike, *, step_tag: str | None = None, device=None, format: str = "processsql", **kwargs
    ):
        """Load a PRM from a local directory or the Hub.

        With ``step_tag`` (or a format that has one, such as ``rewardsql``) the checkpoint is loaded
        as a causal LM scored at the tag; otherwise as a token-classification model (what
        :class:`ProcessRewardTrainer` saves), or as the mean of several where the folder is an
        ensemble (:func:`~trl_processsql.prm.save_prm_ensemble`). Other keyword arguments go to the constructor, except
        ``model_kwargs`` (passed to ``from_pretrained``).
        """
        step_tag = step_tag if step_tag is not None else get_format(format).step_tag
        from transformers import AutoModelForCausalLM, AutoModelForTokenClassification, AutoTokenizer

        model_kwargs = kwargs.pop("model_kwargs", {})
        members = ensemble_members(path_or_repo_id) if step_tag is None else None
        try:
            tokenizer = AutoTokenizer.from_pretrained(path_or_repo_id)
            if step_tag is not None:
                model = AutoModelForCausalLM.from_pretrained(path_or_repo_id, **model_kwargs)
            else:
                loaded = []
                for subfolder in members or [""]:
                    where = f"{path_or_repo_id!s}/{subfolder}" if subfolder else str(path_or_repo_id)
                    loaded.append((where, *AutoModelForTokenClassification.from_pretrained(
                        path_or_repo_id, subfolder=subfolder, output_loading_info=True, **model_kwargs
                    )))
        except OSError as exc:
            raise OSError(f"cannot load a process reward model from {path_or_repo_id!s}: {exc}") from exc
        if step_tag is None:
            for where, _, info in loaded:
                if info["missing_keys"]:  # a PEFT adapter's head (modules_to_save) counts as present
                    # transformers filled them with random values: every score would be noise
                    raise ValueError(
                        f"{where} is not a trained token-classification PRM: its checkpoint lacks "
                        f"{', '.join(sorted(info['missing_keys']))} (a policy or base model has no trained scoring head); "
                        "train one with ProcessRewardTrainer, or pass step_tag= for a causal-LM PRM scored at a step tag"
                    )
            model = StepScoreEnsemble([m for _, m, _ in loaded]) if members else loaded[0][1]
        if device is not None:
            model = model.to(device)
        return cls(model, tokenizer, step_tag=step_tag, format=format, **kwargs)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def prompt(self, question: str, db_path: str | os.PathLike, evidence: str = "") -> str:
        """The prompt this PRM reads for ``question``: its format's, in the prompt style its checkpoint records
        (``processsql_prompt_style``, as a policy's does; the full prompt where none is recorded)."""
        from ..prompts import saved_prompt_style

        return self.format.question_prompt(question, db_path, evidence, style=saved_prompt_style(getattr(self.model, "config", None)))

    @torch.inference_mode()
    def score_steps(self, prompts: Sequence[str], completions: Sequence[Sequence[str]]) -> list[list[float]]:
        """The score in [0, 1] of every step; steps that do not fit in ``max_length`` get ``None``."""
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts for {len(completions)} completions")
        encoded = [self.encode(prompt, list(steps)) for prompt, steps in zip(prompts, completions)]
        scores: list[list[float | None]] = [[None] * e.num_steps for e in encoded]
        order = sorted((i for i, e in enumerate(encoded) if e.step_ends), key=lambda i: len(encoded[i].input_ids))
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            width = max(len(encoded[i].input_ids) for i in batch)
            input_ids = torch.full((len(batch), width), self.pad_token_id, dtype=torch.long)
            attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                ids = encoded[i].input_ids
                input_ids[row, : len(ids)] = torch.tensor(ids)
                attention_mask[row, : len(ids)] = 1
            logits = self.model(input_ids=input_ids.to(self.device), attention_mask=attention_mask.to(self.device)).logits
            step_probs = self._step_probabilities(logits.float())
            for row, i in enumerate(batch):
                for k, position in enumerate(encoded[i].step_ends):
                    scores[i][k] = float(step_probs[row, position])
        return scores

    def encode(self, prompt: str, steps: list[str]):
        """The token ids of a prompt and its steps, and the position of each step's score."""
        limits = dict(max_length=self.max_length, max_prompt_length=self.max_prompt_length)
        if self.format.step_tag is None:
            return encode_steps(self.tokenizer, prompt, steps, self.step_suffix, **limits)
        return encode_tagged_steps(self.tokenizer, self.format.policy_prompt(prompt), steps, self.step_tag, self.tag_id, **limits)

    def _step_probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        if self.step_tag is None:
            return torch.sigmoid(logits[..., 0]).cpu()
        verdicts = logits[..., self.verdict_ids]  # (batch, length, 2): positive, negative
        return torch.softmax(verdicts, dim=-1)[..., 0].cpu()

    def score(
        self,
        prompts: Sequence[str],
        completions: Sequence[Sequence[str]],
        *,
        aggregation: str | None = None,
        failed: Sequence[bool] | None = None,
    ) -> list[float]:
        """One score per trajectory: its step scores aggregated (see :mod:`.aggregation`).

        ``failed[i]`` marks a trajectory with a step that failed to execute: it gets
        ``failure_floor`` without being run through the model. So do trajectories with no step
        and those with steps past ``max_length``, with a warning.
        """
        method = aggregation or self.aggregation
        failed = list(failed) if failed is not None else [False] * len(prompts)
        live = [i for i in range(len(prompts)) if not failed[i]]
        step_scores = self.score_steps([prompts[i] for i in live], [completions[i] for i in live])
        results = [self.failure_floor] * len(prompts)
        for i, steps in zip(live, step_scores):
            if not steps:
                logger.warning("trajectory %d has no step to score: it gets the floor score %s", i, self.failure_floor)
            elif any(s is None for s in steps):
                logger.warning(
                    "trajectory %d does not fit in max_length=%d tokens: it gets the floor score %s",
                    i,
                    self.max_length,
                    self.failure_floor,
                )
            else:
                results[i] = aggregate(steps, method)
        return results
