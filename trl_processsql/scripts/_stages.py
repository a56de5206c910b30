"""What every training script does alike: model loading options, datasets, the end of a run."""

from __future__ import annotations

from trl import ModelConfig, ScriptArguments

from ..data import load_training_dataset

__all__ = ["finish", "load_splits", "set_model_init_kwargs"]


def set_model_init_kwargs(training_args, model_args: ModelConfig) -> None:
    """Model loading options from ``ModelConfig``; what the recipe put in ``model_init_kwargs`` wins."""
    training_args.model_init_kwargs = {
        "revision": model_args.model_revision,
        "trust_remote_code": training_args.trust_remote_code,
        "dtype": model_args.dtype,
        "attn_implementation": model_args.attn_implementation,
        **(training_args.model_init_kwargs or {}),
    }


def load_splits(script_args: ScriptArguments, training_args, transform=None):
    """``(train, eval)`` splits; eval is None unless evaluation is on and the split exists."""
    dataset = load_training_dataset(script_args.dataset_name, script_args.dataset_config, script_args.dataset_streaming)
    if transform is not None:
        dataset = dataset.map(transform)
    evaluate = training_args.eval_strategy != "no" and script_args.dataset_test_split in dataset
    return dataset[script_args.dataset_train_split], dataset[script_args.dataset_test_split] if evaluate else None


def finish(trainer, script_args: ScriptArguments, training_args, what: str = "model") -> None:
    """Train (resuming if asked), save, push if asked, close the trackers."""
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model(training_args.output_dir)
    trainer.accelerator.print(f"{what} saved to {training_args.output_dir}")
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=script_args.dataset_name)
        trainer.accelerator.print(f"{what} pushed to https://huggingface.co/{trainer.hub_model_id}")
    trainer.end()
