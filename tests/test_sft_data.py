"""SFT data: formats and columns, prompts, verified completions, skip reasons, eval split, CLI, Hub card and push."""


import pytest
from datasets import DatasetDict, load_from_disk

from trl_processsql.cli import main
from trl_processsql.cocte import parse_cocte
from trl_processsql.data import load_questions, sample_paths
from trl_processsql.prompts import INSTRUCTION
from trl_processsql.sft_data import SKIP_REASONS, build_sft_dataset, sft_card, split_by_database

QUESTIONS_FILE, DB_DIR = sample_paths()
SPIDER_COLUMNS = ["prompt", "completion", "db_id", "question", "gold_sql", "num_steps"]


@pytest.fixture(scope="module")
def sample_questions():
    return load_questions(QUESTIONS_FILE)


@pytest.fixture(scope="module")
def conversational(sample_questions, executor):
    return build_sft_dataset(sample_questions, DB_DIR, executor=executor)


def test_conversational_rows_are_one_user_and_one_assistant_message(conversational, sample_questions):
    dataset, report = conversational
    assert dataset.column_names == SPIDER_COLUMNS  # Spider has no evidence: no evidence column
    assert report.total == report.runnable == len(sample_questions) and report.converted == len(dataset) > 250
    assert dataset.features["num_steps"].dtype == "int32"
    for row in dataset.select(range(0, len(dataset), 25)):
        assert [m["role"] for m in row["prompt"]] == ["user"] and [m["role"] for m in row["completion"]] == ["assistant"]


def test_prompt_holds_instruction_schema_and_question(conversational):
    row = next(r for r in conversational[0] if r["db_id"] == "concert_singer")
    prompt = row["prompt"][0]["content"]
    assert prompt.startswith(INSTRUCTION) and prompt.endswith(f"Question: {row['question']}")
    assert "Database: concert_singer" in prompt and "# Table: singer_in_concert" in prompt
    assert "Primary Key" in prompt and "Examples: [" in prompt and "Foreign keys:" in prompt


def test_every_completion_reads_back_into_its_number_of_steps(conversational):
    dataset, report = conversational
    for row in dataset:
        cocte = parse_cocte(row["completion"][0]["content"])
        assert cocte.parse_error is None and not cocte.fallback
        assert len(cocte.steps) == row["num_steps"]
    assert sum(report.steps.values()) == len(dataset) and max(report.steps) >= 3


def test_prompt_completion_format_is_plain_strings_with_evidence_when_given(sandbox):
    questions = [
        {"db_id": "concert_singer", "question": "How many French singers are there?", "evidence": "French refers to Country = 'France'",
         "gold_sql": "SELECT count(*) FROM singer WHERE Country = 'France'"},
        {"db_id": "pets_1", "question": "How many pets are there?", "evidence": "", "gold_sql": "SELECT count(*) FROM pets"},
    ]
    dataset, _ = build_sft_dataset(questions, DB_DIR, format="prompt-completion", executor=sandbox)
    assert dataset.column_names == SPIDER_COLUMNS[:4] + ["evidence"] + SPIDER_COLUMNS[4:]
    first, second = dataset
    assert isinstance(first["prompt"], str) and isinstance(first["completion"], str)
    assert "Evidence: French refers to Country = 'France'\nQuestion: How many French singers" in first["prompt"]
    assert "Evidence:" not in second["prompt"] and second["evidence"] == ""


def test_skipped_questions_are_counted_by_reason(sandbox):
    questions = [
        {"db_id": "concert_singer", "question": "q", "gold_sql": "SELECT Name FROM singer"},
        {"db_id": "nowhere", "question": "q", "gold_sql": "SELECT 1"},
        {"db_id": "nowhere", "question": "q", "gold_sql": "SELECT 2"},
        {"db_id": "concert_singer", "question": "q", "gold_sql": "SELECT no_such_column FROM singer"},
    ]
    dataset, report = build_sft_dataset(questions, DB_DIR, executor=sandbox)
    assert len(dataset) == report.converted == 1
    assert (report.total, report.runnable) == (4, 2)
    assert report.skipped == {"no_database": 2, "gold_error": 1}
    assert report.missing_databases == ["nowhere"]
    assert "no such column" in report.examples["gold_error"][1]
    stats = report.stats()
    assert stats["converted"] == "1 / 2 runnable (50.0%)"
    assert stats["skipped, no_database"] == f"2 ({SKIP_REASONS['no_database']})"


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="format must be one of"):
        build_sft_dataset([], DB_DIR, format="chatml")


