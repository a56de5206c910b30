"""Process reward models: configuration, trainer, model, and step scoring.

Names load lazily (:mod:`trl_processsql._lazy`): :mod:`.aggregation` and :mod:`.scoring` import no torch.
"""

from .._lazy import lazy_namespace

__all__, __getattr__, __dir__ = lazy_namespace(
    __name__,
    {
        "aggregation": ("AGGREGATIONS", "aggregate", "entropy_weights", "weighted_mean"),
        "config": ("ProcessRewardConfig",),
        "encoding": ("EncodedSteps", "encode_steps", "encode_tagged_steps"),
        "ensemble": ("ENSEMBLE_FILE", "ensemble_members", "save_prm_ensemble", "StepScoreEnsemble"),
        "model": ("ProcessRewardModel",),
        "scoring": ("UNSCORED", "executed_steps", "prm_view_rows", "prompt_text", "score_chains", "score_steps"),
        "trainer": ("DataCollatorForStepwiseSupervision", "ProcessRewardTrainer", "compute_step_metrics"),
    },
)
