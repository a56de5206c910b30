"""Sampling chains of CTEs from a policy: whole answers, or one step at a time for beam search.

A sampler turns conversations (:func:`~trl_processsql.prompts.prompt_messages`) into completions
through the model's chat template, or, in a format without one (``rewardsql``: see
:mod:`trl_processsql.formats`), from the user message as plain text. Two backends share one interface:

- :class:`TransformersSampler`: ``model.generate`` on CPU or GPU, prompts batched with left
  padding, the ``n`` samples of a prompt decoded from one shared prefill of it, finished samples
  dropped from the batch every few tokens (:func:`generate_pruned`);
- :class:`VLLMSampler`: the same on vLLM, used only where ``vllm`` is installed.

:meth:`~ChatSampler.continue_steps` writes the next step after an assistant prefix and stops at
:data:`~trl_processsql.cocte.STEP_SEPARATOR`, which is what step-level beam search extends.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

from ..cocte import STEP_SEPARATOR
from ..formats import FORMATS, FormatProfile, get_format
from ..precision import cpu_inference_model

__all__ = ["ChatSampler", "Continuation", "TransformersSampler", "VLLMSampler", "generate_pruned", "split_step"]


class Continuation(NamedTuple):
    """The next step the model wrote; ``final`` when it ended its answer there instead of at a separator."""

    text: str
    final: bool


def split_step(generated: str) -> Continuation:
    """Cut generated text after its first step (leading blank lines skipped).

    >>> split_step("WITH a AS (SELECT 1),\\n\\nSELECT")
    Continuation(text='WITH a AS (SELECT 1),', final=False)
    >>> split_step("\\n\\nSELECT * FROM a\\n")
    Continuation(text='SELECT * FROM a', final=True)
    """
    body = generated.lstrip()
    end = body.find(STEP_SEPARATOR)
    if end < 0:
        return Continuation(body.rstrip(), True)
    return Continuation(body[:end].rstrip(), False)


class ChatSampler:
    """What every backend shares: the chat template, whole answers, and step continuations.

    Subclasses set ``tokenizer`` (and ``format`` for another input format than the default) and
    implement ``_generate(texts, n, stop)``: ``n`` completions of each prompt text, each stopping
    at the string ``stop`` (kept in the text) when it is given.
    """

    tokenizer = None
    format: FormatProfile = FORMATS["processsql"]

    def prompt_text(self, conversation: Sequence[dict], prefix: str = "") -> str:
        """The conversation ready for the assistant's answer, then ``prefix``: through the chat template,
        or, in a plain-text format, its last message as the format writes it."""
        if not self.format.chat_template:
            return self.format.policy_prompt(conversation[-1]["content"]) + prefix
        return self.tokenizer.apply_chat_template(list(conversation), add_generation_prompt=True, tokenize=False) + prefix

    def sample(
        self, conversations: Sequence[Sequence[dict]], n: int = 1, prefixes: Sequence[str] | None = None
    ) -> list[list[str]]:
        """``n`` completions of each conversation; with ``prefixes``, of the assistant answer that begins with
        ``prefixes[i]`` (the completions come back without it)."""
        if prefixes is not None and len(prefixes) != len(conversations):
            raise ValueError(f"{len(conversations)} conversations for {len(prefixes)} prefixes")
        prefixes = prefixes if prefixes is not None else [""] * len(conversations)
        return self._generate([self.prompt_text(c, p) for c, p in zip(conversations, prefixes)], n, None)

    def reseed(self, seed: int) -> None:
        """Make the next calls' samples a function of ``seed`` and their inputs (torch's generators on every device)."""
        from transformers import set_seed

        set_seed(seed)

    def continue_steps(
        self, conversations: Sequence[Sequence[dict]], prefixes: Sequence[str], k: int = 1
    ) -> list[list[Continuation]]:
        """``k`` next steps after each assistant ``prefix`` (the steps so far, each followed by the separator)."""
        if len(conversations) != len(prefixes):
            raise ValueError(f"{len(conversations)} conversations for {len(prefixes)} prefixes")
        texts = [self.prompt_text(c, p) for c, p in zip(conversations, prefixes)]
        return [[split_step(g) for g in row] for row in self._generate(texts, k, STEP_SEPARATOR)]

    def _generate(self, texts: list[str], n: int, stop: str | None) -> list[list[str]]:
        raise NotImplementedError


class TransformersSampler(ChatSampler):
    """Samples with ``model.generate``: prompts sorted by length and batched, padded on the left.

    Parameters:
        model: a causal LM (on the device it should run on).
        tokenizer: its tokenizer, with a chat template.
        temperature (`float`, defaults to `1.0`): 0 decodes greedily (then ``n`` must be 1).
        top_p (`float`, defaults to `1.0`): nucleus sampling.
        max_new_tokens (`int`, defaults to `512`): tokens per completion.
        batch_size (`int`, defaults to `8`): prompts per ``generate`` call (each with its ``n`` samples).
        progress (`bool`, defaults to `False`): a progress bar over prompts.
        format (`str`, defaults to `"processsql"`): the input format (:data:`~trl_processsql.formats.FORMATS`);
            `"rewardsql"` writes the prompt as plain text, without chat template.
        bf16 (`bool` or `None`, defaults to `False`): on the CPU, generate with a bf16 copy of the weights, made at
            each ``sample`` call so that it follows a model still in training; `None` does where the CPU has bf16
            matrix units (:func:`~trl_processsql.precision.cpu_has_bf16`). No effect on other devices.
        prune_every (`int` or `None`, defaults to `16`): tokens generated between two drops of the finished samples
            from the batch (:func:`generate_pruned`); `None` generates each batch in one ``generate`` call, until its
            longest sample ends.
    """

    def __init__(
        self,
        model,
        tokenizer,
        *,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 512,
        batch_size: int = 8,
        progress: bool = False,
        format: str | FormatProfile = "processsql",
        bf16: bool | None = False,
        prune_every: int | None = 16,
    ):
        if temperature < 0:
            raise ValueError(f"temperature must be at least 0, got {temperature}")
        self.format = get_format(format)
        if self.format.chat_template and getattr(tokenizer, "chat_template", None) is None:
            raise ValueError(
                "the tokenizer has no chat template: the policy reads its prompt as a conversation "
                "(a plain completion model takes format='rewardsql')"
            )
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.temperature, self.top_p, self.max_new_tokens = temperature, top_p, max_new_tokens
        self.batch_size, self.progress, self.bf16, self.prune_every = batch_size, progress, bf16, prune_every
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def _generate(self, texts: list[str], n: int, stop: str | None) -> list[list[str]]:
        import torch
        from tqdm.auto import tqdm
        from transformers import GenerationConfig

        if self.temperature == 0 and n > 1:
            raise ValueError(f"greedy decoding (temperature 0) gives one completion per prompt, not {n}")
        sampling = self.temperature > 0
        config = GenerationConfig(
            max_new_tokens=self.max_new_tokens,
            do_sample=sampling,
            temperature=self.temperature if sampling else None,
            top_p=self.top_p if sampling else None,
            top_k=None,
            pad_token_id=self.pad_token_id,
            eos_token_id=self.model.generation_config.eos_token_id or self.tokenizer.eos_token_id,
            stop_strings=[stop] if stop else None,
        )
        ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
        results: list[list[str]] = [[] for _ in texts]
        model = cpu_inference_model(self.model, self.bf16)
        device = next(model.parameters()).device
        with tqdm(total=len(texts), desc="sampling", unit="prompt", disable=not self.progress) as bar:
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                width = max(len(ids[i]) for i in batch)
                input_ids = torch.full((len(batch), width), self.pad_token_id, dtype=torch.long)
                attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, i in enumerate(batch):
                    input_ids[row, width - len(ids[i]) :] = torch.tensor(ids[i])
                    attention_mask[row, width - len(ids[i]) :] = 1
                with torch.inference_mode():
                    output = generate_pruned(
                        model, input_ids.to(device), attention_mask.to(device), config, n=n, every=self.prune_every,
                        tokenizer=self.tokenizer if stop else None, stop=stop,
                    )
                decoded = self.tokenizer.batch_decode(output, skip_special_tokens=True)
                for row, i in enumerate(batch):
                    results[i] = decoded[row * n : (row + 1) * n]
                bar.update(len(batch))
        return results


def generate_pruned(model, input_ids, attention_mask, config, *, n: int = 1, every: int | None = 16, tokenizer=None, stop=None):
    """``n`` completions of each (left-padded) row of ``input_ids``: their new tokens, row by row, the ``n`` of a prompt together.

    ``model.generate`` decodes a batch until its longest sample ends, so one sample that runs to
    ``max_new_tokens`` keeps every finished one computing padding; on a CPU, where a decoding step
    costs about as much per row as the weights are large, that is most of the cost. Here
    ``generate`` runs ``every`` tokens at a time on the cache of the last call, and the samples
    that ended (an end-of-sequence token, or ``stop`` in their text) leave the batch in between.
    The ``n`` samples of a prompt start from one prefill of it, repeated ``n`` times, instead of
    ``n``. Models whose cache cannot be cut by rows, and ``every=None``, take one ``generate`` call.
    """
    import torch

    width = input_ids.shape[1]
    if every is None or getattr(model, "_is_stateful", False):  # a recurrent state cannot be cut by rows
        config = _with(config, num_return_sequences=n)
        output = model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=config, tokenizer=tokenizer)
        return list(output[:, width:])
    cache_key = _cache_keyword()
    cache = None
    if n > 1 and width > 1:  # the prompt once, all but its last token (the first sampling step reads it)
        positions = (attention_mask[:, :-1].cumsum(-1) - 1).clamp(min=0)
        prefill = model(input_ids=input_ids[:, :-1], attention_mask=attention_mask[:, :-1], position_ids=positions, use_cache=True)
        cache = getattr(prefill, cache_key)
    if cache is not None:
        cache.batch_repeat_interleave(n)
    input_ids, attention_mask = input_ids.repeat_interleave(n, 0), attention_mask.repeat_interleave(n, 0)
    eos = config.eos_token_id
    eos = torch.tensor([eos] if isinstance(eos, int) else list(eos or []), device=input_ids.device)
    rows, finished = torch.arange(len(input_ids)), [None] * len(input_ids)
    left = config.max_new_tokens
    while len(rows):
        step = min(every, left)
        output = model.generate(
            input_ids=input_ids, attention_mask=attention_mask, generation_config=_with(config, max_new_tokens=step),
            tokenizer=tokenizer, return_dict_in_generate=True, **{cache_key: cache},
        )
        sequences, cache = output.sequences, getattr(output, cache_key)
        new = sequences[:, input_ids.shape[1] :]
        left -= step
        done = torch.isin(new, eos).any(dim=1) if len(eos) else torch.zeros(len(rows), dtype=torch.bool)
        if left <= 0 or new.shape[1] < step:  # out of tokens, or generate saw every row end
            done[:] = True
        elif stop is not None:
            texts = tokenizer.batch_decode(sequences[:, width:], skip_special_tokens=True)
            done |= torch.tensor([stop in text for text in texts], device=done.device)
        for row in done.nonzero().flatten().tolist():
            finished[rows[row]] = sequences[row, width:]
        keep = (~done).nonzero().flatten()
        if len(keep) < len(rows) and len(keep):
            cache.batch_select_indices(keep.to(sequences.device))
        attention_mask = torch.cat([attention_mask, torch.ones_like(new)], dim=1)
        rows, input_ids, attention_mask = rows[keep.cpu()], sequences[keep], attention_mask[keep]
    return finished


def _with(config, **settings):
    """A copy of the generation config with ``settings`` changed."""
    import copy

    config = copy.copy(config)
    for name, value in settings.items():
        setattr(config, name, value)
    return config


def _cache_keyword() -> str:
    """The name under which ``generate`` and the models take and return the cache (``past_key_values`` before transformers renamed it)."""
    from transformers.generation.utils import GenerateDecoderOnlyOutput

    return "cache" if "cache" in GenerateDecoderOnlyOutput.__dataclass_fields__ else "past_key_values"


class VLLMSampler(ChatSampler):
    """Samples with vLLM (install ``vllm``); the same interface, settings and formats as :class:`TransformersSampler`.

    Other keyword arguments go to ``vllm.LLM`` (e.g. ``tensor_parallel_size``, ``gpu_memory_utilization``).
    """

    def __init__(
        self,
        model_name_or_path: str,
        *,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 512,
        progress: bool = False,
        format: str | FormatProfile = "processsql",
        **llm_kwargs,
    ):
        self.format = get_format(format)
        try:
            from vllm import LLM
        except ImportError as exc:
            raise ImportError(f"the vLLM backend needs the vllm package (pip install vllm): {exc}") from None
        self.llm = LLM(model=str(model_name_or_path), **llm_kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self.temperature, self.top_p, self.max_new_tokens, self.progress = temperature, top_p, max_new_tokens, progress
        self._next_seed: int | None = None

    def reseed(self, seed: int) -> None:
        """Give every later prompt its own seed, counting up from ``seed``: its samples depend on nothing else the
        engine runs."""
        self._next_seed = seed

    def _generate(self, texts: list[str], n: int, stop: str | None) -> list[list[str]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        params = [
            SamplingParams(
                n=n,
                temperature=self.temperature,
                top_p=self.top_p,
                max_tokens=self.max_new_tokens,
                stop=[stop] if stop else None,
                include_stop_str_in_output=True,
                seed=None if self._next_seed is None else self._next_seed + i,
            )
            for i in range(len(texts))
        ]
        if self._next_seed is not None:
            self._next_seed += len(texts)
        prompts = [TokensPrompt(prompt_token_ids=self.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
        outputs = self.llm.generate(prompts, params, use_tqdm=self.progress)
        return [[choice.text for choice in output.outputs] for output in outputs]
