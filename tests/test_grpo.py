"""PRM-GRPO: per-token advantages by hand, the trainer hook, training, resuming, several processes, TRL contract."""

import inspect
import os
import subprocess
import sys
import textwrap
from unittest import mock

import pytest
import torch
from datasets import Dataset
from trl import GRPOTrainer

from trl_processsql.data import database_path, load_questions, sample_paths
from trl_processsql.grpo import PRMGRPOConfig, PRMGRPOTrainer, get_process_advantage
from trl_processsql.grpo.advantages import rewardsql_advantages
from trl_processsql.prompts import prompt_messages
from trl_processsql.small_models import save_tiny_checkpoint


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("grpo-models")
    return save_tiny_checkpoint(root / "policy", "causal-lm"), save_tiny_checkpoint(root / "prm", "token-classification")


@pytest.fixture(scope="module")
def dataset():
    questions_file, db_dir = sample_paths()
    rows = []
    for q in load_questions(questions_file)[:8]:
        path = database_path(db_dir, q["db_id"])
        rows.append({"prompt": prompt_messages(q["question"], path), "db_path": str(path), "gold_sql": q["gold_sql"]})
    return Dataset.from_list(rows)


def _args(tmp_path, **kwargs):
    defaults = dict(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=16,
        max_steps=2,
        use_cpu=True,
        bf16=False,
        report_to="none",
        logging_steps=1,
        save_strategy="no",
        activation_checkpointing=False,
        disable_tqdm=True,
        beta=0.0,
        seed=0,
    )
    return PRMGRPOConfig(**{**defaults, **kwargs})


# -- the trainer ------------------------------------------------------------------------------------


def test_trainer_turns_hand_made_step_scores_into_token_advantages(checkpoints, dataset, tmp_path):
    policy, prm = checkpoints
    trainer = PRMGRPOTrainer(model=str(policy), args=_args(tmp_path), train_dataset=dataset, prm=str(prm))
    tokenizer = trainer.processing_class
    text = "WITH a AS (SELECT Singer_ID FROM singer)\n\nSELECT count(*) FROM a"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    inputs = [dict(dataset[0]) for _ in range(2)]
    fake = {
        "prompt_ids": torch.ones(2, 3, dtype=torch.long),
        "prompt_mask": torch.ones(2, 3, dtype=torch.long),
        "completion_ids": torch.tensor([ids, ids]),
        "completion_mask": torch.ones(2, len(ids), dtype=torch.long),
        "advantages": torch.tensor([1.0, -1.0]),
    }
    with mock.patch.object(GRPOTrainer, "_generate_and_score_completions", return_value=fake), mock.patch.object(
        trainer.prm, "score_steps", return_value=[[0.8, 0.3], [0.8, 0.3]]
    ):
        trainer.model.train()
        output = trainer._generate_and_score_completions(inputs)
    first_step_tokens = len(tokenizer("WITH a AS (SELECT Singer_ID FROM singer)", add_special_tokens=False)["input_ids"])
    advantages = output["advantages"]
    assert advantages.shape == (2, len(ids))
    assert torch.allclose(advantages[0, :first_step_tokens], torch.tensor(0.8))
    assert torch.allclose(advantages[0, -1], torch.tensor(0.3))
    assert torch.allclose(advantages[1, :first_step_tokens], torch.tensor(-0.2))
    assert torch.allclose(advantages[1, -1], torch.tensor(-0.7))


COMPLETIONS = [
    "WITH a AS (SELECT Singer_ID FROM singer)\n\nSELECT count(*) FROM a",
    "WITH b AS (SELECT Name, Age FROM singer WHERE Age > 30)\n\nSELECT Name FROM b ORDER BY Age",
    "WITH c AS (SELECT Country FROM singer)\n\nSELECT DISTINCT Country FROM c",
    "SELECT Name FROM singer WHERE Is_male = 'T'",
]


