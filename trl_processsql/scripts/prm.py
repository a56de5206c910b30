"""Train a process reward model on stepwise-supervision data.

    accelerate launch --config_file recipes/accelerate_configs/single_gpu.yaml \
        -m trl_processsql.scripts.prm --config recipes/Qwen2.5-Coder-7B-Instruct/prm/config.yaml

The dataset (``--dataset_name``: a folder written by ``trl-processsql label-steps`` or a Hub id)
has ``prompt``, ``completions`` and ``labels`` columns.
"""

from trl import ModelConfig, ScriptArguments, TrlParser, get_peft_config

from trl_processsql.data import load_training_dataset
from trl_processsql.prm import ProcessRewardConfig, ProcessRewardTrainer


def main(script_args: ScriptArguments, training_args: ProcessRewardConfig, model_args: ModelConfig):
    training_args.model_init_kwargs = {
        "revision": model_args.model_revision,
        "dtype": model_args.dtype,
        "attn_implementation": model_args.attn_implementation,
        **(training_args.model_init_kwargs or {}),
    }
    dataset = load_training_dataset(script_args.dataset_name, script_args.dataset_config)
    evaluate = training_args.eval_strategy != "no" and script_args.dataset_test_split in dataset
    trainer = ProcessRewardTrainer(
        model=model_args.model_name_or_path,
        args=training_args,
        train_dataset=dataset[script_args.dataset_train_split],
        eval_dataset=dataset[script_args.dataset_test_split] if evaluate else None,
        peft_config=get_peft_config(model_args),
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model(training_args.output_dir)
    trainer.accelerator.print(f"PRM saved to {training_args.output_dir}")
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=script_args.dataset_name)
    trainer.end()


if __name__ == "__main__":
    parser = TrlParser((ScriptArguments, ProcessRewardConfig, ModelConfig))
    main(*parser.parse_args_and_config())
