"""Prompt plus steps as token ids, with the position that carries each step's score.

Training (:class:`ProcessRewardTrainer`) and scoring (:class:`ProcessRewardModel`) both encode
through :func:`encode_steps`, so the model is read at inference exactly where it was trained.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EncodedSteps", "encode_steps"]


@dataclass(frozen=True)
class EncodedSteps:
    """``input_ids`` and, for the first ``len(step_ends)`` steps, the index of their last token.

    Steps that did not fit in the length limits have no position: ``len(step_ends) < num_steps``.
    """

    input_ids: list[int]
    step_ends: list[int]
    num_steps: int

    @property
    def truncated(self) -> bool:
        return len(self.step_ends) < self.num_steps


def encode_steps(
    tokenizer,
    prompt: str,
    steps: list[str],
    step_suffix: str,
    max_length: int | None = None,
    max_prompt_length: int | None = None,
    max_completion_length: int | None = None,
) -> EncodedSteps:
    """Tokenize ``prompt`` then each step followed by ``step_suffix``, each step on its own.

    Steps are tokenized separately so that a step's tokens never merge with its neighbour's and its
    last token is well defined. A long prompt keeps its end; steps that would pass
    ``max_completion_length`` or ``max_length`` are dropped whole.
    """
    prompt_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"] if prompt else []
    if max_prompt_length is not None and len(prompt_ids) > max_prompt_length:
        prompt_ids = prompt_ids[len(prompt_ids) - max_prompt_length :]
    step_ids = tokenizer([step + step_suffix for step in steps], add_special_tokens=False)["input_ids"] if steps else []
    completion_budget = max_completion_length if max_completion_length is not None else float("inf")
    total_budget = max_length if max_length is not None else float("inf")
    input_ids = list(prompt_ids)
    step_ends: list[int] = []
    used = 0
    for ids in step_ids:
        if not ids or used + len(ids) > completion_budget or len(input_ids) + len(ids) > total_budget:
            break
        input_ids.extend(ids)
        used += len(ids)
        step_ends.append(len(input_ids) - 1)
    return EncodedSteps(input_ids, step_ends, len(steps))
