"""Per-token advantages from step scores: which tokens of a completion get the credit.

Pure functions on plain lists and tensors, so each rule can be checked by hand:

- ``rewardsql`` (the paper's rule): tokens of step k get ``A * s_k`` when the completion's
  group-normalised advantage ``A`` is positive, else ``A * (1 - s_k)``: a right answer credits
  its good steps most, a wrong answer blames its bad steps most.
- ``additive``: ``A + c * (s_k - mean_g) / (std_g + 1e-4)``, the step score normalised over all
  steps of the completion's group ``g`` (the ``num_generations`` completions of one prompt).

Step weights ``w_k`` (:func:`step_weights`) scale the step term and are normalised to mean 1 over
each completion's steps, so they move credit between steps without changing its total.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..prm.aggregation import entropy_weights

__all__ = ["PROCESS_ADVANTAGES", "STEP_WEIGHTINGS", "process_advantages", "step_token_spans", "step_weights"]

PROCESS_ADVANTAGES = ("rewardsql", "additive", "none")
STEP_WEIGHTINGS = ("none", "prm_entropy", "policy_entropy")


def step_token_spans(token_ends: Sequence[int], step_ends: Sequence[int]) -> list[tuple[int, int]]:
    """Token ranges ``[a, b)`` of each step, from each token's end offset and each step's end offset.

    A token belongs to the first step that ends after the token starts; tokens after the last
    step (a trailing explanation, the end-of-text token) belong to the last step, tokens before
    the first step (a code fence) to the first, so every token is credited.

    >>> step_token_spans([4, 9, 12, 20, 25], [10, 22])
    [(0, 3), (3, 5)]
    """
    spans, start, k = [], 0, 0
    token_starts = [0, *token_ends[:-1]]
    for j, begin in enumerate(token_starts):
        while k < len(step_ends) - 1 and begin >= step_ends[k]:
            spans.append((start, j))
            start, k = j, k + 1
    spans.append((start, len(token_ends)))
    spans += [(len(token_ends), len(token_ends))] * (len(step_ends) - len(spans))
    return spans


def step_weights(method: str, step_scores: Sequence[float], token_entropies: Sequence[float] | None = None, spans=None) -> list[float]:
    """Weights of a completion's steps, normalised to mean 1.

    ``prm_entropy``: ``1 - H(s_k)/ln 2`` (confident PRM verdicts weigh more); ``policy_entropy``:
    the mean policy entropy over the step's tokens (steps where the policy hesitated weigh more).
    All weights zero falls back to equal weights.

    >>> step_weights("prm_entropy", [0.5, 1.0])
    [0.0, 2.0]
    >>> step_weights("policy_entropy", [0.9, 0.9], token_entropies=[1.0, 1.0, 3.0], spans=[(0, 2), (2, 3)])
    [0.5, 1.5]
    """
    if method == "none" or not step_scores:
        return [1.0] * len(step_scores)
    if method == "prm_entropy":
        raw = entropy_weights(step_scores)
    elif method == "policy_entropy":
        raw = [sum(token_entropies[a:b]) / (b - a) if b > a else 0.0 for a, b in spans]
    else:
        raise ValueError(f"unknown step weighting {method!r}: choose one of {', '.join(STEP_WEIGHTINGS)}")
    total = sum(raw)
    if total <= 0:
        return [1.0] * len(step_scores)
    return [w * len(raw) / total for w in raw]


def process_advantages(
    advantages: torch.Tensor,
    completion_mask: torch.Tensor,
    spans: Sequence[Sequence[tuple[int, int]]],
    step_scores: Sequence[Sequence[float]],
    weights: Sequence[Sequence[float]],
    method: str,
    group_stats: Sequence[tuple[float, float]] | None = None,
    coef: float = 1.0,
) -> torch.Tensor:
    """``(B, T)`` advantages from the ``(B,)`` outcome advantages and each completion's step scores.

    ``group_stats[i]`` is the ``(mean, std)`` of all step scores in completion ``i``'s group
    (``additive`` only). A completion with no step keeps ``A`` on every token; padding stays 0.
    """
    if method not in ("rewardsql", "additive"):
        raise ValueError(f"process advantages are 'rewardsql' or 'additive', got {method!r}")
    out = advantages.unsqueeze(1).expand_as(completion_mask).clone().float()
    for i, (row_spans, scores, row_weights) in enumerate(zip(spans, step_scores, weights)):
        a = float(advantages[i])
        for (start, end), s, w in zip(row_spans, scores, row_weights):
            if method == "rewardsql":
                value = a * s * w if a > 0 else a * (1.0 - s) * w
            else:
                mean, std = group_stats[i]
                value = a + coef * w * (s - mean) / (std + 1e-4)
            out[i, start:end] = value
    return out * completion_mask
