"""Process-supervised GRPO: PRM step scores turned into per-token advantages.

Names load lazily (:mod:`trl_processsql._lazy`).
"""

from .._lazy import lazy_namespace

__all__, __getattr__, __dir__ = lazy_namespace(
    __name__,
    {
        "advantages": (
            "PROCESS_ADVANTAGES", "STEP_WEIGHTINGS", "get_process_advantage", "process_advantage_name",
            "process_advantages", "register_process_advantage", "step_token_spans", "step_weights",
        ),
        "config": ("PRMGRPOConfig",),
        "placement": ("place_prm", "training_dtype", "whole_model_loading"),
        "prm_reward": ("PRMReward",),
        "trainer": ("PRMGRPOTrainer",),
    },
    moved={"pass_rates": "trl_processsql.inference.pass_rates", "within_reach": "trl_processsql.inference.pass_rates"},
)