def test_eval_split_shares_no_database(conversational):
    dataset = conversational[0]
    splits = split_by_database(dataset, 0.1, seed=3)
    train, test = set(splits["train"]["db_id"]), set(splits["test"]["db_id"])
    assert train and test and not train & test
    assert splits.num_rows["train"] + splits.num_rows["test"] == len(dataset)
    assert splits.num_rows["test"] >= 0.1 * len(dataset)
    assert split_by_database(dataset, 0.1, seed=3)["test"]["question"] == splits["test"]["question"]


def test_eval_split_refuses_what_it_cannot_do(conversational):
    dataset = conversational[0]
    with pytest.raises(ValueError, match="between 0 and 1"):
        split_by_database(dataset, 1.0)
    with pytest.raises(ValueError, match="at least two databases"):
        split_by_database(dataset.filter(lambda row: row["db_id"] == "pets_1"), 0.5)


# -- the build-sft command -------------------------------------------------------------------------


def test_build_sft_on_the_sample_prints_coverage_and_saves_a_split_dataset(tmp_path, capsys):
    output = tmp_path / "sft"
    assert main(["build-sft", "--sample", "--output", str(output), "--eval-fraction", "0.2", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    saved = load_from_disk(output)
    assert isinstance(saved, DatasetDict) and set(saved) == {"train", "test"}
    converted = saved.num_rows["train"] + saved.num_rows["test"]
    assert "questions: 299" in out and f"converted: {converted} / 299 runnable" in out and "steps: 1: " in out
    assert f"dataset written to {output}: train {saved.num_rows['train']} rows" in out
    assert not set(saved["train"]["db_id"]) & set(saved["test"]["db_id"])


def test_build_sft_names_missing_databases_and_shows_a_failure_per_reason(tmp_path, capsys):
    questions = tmp_path / "q.json"
    questions.write_text('[{"db_id": "pets_1", "question": "q", "query": "SELECT count(*) FROM pets"},'
                         ' {"db_id": "pets_1", "question": "q", "query": "SELECT nope FROM pets"},'
                         ' {"db_id": "lost_db", "question": "q", "query": "SELECT 1"}]')
    output = tmp_path / "sft"
    args = ["build-sft", "--questions", str(questions), "--db-dir", str(DB_DIR), "--output", str(output), "--format", "prompt-completion"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "converted: 1 / 2 runnable" in out and "skipped, no_database: 1" in out and "lost_db" in out
    assert "skipped, gold_error: 1" in out and "e.g. SELECT nope FROM pets" in out and "no such column" in out
    assert isinstance(load_from_disk(output)["train"][0]["prompt"], str)


def test_build_sft_replaces_a_saved_dataset_only_with_overwrite(tmp_path, capsys):
    output = tmp_path / "sft"
    questions = tmp_path / "q.json"
    questions.write_text('[{"db_id": "pets_1", "question": "q", "query": "SELECT count(*) FROM pets"}]')
    args = ["build-sft", "--questions", str(questions), "--db-dir", str(DB_DIR), "--output", str(output)]
    assert main(args) == 0
    assert main(args) == 2
    assert "exists and is not empty (add --overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
    assert load_from_disk(output).num_rows == {"train": 1}


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "give --questions and --db-dir, or --sample"),
        (["--sample", "--questions", "q.json"], "--sample replaces"),
        (["--questions", "nope.json", "--db-dir", str(DB_DIR)], "questions file not found"),
        (["--questions", str(QUESTIONS_FILE), "--db-dir", "no/such/dir"], "database folder not found"),
        (["--sample", "--eval-fraction", "1.5"], "--eval-fraction must lie between 0 and 1"),
        (["--sample", "--workers", "0"], "--workers must be at least 1"),
        (["--sample", "--private"], "--private applies to --push-to-hub"),
    ],
)
def test_build_sft_bad_arguments_get_one_line_errors(extra, message, tmp_path, capsys):
    assert main(["build-sft", "--output", str(tmp_path / "out"), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_build_sft_refuses_to_overwrite_a_folder_that_is_not_a_dataset(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("keep me")
    assert main(["build-sft", "--sample", "--output", str(tmp_path), "--overwrite"]) == 2
    assert "does not hold a saved dataset" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "keep me"


# -- dataset card and Hub push, offline ----------------------------------------------------------------


def test_sft_card_renders_metadata_columns_figures_and_attribution(conversational):
    from huggingface_hub import DatasetCard

    from trl_processsql.hub import BASE_TAGS, dataset_card

    dataset, report = conversational
    fields = sft_card(split_by_database(dataset, 0.2), report, format="conversational", command="trl-processsql build-sft --sample")
    card = DatasetCard(str(dataset_card("me/cocte-sft", num_rows=len(dataset), **fields)))
    assert card.data.license == "cc-by-sa-4.0"
    assert card.data.task_categories == ["text-generation"]
    assert set(BASE_TAGS) | {"sft"} == set(card.data.tags)
    assert card.data.size_categories == ["n<1K"] and card.data.pretty_name == fields["title"]
    for column in SPIDER_COLUMNS:
        assert f"| `{column}` |" in card.text
    assert "| `evidence` |" not in card.text
    assert f"| converted | {report.converted} / 299 runnable" in card.text and "| splits | train:" in card.text
    assert "trl-processsql build-sft --sample" in card.text and 'load_dataset("me/cocte-sft")' in card.text
    assert "Spider 1.0" in card.text and "EMNLP 2018" in card.text and "CC BY-SA 4.0" in card.text


@pytest.fixture
def fake_hub(monkeypatch):
    """HfApi and push_to_hub patched: records every call in order and sends nothing."""
    from huggingface_hub import HfApi, RepoUrl

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    calls = []

    def create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", repo_id, kwargs))
        return RepoUrl(f"https://huggingface.co/datasets/{repo_id if '/' in repo_id else 'me/' + repo_id}")

    def upload_file(self, **kwargs):
        calls.append(("upload_file", kwargs["repo_id"], kwargs))

    def push_to_hub(self, repo_id, **kwargs):
        calls.append(("push_to_hub", repo_id, {**kwargs, "splits": dict(self.num_rows)}))

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_file", upload_file)
    monkeypatch.setattr(DatasetDict, "push_to_hub", push_to_hub)
    return calls


def test_build_sft_push_sends_the_card_first_then_the_data(tmp_path, fake_hub, capsys):
    from huggingface_hub import DatasetCard

    args = ["build-sft", "--sample", "--output", str(tmp_path / "sft"), "--eval-fraction", "0.2"]
    assert main([*args, "--push-to-hub", "cocte-sft", "--private"]) == 0
    assert [(name, repo) for name, repo, _ in fake_hub] == [
        ("create_repo", "cocte-sft"),
        ("upload_file", "me/cocte-sft"),
        ("push_to_hub", "me/cocte-sft"),
    ]
    (_, _, create), (_, _, upload), (_, _, push) = fake_hub
    assert create == {"repo_type": "dataset", "private": True, "exist_ok": True}
    assert upload["path_in_repo"] == "README.md" and upload["repo_type"] == "dataset"
    card = DatasetCard(upload["path_or_fileobj"].decode("utf-8"))
    assert card.data.license == "cc-by-sa-4.0" and "trl-processsql" in card.data.tags
    assert 'load_dataset("me/cocte-sft")' in card.text and "--eval-fraction 0.2" in card.text
    assert push["private"] is True and push["splits"] == dict(load_from_disk(tmp_path / "sft").num_rows)
    assert "dataset pushed to https://huggingface.co/datasets/me/cocte-sft" in capsys.readouterr().out


def test_a_failed_push_is_one_line_and_keeps_the_saved_dataset(tmp_path, monkeypatch, capsys):
    from huggingface_hub import HfApi

    def refuse(self, *args, **kwargs):
        raise RuntimeError("401 Unauthorized")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(HfApi, "create_repo", refuse)
    output = tmp_path / "sft"
    assert main(["build-sft", "--sample", "--output", str(output), "--push-to-hub", "me/x"]) == 2
    err = capsys.readouterr().err  # the progress bars, then the error
    last = err.strip().splitlines()[-1]
    assert last.startswith("trl-processsql: error: the dataset is saved in") and last.endswith("401 Unauthorized")
    assert "Traceback" not in err
    assert load_from_disk(output).num_rows["train"] > 250
