"""Process-supervised GRPO: execution accuracy as the outcome, a PRM's step scores for the credit.

    accelerate launch --config_file recipes/accelerate_configs/zero3.yaml \
        -m trl_processsql.scripts.prm_grpo --config recipes/Qwen2.5-Coder-7B-Instruct/prm_grpo/config.yaml

The dataset (``--dataset_name``: a folder written by ``trl-processsql build-sft`` or a Hub id)
needs ``prompt``, ``db_id`` and ``gold_sql``; ``--db_dir`` is where ``<db_id>/<db_id>.sqlite``
lie on this machine (``sample`` for the bundled sample).
"""

from dataclasses import dataclass, field

from trl import ModelConfig, ScriptArguments, TrlParser, get_peft_config, get_quantization_config

from trl_processsql.data import database_path, neighbour_databases, sample_paths
from trl_processsql.grpo import PRMGRPOConfig, PRMGRPOTrainer
from trl_processsql.rewards import REWARD_FUNCS
from trl_processsql.scripts._stages import finish, load_splits, set_model_init_kwargs


@dataclass
class PRMGRPOScriptArguments(ScriptArguments):
    """
    Parameters:
        db_dir (`str`):
            Folder with `<db_id>/<db_id>.sqlite`, or `sample` for the databases bundled with the package.
        reward_funcs (`list[str]`, *optional*, defaults to `["execution_accuracy"]`):
            Names from `trl_processsql.rewards.REWARD_FUNCS`.
        test_suite_dir (`str`, *optional*):
            Spider test-suite databases (`<dir>/<db_id>/*.sqlite`): execution rewards then count an answer right only
            if it matches the gold on every database of its schema.
    """

    db_dir: str = field(default="sample", metadata={"help": "Folder with <db_id>/<db_id>.sqlite, or 'sample'."})
    reward_funcs: list[str] = field(
        default_factory=lambda: ["execution_accuracy"],
        metadata={"help": f"Reward functions: {', '.join(REWARD_FUNCS)}."},
    )
    test_suite_dir: str | None = field(
        default=None, metadata={"help": "Test-suite databases (<dir>/<db_id>/*.sqlite) the execution rewards also judge on."}
    )


def database_columns(db_dir, test_suite_dir=None):
    """The row transform that adds the columns the rewards read: ``db_path`` and, with a test suite, ``test_suite_paths``."""

    def columns(row: dict) -> dict:
        paths = {"db_path": str(database_path(db_dir, row["db_id"]))}
        if test_suite_dir:
            paths["test_suite_paths"] = [str(p) for p in neighbour_databases(test_suite_dir, row["db_id"])]
        return paths

    return columns


def main(script_args: PRMGRPOScriptArguments, training_args: PRMGRPOConfig, model_args: ModelConfig):
    unknown = [name for name in script_args.reward_funcs if name not in REWARD_FUNCS]
    if unknown:
        raise ValueError(f"unknown reward functions {unknown}: choose from {', '.join(REWARD_FUNCS)}")
    set_model_init_kwargs(training_args, model_args)
    db_dir = sample_paths()[1] if script_args.db_dir == "sample" else script_args.db_dir
    train, evaluation = load_splits(script_args, training_args, database_columns(db_dir, script_args.test_suite_dir))
    trainer = PRMGRPOTrainer(
        model=model_args.model_name_or_path,
        reward_funcs=script_args.reward_funcs,
        args=training_args,
        train_dataset=train,
        eval_dataset=evaluation,
        quantization_config=get_quantization_config(model_args),
        peft_config=get_peft_config(model_args),
    )
    finish(trainer, script_args, training_args, "policy")


if __name__ == "__main__":
    parser = TrlParser((PRMGRPOScriptArguments, PRMGRPOConfig, ModelConfig))
    main(*parser.parse_args_and_config())
