"""The whole method end to end on the bundled sample, on a CPU, in a few minutes, with no download.

Six stages, each printing what it did and where its output lies:

1. SFT data: the sample's gold SQL as verified chains of CTEs (one database held out for the end);
2. SFT: a small policy, randomly initialised, fine-tuned on them with TRL's ``SFTTrainer``;
3. step labels: gold chains and mutants of them, each step with its executed view;
4. PRM: a small token-classification PRM trained with :class:`ProcessRewardTrainer`, its step
   AUROC measured on the held-out database;
5. PRM-GRPO: a few steps of :class:`PRMGRPOTrainer` on the SFT policy with the PRM;
6. best-of-N with the PRM on held-out questions, then execution accuracy.

The models are tiny and train for seconds: the figures show that every stage runs and hands its
output to the next, not what the method reaches with a 7B model (see the recipes for that).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["QuickstartSettings", "run_quickstart"]

HELD_OUT_DB = "concert_singer"


@dataclass
class QuickstartSettings:
    """Sizes of the quickstart run (defaults: about three minutes on two CPU cores)."""

    output_dir: str = "outputs/quickstart"
    sft_steps: int = 80
    prm_epochs: float = 2.0
    grpo_steps: int = 3
    eval_questions: int = 12
    n: int = 4
    max_new_tokens: int = 96
    seed: int = 0


def _stage(number: int, title: str) -> float:
    print(f"\n[{number}/6] {title}", flush=True)
    return time.perf_counter()


def _done(start: float, where: Path | None = None) -> None:
    suffix = f", output in {where}" if where is not None else ""
    print(f"      done in {time.perf_counter() - start:.0f} s{suffix}", flush=True)


def _cpu_args(output_dir: Path, **kwargs) -> dict:
    defaults = dict(
        output_dir=str(output_dir),
        use_cpu=True,
        bf16=False,
        report_to="none",
        save_strategy="no",
        logging_strategy="no",
        activation_checkpointing=False,
    )
    return {**defaults, **kwargs}


def run_quickstart(settings: QuickstartSettings | None = None) -> dict:
    """Run the six stages; returns (and writes to ``report.json``) the figures of each."""
    import logging

    import transformers
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from .data import load_questions, sample_paths
    from .evaluation import evaluate
    from .grpo import PRMGRPOConfig, PRMGRPOTrainer
    from .inference import TransformersSampler, predict, write_predictions
    from .labeling import gold_chains, label_statistics, mutation_rows, stepwise_dataset
    from .prm import ProcessRewardConfig, ProcessRewardModel, ProcessRewardTrainer
    from .prm.trainer import _auroc
    from .sft_data import build_sft_dataset
    from .sql import SQLExecutor
    from .tiny import build_tiny_model, build_tokenizer

    settings = settings or QuickstartSettings()
    transformers.logging.set_verbosity_error()
    logging.getLogger("trl_processsql").setLevel(logging.ERROR)
    out = Path(settings.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    questions_file, db_dir = sample_paths()
    questions = load_questions(questions_file)
    train_questions = [q for q in questions if q["db_id"] != HELD_OUT_DB]
    test_questions = [q for q in questions if q["db_id"] == HELD_OUT_DB][: settings.eval_questions]
    report: dict = {"held_out_database": HELD_OUT_DB}

    with SQLExecutor() as executor:
        start = _stage(1, "SFT data: gold SQL as verified chains of CTEs")
        sft_data, sft_report = build_sft_dataset(train_questions, db_dir, executor=executor)
        sft_data.save_to_disk(out / "sft-data")
        steps = sft_data["num_steps"]
        report["sft_data"] = {"rows": len(sft_data), "multi_step_share": sum(s > 1 for s in steps) / len(steps)}
        print(f"      {len(sft_data)} of {len(train_questions)} questions converted, {report['sft_data']['multi_step_share']:.0%} with 2+ steps")
        _done(start, out / "sft-data")

        start = _stage(2, "SFT: a small random policy learns to write chains of CTEs")
        tokenizer = build_tokenizer()
        policy = build_tiny_model(tokenizer, "causal-lm", hidden_size=96, num_layers=2, seed=settings.seed)
        sft = SFTTrainer(
            model=policy,
            args=SFTConfig(**_cpu_args(out / "policy-sft", max_steps=settings.sft_steps, per_device_train_batch_size=2,
                                       learning_rate=3e-3, max_length=4096, seed=settings.seed)),
            train_dataset=sft_data.remove_columns([c for c in sft_data.column_names if c not in ("prompt", "completion")]),
            processing_class=tokenizer,
        )
        sft.train()
        sft.save_model(out / "policy-sft")
        report["sft"] = {"final_loss": sft.state.log_history[-1].get("train_loss")}
        print(f"      {settings.sft_steps} steps, training loss {report['sft']['final_loss']:.3f}")
        _done(start, out / "policy-sft")

        start = _stage(3, "step labels: gold chains and mutants, every step executed")
        train_chains, _ = gold_chains(train_questions, db_dir, executor)
        test_chains, _ = gold_chains([q for q in questions if q["db_id"] == HELD_OUT_DB], db_dir, executor)
        train_rows = mutation_rows(train_chains, executor, seed=settings.seed)
        test_rows = mutation_rows(test_chains, executor, seed=settings.seed)
        stepwise_dataset(train_rows).save_to_disk(out / "prm-data")
        stats = label_statistics(train_rows)
        report["labels"] = {k: stats[k] for k in ("trajectories", "steps", "positive_step_share")}
        print(f"      {stats['trajectories']} trajectories, {stats['steps']} steps, {stats['positive_step_share']:.0%} positive")
        _done(start, out / "prm-data")

        start = _stage(4, "PRM: a small token classifier scores every step")
        prm_model = build_tiny_model(tokenizer, "token-classification", hidden_size=96, num_layers=2, seed=settings.seed)
        columns = ("prompt", "completions", "labels")
        prm_trainer = ProcessRewardTrainer(
            model=prm_model,
            args=ProcessRewardConfig(**_cpu_args(out / "prm", num_train_epochs=settings.prm_epochs, per_device_train_batch_size=8,
                                                 learning_rate=2e-3, max_length=768, max_prompt_length=96, seed=settings.seed)),
            train_dataset=Dataset.from_list([{k: r[k] for k in columns} for r in train_rows]),
            processing_class=tokenizer,
        )
        prm_trainer.train()
        prm = ProcessRewardModel(prm_trainer.model, tokenizer)
        scores = prm.score_steps([r["prompt"] for r in test_rows], [r["completions"] for r in test_rows])
        pairs = [(s, l >= 0.5) for row, ss in zip(test_rows, scores) for s, l in zip(ss, row["labels"]) if s is not None]
        import numpy as np

        auroc = _auroc(np.array([p for p, _ in pairs]), np.array([t for _, t in pairs]))
        prm_trainer.card_results = {f"Spider {HELD_OUT_DB} (synthetic labels)": auroc}
        prm_trainer.save_model(out / "prm")
        report["prm"] = {"held_out_step_auroc": auroc, "held_out_steps": len(pairs)}
        print(f"      step AUROC on the held-out database: {auroc:.3f} ({len(pairs)} steps; chance is 0.5)")
        _done(start, out / "prm")

        start = _stage(5, "PRM-GRPO: execution reward, PRM step scores decide the credit")
        grpo_rows = [{"prompt": r["prompt"], "db_path": str(db_dir / r["db_id"] / f"{r['db_id']}.sqlite"), "gold_sql": r["gold_sql"]} for r in sft_data]
        grpo = PRMGRPOTrainer(
            model=sft.model,
            args=PRMGRPOConfig(**_cpu_args(out / "policy-prm-grpo", max_steps=settings.grpo_steps, per_device_train_batch_size=4,
                                           num_generations=4, max_completion_length=settings.max_new_tokens, beta=0.0,
                                           learning_rate=1e-4, logging_strategy="steps", logging_steps=1,
                                           seed=settings.seed)),
            train_dataset=Dataset.from_list(grpo_rows).shuffle(seed=settings.seed),
            processing_class=tokenizer,
            prm=prm,
            executor=executor,
        )
        grpo.train()
        grpo.save_model(out / "policy-prm-grpo")
        logs = [entry for entry in grpo.state.log_history if "reward" in entry]
        report["prm_grpo"] = {
            "steps": grpo.state.global_step,
            "mean_reward": sum(e["reward"] for e in logs) / len(logs),
            "mean_steps_per_completion": sum(e.get("process/steps_per_completion", 0.0) for e in logs) / len(logs),
        }
        print(f"      {grpo.state.global_step} steps, mean reward {report['prm_grpo']['mean_reward']:.3f}, "
              f"{report['prm_grpo']['mean_steps_per_completion']:.1f} CTE steps per completion")
        _done(start, out / "policy-prm-grpo")

        start = _stage(6, f"best-of-{settings.n} with the PRM on {len(test_questions)} held-out questions, then EX")
        sampler = TransformersSampler(grpo.model, tokenizer, temperature=1.0, max_new_tokens=settings.max_new_tokens, batch_size=4)
        records = list(predict(test_questions, db_dir, sampler, executor, strategy="best-of-n", n=settings.n, prm=prm))
        write_predictions(records, out / "predictions.jsonl")
        predictions = {r["index"]: r["sql"] for r in records}
        result = evaluate(test_questions, [predictions.get(q["index"]) for q in test_questions], db_dir, executor=executor)
        result.save(out / "eval-report.json")
        totals = result.totals
        report["best_of_n"] = {k: totals[k] for k in ("n", "correct", "accuracy", "errors", "timeouts")}
        print(f"      execution accuracy {totals['accuracy']:.1%} ({totals['correct']}/{totals['n']}), "
              f"{totals['errors']} errors: a tiny model trained for seconds, so expect little")
        _done(start, out / "predictions.jsonl")

    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nreport: {out / 'report.json'}")
    return report
