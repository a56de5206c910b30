"""Prompt plus steps as token ids, with the position that carries each step's score.

Training (:class:`ProcessRewardTrainer`) and scoring (:class:`ProcessRewardModel`) both encode
through :func:`encode_steps`, so the model is read at inference exactly where it was trained.
:func:`encode_tagged_steps` reads a step-tag PRM instead, the paper's released one (``rewardsql``) as its own code does.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EncodedSteps", "encode_steps", "encode_tagged_steps"]


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


def _prompt_ids(tokenizer, prompt: str, max_prompt_length: int | None) -> list[int]:
    """The prompt's tokens; a long prompt keeps its end (the question)."""
    prompt_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"] if prompt else []
    if max_prompt_length is not None and len(prompt_ids) > max_prompt_length:
        prompt_ids = prompt_ids[len(prompt_ids) - max_prompt_length :]
    return prompt_ids


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
    prompt_ids = _prompt_ids(tokenizer, prompt, max_prompt_length)
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


def encode_tagged_steps(
    tokenizer,
    prompt: str,
    steps: list[str],
    step_tag: str,
    tag_id: int,
    max_length: int | None = None,
    max_prompt_length: int | None = None,
) -> EncodedSteps:
    """Tokenize ``prompt + step1{tag} step2{tag} ... stepK{tag} `` as one text, as a PRM trained on whole texts reads it.

    The prompt and the steps go through the tokenizer together (``tokenizer.encode`` of the whole
    text, as the released PRM's code reads it: tokens may span the prompt's end), and each step's
    position is the token that ends its tag, found through the character offsets (a fast tokenizer
    is needed); that token must be ``tag_id``. A long prompt keeps its end; steps past
    ``max_length`` get no position.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("a step-tag PRM finds its step tags through character offsets: load a fast tokenizer")
    text, tag_ends = prompt, []
    for step in steps:
        text += step + step_tag
        tag_ends.append(len(text))
        text += " "
    encoding = tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
    ids, starts = encoding["input_ids"], [start for start, _ in encoding["offset_mapping"]]
    prompt_tokens = next((i for i, start in enumerate(starts) if start >= len(prompt)), len(ids))
    cut = max(0, prompt_tokens - max_prompt_length) if max_prompt_length is not None else 0
    budget = max_length if max_length is not None else float("inf")
    step_ends, token = [], 0
    for end in tag_ends:
        while token + 1 < len(starts) and starts[token + 1] < end:
            token += 1  # the last token that starts before the tag's end holds its last character
        if ids[token] != tag_id:
            raise ValueError(f"the step tag {step_tag!r} does not end in the token {tag_id} the PRM's verdicts are read at")
        if token - cut + 1 > budget:
            break
        step_ends.append(token - cut)
    input_ids = ids[cut:]
    return EncodedSteps(input_ids[:max_length] if max_length is not None else input_ids, step_ends, len(steps))
