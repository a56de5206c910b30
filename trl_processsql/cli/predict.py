"""``trl-processsql predict``: sample, execute, score with the PRM and choose, to a JSONL file."""

from __future__ import annotations

from dataclasses import dataclass

from ..formats import FORMATS
from ..inference.loading import BACKENDS
from ..inference.predict import STRATEGY_NAMES
from ..inference.selection import NEEDS_PRM
from ..prm.aggregation import AGGREGATIONS
from ..sql.compare import COMPARISON_MODES
from ._common import DataOptions, at_least_one, load_policy
from ._options import CommandError, Options, option

DESCRIPTION = (
    "Sample chain-of-CTE answers from a policy for every question, execute every step, score the "
    "steps with a process reward model, and choose one answer per question by --strategy. Writes JSONL that "
    "'trl-processsql evaluate --predictions' reads, each line with every candidate, its status, PRM scores and votes."
)


@dataclass(kw_only=True)
class ModelOptions(Options):
    """The policy, PRM and search options of ``predict``, which ``evaluate --model`` shares."""

    model: str | None = option(None, group="model", help="policy checkpoint: a local directory or a Hub id")
    gguf_file: str | None = option(None, group="model", help="load the policy from this GGUF file in --model (needs pip install gguf)")
    prm: str | None = option(None, group="model", help="process reward model checkpoint (best-of-n, prm-vote and beam need one)")
    prm_gguf_file: str | None = option(
        None, group="model", help="load the PRM from this GGUF file in --prm (a causal LM: give --prm-step-tag)"
    )
    prm_step_tag: str | None = option(
        None,
        group="model",
        help="the PRM is a causal LM scored at this tag after each step, P(positive)/(P(positive)+P(negative)) "
        "(default: a token-classification PRM, as trl-processsql trains)",
    )
    format: str = option(
        "processsql",
        group="model",
        choices=FORMATS,
        help="input format of the policy and the PRM. processsql: what trl-processsql trains (chat template; "
        "token-classification PRM). rewardsql: the paper's released checkpoints (Facdbe/RewardSQL-7B and its PRM) read "
        "as their own code reads them: the paper's prompt (its M-Schema, question and evidence) as plain text without "
        "chat template, and a causal-LM PRM reading 'step<result>rows counted</result> и ' scored P(' +') against P(' -') "
        "at each tag (default: %(default)s)",
    )
    prm_positive: str = option("+", group="model", help="positive verdict token of a step-tag PRM (default: %(default)s)")
    prm_negative: str = option("-", group="model", help="negative verdict token of a step-tag PRM (default: %(default)s)")
    strategy: str = option(
        "best-of-n",
        group="model",
        choices=STRATEGY_NAMES,
        help="greedy: one greedy answer; vote: the most frequent execution result; best-of-n: the best PRM score "
        "among candidates that run; prm-vote: the execution result with the largest sum of PRM scores; beam: "
        "PRM-guided beam search one CTE step at a time (default: %(default)s)",
    )
    n: int = option(
        8, group="model", help="candidates per question; with beam, sampled next steps per question and round (default: %(default)s)"
    )
    temperature: float = option(1.0, group="model", help="sampling temperature; greedy uses 0 (default: %(default)s)")
    top_p: float = option(1.0, group="model", help="nucleus sampling (default: %(default)s)")
    max_new_tokens: int = option(512, group="model", help="tokens per completion (default: %(default)s)")
    aggregation: str = option("min", group="model", choices=tuple(AGGREGATIONS), help="step scores to one PRM score (default: %(default)s)")
    beam_width: int = option(4, group="model", help="chains kept per question in beam search (default: %(default)s)")
    max_steps: int = option(8, group="model", help="rounds of beam search, one step each (default: %(default)s)")
    limit: int | None = option(None, group="model", help="only the first LIMIT questions")
    backend: str = option(
        "auto", group="model", choices=BACKENDS, help="auto: vLLM where it is installed (default: %(default)s)"
    )
    device: str = option("auto", group="model", help="cpu, cuda, cuda:1, ...; auto: a GPU if there is one (default: %(default)s)")
    batch_size: int = option(8, group="model", help="prompts per generate call, transformers backend (default: %(default)s)")
    seed: int = option(0, group="model", help="sampling seed (default: %(default)s)")

    def check_model(self):
        """The checks of the model options, which the commands run after their own (``check`` runs base first)."""
        if self.strategy in NEEDS_PRM and not self.prm:
            raise CommandError(f"--strategy {self.strategy} needs --prm (without a PRM choose greedy or vote)")
        at_least_one(self, "n", "beam_width", "max_steps", "max_new_tokens", "batch_size", "limit")
        if self.format == "rewardsql" and self.prm_step_tag:
            raise CommandError("--format rewardsql fixes the PRM's step tag and verdict tokens: leave out --prm-step-tag")
        if self.prm_gguf_file and not self.prm_step_tag and self.format != "rewardsql":
            raise CommandError("--prm-gguf-file loads a causal LM: give --prm-step-tag, the tag its verdicts are read at")