def _scored_batch(trainer, dataset, advantages):
    """Run PRM-GRPO's scoring on fixed completions; the rewards run their queries as GRPO would."""
    tokenizer = trainer.processing_class
    ids = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in COMPLETIONS]
    width = max(map(len, ids))
    inputs = [dict(dataset[0]) for _ in COMPLETIONS]
    trainer.executor.execute(inputs[0]["db_path"], inputs[0]["gold_sql"], cache=True)  # gold cached before counting

    def generate_and_reward(self, batch):
        trainer.reward_funcs[0](COMPLETIONS, [x["db_path"] for x in batch], [x["gold_sql"] for x in batch])
        return {
            "prompt_ids": torch.ones(len(ids), 3, dtype=torch.long),
            "prompt_mask": torch.ones(len(ids), 3, dtype=torch.long),
            "completion_ids": torch.tensor([row + [tokenizer.pad_token_id] * (width - len(row)) for row in ids]),
            "completion_mask": torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in ids]),
            "advantages": advantages.clone(),
        }

    sent, run = [], trainer.executor._run
    with mock.patch.object(GRPOTrainer, "_generate_and_score_completions", generate_and_reward), mock.patch.object(
        # a query judged where it runs carries its gold along: (database, SQL) is what runs
        trainer.executor, "_run", side_effect=lambda queries, progress: (sent.extend(q[:2] for q in queries), run(queries, progress))[1]
    ), mock.patch.object(trainer.prm, "score_steps", wraps=trainer.prm.score_steps) as score_steps:
        trainer.model.train()
        output = trainer._generate_and_score_completions(inputs)
    scored = sum(len(call.args[0]) for call in score_steps.call_args_list)
    return output["advantages"], scored, sent


def test_zero_advantage_completions_are_skipped_with_exactly_the_advantages_of_scoring_them(checkpoints, dataset, tmp_path):
    """rewardsql scores only completions with a nonzero outcome advantage; the same rule unskipped gives the same tensor."""
    policy, prm = checkpoints
    gated = PRMGRPOTrainer(model=str(policy), args=_args(tmp_path, step_weighting="prm_entropy"), train_dataset=dataset, prm=str(prm))
    unskipped = PRMGRPOTrainer(
        model=str(policy),
        args=_args(tmp_path, step_weighting="prm_entropy"),
        train_dataset=dataset,
        prm=gated.prm,
        process_advantage=lambda **inputs: rewardsql_advantages(**inputs),  # a plain callable: nothing is skipped
    )
    advantages = torch.tensor([0.75, 0.0, -1.5, 0.0])
    ours, ours_scored, ours_sent = _scored_batch(gated, dataset, advantages)
    theirs, theirs_scored, theirs_sent = _scored_batch(unskipped, dataset, advantages)
    assert torch.equal(ours, theirs)
    assert (ours[[1, 3]] == 0).all() and (ours[[0, 2]] != 0).any()
    assert (ours_scored, theirs_scored) == (2, 4)
    assert gated._metrics["train"]["process/scored_completions"] == [2.0]
    # the skipped completions' CTE views never ran; their final queries ran once, for the reward
    assert len(ours_sent) == len(set(ours_sent)) == len(COMPLETIONS) + 2
    assert len(theirs_sent) == len(set(theirs_sent)) == len(COMPLETIONS) + 3


def test_the_final_query_runs_once_for_the_reward_and_the_last_step_view(checkpoints, dataset, tmp_path):
    """Within a generation batch each distinct (database, SQL) runs once, counted at the workers."""
    from trl_processsql.cocte import VIEW_ROWS, parse_cocte, step_view_sql

    policy, prm = checkpoints
    trainer = PRMGRPOTrainer(model=str(policy), args=_args(tmp_path, process_advantage="additive"), train_dataset=dataset, prm=str(prm))
    _, scored, sent = _scored_batch(trainer, dataset, torch.tensor([1.0, 0.0, -1.0, 0.0]))
    db = os.path.abspath(dataset[0]["db_path"])
    views = {
        (db, step_view_sql(cocte, k, VIEW_ROWS + 1 if step.name else None))
        for cocte in map(parse_cocte, COMPLETIONS)
        for k, step in enumerate(cocte.steps)
    }
    finals = {(db, parse_cocte(text).sql) for text in COMPLETIONS}
    assert finals < views and scored == 4
    assert sorted(sent) == sorted(views), "a query ran twice, or a view did not run"


def test_a_user_rule_passed_to_the_trainer_shapes_the_advantages(checkpoints, dataset, tmp_path):
    policy, prm = checkpoints
    seen = {}

    def signs_on_scored_steps(advantages, completion_mask, step_spans, step_scores, group_ids, **kwargs):
        seen.update(group_ids=group_ids.tolist(), steps=[len(row) for row in step_scores])
        out = torch.zeros(completion_mask.shape)
        for i, spans in enumerate(step_spans):
            for start, end in spans:
                out[i, start:end] = torch.sign(advantages[i])
        return out

    args = _args(tmp_path, num_generations=2)
    trainer = PRMGRPOTrainer(model=str(policy), args=args, train_dataset=dataset, prm=str(prm), process_advantage=signs_on_scored_steps)
    assert trainer.process_advantage is signs_on_scored_steps and args.process_advantage == "rewardsql"
    out, scored, _ = _scored_batch(trainer, dataset, torch.tensor([0.5, -0.5, 2.0, 0.0]))
    assert seen == {"group_ids": [0, 0, 1, 1], "steps": [2, 2, 2, 1]} and scored == 4
    assert set(out[0][out[0] != 0].tolist()) == {1.0} and set(out[1][out[1] != 0].tolist()) == {-1.0}
    assert (out[3] == 0).all()


