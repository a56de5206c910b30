"""Model cards and pushes to the Hub, offline: render -> load -> assert, and patched HfApi calls."""

from unittest import mock

from datasets import Dataset
from huggingface_hub import ModelCard

from trl_processsql.hub import BASE_TAGS, model_card
from trl_processsql.prm import ProcessRewardConfig, ProcessRewardModel, ProcessRewardTrainer
from trl_processsql.small_models import build_tiny_model, build_tokenizer


def test_policy_card_carries_a_model_index_and_a_runnable_usage_snippet():
    card = model_card(
        "org/policy",
        kind="policy",
        model_name="policy",
        trainer_name="PRMGRPOTrainer",
        base_model="Qwen/Qwen2.5-Coder-7B-Instruct",
        datasets=["org/sft-data"],
        results={"Spider dev": 0.817},
    )
    loaded = ModelCard(str(card))
    assert loaded.data.base_model == "Qwen/Qwen2.5-Coder-7B-Instruct"
    assert loaded.data.datasets == ["org/sft-data"] and loaded.data.library_name == "transformers"
    assert loaded.data.license == "apache-2.0" and "text-to-sql" in loaded.data.tags
    [result] = loaded.data.eval_results
    assert (result.dataset_name, result.metric_type, result.metric_value) == ("Spider dev", "execution_accuracy", 0.817)
    assert "| Spider dev | execution accuracy | 81.7 % |" in loaded.text
    assert 'AutoModelForCausalLM.from_pretrained("org/policy")' in loaded.text


def test_prm_trainer_pushes_its_model_with_our_card(tmp_path):
    tokenizer = build_tokenizer()
    model = build_tiny_model(tokenizer, "token-classification")
    data = Dataset.from_list([{"prompt": "Question: q", "completions": ["SELECT 1\n-- 1 row (1): 1"], "labels": [1.0]}] * 4)
    args = ProcessRewardConfig(
        output_dir=str(tmp_path / "prm"),
        max_steps=1,
        use_cpu=True,
        bf16=False,
        report_to="none",
        save_strategy="no",
        activation_checkpointing=False,
        hub_model_id="org/tiny-prm",
    )
    trainer = ProcessRewardTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)
    trainer.train()
    trainer.card_results = {"Spider dev (synthetic labels)": 0.71}
    api = mock.MagicMock()
    api.create_repo.return_value.repo_id = "org/tiny-prm"
    trackio = "https://huggingface.co/spaces/org/trackio"
    with mock.patch("transformers.trainer.hf_api", return_value=api), mock.patch(
        "trl.trainer.base_trainer.get_trackio_space_url", return_value=trackio
    ):
        trainer.push_to_hub()
    upload = api.upload_folder.call_args.kwargs
    assert upload["repo_id"] == "org/tiny-prm" and upload["folder_path"] == str(tmp_path / "prm")
    card = ModelCard.load(tmp_path / "prm" / "README.md")
    # TRL's card: its tags, tracker link and citations, with our tags and the Reward-SQL paper
    assert {"generated_from_trainer", f"trackio:{trackio}", "trl", "process-reward-model"} <= set(card.data.tags)
    assert set(BASE_TAGS) <= set(card.data.tags)
    assert f"]({trackio})" in card.text and "@software{vonwerra2020trl" in card.text
    assert "a method introduced in [Reward-SQL" in card.text and "https://huggingface.co/papers/2505.04671" in card.text
    assert "@article{zhang2025rewardsql" in card.text and "[None]" not in card.text  # a local base is not linked
    # ours: the model-index, the pipeline, a usage snippet that runs in place of TRL's quick start
    [result] = card.data.eval_results
    assert (result.dataset_name, result.metric_type, result.metric_value) == ("Spider dev (synthetic labels)", "step_auroc", 0.71)
    assert card.data.pipeline_tag == "token-classification" and card.data.model_name == "tiny-prm"
    assert card.data.license == "apache-2.0" and "licence" not in card.data.to_dict()
    assert 'ProcessRewardModel.from_pretrained("org/tiny-prm")' in card.text and "## Quick start" not in card.text
    # what was pushed loads as a PRM from a local directory laid out like the Hub repository
    assert ProcessRewardModel.from_pretrained(tmp_path / "prm").score_steps(["q"], [["SELECT 1"]])[0][0] is not None


def test_predictions_push_sends_the_records_with_a_predictions_card(tmp_path, monkeypatch):
    import json

    from datasets import Dataset
    from huggingface_hub import DatasetCard, HfApi

    from trl_processsql.inference.predict import push_predictions

    record = {"index": 0, "db_id": "toy", "question": "q", "sql": "SELECT 1", "strategy": "best-of-n", "selected": 0,
              "candidates": [{"sql": "SELECT 1", "status": "ok", "prm_scores": [0.9], "prm_score": 0.9, "votes": 1, "completion": "SELECT 1"}]}
    path = tmp_path / "preds.jsonl"
    path.write_text(json.dumps(record) + "\n")
    sent = {}
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: mock.Mock(repo_id=repo_id, endpoint="https://hub"))
    monkeypatch.setattr(HfApi, "upload_file", lambda self, **kw: sent.update(card=kw["path_or_fileobj"].decode()))
    monkeypatch.setattr(Dataset, "push_to_hub", lambda self, repo_id, **kw: sent.update(repo=repo_id, rows=self.num_rows))
    url = push_predictions(path, "org/preds", model="org/policy", strategy="best-of-n")
    assert url == "https://hub/datasets/org/preds" and sent["repo"] == "org/preds" and sent["rows"] == 1
    card = DatasetCard(sent["card"])
    assert "text-to-sql" in card.data.tags and "Predictions of org/policy (best-of-n)" in card.text
    assert "| candidates that run | 1 of 1 |" in card.text
