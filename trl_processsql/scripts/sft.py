"""Fine-tune a causal LM to answer text-to-SQL questions with chains of CTEs (the SFT stage).

    trl-processsql build-sft --questions train.json --db-dir database/ --output outputs/sft-data --eval-fraction 0.05
    accelerate launch --config_file recipes/accelerate_configs/zero3.yaml \
        -m trl_processsql.scripts.sft --config recipes/Qwen2.5-Coder-7B-Instruct/sft/config.yaml

The dataset (``--dataset_name``: a folder written by ``trl-processsql build-sft`` or a Hub id) is
in TRL's prompt-completion format, conversational or plain, so ``trl.SFTTrainer`` computes the loss
on the completion only. Every option of ``SFTConfig`` and ``ModelConfig`` (LoRA included:
``--use_peft``) can be set in the recipe or on the command line.
"""

from trl import ModelConfig, ScriptArguments, SFTConfig, SFTTrainer, TrlParser, get_peft_config, get_quantization_config

from trl_processsql.data import load_training_dataset


def main(script_args: ScriptArguments, training_args: SFTConfig, model_args: ModelConfig):
    training_args.model_init_kwargs = {
        "revision": model_args.model_revision,
        "trust_remote_code": training_args.trust_remote_code,
        "dtype": model_args.dtype,
        "attn_implementation": model_args.attn_implementation,
        **(training_args.model_init_kwargs or {}),
    }
    dataset = load_training_dataset(script_args.dataset_name, script_args.dataset_config, script_args.dataset_streaming)
    evaluate = training_args.eval_strategy != "no" and script_args.dataset_test_split in dataset
    trainer = SFTTrainer(
        model=model_args.model_name_or_path,
        args=training_args,
        train_dataset=dataset[script_args.dataset_train_split],
        eval_dataset=dataset[script_args.dataset_test_split] if evaluate else None,
        quantization_config=get_quantization_config(model_args),
        peft_config=get_peft_config(model_args),
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model(training_args.output_dir)
    trainer.accelerator.print(f"model saved to {training_args.output_dir}")
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=script_args.dataset_name)
        trainer.accelerator.print(f"model pushed to https://huggingface.co/{trainer.hub_model_id}")
    trainer.end()


if __name__ == "__main__":
    parser = TrlParser((ScriptArguments, SFTConfig, ModelConfig))
    main(*parser.parse_args_and_config())
