"""Small randomly initialised models and a tokenizer trained locally, for CPU runs with no Hub access.

The quickstart, the smoke recipes and the tests need real transformers models that load, train,
save and generate like any checkpoint, but in seconds on a CPU. :func:`build_tokenizer` trains a
byte-level BPE tokenizer on the bundled Spider sample (SQL, questions, schemas) with a ChatML chat
template; :func:`build_tiny_model` makes a small Qwen2 model (causal LM or token classification)
around it; :func:`save_tiny_checkpoint` writes both as a directory that ``from_pretrained`` reads.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

__all__ = ["CHATML_TEMPLATE", "MODEL_KINDS", "build_tiny_model", "build_tokenizer", "sample_corpus", "save_tiny_checkpoint"]

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
MODEL_KINDS = ("causal-lm", "token-classification")  # a policy, a PRM: what build_tiny_model builds
_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Qwen2's pre-tokenization (contractions, letter runs, single digits, punctuation, newlines, spaces).
# transformers loads a tokenizer saved beside a Qwen2 config as Qwen2's tokenizer class, which
# applies this split whatever the file says: training with it keeps a saved tokenizer identical.
_QWEN2_SPLIT = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""


def sample_corpus() -> list[str]:
    """Questions, SQL and schema prompts of the bundled Spider sample: the text our models read."""
    from ..data import database_path, sample_paths
    from ..prompts import build_prompt

    questions_file, db_dir = sample_paths()
    items = json.loads(Path(questions_file).read_text(encoding="utf-8"))
    prompts = [build_prompt("", database_path(db_dir, db_id)) for db_id in sorted({item["db_id"] for item in items})]
    return prompts + [text for item in items for text in (item["question"], item["query"])]


def build_tokenizer(texts: Iterable[str] | None = None, vocab_size: int = 1024):
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on ``texts`` (default: the bundled sample).

    Any string can be encoded (bytes are the base alphabet); pad and eos are ``<|endoftext|>`` and
    ``<|im_end|>``, and the chat template is ChatML, as in Qwen2.5 and SmolLM2. Text is split as
    Qwen2's tokenizer splits it, so the tokenizer reloads identically beside a Qwen2 model.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_QWEN2_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=_SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(texts) if texts is not None else sample_corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        chat_template=CHATML_TEMPLATE,
        model_max_length=4096,
    )


def build_tiny_model(
    tokenizer,
    kind: str = "causal-lm",
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    seed: int = 0,
):
    """A randomly initialised Qwen2 model sized for ``tokenizer``.

    ``kind`` is ``"causal-lm"`` (a policy) or ``"token-classification"`` (a PRM with one logit
    per token, ``num_labels=1``).
    """
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen2ForTokenClassification

    if kind not in MODEL_KINDS:
        raise ValueError(f"kind must be one of {sorted(MODEL_KINDS)}, got {kind!r}")
    model_class = Qwen2ForCausalLM if kind == "causal-lm" else Qwen2ForTokenClassification
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=max(1, num_heads // 2),
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        num_labels=1,
    )
    torch.manual_seed(seed)
    return model_class(config)


def save_tiny_checkpoint(output_dir: str | os.PathLike, kind: str = "causal-lm", **kwargs) -> Path:
    """Build a tokenizer and a tiny model of ``kind`` and save both to ``output_dir``."""
    tokenizer = build_tokenizer()
    model = build_tiny_model(tokenizer, kind=kind, **kwargs)
    output_dir = Path(output_dir)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return output_dir
