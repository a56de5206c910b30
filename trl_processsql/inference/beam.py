"""PRM-guided step-level beam search: write the chain one CTE at a time, keep the best partial chains.

Each round, every unfinished chain of a question is extended by ``expansions`` sampled next steps
(:meth:`~.sampling.ChatSampler.continue_steps`); every extension is executed and scored by the PRM
step by step; the ``beam_width`` best chains of the question (finished ones included) go on. A
finished chain is scored like a best-of-N candidate (0 unless its final query runs), an
unfinished one by its step scores so far. The search stops when every kept chain is finished, or
after ``max_steps`` rounds, when the chains are taken as they are.

All questions advance together: one sampling call and one execution and PRM batch per round.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

from ..cocte import STEP_SEPARATOR
from ..prm.aggregation import aggregate
from ..prm.scoring import UNSCORED
from .candidates import score_candidates
from .selection import Candidate, trajectory_score

__all__ = ["beam_search"]


@dataclass
class _Chain:
    question: int
    text: str  # the steps so far; an unfinished chain ends with the step separator
    final: bool
    candidate: Candidate | None = None
    score: float = 0.0


def _score(chain: _Chain, aggregation: str) -> float:
    candidate = chain.candidate
    if chain.final:
        return trajectory_score(candidate, aggregation)
    return aggregate(candidate.prm_scores, aggregation) if candidate.prm_scores else UNSCORED


def beam_search(
    conversations: Sequence[Sequence[dict]],
    prompts: Sequence[str],
    db_paths: Sequence[str | os.PathLike],
    sampler,
    prm,
    executor,
    *,
    beam_width: int = 4,
    expansions: int = 2,
    max_steps: int = 8,
    aggregation: str = "min",
) -> list[list[Candidate]]:
    """The final beam of each question, best first (ties: the order chains were found).

    ``conversations`` are what the policy reads (:func:`~trl_processsql.prompts.prompt_messages`),
    ``prompts`` what the PRM reads (the user message), ``db_paths`` where each question's steps run.
    """
    if beam_width < 1 or expansions < 1 or max_steps < 1:
        raise ValueError(f"beam_width, expansions and max_steps must be at least 1, got {beam_width}, {expansions}, {max_steps}")
    beams: list[list[_Chain]] = [[_Chain(q, "", False)] for q in range(len(conversations))]
    for round_ in range(max_steps):
        active = [chain for beam in beams for chain in beam if not chain.final]
        if not active:
            break
        steps = sampler.continue_steps([conversations[c.question] for c in active], [c.text for c in active], expansions)
        seen = {(c.question, c.text, c.final) for beam in beams for c in beam}
        grown: list[_Chain] = []
        for chain, continuations in zip(active, steps):
            for step in continuations:
                final = step.final or not step.text or round_ == max_steps - 1
                text = (chain.text + step.text).rstrip() if final else chain.text + step.text + STEP_SEPARATOR
                if (chain.question, text, final) not in seen:
                    seen.add((chain.question, text, final))
                    grown.append(_Chain(chain.question, text, final))
        scored = score_candidates(
            [prompts[c.question] for c in grown],
            [c.text for c in grown],
            [db_paths[c.question] for c in grown],
            executor,
            prm,
        )
        for chain, candidate in zip(grown, scored):
            chain.candidate = candidate
            chain.score = _score(chain, aggregation)
        for q, beam in enumerate(beams):
            pool = [c for c in beam if c.final] + [c for c in grown if c.question == q]
            pool.sort(key=lambda c: -c.score)  # stable: earlier chains win ties
            beams[q] = pool[:beam_width]
    return [[c.candidate for c in beam] for beam in beams]
