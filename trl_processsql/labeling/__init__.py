"""Step labels for process reward models: execution checks, synthetic mutations, Monte Carlo rollouts."""

from .builder import (
    ROUND_SIZE,
    SOURCES,
    STEPWISE_COLUMN_DOCS,
    STEPWISE_COLUMNS,
    GoldChain,
    gold_chains,
    label_statistics,
    label_steps,
    mutation_rows,
    policy_rows,
    shard_bounds,
    stepwise_card,
    stepwise_dataset,
    stepwise_stats,
    trajectory_rows,
)
from .execution import execution_labels
from .mutations import MUTATIONS, mutate_step
from .rollouts import RolloutLabeler, StepLabels, Trajectory
from .shards import RUN_FILE, LabelRun, merge_shards, read_run, write_run

__all__ = [
    "MUTATIONS",
    "ROUND_SIZE",
    "RUN_FILE",
    "SOURCES",
    "STEPWISE_COLUMNS",
    "STEPWISE_COLUMN_DOCS",
    "GoldChain",
    "LabelRun",
    "RolloutLabeler",
    "StepLabels",
    "Trajectory",
    "execution_labels",
    "gold_chains",
    "label_statistics",
    "label_steps",
    "merge_shards",
    "mutate_step",
    "mutation_rows",
    "policy_rows",
    "read_run",
    "shard_bounds",
    "stepwise_card",
    "stepwise_dataset",
    "stepwise_stats",
    "trajectory_rows",
    "write_run",
]