@pytest.mark.parametrize("mode", ["rewardsql", "additive", "none"])
def test_short_training_runs_in_every_mode(checkpoints, dataset, tmp_path, mode):
    policy, prm = checkpoints
    weighting = "policy_entropy" if mode == "additive" else ("prm_entropy" if mode == "rewardsql" else "none")
    args = _args(tmp_path, process_advantage=mode, step_weighting=weighting)
    trainer = PRMGRPOTrainer(model=str(policy), args=args, train_dataset=dataset, prm=str(prm))
    trainer.train()
    assert trainer.state.global_step == 2
    logged = trainer.state.log_history[0]
    if mode == "none":
        assert "rewards/prm/mean" in logged
    else:
        assert {"process/step_score_mean", "process/steps_per_completion", "process/failed_step_share"} <= set(logged)


def test_an_ensemble_prm_folder_trains_like_one_prm(checkpoints, dataset, tmp_path):
    from trl_processsql.prm import StepScoreEnsemble, save_prm_ensemble

    policy, prm = checkpoints
    other = save_tiny_checkpoint(tmp_path / "prm-seed1", "token-classification", seed=1)
    ensemble = save_prm_ensemble([prm, other], tmp_path / "prm-ensemble")
    trainer = PRMGRPOTrainer(model=str(policy), args=_args(tmp_path), train_dataset=dataset, prm=str(ensemble))
    trainer.train()
    assert isinstance(trainer.prm.model, StepScoreEnsemble) and len(trainer.prm.model.members) == 2
    assert trainer.state.global_step == 2 and "process/step_score_mean" in trainer.state.log_history[0]


def test_policy_entropy_weighting_needs_per_token_advantages(checkpoints, dataset, tmp_path):
    policy, prm = checkpoints
    args = _args(tmp_path, process_advantage="none", step_weighting="policy_entropy")
    with pytest.raises(ValueError, match="policy_entropy"):
        PRMGRPOTrainer(model=str(policy), args=args, train_dataset=dataset, prm=str(prm))


def test_config_rejects_unknown_choices(tmp_path):
    with pytest.raises(ValueError, match="unknown process advantage 'sparse'"):
        _args(tmp_path, process_advantage="sparse")
    with pytest.raises(ValueError, match="step_weighting must be one of"):
        _args(tmp_path, step_weighting="loud")


def test_resume_from_checkpoint_continues_at_the_right_step(checkpoints, dataset, tmp_path):
    policy, prm = checkpoints
    first = PRMGRPOTrainer(model=str(policy), args=_args(tmp_path, save_strategy="steps", save_steps=2), train_dataset=dataset, prm=str(prm))
    first.train()
    checkpoint = tmp_path / "out" / "checkpoint-2"
    assert checkpoint.is_dir()
    second = PRMGRPOTrainer(model=str(policy), args=_args(tmp_path, max_steps=3), train_dataset=dataset, prm=str(prm))
    second.train(resume_from_checkpoint=str(checkpoint))
    assert second.state.global_step == 3
    assert [entry["step"] for entry in second.state.log_history if "loss" in entry] == [1, 2, 3]


def test_the_trainer_takes_grpo_trainers_arguments_in_its_order_and_its_own_by_keyword():
    ours = inspect.signature(PRMGRPOTrainer.__init__).parameters
    theirs = list(inspect.signature(GRPOTrainer.__init__).parameters)
    assert list(ours)[: len(theirs)] == theirs
    own = list(ours)[len(theirs) :]
    assert own == ["prm", "executor", "process_advantage"]
    assert all(ours[name].kind is inspect.Parameter.KEYWORD_ONLY for name in own)


def test_the_trainer_leaves_the_config_it_is_given_as_it_was(checkpoints, dataset, tmp_path):
    policy, prm = checkpoints
    args = _args(tmp_path)
    before = args.to_dict()
    trainer = PRMGRPOTrainer(str(policy), args=args, train_dataset=dataset, prm=str(prm), process_advantage="additive")
    assert args.to_dict() == before and args.process_advantage == "rewardsql"
    assert trainer.process_advantage is get_process_advantage("additive")