@dataclass(kw_only=True)
class PredictOptions(ModelOptions, DataOptions):
    GROUPS = {"model": "model and search"}

    output: str = option(help="predictions file to write (.jsonl)")
    model: str = option(group="model", help="policy checkpoint: a local directory or a Hub id")
    mode: str = option("spider", choices=tuple(COMPARISON_MODES), help="when two results are equal, for voting (default: %(default)s)")
    timeout: float = option(30.0, help="seconds per query (default: %(default)s)")
    workers: int | None = option(None, help="SQL worker processes (default: one per CPU)")
    push_to_hub: str | None = option(
        None, metavar="REPO", help="also push the predictions and their card to this Hub dataset repository"
    )
    private: bool = option(False, help="make the Hub repository private (with --push-to-hub)")

    def check(self):
        if not self.output.endswith(".jsonl"):
            raise CommandError(f"--output must end in .jsonl (the predictions format evaluate reads), got {self.output}")
        self.check_model()


OPTIONS = PredictOptions


def predict_to_file(options, questions, db_dir, output, *, quiet: bool = False) -> None:
    """Load the policy and the PRM of ``options`` (:class:`ModelOptions`, with mode, timeout and workers),
    predict for ``questions`` and write JSONL to ``output``; prints the counts unless ``quiet``."""
    from collections import Counter
    from pathlib import Path

    import torch

    from ..inference import ModelLoadError, load_prm, predict, write_predictions
    from ..sql import ExecutionLimits, SQLExecutor

    torch.manual_seed(options.seed)
    sampler = load_policy(
        options.model,
        options,
        gguf_file=options.gguf_file,
        temperature=0.0 if options.strategy == "greedy" else options.temperature,
        top_p=options.top_p,
        format=options.format,
    )
    prm = None
    if options.prm:
        try:
            prm = load_prm(
                options.prm,
                step_tag=options.prm_step_tag,
                positive_token=options.prm_positive,
                negative_token=options.prm_negative,
                gguf_file=options.prm_gguf_file,
                device=options.device,
                aggregation=options.aggregation,
                format=options.format,
            )
        except ModelLoadError as exc:
            raise CommandError(str(exc)) from exc
    tally: Counter = Counter()

    def counted(records):
        for record in records:
            tally["questions"] += 1
            tally["selected ran"] += record["candidates"][record["selected"]]["status"] == "ok"
            tally["candidates"] += len(record["candidates"])
            tally["candidates ran"] += sum(c["status"] == "ok" for c in record["candidates"])
            yield record

    try:
        limits = ExecutionLimits(timeout=options.timeout)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    with SQLExecutor(num_workers=options.workers, limits=limits) as executor:
        records = predict(
            questions,
            db_dir,
            sampler,
            executor,
            strategy=options.strategy,
            n=options.n,
            prm=prm,
            aggregation=options.aggregation,
            mode=options.mode,
            beam_width=options.beam_width,
            max_steps=options.max_steps,
            progress=not quiet,
        )
        write_predictions(counted(records), output)
    if not quiet:
        print(
            f"{tally['questions']} predictions ({options.strategy}) written to {output}: {tally['selected ran']} chosen queries run; "
            f"{tally['candidates ran']} of {tally['candidates']} candidates run"
        )


def run(options: PredictOptions) -> int:
    questions, db_dir = options.load(options.limit)
    predict_to_file(options, questions, db_dir, options.output)
    if not options.push_to_hub:
        return 0
    from ..inference.predict import push_predictions

    try:
        url = push_predictions(
            options.output, options.push_to_hub, model=options.model, strategy=options.strategy, private=options.private
        )
    except Exception as exc:  # the predictions are on disk whatever the Hub says
        raise CommandError(f"push to {options.push_to_hub} failed ({exc}); the predictions are in {options.output}") from exc
    print(f"pushed to {url}")
    return 0
