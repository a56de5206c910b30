"""Configuration of process-supervised GRPO."""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import GRPOConfig

from ..prm.aggregation import AGGREGATIONS
from .advantages import STEP_WEIGHTINGS, get_process_advantage, process_advantage_name

__all__ = ["PRMGRPOConfig"]


@dataclass
class PRMGRPOConfig(GRPOConfig):
    r"""
    Configuration class for [`PRMGRPOTrainer`].

    Extends [`~trl.GRPOConfig`] (every field and default is GRPO's) with how the process reward model's step scores
    shape the policy gradient.

    Parameters:
        prm_model_name_or_path (`str` or `None`, *optional*, defaults to `None`):
            PRM to load with [`ProcessRewardModel.from_pretrained`] when the trainer is not given one.
        process_advantage (`str`, *optional*, defaults to `"rewardsql"`):
            How step scores become per-token advantages: the name of a rule registered with
            [`~trl_processsql.grpo.register_process_advantage`] or `"package.module:function"` (a rule that has
            no name goes to the trainer's `process_advantage=`). Built in: `"rewardsql"`: tokens of step k get `A * s_k` if the outcome advantage
            `A > 0`, else `A * (1 - s_k)` (the paper's rule; completions with `A = 0` are not scored at all).
            `"additive"`: `A + process_coef * (s_k - mean) / std`, step scores normalised over the prompt's group.
            `"min_form"`: as `"additive"` with `s_k` replaced by `min(s_k, ..., s_K)` (PURE's min-form credit).
            `"none"`: no per-token advantage; the PRM's trajectory score is added as one more sequence-level
            reward function (placed last: extend `reward_weights` accordingly).
        step_weighting (`str`, *optional*, defaults to `"none"`):
            Weights on the step term, normalised to mean 1 per completion: `"prm_entropy"` (`1 - H(s_k)/ln 2`,
            confident verdicts weigh more) or `"policy_entropy"` (mean policy entropy over the step's tokens, one
            extra forward pass; steps where the policy hesitated weigh more).
        process_coef (`float`, *optional*, defaults to `1.0`):
            Scale of the step term in `"additive"` and `"min_form"` (passed to every rule).
        prm_aggregation (`str`, *optional*, defaults to `"min"`):
            Trajectory score of the PRM reward in `"none"` (`min`, `mean`, `prod`, `last`, `entropy`).
        prm_batch_size (`int`, *optional*, defaults to `16`):
            Trajectories per PRM forward pass.
        prm_max_length (`int` or `None`, *optional*, defaults to `None`):
            Token limit of PRM inputs; `None` uses what the PRM was trained with.
        sql_timeout (`float`, *optional*, defaults to `10.0`):
            Seconds each query may run (step views and the SQL rewards) in the executor the trainer starts.
    """

    prm_model_name_or_path: str | None = field(default=None, metadata={"help": "Path or Hub id of the PRM."})
    process_advantage: str = field(
        default="rewardsql",
        metadata={"help": "How step scores shape advantages: a registered rule (rewardsql, additive, min_form, none) or 'package.module:function'."},
    )
    step_weighting: str = field(
        default="none", metadata={"help": "Weights of the step term.", "choices": list(STEP_WEIGHTINGS)}
    )
    process_coef: float = field(default=1.0, metadata={"help": "Scale of the step term (additive, min_form)."})
    prm_aggregation: str = field(
        default="min", metadata={"help": "PRM trajectory score in 'none'.", "choices": list(AGGREGATIONS)}
    )
    prm_batch_size: int = field(default=16, metadata={"help": "Trajectories per PRM forward pass."})
    prm_max_length: int | None = field(default=None, metadata={"help": "Token limit of PRM inputs."})
    sql_timeout: float = field(default=10.0, metadata={"help": "Seconds each query may run (step views, SQL rewards)."})

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.process_advantage, str):
            raise TypeError(
                "process_advantage holds a rule's name: register the rule, name it "
                f"({process_advantage_name(self.process_advantage)!r}), or pass it to PRMGRPOTrainer(process_advantage=...)"
            )
        get_process_advantage(self.process_advantage)  # an unknown name fails here, not at the first step
        for name, allowed in (
            ("step_weighting", STEP_WEIGHTINGS),
            ("prm_aggregation", tuple(AGGREGATIONS)),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
