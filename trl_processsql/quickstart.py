"""The whole method end to end on the bundled sample, on a CPU, in about two minutes, with no download.

Seven stages, each printing what it made and its figure:

1. SFT data: the sample's gold SQL as verified chains of CTEs; questions split by question, so
   the held-out questions ask about databases the policy saw (the in-domain setting of
   :mod:`trl_processsql.small_models`);
2. SFT: a small policy, randomly initialised, trained with TRL's ``SFTTrainer``, then its greedy
   execution accuracy on the held-out questions;
3. step labels: the policy's own samples on the training questions, labelled by execution and
   Monte Carlo rollouts, plus gold chains and planted mutants;
4. PRM: a token-classification PRM started from the policy's weights, trained with
   :class:`ProcessRewardTrainer`; its step AUROC on the held-out questions' labelled steps;
5. PRM-GRPO: a few steps of :class:`PRMGRPOTrainer` from the SFT policy, on the training questions
   it answers in some of 8 samples but not all (:func:`~trl_processsql.inference.within_reach`), rewards per step;
6. inference on the held-out questions: greedy, majority vote and PRM best-of-N of the SFT policy,
   and greedy of the PRM-GRPO policy, all on the same questions;
7. a summary table: each stage, what it made, its figure and the baseline it is compared with.

The models are small and train for a minute or two: the figures show every stage working and
handing its output to the next on a few dozen questions, not what the method reaches with a 7B
model (see ``benchmarks/bench_method.py`` for the measured method at CPU scale, and the recipes).

With ``base`` (``trl-processsql quickstart --base smollm2-135m-instruct``) the policy is that
pretrained model fine-tuned in full instead, reading the schema prompt (style ``tables``), in bf16
where the CPU has bf16 matrix units; the PRM starts from it too. The stages and the report are
the same; :meth:`QuickstartSettings.pretrained` sizes them for a pretrained model's cost on a CPU.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["QuickstartSettings", "run_quickstart"]


@dataclass
class QuickstartSettings:
    """Sizes of the quickstart run (defaults: about three minutes on two CPU cores).

    ``test_questions`` are held out of every training stage; the policy has ``hidden_size`` and
    ``num_layers`` and trains for ``sft_steps``; ``samples`` policy samples per training question,
    each labelled with ``rollouts`` rollouts per evaluated step, train the PRM with the planted
    mutants; ``n`` candidates per held-out question go to vote and best-of-N. Samples, rollouts and
    GRPO's generations use ``temperature``: below the paper's 1.0, which suits 7B models, because
    most of a small policy's samples at 1.0 do not run. ``base`` is a pretrained checkpoint folder
    fine-tuned instead of a small random policy (``hidden_size`` and ``num_layers`` then unused), with
    ``sft_steps`` of 8 examples. ``label_questions`` and ``grpo_questions`` cap the training
    questions whose steps are labelled and whose pass rates pick GRPO's prompts (a seeded subset;
    ``None``: all of them). Each PRM-GRPO step trains on 16 completions (2 prompts, 8 each) in
    ``grpo_micro_batches`` passes: fewer activations held at once, the same step.
    """

    output_dir: str = "outputs/quickstart"
    test_questions: int = 40
    hidden_size: int = 128
    num_layers: int = 2
    sft_steps: int = 400
    samples: int = 2
    rollouts: int = 4
    prm_epochs: float = 2.0
    grpo_steps: int = 8
    n: int = 8
    temperature: float = 0.7
    max_new_tokens: int = 128
    seed: int = 0
    base: str | None = None
    label_questions: int | None = None
    grpo_questions: int | None = None
    grpo_micro_batches: int = 1

    @classmethod
    def pretrained(cls, base: str, **sizes) -> QuickstartSettings:
        """Settings for fine-tuning the pretrained ``base``, sized to run in under half an hour on two CPU cores.

        A training step of a 135M-parameter model on 8 examples takes seconds there, not milliseconds
        (docs/history.md has the measured times), so the policy trains 24 steps, the PRM one epoch on the steps of 40 training questions (one
        sample each, 2 rollouts a step, and their mutants), and PRM-GRPO runs 3 steps on prompts picked
        among 16 questions, in 2 micro-batches (at 16 completions at once, its activations outgrow 24 GiB).
        ``sizes`` override any field.
        """
        defaults = dict(sft_steps=24, samples=1, rollouts=2, prm_epochs=1.0, grpo_steps=3, label_questions=40, grpo_questions=16,
                        grpo_micro_batches=2)
        return cls(base=base, **{**defaults, **sizes})


def _stage(number: int, title: str) -> float:
    gc.collect()  # what the last stage's trainers held (they keep reference cycles) goes before this one allocates
    print(f"\n[{number}/7] {title}", flush=True)
    return time.perf_counter()


def _done(start: float, report: dict, stage: str, where: Path | None = None) -> None:
    """Print the stage's time and keep it in the report's ``stage_seconds``."""
    seconds = time.perf_counter() - start
    report.setdefault("stage_seconds", {})[stage] = round(seconds, 1)
    suffix = f", output in {where}" if where is not None else ""
    print(f"      done in {seconds:.0f} s{suffix}", flush=True)


def _accuracy(records, questions, db_dir, executor) -> tuple[float, int]:
    from .evaluation import evaluate

    chosen = {r["index"]: r["sql"] for r in records}
    result = evaluate(questions, [chosen.get(q["index"]) for q in questions], db_dir, executor=executor)
    return result.totals["accuracy"], result.totals["correct"]


def _weights_changed(before: dict, model) -> bool:
    import torch

    return any(not torch.equal(before[name], param.detach()) for name, param in model.named_parameters())


@contextlib.contextmanager
def _quiet():
    """Progress bars and figures only: library warnings, log lines and load bars off, and back on after."""
    import datasets
    import transformers

    logger = logging.getLogger("trl_processsql")
    verbosity, level, bars = transformers.logging.get_verbosity(), logger.level, transformers.utils.logging.is_progress_bar_enabled()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        transformers.logging.set_verbosity(verbosity)
        if bars:
            transformers.utils.logging.enable_progress_bar()
        datasets.enable_progress_bars()
        logger.setLevel(level)


def run_quickstart(settings: QuickstartSettings | None = None) -> dict:
    """Run the seven stages; returns (and writes to ``report.json``) the figures of each and a ``summary``."""
    os.environ.setdefault("DS_ACCELERATOR", "cpu")  # a CPU run: DeepSpeed, if installed, need not probe and warn
    with _quiet():
        return _run(settings or QuickstartSettings())


def _run(settings: QuickstartSettings) -> dict:
    import numpy as np
    import transformers
    from datasets import Dataset

    from transformers import AutoTokenizer

    from .small_models.training import (
        PRETRAINED_PRM_ARGS,
        SmallModelSettings,
        cpu_training_args,
        quiet_progress,
        split_by_question,
        train_small_policy,
        train_small_prm,
    )
    from .data import database_path, load_questions, sample_paths
    from .grpo import PRMGRPOConfig, PRMGRPOTrainer
    from .inference import TransformersSampler, pass_rates, predict, within_reach, write_predictions
    from .labeling import RolloutLabeler, gold_chains, label_statistics, mutation_rows, policy_rows, stepwise_dataset
    from .precision import cpu_has_bf16, cpu_inference_model
    from .prm.trainer import _auroc
    from .prompts import prompt_messages
    from .sft_data import build_sft_dataset
    from .sql import SQLExecutor
    from .small_models.models import build_tokenizer

    began = time.perf_counter()
    out = Path(settings.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    questions_file, db_dir = sample_paths()
    test_questions, train_questions = split_by_question(load_questions(questions_file), [settings.test_questions], settings.seed)
    report: dict = {"settings": asdict(settings), "split": {"train_questions": len(train_questions), "test_questions": len(test_questions)}}
    style = "tables" if settings.base else "compact"  # a pretrained model reads the schema; a small one learns the tables
    bf16 = None if settings.base else False  # bf16 for the pretrained model where the CPU has it (autocast to train, bf16 weights to sample)
    report["precision"] = "bf16" if settings.base and cpu_has_bf16() else "fp32"

    with SQLExecutor() as executor:
        start = _stage(1, "SFT data: gold SQL as verified chains of CTEs")
        sft_data, _ = build_sft_dataset(train_questions, db_dir, prompt_style=style, executor=executor)
        sft_data.save_to_disk(out / "sft-data")
        steps = sft_data["num_steps"]
        report["sft_data"] = {"rows": len(sft_data), "multi_step_share": sum(s > 1 for s in steps) / len(steps)}
        print(f"      {len(sft_data)} of {len(train_questions)} training questions converted, "
              f"{report['sft_data']['multi_step_share']:.0%} with 2+ steps; {len(test_questions)} questions held out")
        _done(start, report, "sft_data", out / "sft-data")

        start = _stage(2, f"SFT: {'the pretrained model' if settings.base else 'a small random policy'} learns to write chains of CTEs")
        if settings.base and report["precision"] == "fp32":
            print("      this CPU has no bf16 matrix units (AMX, AVX512-BF16): the model trains and samples in fp32, "
                  "slower than on a CPU that has them", flush=True)
        policy_dir = out / "policy-sft"
        if settings.base:
            tokenizer = AutoTokenizer.from_pretrained(settings.base)
            small = SmallModelSettings.pretrained(settings.base, settings.sft_steps, settings.seed)
        else:
            tokenizer = build_tokenizer()
            small = SmallModelSettings(hidden_size=settings.hidden_size, num_layers=settings.num_layers,
                                       max_steps=settings.sft_steps, seed=settings.seed)
        policy = train_small_policy(sft_data, tokenizer, policy_dir, small, prompt_style=style)
        greedy = TransformersSampler(policy, tokenizer, temperature=0, max_new_tokens=settings.max_new_tokens, batch_size=64, bf16=bf16)
        greedy_records = list(predict(test_questions, db_dir, greedy, executor, strategy="greedy", chunk_size=64))
        sft_ex, sft_correct = _accuracy(greedy_records, test_questions, db_dir, executor)
        report["sft"] = {"steps": settings.sft_steps, "greedy_ex": sft_ex, "greedy_correct": sft_correct}
        if settings.base:  # the same prompts to the model before SFT
            zero_shot = TransformersSampler(transformers.AutoModelForCausalLM.from_pretrained(settings.base), tokenizer, temperature=0,
                                            max_new_tokens=settings.max_new_tokens, batch_size=64, bf16=bf16)
            records = list(predict(test_questions, db_dir, zero_shot, executor, strategy="greedy", chunk_size=64, prompt_style=style))
            report["sft"]["zero_shot_ex"] = _accuracy(records, test_questions, db_dir, executor)[0]
            del zero_shot  # a second model's weights, not needed again
        print(f"      greedy execution accuracy on the held-out questions: {sft_ex:.1%} ({sft_correct}/{len(test_questions)})"
              + (f"; the base model before SFT {report['sft']['zero_shot_ex']:.1%}" if settings.base else ""))
        _done(start, report, "sft", policy_dir)

        start = _stage(3, "step labels: the policy's own samples (execution + rollouts) and planted mutants")
        label_questions = _subset(train_questions, settings.label_questions, settings.seed)
        train_chains, _ = gold_chains(label_questions, db_dir, executor, prompt_style=style)
        test_chains, _ = gold_chains(test_questions, db_dir, executor, prompt_style=style)
        # a pretrained policy samples through the sampler (bf16 weights where the CPU has it); from scratch as first measured
        sampler = TransformersSampler(policy, tokenizer, temperature=settings.temperature, max_new_tokens=settings.max_new_tokens, batch_size=64,
                                      bf16=bf16, progress=True)
        labeler = RolloutLabeler(policy, tokenizer, executor, num_rollouts=settings.rollouts, temperature=settings.temperature,
                                 max_new_tokens=settings.max_new_tokens, batch_size=64, progress=True,
                                 sampler=sampler if settings.base else None)
        train_rows = mutation_rows(train_chains, executor, seed=settings.seed)
        train_rows += policy_rows(train_chains, labeler, samples_per_question=settings.samples)
        test_rows = mutation_rows(test_chains, executor, seed=settings.seed)
        test_rows += policy_rows(test_chains, labeler, samples_per_question=settings.samples, rollouts=False)
        stepwise_dataset(train_rows).save_to_disk(out / "prm-data")
        stats = label_statistics(train_rows)
        report["labels"] = {k: stats[k] for k in ("trajectories", "steps", "positive_step_share", "by_source")}
        report["labels"]["rollouts"] = labeler.counts.get("rollouts", 0)
        print(f"      {len(label_questions)} training questions: {stats['trajectories']} trajectories ({', '.join(f'{k} {v}' for k, v in stats['by_source'].items())}), "
              f"{stats['steps']} steps, {stats['positive_step_share']:.0%} positive, {report['labels']['rollouts']} rollouts")
        _done(start, report, "labels", out / "prm-data")

        start = _stage(4, "PRM: started from the policy's weights, scores every step")
        prm, _ = train_small_prm(train_rows, tokenizer, init_from=policy_dir, output_dir=out / "prm",
                                 epochs=settings.prm_epochs, seed=settings.seed, **(PRETRAINED_PRM_ARGS if settings.base else {}))
        prm.model = cpu_inference_model(prm.model, bf16)  # from here on it only scores: bf16 weights where the CPU has bf16 units
        scores = prm.score_steps([r["prompt"] for r in test_rows], [r["completions"] for r in test_rows])
        pairs = [(s, label >= 0.5) for row, ss in zip(test_rows, scores) for s, label in zip(ss, row["labels"]) if s is not None]
        auroc = _auroc(np.array([p for p, _ in pairs]), np.array([t for _, t in pairs]))
        report["prm"] = {"held_out_step_auroc": auroc, "held_out_steps": len(pairs)}
        print(f"      step AUROC on the held-out questions: {auroc:.3f} ({len(pairs)} steps; chance is 0.5)")
        _done(start, report, "prm", out / "prm")

        start = _stage(5, "PRM-GRPO: execution reward, PRM step scores decide the credit")
        grpo_questions = _subset(train_questions, settings.grpo_questions, settings.seed)
        eights = TransformersSampler(policy, tokenizer, temperature=settings.temperature, max_new_tokens=settings.max_new_tokens,
                                     batch_size=_batch_for(8), bf16=bf16)
        rates = pass_rates(grpo_questions, db_dir, eights, executor, n=8, prompt_style=style)
        reachable = within_reach(grpo_questions, rates)
        report["grpo_prompts"] = {"within_reach": len(reachable), "never": sum(r == 0 for r in rates), "always": sum(r == 1 for r in rates)}
        print(f"      prompts: the {len(reachable)} of {len(grpo_questions)} training questions the policy answers in some of 8 samples but not all "
              f"({report['grpo_prompts']['never']} never, {report['grpo_prompts']['always']} always)"
              + ("" if reachable else "; with none of those, GRPO runs on every training question"))
        grpo_rows = [
            {"prompt": prompt_messages(q["question"], database_path(db_dir, q["db_id"]), style=style),
             "db_path": str(database_path(db_dir, q["db_id"])), "gold_sql": q["gold_sql"]}
            for q in reachable or grpo_questions
        ]
        before = {name: p.detach().clone() for name, p in policy.named_parameters()}
        grpo = PRMGRPOTrainer(
            model=policy,
            args=PRMGRPOConfig(**cpu_training_args(out / "policy-prm-grpo", bf16=bf16, max_steps=settings.grpo_steps, per_device_train_batch_size=16 // settings.grpo_micro_batches,
                                                   gradient_accumulation_steps=settings.grpo_micro_batches,
                                                   num_generations=8, max_completion_length=settings.max_new_tokens,
                                                   temperature=settings.temperature, beta=0.0,
                                                   learning_rate=1e-5 if settings.base else 1e-4, logging_steps=1, seed=settings.seed)),
            train_dataset=Dataset.from_list(grpo_rows).shuffle(seed=settings.seed),
            processing_class=tokenizer,
            prm=prm,
            executor=executor,
        )
        quiet_progress(grpo, "PRM-GRPO", keys=("reward",))
        grpo.train()
        grpo.save_model(out / "policy-prm-grpo")
        rewards = [entry["reward"] for entry in grpo.state.log_history if "reward" in entry]
        changed = _weights_changed(before, grpo.model)
        report["prm_grpo"] = {"steps": grpo.state.global_step, "rewards": rewards, "weights_changed": changed}
        print(f"      mean reward per step: {', '.join(f'{r:.2f}' for r in rewards)}; weights changed: {'yes' if changed else 'no'}")
        _done(start, report, "prm_grpo", out / "policy-prm-grpo")

        start = _stage(6, f"inference on the {len(test_questions)} held-out questions: greedy, vote@{settings.n}, PRM best-of-{settings.n}")
        sft_policy = transformers.AutoModelForCausalLM.from_pretrained(policy_dir)
        sampler = TransformersSampler(sft_policy, tokenizer, temperature=settings.temperature,
                                      max_new_tokens=settings.max_new_tokens, batch_size=_batch_for(settings.n), bf16=bf16)
        records = list(predict(test_questions, db_dir, sampler, executor, strategy="best-of-n", n=settings.n, prm=prm, chunk_size=64))
        write_predictions(records, out / "predictions.jsonl")
        best_ex, best_correct = _accuracy(records, test_questions, db_dir, executor)
        voted = [dict(r, sql=r["candidates"][_vote_pick(r["candidates"])]["sql"]) for r in records]
        vote_ex, vote_correct = _accuracy(voted, test_questions, db_dir, executor)
        grpo_greedy = TransformersSampler(grpo.model, tokenizer, temperature=0, max_new_tokens=settings.max_new_tokens, batch_size=64, bf16=bf16)
        grpo_ex, grpo_correct = _accuracy(
            list(predict(test_questions, db_dir, grpo_greedy, executor, strategy="greedy", chunk_size=64)), test_questions, db_dir, executor
        )
        report["inference"] = {
            "questions": len(test_questions),
            "sft_greedy_ex": sft_ex,
            f"vote@{settings.n}_ex": vote_ex,
            f"prm_best_of_{settings.n}_ex": best_ex,
            "prm_grpo_greedy_ex": grpo_ex,
        }
        print(f"      greedy {sft_correct}, vote@{settings.n} {vote_correct}, PRM best-of-{settings.n} {best_correct}, "
              f"PRM-GRPO greedy {grpo_correct} of {len(test_questions)} right")
        _done(start, report, "inference", out / "predictions.jsonl")

    seconds = time.perf_counter() - began
    report["summary"] = {
        "sft_greedy_ex": sft_ex,
        "best_of_n_ex": best_ex,
        "vote_ex": vote_ex,
        "prm_grpo_greedy_ex": grpo_ex,
        "grpo_rewards": rewards,
        "grpo_weights_changed": changed,
        "prm_step_auroc": auroc,
        "seconds": seconds,
    }
    _print_summary(report, settings)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nreport: {out / 'report.json'}")
    return report


def _batch_for(n: int) -> int:
    """Prompts per ``generate`` call when each has ``n`` samples: about 128 rows decode at once, which on two cores
    costs less per sample than 64 rows or than all of them (``benchmarks/bench_sampling.py --batch-size``)."""
    return max(1, 128 // n)


def _subset(questions: list[dict], size: int | None, seed: int) -> list[dict]:
    """A seeded subset of ``size`` questions in file order (all of them with ``None`` or more than there are)."""
    from .small_models.training import split_by_question

    return questions if size is None or size >= len(questions) else split_by_question(questions, [size], seed)[0]


def _vote_pick(candidates: list[dict]) -> int:
    """The first candidate with the most votes (votes count candidates with the same result; 0 if it failed)."""
    return max(range(len(candidates)), key=lambda i: (candidates[i]["votes"], -i))


def _print_summary(report: dict, settings: QuickstartSettings) -> None:
    summary, n, k = report["summary"], settings.n, report["split"]["test_questions"]
    rewards = summary["grpo_rewards"]
    rows = [
        ("1 SFT data", f"{report['sft_data']['rows']} chains of CTEs", f"{report['sft_data']['multi_step_share']:.0%} with 2+ steps", "-"),
        ("2 SFT", "policy-sft/", f"greedy EX {summary['sft_greedy_ex']:.1%} on {k} held-out",
         f"{report['sft']['zero_shot_ex']:.1%} before SFT" if settings.base else "0% before training"),
        ("3 step labels", "prm-data/", f"{report['labels']['trajectories']} trajectories", f"{report['labels']['positive_step_share']:.0%} of steps positive"),
        ("4 PRM", "prm/", f"step AUROC {summary['prm_step_auroc']:.3f}", "chance 0.5"),
        ("5 PRM-GRPO", "policy-prm-grpo/",
         f"reward {rewards[0]:.2f} -> {rewards[-1]:.2f}" if rewards else "no steps",
         "weights changed" if summary["grpo_weights_changed"] else "no signal: weights unchanged"),
        ("6 best-of-N", "predictions.jsonl", f"PRM best-of-{n} EX {summary['best_of_n_ex']:.1%}",
         f"greedy {summary['sft_greedy_ex']:.1%}, vote@{n} {summary['vote_ex']:.1%}"),
        ("6 PRM-GRPO policy", "policy-prm-grpo/", f"greedy EX {summary['prm_grpo_greedy_ex']:.1%}", f"SFT greedy {summary['sft_greedy_ex']:.1%}"),
    ]
    widths = [max(len(row[i]) for row in rows + [("stage", "made", "figure", "baseline")]) for i in range(4)]
    print(f"\n[7/7] summary ({summary['seconds']:.0f} s in all; the same {k} held-out questions for every EX figure)")
    for row in [("stage", "made", "figure", "baseline")] + rows:
        print("      " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
    if settings.base:
        print(f"      {k} questions on the sample's 5 databases, all seen in training: the method across databases is\n"
              "      python benchmarks/bench_method.py --base smollm2-135m-instruct (README).")
    else:
        print("      These figures come from a model trained from scratch in minutes: they show every stage working, not whether\n"
              "      process supervision helps, which such a model cannot show. For that, the method on a pretrained model\n"
              "      (SmolLM2-135M-Instruct) across databases: python benchmarks/bench_method.py --base smollm2-135m-instruct (README).")
