"""Inference: sample chains of CTEs, execute them, score them with a PRM, and choose one answer.

- :mod:`.sampling`: samplers (transformers, vLLM) with whole-answer and next-step generation;
- :mod:`.candidates`: completions to candidates (executed steps, PRM step scores from :mod:`trl_processsql.prm.scoring`);
- :mod:`.selection`: greedy, execution vote, PRM best-of-N, PRM-weighted vote;
- :mod:`.beam`: PRM-guided step-level beam search;
- :mod:`.predict`: the pipeline from questions to prediction records;
- :mod:`.pass_rates`: how often the policy answers each question, to keep the questions within its reach;
- :mod:`.loading`: loading the policy and the PRM with clear errors.

Names load lazily (:mod:`trl_processsql._lazy`): the selection rules import no torch.
"""

from .._lazy import lazy_namespace

__all__, __getattr__, __dir__ = lazy_namespace(
    __name__,
    {
        "beam": ("beam_search",),
        "candidates": ("candidate_status", "score_candidates"),
        "loading": ("BACKENDS", "ModelLoadError", "load_prm", "load_sampler", "resolve_device"),
        "pass_rates": ("pass_rates", "within_reach"),
        "predict": ("STRATEGY_NAMES", "candidate_records", "predict", "write_predictions"),
        "sampling": ("ChatSampler", "Continuation", "TransformersSampler", "VLLMSampler", "generate_pruned", "split_step"),
        "selection": (
            "NEEDS_PRM", "STRATEGIES", "Candidate", "best_of_n", "greedy", "majority_vote", "prm_vote", "result_groups",
            "trajectory_score",
        ),
    },
    moved={
        "UNSCORED": "trl_processsql.prm.scoring", "score_steps": "trl_processsql.prm.scoring", "result_key": "trl_processsql.sql.compare",
    },
)
