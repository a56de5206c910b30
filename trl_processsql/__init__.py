"""trl-processsql: process-supervised text-to-SQL on the Hugging Face stack.

Every public name is importable from the package root, as in TRL (``from trl_processsql import
PRMGRPOTrainer``), and loads lazily: importing the package costs nothing, and a name brings in its
submodule (and torch, transformers or trl where that submodule needs them) only when it is used.
"""

import importlib

__version__ = "0.1.0.dev0"

_EXPORTS = {
    "sql": (
        "COMPARISON_MODES", "DatabaseNotFoundError", "ExecutionLimits", "ExecutionResult", "SQLExecutor",
        "SQLITE_HEADER", "SQLiteSandbox", "execute", "first_failure", "get_comparator", "gold_orders_rows", "not_sqlite_reason",
        "results_match"
    ),
    "cocte": (
        "CoCTE", "STEP_SEPARATOR", "Step", "StepResult", "VIEW_ROWS", "execute_steps", "execute_steps_many",
        "extract_sql", "parse_cocte", "prm_completions", "step_view_sql"
    ),
    # the function gold_to_cocte shares its module's name, which the package attribute holds once imported
    "gold_to_cocte": ("CONVERSION_FAILURES", "ConversionResult", "convert_gold_many"),
    "prompts": ("INSTRUCTION", "PROMPT_STYLES", "build_prompt", "completion_prompt", "prompt_messages", "saved_prompt_style"),
    "formats": ("FORMATS", "FormatProfile", "get_format"),
    "data": (
        "QuestionFileError", "SAMPLE_DATA_DIR", "database_path", "load_questions", "load_training_dataset",
        "sample_paths"
    ),
    "sft_data": (
        "SFTBuildReport", "SFT_COLUMNS", "SFT_FORMATS", "SKIP_REASONS", "build_sft_dataset", "sft_card",
        "split_by_database"
    ),
    "labeling": (
        "GoldChain", "LabelRun", "MUTATIONS", "ROUND_SIZE", "RUN_FILE", "RolloutLabeler", "SOURCES", "STEPWISE_COLUMNS", "STEPWISE_COLUMN_DOCS", "StepLabels",
        "Trajectory", "execution_labels", "gold_chains", "label_statistics", "label_steps", "mutate_step",
        "merge_shards", "mutation_rows", "policy_rows", "read_run", "shard_bounds", "stepwise_card", "stepwise_dataset", "stepwise_stats",
        "trajectory_rows", "write_run"
    ),
    "prm": (
        "AGGREGATIONS", "DataCollatorForStepwiseSupervision", "ProcessRewardConfig", "ProcessRewardModel",
        "ProcessRewardTrainer", "StepScoreEnsemble", "aggregate", "compute_step_metrics", "save_prm_ensemble"
    ),
    "rewards": (
        "REWARD_FUNCS", "bird_execution_accuracy_reward", "cocte_format_reward", "completion_text",
        "executable_steps_reward", "execution_accuracy_reward", "get_reward_executor", "set_reward_executor"
    ),
    "grpo": (
        "PRMGRPOConfig", "PRMGRPOTrainer", "PRMReward", "PROCESS_ADVANTAGES", "STEP_WEIGHTINGS", "get_process_advantage",
        "register_process_advantage", "pass_rates", "process_advantages",
        "step_token_spans", "step_weights", "within_reach"
    ),
    "callbacks": ("HISTORY_FILE", "SQLExecutionCallback", "greedy_completions", "score_completions"),
    "inference": (
        "Candidate", "ChatSampler", "Continuation", "ModelLoadError", "NEEDS_PRM", "STRATEGIES", "STRATEGY_NAMES",
        "TransformersSampler", "UNSCORED", "VLLMSampler", "beam_search", "best_of_n", "candidate_records", "greedy",
        "load_prm", "load_sampler", "majority_vote", "predict", "prm_vote", "resolve_device", "result_groups",
        "result_key", "score_candidates", "score_steps", "split_step", "trajectory_score", "write_predictions"
    ),
    "evaluation": (
        "EvaluationReport", "PredictionFileError", "drop_distinct", "evaluate", "evaluate_files", "load_predictions",
        "print_report"
    ),
    "hub": (
        "BASE_TAGS", "CARDS_DIR", "ModelCardMixin", "SPIDER_SOURCE", "dataset_card", "model_card", "push_dataset",
        "size_category"
    ),
    "demo": (
        "DemoError", "Explanation", "StepView", "explain_sql", "prepare_upload", "sample_database", "sample_databases"
    ),
    "cpu_scale": (
        "PRETRAINED_PRM_ARGS", "ProgressBarCallback", "SmallModelSettings", "cpu_training_args", "quiet_progress", "small_policy_trainer", "split_by_question",
        "train_small_policy", "train_small_prm",
        "with_both_prompt_styles"
    ),
    "quickstart": ("QuickstartSettings", "run_quickstart"),
    "base_models": ("BASE_MODELS", "BaseModelError", "PackagedModel", "base_model_path", "resolve_base_model"),
    "precision": ("cpu_autocast", "cpu_has_bf16"),
    "sweep": ("JudgedPool", "SweepResult", "budgets", "judge_pools", "load_records", "plot_sweep"),
    "tiny": ("CHATML_TEMPLATE", "build_tiny_model", "build_tokenizer", "sample_corpus", "save_tiny_checkpoint"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = ["__version__", *sorted(_MODULE_OF)]


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
