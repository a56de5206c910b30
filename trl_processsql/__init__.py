"""trl-processsql: process-supervised text-to-SQL on the Hugging Face stack.

The package root holds what a TRL user reaches for, as TRL's does (``from trl_processsql import
PRMGRPOTrainer``): the configs and trainers, the PRM, the reward functions and the callback, the
executor, and the few functions the README's examples call. Everything else imports from its
subpackage (``trl_processsql.sql``, ``.labeling``, ``.inference``, ...). Names load lazily
(:mod:`trl_processsql._lazy`): importing the package costs nothing, and a name brings in its
submodule (and torch, transformers or trl where that submodule needs them) only when it is used.
"""

from ._lazy import lazy_namespace

__version__ = "0.1.0.dev0"

EXPORTS = {
    "sql": ("ExecutionLimits", "SQLExecutor", "judge", "results_match"),
    "cocte": ("CoCTE", "execute_steps", "parse_cocte"),
    "data": ("database_path", "load_questions", "load_training_dataset", "sample_paths"),
    "prompts": ("build_prompt", "prompt_messages"),
    "gold_to_cocte": ("convert_gold_many",),
    "sft_data": ("build_sft_dataset",),
    "labeling": ("RolloutLabeler", "label_steps", "stepwise_dataset"),
    "prm": ("DataCollatorForStepwiseSupervision", "ProcessRewardConfig", "ProcessRewardModel", "ProcessRewardTrainer"),
    "rewards": (
        "REWARD_FUNCS", "BirdExecutionAccuracyReward", "ExecutableStepsReward", "ExecutionAccuracyReward",
        "bird_execution_accuracy_reward", "cocte_format_reward", "executable_steps_reward", "execution_accuracy_reward",
    ),
    "grpo": ("PRMGRPOConfig", "PRMGRPOTrainer", "PRMReward", "register_process_advantage"),
    "callbacks": ("SQLExecutionCallback",),
    "inference": (
        "TransformersSampler", "VLLMSampler", "beam_search", "best_of_n", "load_prm", "load_sampler", "pass_rates",
        "predict", "score_candidates", "within_reach", "write_predictions",
    ),
    "evaluation": ("EvaluationReport", "evaluate", "evaluate_files"),
    "demo": ("explain_sql",),
    "base_models": ("base_model_path",),
    "quickstart": ("QuickstartSettings", "run_quickstart"),
    "small_models": ("save_tiny_checkpoint",),
}

MOVED = {  # root names of earlier releases, now imported from their subpackage; they go in the next release
    "base_models": ("BASE_MODELS", "BaseModelError", "PackagedModel", "resolve_base_model"),
    "callbacks": ("HISTORY_FILE", "greedy_completions", "score_completions"),
    "cocte": (
        "STEP_SEPARATOR", "Step", "StepResult", "VIEW_ROWS", "execute_steps_many", "extract_sql", "prm_completions",
        "step_view_sql",
    ),
    "data": ("QuestionFileError", "SAMPLE_DATA_DIR"),
    "demo": ("DemoError", "Explanation", "StepView", "prepare_upload", "sample_database", "sample_databases"),
    "evaluation": ("PredictionFileError", "drop_distinct", "load_predictions", "print_report"),
    "formats": ("FORMATS", "FormatProfile", "get_format"),
    "gold_to_cocte": ("CONVERSION_FAILURES", "ConversionResult"),
    "grpo": (
        "PROCESS_ADVANTAGES", "STEP_WEIGHTINGS", "get_process_advantage", "process_advantages", "step_token_spans",
        "step_weights",
    ),
    "hub": (
        "BASE_TAGS", "CARDS_DIR", "ModelCardMixin", "SPIDER_SOURCE", "dataset_card", "model_card", "push_dataset",
        "size_category",
    ),
    "inference": (
        "Candidate", "ChatSampler", "Continuation", "ModelLoadError", "NEEDS_PRM", "STRATEGIES", "STRATEGY_NAMES",
        "candidate_records", "greedy", "majority_vote", "prm_vote", "resolve_device", "result_groups",
        "split_step", "trajectory_score",
    ),
    "labeling": (
        "GoldChain", "LabelRun", "MUTATIONS", "ROUND_SIZE", "RUN_FILE", "SOURCES", "STEPWISE_COLUMNS",
        "STEPWISE_COLUMN_DOCS", "StepLabels", "Trajectory", "execution_labels", "gold_chains", "label_statistics",
        "merge_shards", "mutate_step", "mutation_rows", "policy_rows", "read_run", "shard_bounds", "stepwise_card",
        "stepwise_stats", "trajectory_rows", "write_run",
    ),
    "precision": ("cpu_autocast", "cpu_has_bf16"),
    "prm": ("AGGREGATIONS", "StepScoreEnsemble", "aggregate", "compute_step_metrics", "save_prm_ensemble"),
    "prm.scoring": ("UNSCORED", "score_steps"),
    "prompts": ("INSTRUCTION", "PROMPT_STYLES", "completion_prompt", "saved_prompt_style"),
    "rewards": ("completion_text", "get_reward_executor", "set_reward_executor"),
    "sft_data": ("SFTBuildReport", "SFT_COLUMNS", "SFT_FORMATS", "SKIP_REASONS", "sft_card", "split_by_database"),
    "small_models": (
        "CHATML_TEMPLATE", "PRETRAINED_PRM_ARGS", "ProgressBarCallback", "SmallModelSettings", "build_tiny_model",
        "build_tokenizer", "cpu_training_args", "quiet_progress", "sample_corpus", "small_policy_trainer",
        "split_by_question", "train_small_policy", "train_small_prm", "with_both_prompt_styles",
    ),
    "sql": (
        "COMPARISON_MODES", "DatabaseNotFoundError", "ExecutionResult", "SQLITE_HEADER", "SQLiteSandbox", "execute",
        "first_failure", "get_comparator", "gold_orders_rows", "not_sqlite_reason", "result_key",
    ),
    "sweep": ("JudgedPool", "SweepResult", "budgets", "judge_pools", "load_records", "plot_sweep"),
}

_names, __getattr__, __dir__ = lazy_namespace(
    __name__, EXPORTS, moved={name: f"{__name__}.{module}" for module, names in MOVED.items() for name in names}
)
__all__ = ["__version__", *_names]
del _names