def test_named_and_plain_sql_rewards_run_in_the_trainers_executor(checkpoints, dataset, tmp_path):
    from trl_processsql.rewards import cocte_format_reward, executable_steps_reward

    policy, prm = checkpoints
    funcs = ["execution_accuracy", executable_steps_reward, cocte_format_reward]
    trainer = PRMGRPOTrainer(str(policy), funcs, _args(tmp_path), dataset, prm=str(prm))
    assert [f.__name__ for f in trainer.reward_funcs] == ["execution_accuracy_reward", "executable_steps_reward", "cocte_format_reward"]
    assert trainer.reward_funcs[0].executor is trainer.executor and trainer.reward_funcs[1].executor is trainer.executor
    assert trainer.reward_funcs[2] is cocte_format_reward and trainer.prm_reward.executor is trainer.executor


def test_trl_internals_we_rely_on_are_still_there(checkpoints, dataset, tmp_path):
    """A TRL upgrade that renames or reshapes these breaks PRMGRPOTrainer: fail here, loudly."""
    assert "compute_entropy" in inspect.signature(GRPOTrainer._get_per_token_logps_and_entropies).parameters
    assert "advantages.dim() == 1" in inspect.getsource(GRPOTrainer._compute_loss)  # (B, T) advantages accepted
    policy, _ = checkpoints
    trainer = GRPOTrainer(model=str(policy), reward_funcs=lambda completions, **kw: [0.0] * len(completions), args=_args(tmp_path), train_dataset=dataset)
    trainer.model.train()
    output = trainer._generate_and_score_completions([dict(dataset[i // 4]) for i in range(4)])
    assert {"prompt_ids", "prompt_mask", "completion_ids", "completion_mask", "advantages"} <= set(output)
    assert output["advantages"].shape == (4,)
    assert output["completion_mask"].shape == output["completion_ids"].shape
    assert hasattr(trainer, "num_generations") and hasattr(trainer, "num_generations_eval")


@pytest.mark.slow
def test_two_processes_train_together(checkpoints, tmp_path):
    policy, prm = checkpoints
    script = tmp_path / "two_ranks.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            from datasets import Dataset
            from trl_processsql.data import database_path, load_questions, sample_paths
            from trl_processsql.grpo import PRMGRPOConfig, PRMGRPOTrainer, get_process_advantage
            from trl_processsql.prompts import prompt_messages

            questions_file, db_dir = sample_paths()
            rows = [{{"prompt": prompt_messages(q["question"], database_path(db_dir, q["db_id"])),
                      "db_path": str(database_path(db_dir, q["db_id"])), "gold_sql": q["gold_sql"]}}
                    for q in load_questions(questions_file)[:8]]
            args = PRMGRPOConfig(output_dir={str(tmp_path / "out")!r}, per_device_train_batch_size=2, num_generations=4,
                                 max_completion_length=12, max_steps=2, use_cpu=True, bf16=False, report_to="none",
                                 logging_steps=1, save_strategy="no", activation_checkpointing=False, beta=0.0,
                                 process_advantage="additive", disable_tqdm=True)
            trainer = PRMGRPOTrainer(model={str(policy)!r}, args=args, train_dataset=Dataset.from_list(rows), prm={str(prm)!r})
            trainer.train()
            if trainer.accelerator.is_main_process:
                print("WORLD", trainer.accelerator.num_processes, "STEP", trainer.state.global_step,
                      "METRIC", "process/step_score_mean" in trainer.state.log_history[0])
            trainer.end()  # a gloo group left to interpreter teardown can abort the process (SIGABRT) after training
            """
        )
    )
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(script)]
    result = subprocess.run(torchrun, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "WORLD 2 STEP 2 METRIC True" in result.stdout


@pytest.mark.parametrize("kind", ["byte-level BPE", "SentencePiece-style Metaspace"])
def test_token_offsets_index_the_text_grpo_decoded(kind):
    """Steps are mapped to tokens through these offsets: they must index the real decoded text, non-ASCII included."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from trl_processsql.grpo.trainer import token_end_offsets
    from trl_processsql.small_models import build_tokenizer

    text = "WITH s AS (SELECT Name FROM singer)\n\nSELECT count(*) FROM s WHERE Name = 'Français'"
    if kind == "byte-level BPE":
        tokenizer = build_tokenizer()
    else:
        raw = Tokenizer(models.BPE(unk_token="<unk>"))
        raw.pre_tokenizer, raw.decoder = pre_tokenizers.Metaspace(), decoders.Metaspace()
        raw.train_from_iterator([text] * 10, trainers.BpeTrainer(vocab_size=200, special_tokens=["<unk>"]))
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    decoded = tokenizer.decode(ids, skip_special_tokens=True)
    ends = token_end_offsets(tokenizer, ids, len(decoded))
    assert ends[-1] == len(decoded) and ends == sorted(ends)
    pieces = [decoded[a:b] for a, b in zip([0, *ends[:-1]], ends)]
    assert " FROM" in pieces and pieces[0] == "WITH"[: len(pieces[0])]  # each token owns the text it adds
