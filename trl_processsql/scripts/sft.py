"""Fine-tune a causal LM to answer text-to-SQL questions with chains of CTEs (the SFT stage).

    trl-processsql build-sft --questions train.json --db-dir database/ --output outputs/sft-data --eval-fraction 0.05
    accelerate launch --config_file recipes/accelerate_configs/zero3.yaml \
        -m trl_processsql.scripts.sft --config recipes/Qwen2.5-Coder-7B-Instruct/sft/config.yaml

The dataset (``--dataset_name``: a folder written by ``trl-processsql build-sft`` or a Hub id) is
in TRL's prompt-completion format, conversational or plain, so ``trl.SFTTrainer`` computes the loss
on the completion only. Every option of ``SFTConfig`` and ``ModelConfig`` (LoRA included:
``--use_peft``) can be set in the recipe or on the command line.

The prompt style the data was built with (``build-sft --prompt-style``, recorded in the folder's
:data:`DATA_RECORD`) goes into the trained model's config as ``processsql_prompt_style``, so that
``predict``, the demo and evaluation build the prompt the model was trained on. ``--prompt_style``
sets it for data without the record (a Hub dataset).
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from trl import ModelConfig, ScriptArguments, SFTConfig, SFTTrainer, TrlParser, get_peft_config, get_quantization_config

from trl_processsql.hub import ModelCardMixin
from trl_processsql.prompts import PROMPT_STYLES
from trl_processsql.scripts._stages import finish, load_splits, set_model_init_kwargs

DATA_RECORD = "processsql_sft.json"
"""Written by ``trl-processsql build-sft`` beside the saved splits: ``{"prompt_style": ...}``."""


@dataclass
class SFTScriptArguments(ScriptArguments):
    """
    Parameters:
        prompt_style (`str`, *optional*):
            The prompt style of the data (`full`, `tables` or `compact`), recorded in the trained model's config. Defaults
            to the style `trl-processsql build-sft` recorded with the dataset folder, else `full`.
    """

    prompt_style: str | None = field(
        default=None,
        metadata={
            "help": f"Prompt style of the data ({', '.join(PROMPT_STYLES)}), recorded in the model's config for inference; "
            "defaults to the one build-sft recorded with the dataset folder, else full."
        },
    )


def data_prompt_style(script_args: SFTScriptArguments) -> str:
    """``--prompt_style``, else the dataset folder's record, else ``"full"`` (build-sft's default, and a Hub dataset's)."""
    if script_args.prompt_style is not None:
        style, source = script_args.prompt_style, "--prompt_style"
    else:
        record = Path(script_args.dataset_name) / DATA_RECORD
        if not record.is_file():
            return "full"
        style, source = json.loads(record.read_text()).get("prompt_style"), str(record)
    if style not in PROMPT_STYLES:
        raise ValueError(f"unknown prompt style {style!r} (from {source}): choose one of {', '.join(PROMPT_STYLES)}")
    return style


class CoCTESFTTrainer(ModelCardMixin, SFTTrainer):
    """TRL's SFTTrainer writing our model card (model-index, a usage snippet that runs)."""

    _tag_names = ["trl", "sft", "trl-processsql", "text-to-sql"]
    card_description = "A text-to-SQL policy fine-tuned to answer with a chain of CTEs, one verified step per CTE."


def main(script_args: SFTScriptArguments, training_args: SFTConfig, model_args: ModelConfig):
    prompt_style = data_prompt_style(script_args)
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
    trainer.model.config.processsql_prompt_style = prompt_style
    finish(trainer, script_args, training_args)


if __name__ == "__main__":
    parser = TrlParser((SFTScriptArguments, SFTConfig, ModelConfig))
    main(*parser.parse_args_and_config())
