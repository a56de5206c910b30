"""Small models on a CPU, in one place: building tiny random ones, and training small or pretrained ones.

- :mod:`.models`: a byte-level BPE tokenizer trained on the sample data and small random Qwen2-shaped
  models (causal LM or token classification), for tests and runs with no download;
- :mod:`.training`: the settings and trainers that fit a policy and a PRM in minutes on a few cores
  (micro-batches of similar length, bf16 autocast where the CPU has bf16 matrix units), from scratch
  or from a pretrained checkpoint.

Names load lazily (:mod:`trl_processsql._lazy`).
"""

from .._lazy import lazy_namespace

__all__, __getattr__, __dir__ = lazy_namespace(
    __name__,
    {
        "models": (
            "CHATML_TEMPLATE", "MODEL_KINDS", "build_tiny_model", "build_tokenizer", "sample_corpus", "save_tiny_checkpoint",
        ),
        "training": (
            "ProgressBarCallback", "PRETRAINED_PRM_ARGS", "SmallModelSettings", "cpu_training_args",
            "quiet_progress", "small_policy_trainer", "split_by_question", "train_small_policy", "train_small_prm",
            "with_both_prompt_styles",
        ),
    },
)
