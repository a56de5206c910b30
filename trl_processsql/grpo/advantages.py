"""Per-token advantages from step scores: which tokens of a completion get the credit.

A *process-advantage rule* is any callable taking these keyword arguments (and ``**kwargs``, so
that rules keep working when more are passed), for the ``B`` completions of ``T`` tokens that
one process holds:

- ``advantages``: ``(B,)`` GRPO's outcome advantages (group-normalised rewards);
- ``completion_mask``: ``(B, T)``, 1 on completion tokens;
- ``step_spans``: for each completion, the token range ``[a, b)`` of each step;
- ``step_scores``: for each completion, the PRM's score of each step, in ``[0, 1]``;
- ``step_weights``: for each completion, a weight per step, mean 1 (``step_weighting``);
- ``group_ids``: ``(B,)`` the group (prompt) of each completion, numbered over all processes;
- ``group_step_scores``: for each completion, the step scores of every completion of its group,
  all processes included (itself too);
- ``process_coef``: the config's ``process_coef``, the scale of a rule's step term.

It returns the ``(B, T)`` per-token advantages; the trainer zeroes padding. Register one with
:func:`register_process_advantage` to name it in a config or a recipe, or pass the callable.
Step weights (:func:`step_weights`) scale the step term and are normalised to mean 1 over each
completion's steps, so they move credit between steps without changing its total.
"""

from __future__ import annotations

import importlib
from typing import Callable, Sequence

import torch

from ..prm.aggregation import entropy_weights

__all__ = [
    "PROCESS_ADVANTAGES",
    "STEP_WEIGHTINGS",
    "get_process_advantage",
    "process_advantage_name",
    "process_advantages",
    "register_process_advantage",
    "step_token_spans",
    "step_weights",
]

ProcessAdvantageRule = Callable[..., torch.Tensor]

PROCESS_ADVANTAGES: dict[str, ProcessAdvantageRule] = {}
"""The registered process-advantage rules by name (see :func:`register_process_advantage`)."""

STEP_WEIGHTINGS = ("none", "prm_entropy", "policy_entropy")
_BUILT_IN = ("rewardsql", "additive", "none", "min_form")


def register_process_advantage(name: str, *, outcome_gated: bool = False) -> Callable[[ProcessAdvantageRule], ProcessAdvantageRule]:
    """Decorator registering a process-advantage rule under ``name`` (``process_advantage: name`` in a recipe).

    ``outcome_gated=True`` promises that a completion whose outcome advantage is exactly 0 gets 0 on
    every token whatever its steps, and that no completion's advantages read another's steps; the
    trainer then neither executes nor scores the steps of such completions (they arrive with no
    step). A rule passed as a plain callable makes the same promise with ``rule.outcome_gated = True``.
    Registering a name again replaces the rule, except for the built-in ones.

    >>> @register_process_advantage("final_step_only", outcome_gated=True)
    ... def final_step_only(advantages, completion_mask, step_spans, **kwargs):
    ...     out = torch.zeros(completion_mask.shape)
    ...     for i, spans in enumerate(step_spans):
    ...         if spans:
    ...             out[i, spans[-1][0] : spans[-1][1]] = advantages[i]
    ...     return out
    >>> get_process_advantage("final_step_only") is final_step_only
    True
    """

    def register(rule: ProcessAdvantageRule) -> ProcessAdvantageRule:
        if name in _BUILT_IN and name in PROCESS_ADVANTAGES:
            raise ValueError(f"{name!r} is a built-in process advantage: register yours under another name")
        rule.outcome_gated = outcome_gated
        PROCESS_ADVANTAGES[name] = rule
        return rule

    return register


def get_process_advantage(rule: str | ProcessAdvantageRule) -> ProcessAdvantageRule:
    """The rule itself: a callable as it is, a registered name, or ``"package.module:function"`` imported.

    >>> get_process_advantage("rewardsql").__name__
    'rewardsql_advantages'
    """
    if callable(rule):
        return rule
    if rule in PROCESS_ADVANTAGES:
        return PROCESS_ADVANTAGES[rule]
    if isinstance(rule, str) and ":" in rule:
        module, _, attribute = rule.partition(":")
        try:
            found = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as error:
            raise ValueError(f"process advantage {rule!r} cannot be imported: {error}") from error
        if callable(found):
            return found
    raise ValueError(
        f"unknown process advantage {rule!r}: choose one of {', '.join(PROCESS_ADVANTAGES)}, "
        "register one with register_process_advantage, or give 'package.module:function'"
    )


def process_advantage_name(rule: str | ProcessAdvantageRule) -> str:
    """What finds ``rule`` again in a config: its registered name, else ``"module:qualified_name"``.

    >>> process_advantage_name(get_process_advantage("additive"))
    'additive'
    """
    if isinstance(rule, str):
        return rule
    names = [name for name, registered in PROCESS_ADVANTAGES.items() if registered is rule]
    return names[0] if names else f"{rule.__module__}:{getattr(rule, '__qualname__', type(rule).__qualname__)}"


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


def process_advantages(rule: str | ProcessAdvantageRule, completion_mask: torch.Tensor, **inputs) -> torch.Tensor:
    """Apply ``rule`` to one batch and check what it returns: ``(B, T)`` float advantages, padding zeroed.

    ``inputs`` are the rule's other keyword arguments (see the module's docstring).
    """
    out = get_process_advantage(rule)(completion_mask=completion_mask, **inputs)
    name = getattr(rule, "__name__", rule)
    if not isinstance(out, torch.Tensor) or out.shape != completion_mask.shape or not out.is_floating_point():
        described = f"{tuple(out.shape)} {out.dtype}" if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"process advantage {name!r} must return a float tensor of shape {tuple(completion_mask.shape)}, got {described}")
    return out.to(completion_mask.device) * completion_mask


