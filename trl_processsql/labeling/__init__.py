"""Step labels for process reward models: execution checks, synthetic mutations, Monte Carlo rollouts.

Names load lazily (:mod:`trl_processsql._lazy`).
"""

from .._lazy import lazy_namespace

__all__, __getattr__, __dir__ = lazy_namespace(
    __name__,
    {
        "builder": (
            "ROUND_SIZE", "SOURCES", "STEPWISE_COLUMN_DOCS", "STEPWISE_COLUMNS", "GoldChain", "gold_chains",
            "label_statistics", "label_steps", "mutation_rows", "policy_rows", "shard_bounds", "stepwise_card",
            "stepwise_dataset", "stepwise_stats", "trajectory_rows",
        ),
        "execution": ("execution_labels",),
        "mutations": ("MUTATIONS", "mutate_step"),
        "rollouts": ("RolloutLabeler", "StepLabels", "Trajectory"),
        "shards": ("RUN_FILE", "LabelRun", "merge_shards", "read_run", "write_run"),
    },
)
