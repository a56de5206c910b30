"""Process reward models: configuration, trainer, and scoring."""

from .aggregation import AGGREGATIONS, aggregate
from .config import ProcessRewardConfig
from .ensemble import StepScoreEnsemble, save_prm_ensemble
from .model import ProcessRewardModel
from .trainer import DataCollatorForStepwiseSupervision, ProcessRewardTrainer, compute_step_metrics

__all__ = [
    "AGGREGATIONS",
    "DataCollatorForStepwiseSupervision",
    "ProcessRewardConfig",
    "ProcessRewardModel",
    "ProcessRewardTrainer",
    "StepScoreEnsemble",
    "aggregate",
    "compute_step_metrics",
    "save_prm_ensemble",
]
