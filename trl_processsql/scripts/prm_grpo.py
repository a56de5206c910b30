"""Process-supervised GRPO: execution accuracy as the outcome, a PRM's step scores for the credit.

    accelerate launch --config_file recipes/accelerate_configs/zero3.yaml \
        -m trl_processsql.scripts.prm_grpo --config recipes/Qwen2.5-Coder-7B-Instruct/prm_grpo/config.yaml

The dataset (``--dataset_name``: a folder written by ``trl-processsql build-sft`` or a Hub id)
needs ``prompt``, ``db_id`` and ``gold_sql``; ``--db_dir`` is where ``<db_id>/<db_id>.sqlite``
lie on this machine (``sample`` for the bundled sample).
"""

from dataclasses import dataclass, field

from trl import ModelConfig, ScriptArguments, TrlParser, get_peft_config

from trl_processsql.data import database_path, load_training_dataset, sample_paths
from trl_processsql.grpo import PRMGRPOConfig, PRMGRPOTrainer
from trl_processsql.rewards import REWARD_FUNCS


@dataclass
class PRMGRPOScriptArguments(ScriptArguments):
    """
    Parameters:
        db_dir (`str`):
            Folder with `<db_id>/<db_id>.sqlite`, or `sample` for the databases bundled with the package.
        reward_funcs (`list[str]`, *optional*, defaults to `["execution_accuracy"]`):
            Names from `trl_processsql.rewards.REWARD_FUNCS`.
    """

    db_dir: str = field(default="sample", metadata={"help": "Folder with <db_id>/<db_id>.sqlite, or 'sample'."})
    reward_funcs: list[str] = field(
        default_factory=lambda: ["execution_accuracy"],
        metadata={"help": f"Reward functions: {', '.join(REWARD_FUNCS)}."},
    )


def main(script_args: PRMGRPOScriptArguments, training_args: PRMGRPOConfig, model_args: ModelConfig):
    unknown = [name for name in script_args.reward_funcs if name not in REWARD_FUNCS]
    if unknown:
        raise ValueError(f"unknown reward functions {unknown}: choose from {', '.join(REWARD_FUNCS)}")
    training_args.model_init_kwargs = {
        "revision": model_args.model_revision,
        "dtype": model_args.dtype,
        "attn_implementation": model_args.attn_implementation,
        **(training_args.model_init_kwargs or {}),
    }
    db_dir = sample_paths()[1] if script_args.db_dir == "sample" else script_args.db_dir
    dataset = load_training_dataset(script_args.dataset_name, script_args.dataset_config)
    dataset = dataset.map(lambda row: {"db_path": str(database_path(db_dir, row["db_id"]))})
    evaluate = training_args.eval_strategy != "no" and script_args.dataset_test_split in dataset
    trainer = PRMGRPOTrainer(
        model=model_args.model_name_or_path,
        reward_funcs=[REWARD_FUNCS[name] for name in script_args.reward_funcs],
        args=training_args,
        train_dataset=dataset[script_args.dataset_train_split],
        eval_dataset=dataset[script_args.dataset_test_split] if evaluate else None,
        peft_config=get_peft_config(model_args),
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model(training_args.output_dir)
    trainer.accelerator.print(f"policy saved to {training_args.output_dir}")
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=script_args.dataset_name)
    trainer.end()


if __name__ == "__main__":
    parser = TrlParser((PRMGRPOScriptArguments, PRMGRPOConfig, ModelConfig))
    main(*parser.parse_args_and_config())
