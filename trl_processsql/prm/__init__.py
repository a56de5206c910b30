"""Process reward models: configuration, trainer, and scoring."""

from .aggregation import AGGREGATIONS, aggregate
from .config import ProcessRewardConfig
from .model import ProcessRewardModel
from .trainer import DataCollatorForStepwiseSupervision, ProcessRewardTrainer, compute_step_metrics

__all__ = [
    "AGGREGATIONS",
    "DataCollatorForStepwiseSupervision",
    "ProcessRewardConfig",
    "ProcessRewardModel",
    "ProcessRewardTrainer",
    "aggregate",
    "compute_step_metrics",
]
