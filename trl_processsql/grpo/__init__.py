"""Process-supervised GRPO: PRM step scores turned into per-token advantages."""

from .advantages import (
    PROCESS_ADVANTAGES,
    STEP_WEIGHTINGS,
    get_process_advantage,
    process_advantages,
    register_process_advantage,
    step_token_spans,
    step_weights,
)
from .config import PRMGRPOConfig
from .pass_rates import pass_rates, within_reach
from .prm_reward import PRMReward
from .trainer import PRMGRPOTrainer

__all__ = [
    "PROCESS_ADVANTAGES",
    "STEP_WEIGHTINGS",
    "PRMGRPOConfig",
    "PRMGRPOTrainer",
    "PRMReward",
    "get_process_advantage",
    "pass_rates",
    "process_advantages",
    "register_process_advantage",
    "step_token_spans",
    "step_weights",
    "within_reach",
]
