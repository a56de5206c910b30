"""Named input formats: how the policy reads its prompt and how the PRM reads a chain of steps.

=============  ==========================================  ============================================
format         policy input                                PRM input and score
=============  ==========================================  ============================================
``processsql``  the prompt as one user message, through     a token classifier; each step, then its view
(default)      the model's chat template                   as an SQL comment, steps ending in a blank
                                                           line; ``sigmoid`` at each step's last token
``rewardsql``  the prompt as plain text, then a new line   a causal LM; ``step<result>view</result> и ``
               (no chat template)                          for each step; ``P(" +")`` against
                                                           ``P(" -")`` at each tag ``" и"``
=============  ==========================================  ============================================

``rewardsql`` is how the paper's released checkpoints (the ``Facdbe/RewardSQL-7B`` policy and its
PRM) read their inputs, as its description gives them; ``processsql`` is what this package
trains. In both the prompt's words are :func:`~trl_processsql.prompts.build_prompt`'s and a
view's text is the rendering of its rows by :mod:`trl_processsql.sql.render`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from .cocte import StepResult, prm_completions
from .prompts import completion_prompt

__all__ = ["FORMATS", "FormatProfile", "get_format"]


@dataclass(frozen=True)
class FormatProfile:
    """One way of writing the policy's and the PRM's inputs.

    Parameters:
        name (`str`): the name ``--format`` takes.
        chat_template (`bool`): the policy reads its prompt through the tokenizer's chat template;
            otherwise as plain text (:func:`~trl_processsql.prompts.completion_prompt`).
        step_tag (`str` or `None`): for a causal-LM PRM, the text after each step where its verdict
            is read; `None` for a token-classification PRM.
        positive_token, negative_token (`str`): the verdict tokens of a step-tag PRM.
    """

    name: str
    chat_template: bool
    step_tag: str | None = None
    positive_token: str = "+"
    negative_token: str = "-"

    def policy_prompt(self, prompt: str) -> str:
        """The text a plain-text policy continues (only for formats without chat template)."""
        return completion_prompt(prompt)

    def prm_steps(self, views: Iterable[StepResult]) -> list[str]:
        """Each step with its executed view, as this format's PRM reads it.

        >>> from trl_processsql.cocte import Step
        >>> from trl_processsql.sql import ExecutionResult
        >>> view = StepResult(Step(None, "SELECT 1", 0, 8), "SELECT 1", ExecutionResult("ok", ((1,),), ("1",)), "1 row (1): 1")
        >>> FORMATS["processsql"].prm_steps([view]), FORMATS["rewardsql"].prm_steps([view])
        (['SELECT 1\\n-- 1 row (1): 1'], ['SELECT 1<result>1 row (1): 1</result>'])
        """
        if self.step_tag is None:
            return prm_completions(views)
        return [f"{view.step.text}<result>{view.text}</result>" for view in views]


FORMATS: dict[str, FormatProfile] = {
    "processsql": FormatProfile("processsql", chat_template=True),
    "rewardsql": FormatProfile("rewardsql", chat_template=False, step_tag=" и", positive_token=" +", negative_token=" -"),
}
"""The formats by name; ``processsql`` is the default everywhere."""


def get_format(name: str | FormatProfile) -> FormatProfile:
    """The profile named ``name`` (a profile is returned as it is)."""
    if isinstance(name, FormatProfile):
        return name
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r}: choose one of {', '.join(FORMATS)}") from None
