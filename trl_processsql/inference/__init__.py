"""Inference: sample chains of CTEs, execute them, score them with a PRM, and choose one answer.

- :mod:`.sampling`: samplers (transformers, vLLM) with whole-answer and next-step generation;
- :mod:`.scoring`: completions to candidates (executed steps, PRM step scores);
- :mod:`.selection`: greedy, execution vote, PRM best-of-N, PRM-weighted vote;
- :mod:`.beam`: PRM-guided step-level beam search;
- :mod:`.predict`: the pipeline from questions to prediction records;
- :mod:`.loading`: loading the policy and the PRM with clear errors.
"""

from .beam import beam_search
from .loading import ModelLoadError, load_prm, load_sampler, resolve_device
from .predict import STRATEGY_NAMES, candidate_records, predict, write_predictions
from .sampling import ChatSampler, Continuation, TransformersSampler, VLLMSampler, split_step
from .scoring import UNSCORED, score_candidates, score_steps
from .selection import (
    NEEDS_PRM,
    STRATEGIES,
    Candidate,
    best_of_n,
    greedy,
    majority_vote,
    prm_vote,
    result_groups,
    result_key,
    trajectory_score,
)

__all__ = [
    "NEEDS_PRM",
    "STRATEGIES",
    "STRATEGY_NAMES",
    "UNSCORED",
    "Candidate",
    "ChatSampler",
    "Continuation",
    "ModelLoadError",
    "TransformersSampler",
    "VLLMSampler",
    "beam_search",
    "best_of_n",
    "candidate_records",
    "greedy",
    "load_prm",
    "load_sampler",
    "majority_vote",
    "predict",
    "prm_vote",
    "resolve_device",
    "result_groups",
    "result_key",
    "score_candidates",
    "score_steps",
    "split_step",
    "trajectory_score",
    "write_predictions",
]
