"""Step labels for process reward models: execution checks, synthetic mutations, Monte Carlo rollouts."""

from .builder import (
    SOURCES,
    STEPWISE_COLUMN_DOCS,
    STEPWISE_COLUMNS,
    GoldChain,
    gold_chains,
    label_statistics,
    label_steps,
    mutation_rows,
    policy_rows,
    stepwise_card,
    stepwise_dataset,
    stepwise_stats,
)
from .execution import execution_labels
from .mutations import MUTATIONS, mutate_step
from .rollouts import RolloutLabeler, StepLabels, Trajectory

__all__ = [
    "MUTATIONS",
    "SOURCES",
    "STEPWISE_COLUMNS",
    "STEPWISE_COLUMN_DOCS",
    "GoldChain",
    "RolloutLabeler",
    "StepLabels",
    "Trajectory",
    "execution_labels",
    "gold_chains",
    "label_statistics",
    "label_steps",
    "mutate_step",
    "mutation_rows",
    "policy_rows",
    "stepwise_card",
    "stepwise_dataset",
    "stepwise_stats",
]
