"""Step labels for process reward models: execution checks, synthetic mutations, Monte Carlo rollouts."""

from .builder import STEPWISE_COLUMNS, GoldChain, gold_chains, label_statistics, mutation_rows, stepwise_dataset
from .execution import execution_labels
from .mutations import MUTATIONS, mutate_step

__all__ = [
    "MUTATIONS",
    "STEPWISE_COLUMNS",
    "GoldChain",
    "execution_labels",
    "gold_chains",
    "label_statistics",
    "mutate_step",
    "mutation_rows",
    "stepwise_dataset",
]
