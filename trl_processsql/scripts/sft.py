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

from trl_processsql.hub import ModelCardMixin
from trl_processsql.scripts._stages import finish, load_splits, set_model_init_kwargs


class CoCTESFTTrainer(ModelCardMixin, SFTTrainer):
    """TRL's SFTTrainer writing our model card (model-index, a usage snippet that runs)."""

    _tag_names = ["trl", "sft", "trl-processsql", "text-to-sql"]
    card_description = "A text-to-SQL policy fine-tuned to answer with a chain of CTEs, one verified step per CTE."


def main(script_args: ScriptArguments, training_args: SFTConfig, model_args: ModelConfig):
    set_model_init_kwargs(training_args, model_args)
    train, evaluation = load_splits(script_args, training_args)
    trainer = CoCTESFTTrainer(
        model=model_args.model_name_or_path,
        args=training_args,
        train_dataset=train,
        eval_dataset=evaluation,
        quantization_config=get_quantization_config(model_args),
        peft_config=get_peft_config(model_args),
    )
    finish(trainer, script_args, training_args)


if __name__ == "__main__":
    parser = TrlParser((ScriptArguments, SFTConfig, ModelConfig))
    main(*parser.parse_args_and_config())
