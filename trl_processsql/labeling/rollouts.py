"""Step labels from Monte Carlo rollouts of a policy (Math-Shepherd, OmegaPRM).

Execution only tells a step that fails from one that runs. Whether a running step is *right* is
estimated by asking the policy to finish the answer from it: from the prefix ending at step ``k``,
``K`` continuations are sampled and the step's label is the share of them whose final result
matches the gold's (soft), or whether any does (hard). :class:`RolloutLabeler` does this for many
trajectories at once, batched across prefixes and questions, and combines it with execution:

- a step whose view fails is labelled 0, and so is every step after it; no rollout is spent there;
- the last step needs no rollout either: its label is whether the trajectory's answer matches gold;
- with ``binary_search`` (OmegaPRM), correctness is assumed monotonic (a prefix from which no
  rollout reaches gold cannot be repaired by more steps), so the first step whose estimate is 0
  is found by bisection: about ``log2(n)`` prefixes get rollouts instead of ``n - 1``. That step
  and all after it are labelled 0. A step before it that got no rollouts takes the estimate of the
  nearest evaluated prefix after it (the step just before the first bad one is always evaluated).
  A trajectory whose answer is right has no bad step to find: every step is labelled 1.0.
- without it every prefix gets rollouts and every step its own estimate, as measured.

Continuations are generated from the prompt under the chat template with the prefix steps
(joined by :data:`~trl_processsql.cocte.STEP_SEPARATOR`, plus one more separator) as the start of
the assistant's answer, which is exactly how the policy wrote them: by ``model.generate`` in this
process, or by an inference sampler (:mod:`trl_processsql.inference.sampling`, transformers or
vLLM). :meth:`RolloutLabeler.reseed` makes what follows a function of the seed and the inputs,
which is how a labelling run split into shards gives the rows of one run.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from ..cocte import STEP_SEPARATOR, CoCTE, StepResult, execute_steps_many, parse_cocte
from ..sql import judge_results
from ..sql.sandbox import ExecutionResult
from .builder import GoldChain
from .execution import execution_labels

__all__ = ["RolloutLabeler", "StepLabels", "Trajectory"]


@dataclass(frozen=True)
class Trajectory:
    """A chain of CTEs to label, with the question it answers: ``chain`` gives the prompt, database and gold SQL.

    ``Trajectory(chain, chain.cocte)`` labels a gold chain itself; a policy sample keeps the
    policy's own chain in ``cocte``.
    """

    chain: GoldChain
    cocte: CoCTE


@dataclass
class StepLabels:
    """What labelling found for one trajectory.

    ``labels`` has one value in [0, 1] per step; ``views`` the executed views of the steps;
    ``estimates`` maps each step whose prefix got rollouts to the share of them that reached the
    gold result; ``first_bad`` is the first step labelled wrong by an estimate of 0, a failing view
    or a wrong answer (None when there is none); ``rollouts`` counts the continuations generated.
    """

    labels: list[float]
    views: list[StepResult]
    estimates: dict[int, float] = field(default_factory=dict)
    first_bad: int | None = None
    rollouts: int = 0


class _Search:
    """Which step prefixes of one trajectory get rollouts next, and the labels their estimates give.

    >>> search = _Search([1.0, 1.0, 1.0, 1.0, 0.0], binary=True)  # 5 steps, the answer is wrong
    >>> search.pending()
    [2]
    >>> search.record(2, 0.5); search.pending()
    [3]
    >>> search.record(3, 0.0); search.pending(), search.first_bad
    ([], 3)
    >>> search.labels(soft=True)
    [0.5, 0.5, 0.5, 0.0, 0.0]
    """

    def __init__(self, execution: Sequence[float], binary: bool):
        self.execution, self.binary = list(execution), binary
        # Steps from the first one execution marks wrong (a failing view, a wrong answer) are wrong.
        self.known_bad = next((k for k, label in enumerate(execution) if label == 0.0), None)
        # Prefixes that may get rollouts: those before it, never the last step (its label is exact).
        self.limit = self.known_bad if self.known_bad is not None else max(len(execution) - 1, 0)
        self.estimates: dict[int, float] = {}
        self.low, self.high = 0, self.known_bad if binary and self.known_bad is not None else 0

    def pending(self) -> list[int]:
        if self.binary:
            return [(self.low + self.high) // 2] if self.low < self.high else []
        return [k for k in range(self.limit) if k not in self.estimates]

    def record(self, k: int, share: float) -> None:
        self.estimates[k] = share
        if self.binary:
            if share == 0.0:
                self.high = k
            else:
                self.low = k + 1

    @property
    def first_bad(self) -> int | None:
        if self.binary:
            return self.low if self.known_bad is not None else None
        return next((k for k in sorted(self.estimates) if self.estimates[k] == 0.0), self.known_bad)

    def labels(self, soft: bool) -> list[float]:
        def value(share: float) -> float:
            return share if soft else float(share > 0)

        labels = list(self.execution)
        if not self.binary:
            for k, share in self.estimates.items():
                labels[k] = value(share)
            return labels
        bad = self.first_bad
        if bad is None:
            return labels
        for k in range(len(labels)):
            labels[k] = 0.0 if k >= bad else value(self.estimates[min(j for j in self.estimates if j >= k)])
        return labels


class RolloutLabeler:
    """Labels the steps of trajectories with Monte Carlo rollouts of a policy, on top of execution checks.

    Parameters:
        model: any ``transformers`` causal LM (the policy), on the device it should generate on; `None` when
            nothing is generated (``label(..., rollouts=False)`` of given trajectories) or a ``sampler`` is given.
        tokenizer: its tokenizer; its chat template frames the prompt (plain text when it has none).
        executor: an :class:`~trl_processsql.sql.SQLExecutor` that runs step views, rollouts and gold SQL.
        sampler (*optional*): an inference sampler (:func:`~trl_processsql.inference.load_sampler`: transformers
            or vLLM) that writes the samples and rollouts instead of ``model``, with its own temperature, top-p
            and length (``temperature``, ``max_new_tokens`` and ``batch_size`` here then do not apply).
        num_rollouts (`int`, defaults to `8`): continuations sampled from each evaluated prefix (K).
        temperature (`float`, defaults to `1.0`): sampling temperature (pure sampling: no top-k, no top-p).
        max_new_tokens (`int`, defaults to `256`): longest continuation or sampled trajectory, in tokens.
        soft (`bool`, defaults to `True`): label with the share of rollouts that reach the gold result;
            otherwise 1.0 when any does.
        binary_search (`bool`, defaults to `True`): find the first bad step by bisection (see the module).
        batch_size (`int`, defaults to `8`): prompts per ``generate`` call, each with ``num_rollouts`` sequences.
        mode (`str`, defaults to `"spider"`): result comparison, ``"spider"`` or ``"bird"``.
        progress (`bool`, defaults to `False`): show progress bars.

    ``counts`` adds up what was done: ``rollouts`` generated, ``prefixes`` evaluated, the
    ``exhaustive rollouts`` a scan of every prefix would have needed, policy ``samples`` and
    ``samples without SQL`` (dropped).
    """

    def __init__(
        self,
        model,
        tokenizer,
        executor,
        *,
        num_rollouts: int = 8,
        temperature: float = 1.0,
        max_new_tokens: int = 256,
        soft: bool = True,
        binary_search: bool = True,
        batch_size: int = 8,
        mode: str = "spider",
        progress: bool = False,
        sampler=None,
    ):
        for name, value in (("num_rollouts", num_rollouts), ("max_new_tokens", max_new_tokens), ("batch_size", batch_size)):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        for value in (temperature, temperature if sampler is None else sampler.temperature):
            if not value > 0:
                raise ValueError(f"temperature must be positive (rollouts are sampled), got {value}")
        self.model = model.eval() if model is not None else None
        self.sampler = sampler
        self.tokenizer = tokenizer if tokenizer is not None or sampler is None else sampler.tokenizer
        self.executor = executor
        self.num_rollouts, self.temperature, self.max_new_tokens = num_rollouts, temperature, max_new_tokens
        self.soft, self.binary_search, self.batch_size = soft, binary_search, batch_size
        self.mode, self.progress = mode, progress
        self.counts: Counter = Counter()

    # -- generation ------------------------------------------------------------------------------

    def _context(self, prompt: str) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            messages = [{"role": "user", "content": prompt}]
            return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return prompt + STEP_SEPARATOR

    def reseed(self, seed: int) -> None:
        """Make the samples and rollouts that follow a function of ``seed`` and of what is asked."""
        if self.sampler is not None:
            self.sampler.reseed(seed)
        else:
            from transformers import set_seed

            set_seed(seed)

    def generate(self, prompts: Sequence[str], answer_starts: Sequence[str], num: int, desc: str = "sampling") -> list[list[str]]:
        """``num`` sampled continuations of each prompt's assistant answer, which begins with ``answer_starts[i]``.

        Through the sampler when there is one; otherwise batched across prompts with left padding
        and ``num_return_sequences=num``. The texts come back without the answer start and without
        special tokens.
        """
        if self.sampler is not None:
            conversations = [[{"role": "user", "content": prompt}] for prompt in prompts]
            return self.sampler.sample(conversations, num, prefixes=list(answer_starts))
        import torch
        from tqdm.auto import tqdm

        tokenizer = self.tokenizer
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        texts = [self._context(prompt) + start for prompt, start in zip(prompts, answer_starts)]
        outputs: list[list[str]] = []
        side, tokenizer.padding_side = tokenizer.padding_side, "left"
        try:
            with tqdm(total=len(texts) * num, desc=desc, unit="sequence", disable=not self.progress, leave=False) as bar:
                for start in range(0, len(texts), self.batch_size):
                    chunk = texts[start : start + self.batch_size]
                    inputs = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(self.model.device)
                    with torch.no_grad():
                        generated = self.model.generate(
                            **inputs,
                            do_sample=True,
                            temperature=self.temperature,
                            top_k=0,
                            top_p=1.0,
                            max_new_tokens=self.max_new_tokens,
                            num_return_sequences=num,
                            pad_token_id=tokenizer.pad_token_id,
                        )
                    decoded = tokenizer.batch_decode(generated[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
                    outputs.extend(decoded[i * num : (i + 1) * num] for i in range(len(chunk)))
                    bar.update(len(chunk) * num)
        finally:
            tokenizer.padding_side = side
        return outputs

    def sample(self, chains: Sequence[GoldChain], samples_per_question: int = 1) -> list[Trajectory]:
        """Trajectories the policy writes for each chain's question; samples with no SQL are dropped (and counted)."""
        completions = self.generate([c.prompt for c in chains], [""] * len(chains), samples_per_question, "sampling trajectories")
        trajectories = []
        for chain, texts in zip(chains, completions):
            for text in texts:
                cocte = parse_cocte(text)
                if cocte.steps:
                    trajectories.append(Trajectory(chain, cocte))
                else:
                    self.counts["samples without SQL"] += 1
        self.counts["samples"] += len(chains) * samples_per_question
        return trajectories

    # -- labelling -------------------------------------------------------------------------------

    def _reaches_gold(self, result: ExecutionResult, gold: ExecutionResult, gold_sql: str) -> bool:
        return judge_results([result], [gold], [gold_sql], mode=self.mode)[0].correct

    def label(self, trajectories: Sequence[Trajectory], *, rollouts: bool = True) -> list[StepLabels]:
        """Step labels of every trajectory: execution checks, refined by rollouts unless ``rollouts=False``.

        Without rollouts a step is right when its view runs, except the last step, which is right
        when the answer matches the gold result (:func:`~.execution.execution_labels`).
        """
        views = execute_steps_many([(t.cocte, t.chain.db_path) for t in trajectories], self.executor)
        golds = self.executor.execute_many([(t.chain.db_path, t.chain.question["gold_sql"]) for t in trajectories], cache=True)
        searches = []
        for t, steps, gold in zip(trajectories, views, golds):
            answered = t.cocte.steps[-1].name is None  # a chain cut off after a CTE has no answer
            correct = answered and self._reaches_gold(steps[-1].result, gold, t.chain.question["gold_sql"])
            searches.append(_Search(execution_labels(steps, correct), self.binary_search))
        if not rollouts:
            return [StepLabels(s.execution, steps, first_bad=s.known_bad) for s, steps in zip(searches, views)]
        self.counts.update({"rollouts": 0, "prefixes": 0})  # reported even when none were needed
        self.counts["exhaustive rollouts"] += sum(search.limit for search in searches) * self.num_rollouts
        while requests := [(i, k) for i, search in enumerate(searches) for k in search.pending()]:
            shares = self._estimate([(trajectories[i], golds[i], k) for i, k in requests])
            for (i, k), share in zip(requests, shares):
                searches[i].record(k, share)
        return [
            StepLabels(s.labels(self.soft), steps, dict(s.estimates), s.first_bad, len(s.estimates) * self.num_rollouts)
            for s, steps in zip(searches, views)
        ]

    def _estimate(self, requests: Sequence[tuple[Trajectory, ExecutionResult, int]]) -> list[float]:
        """The share of ``num_rollouts`` continuations from each (trajectory, gold result, step) prefix that reach gold."""
        prefixes = [STEP_SEPARATOR.join(s.text for s in t.cocte.steps[: k + 1]) + STEP_SEPARATOR for t, _, k in requests]
        continuations = self.generate([t.chain.prompt for t, _, _ in requests], prefixes, self.num_rollouts, "rollouts")
        self.counts["rollouts"] += len(requests) * self.num_rollouts
        self.counts["prefixes"] += len(requests)
        sqls = [[parse_cocte(prefix + text).sql for text in texts] for prefix, texts in zip(prefixes, continuations)]
        queries = [(t.chain.db_path, sql) for (t, _, _), batch in zip(requests, sqls) for sql in batch if sql]
        results = iter(self.executor.execute_many(queries))
        shares = []
        for (t, gold, _), batch in zip(requests, sqls):
            hits = sum(bool(sql) and self._reaches_gold(next(results), gold, t.chain.question["gold_sql"]) for sql in batch)
            shares.append(hits / self.num_rollouts)
        return shares
