"""Configuration of the process reward model trainer."""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import RewardConfig

__all__ = ["ProcessRewardConfig"]


@dataclass
class ProcessRewardConfig(RewardConfig):
    r"""
    Configuration class for [`ProcessRewardTrainer`].

    Extends [`~trl.RewardConfig`] with the options of TRL's former `PRMConfig`. Every other field and default is
    `RewardConfig`'s; in particular `max_length` truncates (it does not filter) stepwise examples, as the former
    `PRMTrainer` did.

    Parameters:
        step_separator (`str`, *optional*, defaults to `"\n\n"`):
            Text appended to every step before tokenization; the step's label sits on the last token of step plus
            separator. The default is the chain-of-CTEs step separator (one blank line), which the policy also writes.
        train_on_last_step_only (`bool`, *optional*, defaults to `False`):
            Keep only the label of the last step of each example (an outcome reward model on step-formatted data).
        max_prompt_length (`int` or `None`, *optional*, defaults to `1536`):
            Longest prompt kept, in tokens; longer prompts lose their beginning (the schema) and keep their end
            (the question), so that the steps still fit.
        max_completion_length (`int` or `None`, *optional*, defaults to `None`):
            Longest completion (all steps with separators) kept, in tokens; steps past it get no label.
    """

    max_length: int | None = field(
        default=2048,
        metadata={"help": "Maximum length of prompt plus steps, in tokens; longer examples are truncated."},
    )
    step_separator: str = field(
        default="\n\n",
        metadata={"help": "Text appended to each step; the label sits on its last token."},
    )
    train_on_last_step_only: bool = field(
        default=False,
        metadata={"help": "Only train on the label of the last step."},
    )
    max_prompt_length: int | None = field(
        default=1536,
        metadata={"help": "Maximum prompt length in tokens; longer prompts keep their end."},
    )
    max_completion_length: int | None = field(
        default=None,
        metadata={"help": "Maximum length of the steps in tokens; steps past it get no label."},
    )
