"""Train a process reward model on stepwise-supervision data.

    accelerate launch --config_file recipes/accelerate_configs/single_gpu.yaml \
        -m trl_processsql.scripts.prm --config recipes/Qwen2.5-Coder-7B-Instruct/prm/config.yaml

The dataset (``--dataset_name``: a folder written by ``trl-processsql label-steps`` or a Hub id)
has ``prompt``, ``completions`` and ``labels`` columns.
"""

from trl import ModelConfig, ScriptArguments, TrlParser, get_peft_config, get_quantization_config

from trl_processsql.scripts._stages import finish, load_splits, set_model_init_kwargs
from trl_processsql.prm import ProcessRewardConfig, ProcessRewardTrainer


def main(script_args: ScriptArguments, training_args: ProcessRewardConfig, model_args: ModelConfig):
    set_model_init_kwargs(training_args, model_args)
    train, evaluation = load_splits(script_args, training_args)
    trainer = ProcessRewardTrainer(
        model=model_args.model_name_or_path,
        args=training_args,
        train_dataset=train,
        eval_dataset=evaluation,
        quantization_config=get_quantization_config(model_args),
        peft_config=get_peft_config(model_args),
    )
    finish(trainer, script_args, training_args, "PRM")


if __name__ == "__main__":
    parser = TrlParser((ScriptArguments, ProcessRewardConfig, ModelConfig))
    main(*parser.parse_args_and_config())