# -- the rules that come with the trainer -------------------------------------------------------


def _paint(advantages: torch.Tensor, completion_mask: torch.Tensor, step_spans, values) -> torch.Tensor:
    """``(B, T)`` of each completion's outcome advantage, each step's tokens overwritten by its value."""
    out = advantages.float().unsqueeze(1).expand(completion_mask.shape).clone()
    for i, (spans, row) in enumerate(zip(step_spans, values)):
        for (start, end), value in zip(spans, row):
            out[i, start:end] = value
    return out


def _normalised(value: float, group: Sequence[float]) -> float:
    """``value`` standardised over ``group`` (mean 0, std 1; a constant group gives a step term of 0)."""
    values = torch.tensor(list(group) or [0.0])
    std = values.std(unbiased=False).item() if values.numel() > 1 else 0.0
    return (value - values.mean().item()) / (std + 1e-4)


@register_process_advantage("rewardsql", outcome_gated=True)
def rewardsql_advantages(advantages, completion_mask, step_spans, step_scores, step_weights, **kwargs) -> torch.Tensor:
    """Reward-SQL's rule: tokens of step k get ``A * s_k`` when ``A > 0``, else ``A * (1 - s_k)``.

    A right answer credits its good steps most, a wrong one blames its bad steps most; a completion
    with ``A = 0`` gets 0 (Zhang et al., 2025, "Reward-SQL: Boosting Text-to-SQL via Stepwise
    Reasoning and Process-Supervised Rewards", arXiv:2505.04671).

    >>> rewardsql_advantages(torch.tensor([2.0, -1.0]), torch.ones(2, 2), [[(0, 1), (1, 2)]] * 2,
    ...                      [[0.9, 0.2]] * 2, [[1.0, 1.0]] * 2)
    tensor([[ 1.8000,  0.4000],
            [-0.1000, -0.8000]])
    """
    values = []
    for a, scores, weights in zip(advantages.tolist(), step_scores, step_weights):
        values.append([a * s * w if a > 0 else a * (1.0 - s) * w for s, w in zip(scores, weights)])
    return _paint(advantages, completion_mask, step_spans, values)


@register_process_advantage("additive")
def additive_advantages(
    advantages, completion_mask, step_spans, step_scores, step_weights, group_step_scores, process_coef=1.0, **kwargs
) -> torch.Tensor:
    """``A + process_coef * w_k * (s_k - mean) / std``, the step score standardised over all steps of the group.

    >>> additive_advantages(torch.tensor([1.0]), torch.ones(1, 2), [[(0, 1), (1, 2)]], [[1.0, 0.0]], [[1.0, 1.0]],
    ...                     group_step_scores=[[[1.0, 0.0]]], process_coef=0.5)
    tensor([[1.4999, 0.5001]])
    """
    values = []
    for a, scores, weights, group in zip(advantages.tolist(), step_scores, step_weights, group_step_scores):
        pooled = [s for row in group for s in row]
        values.append([a + process_coef * w * _normalised(s, pooled) for s, w in zip(scores, weights)])
    return _paint(advantages, completion_mask, step_spans, values)


@register_process_advantage("none")
def outcome_only_advantages(advantages, completion_mask, **kwargs) -> torch.Tensor:
    """The outcome advantage on every token: the steps change nothing (the PRM only rewards, as one more reward function).

    >>> outcome_only_advantages(torch.tensor([0.5]), torch.ones(1, 3))
    tensor([[0.5000, 0.5000, 0.5000]])
    """
    return _paint(advantages, completion_mask, [], [])


def suffix_minima(scores: Sequence[float]) -> list[float]:
    """``m_k = min(s_k, ..., s_K)``: the worst step from k on.

    >>> suffix_minima([0.9, 0.2, 0.7])
    [0.2, 0.2, 0.7]
    """
    out, low = [], float("inf")
    for s in reversed(scores):
        low = min(low, s)
        out.append(low)
    return out[::-1]


@register_process_advantage("min_form")
def min_form_advantages(
    advantages, completion_mask, step_spans, step_scores, step_weights, group_step_scores, process_coef=1.0, **kwargs
) -> torch.Tensor:
    """Min-form credit: ``A + process_coef * w_k * (m_k - mean) / std`` with ``m_k = min(s_k, ..., s_K)``.

    After PURE (Cheng et al., 2025, "Stop Summation: Min-Form Credit Assignment Is All Process
    Reward Model Needs for Reasoning", arXiv:2504.15275), whose value of a step is the minimum of
    the process rewards from that step on rather than their discounted sum: a chain is only as
    good as its worst remaining step, so steps up to a wrong one share its blame and a run of
    highly scored steps cannot buy credit. Here ``m_k`` is standardised over every ``m`` of the
    group (GRPO's baseline) and added to the outcome advantage, as in ``additive``.

    >>> min_form_advantages(torch.tensor([0.0]), torch.ones(1, 3), [[(0, 1), (1, 2), (2, 3)]], [[0.9, 0.1, 0.9]],
    ...                     [[1.0, 1.0, 1.0]], group_step_scores=[[[0.9, 0.1, 0.9]]])
    tensor([[-0.7069, -0.7069,  1.4138]])
    """
    values = []
    for a, scores, weights, group in zip(advantages.tolist(), step_scores, step_weights, group_step_scores):
        pooled = [m for row in group for m in suffix_minima(row)]
        values.append([a + process_coef * w * _normalised(m, pooled) for m, w in zip(suffix_minima(scores), weights)])
    return _paint(advantages, completion_mask, step_spans, values)
