"""Inference: samplers, candidate scoring, step-level beam search, the predict pipeline and its command."""

import json

import pytest

from trl_processsql.cli import main
from trl_processsql.cocte import STEP_SEPARATOR
from trl_processsql.evaluation import evaluate, load_predictions
from trl_processsql.inference import (
    STRATEGY_NAMES,
    ChatSampler,
    Continuation,
    ModelLoadError,
    TransformersSampler,
    beam_search,
    generate_pruned,
    load_prm,
    load_sampler,
    predict,
    score_candidates,
    split_step,
    write_predictions,
)
from trl_processsql.prm import AGGREGATIONS
from trl_processsql.small_models import build_tiny_model, build_tokenizer, save_tiny_checkpoint

RIGHT = "WITH adults AS (\n  SELECT id FROM singer WHERE age > 30\n)\n\nSELECT count(*) FROM adults"  # 3
WRONG = "WITH young AS (\n  SELECT id FROM singer WHERE age < 30\n)\n\nSELECT count(*) FROM young"  # 1
BROKEN = "SELECT count(*) FROM singers"
PROSE = "I do not know."


class ScriptedSampler(ChatSampler):
    """Hand-written completions: ``answers`` in turn for whole answers, ``steps[prefix]`` for continuations."""

    def __init__(self, answers=(), steps=None):
        self.answers, self.steps, self.calls = list(answers), steps or {}, []

    def sample(self, conversations, n=1):
        self.calls.append(("sample", len(conversations), n))
        return [[self.answers[k % len(self.answers)] for k in range(n)] for _ in conversations]

    def continue_steps(self, conversations, prefixes, k=1):
        self.calls.append(("continue", list(prefixes), k))
        return [[Continuation(*self.steps[p][j % len(self.steps[p])]) for j in range(k)] for p in prefixes]


class KeywordPRM:
    """Scores a step 0.9 if it says ``age > 30``, 0.8 if it selects from ``adults``, else 0.3."""

    def __init__(self):
        self.prompts = []

    def score_steps(self, prompts, completions):
        self.prompts.extend(prompts)
        return [[0.9 if "age > 30" in s else 0.8 if "FROM adults" in s else 0.3 for s in steps] for steps in completions]


@pytest.fixture
def toy_questions(toy_db):
    question = {"index": 0, "db_id": "toy", "question": "How many singers are older than 30?", "gold_sql": "SELECT count(*) FROM singer WHERE age > 30", "evidence": ""}
    return [question, {**question, "index": 1}], toy_db.parent.parent


# -- samplers -----------------------------------------------------------------------------------


def test_split_step_cuts_at_the_first_blank_line_after_the_step():
    assert split_step("WITH a AS (SELECT 1),\n\nb AS") == Continuation("WITH a AS (SELECT 1),", False)
    assert split_step("\n\nSELECT 1") == Continuation("SELECT 1", True)
    assert split_step("") == Continuation("", True)


@pytest.fixture(scope="module")
def tiny_policy():
    """A tiny policy with weights spread wide: its greedy answers differ from prompt to prompt."""
    import torch

    tokenizer = build_tokenizer()
    model = build_tiny_model(tokenizer, "causal-lm", hidden_size=32)
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.5)
    return model, tokenizer


def test_transformers_sampler_returns_n_samples_per_prompt_in_prompt_order(tiny_policy):
    model, tokenizer = tiny_policy
    sampler = TransformersSampler(model, tokenizer, max_new_tokens=4, batch_size=2)
    conversations = [[{"role": "user", "content": "x" * k}] for k in (40, 1, 20)]
    samples = sampler.sample(conversations, n=3)
    assert [len(row) for row in samples] == [3, 3, 3] and all(isinstance(t, str) for row in samples for t in row)


def test_greedy_answers_do_not_depend_on_the_batch_they_are_padded_in(tiny_policy):
    model, tokenizer = tiny_policy
    sampler = TransformersSampler(model, tokenizer, temperature=0, max_new_tokens=6, batch_size=4)
    short = [{"role": "user", "content": "How many singers?"}]
    long = [{"role": "user", "content": "Show the name of every singer older than 30 from France, by age."}]
    alone = sampler.sample([short])[0]
    assert sampler.sample([long, short]) == [sampler.sample([long])[0], alone]
    assert alone != sampler.sample([long])[0]
    with pytest.raises(ValueError, match="one completion per prompt"):
        sampler.sample([short], n=2)


def test_continuations_start_after_the_prefix_and_stop_at_the_step_separator(tiny_policy, monkeypatch):
    model, tokenizer = tiny_policy
    sampler = TransformersSampler(model, tokenizer, max_new_tokens=4)
    seen = {}

    def generate(**kwargs):
        seen.update(kwargs)
        return original(**kwargs)

    original = model.generate
    monkeypatch.setattr(model, "generate", generate)
    prefix = "WITH a AS (SELECT 1)," + STEP_SEPARATOR
    steps = sampler.continue_steps([[{"role": "user", "content": "q"}]], [prefix], k=2)
    assert len(steps[0]) == 2 and all(isinstance(s, Continuation) for s in steps[0])
    assert seen["generation_config"].stop_strings == [STEP_SEPARATOR] and seen["tokenizer"] is tokenizer
    prompt = tokenizer.decode(seen["input_ids"][0], skip_special_tokens=False)
    assert prompt.endswith("<|im_start|>assistant\n" + prefix)


def _left_padded(tokenizer, texts):
    import torch

    ids = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]
    width = max(map(len, ids))
    input_ids = torch.full((len(ids), width), tokenizer.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    for row, tokens in enumerate(ids):
        input_ids[row, width - len(tokens) :], attention_mask[row, width - len(tokens) :] = torch.tensor(tokens), 1
    return input_ids, attention_mask


def _greedy(tokenizer, **settings):
    from transformers import GenerationConfig

    return GenerationConfig(max_new_tokens=9, do_sample=False, pad_token_id=tokenizer.pad_token_id, **settings)


PADDED_PROMPTS = ["How many singers are there?", "Show the name of every singer older than 30, by age."]


def test_pruned_generation_writes_what_one_generate_call_writes(tiny_policy):
    """Chunks on a carried cache, and n samples from one shared prefill of a left-padded prompt, change no token."""
    import torch

    model, tokenizer = tiny_policy
    input_ids, attention_mask = _left_padded(tokenizer, PADDED_PROMPTS)
    config = _greedy(tokenizer, eos_token_id=tokenizer.eos_token_id)
    with torch.inference_mode():
        whole = generate_pruned(model, input_ids, attention_mask, config, every=None)
        for n, every in [(1, 2), (3, 4), (2, 1)]:
            pruned = generate_pruned(model, input_ids, attention_mask, config, n=n, every=every)
            assert [t.tolist() for t in pruned] == [t.tolist() for t in whole for _ in range(n)], (n, every)


def test_a_finished_sample_leaves_the_batch_and_keeps_its_tokens(tiny_policy, monkeypatch):
    import torch

    model, tokenizer = tiny_policy
    input_ids, attention_mask = _left_padded(tokenizer, PADDED_PROMPTS)
    with torch.inference_mode():
        whole = generate_pruned(model, input_ids, attention_mask, _greedy(tokenizer), every=None)
    first = [int(tokens[0]) for tokens in whole]
    assert first[0] != first[1], "the fixture's two prompts should start their answers differently"
    rows_per_call = []
    original = model.generate

    def generate(**kwargs):
        rows_per_call.append(len(kwargs["input_ids"]))
        return original(**kwargs)

    monkeypatch.setattr(model, "generate", generate)
    with torch.inference_mode():  # the first prompt's first token ends it: it is done after one token
        pruned = generate_pruned(model, input_ids, attention_mask, _greedy(tokenizer, eos_token_id=first[0]), every=3)
    assert pruned[0].tolist() == [first[0]] + [tokenizer.pad_token_id] * 2
    assert pruned[1].tolist() == whole[1].tolist() and len(pruned[1]) == 9
    assert rows_per_call == [2, 1, 1]


def test_pruned_continuations_stop_where_one_generate_call_stops(tiny_policy):
    import torch

    model, tokenizer = tiny_policy
    input_ids, attention_mask = _left_padded(tokenizer, PADDED_PROMPTS)
    config = _greedy(tokenizer, eos_token_id=tokenizer.eos_token_id, stop_strings=["e"])
    with torch.inference_mode():
        free = generate_pruned(model, input_ids, attention_mask, _greedy(tokenizer), every=None)
        whole = generate_pruned(model, input_ids, attention_mask, config, every=None, tokenizer=tokenizer, stop="e")
        pruned = generate_pruned(model, input_ids, attention_mask, config, every=2, tokenizer=tokenizer, stop="e")
    texts = [[tokenizer.decode(t, skip_special_tokens=True) for t in tokens] for tokens in (free, whole, pruned)]
    assert texts[2] == texts[1] and texts[2] != texts[0]  # the stop string cut at least one answer short


def test_a_tokenizer_without_chat_template_is_refused(tiny_policy):
    model, tokenizer = tiny_policy
    plain = build_tokenizer()
    plain.chat_template = None
    with pytest.raises(ValueError, match="chat template"):
        TransformersSampler(model, plain)


# -- candidates ---------------------------------------------------------------------------------


def test_candidates_carry_status_rows_and_step_scores(toy_db, executor):
    prm = KeywordPRM()
    texts = [RIGHT, BROKEN, PROSE, "WITH a AS (SELECT id FROM singer),"]
    found = score_candidates(["the prompt"] * 4, texts, [toy_db] * 4, executor, prm)
    assert [c.status for c in found] == ["ok", "error", "no_sql", "incomplete"]
    assert found[0].rows == ((3,),) and found[0].prm_scores == [0.9, 0.8]
    assert found[1].prm_scores == [0.0]  # a failing view scores 0 whatever the PRM says
    assert found[2].prm_scores == [] and found[0].completion == RIGHT
    assert set(prm.prompts) == {"the prompt"}
    assert score_candidates(["p"], [RIGHT], [toy_db], executor)[0].prm_scores is None


# -- beam search --------------------------------------------------------------------------------


def test_beam_search_keeps_the_best_partial_chains_by_prm_score(toy_db, executor):
    first_right = "WITH adults AS (\n  SELECT id FROM singer WHERE age > 30\n)"
    first_wrong = "WITH young AS (\n  SELECT id FROM singer WHERE age < 30\n)"
    sampler = ScriptedSampler(
        steps={
            "": [(first_wrong, False), (first_right, False)],
            first_right + STEP_SEPARATOR: [("SELECT count(*) FROM adults", True)],
            first_wrong + STEP_SEPARATOR: [("SELECT count(*) FROM young", True)],
        }
    )
    conversation = [{"role": "user", "content": "q"}]
    pools = beam_search([conversation], ["p"], [toy_db], sampler, KeywordPRM(), executor, beam_width=1, expansions=2)
    assert [c.sql for c in pools[0]] == [RIGHT]
    assert sampler.calls[1] == ("continue", [first_right + STEP_SEPARATOR], 2)  # the wrong chain was dropped
    wide = beam_search([conversation], ["p"], [toy_db], sampler, KeywordPRM(), executor, beam_width=2, expansions=1)
    assert [c.sql for c in wide[0]] == [WRONG]  # one expansion per chain: only the first scripted step


def test_beam_search_stops_after_max_steps_with_the_chains_as_they_are(toy_db, executor):
    step = "WITH a AS (SELECT id FROM singer),"
    sampler = ScriptedSampler(steps={"": [(step, False)], step + STEP_SEPARATOR: [("b AS (SELECT id FROM a),", False)]})
    pools = beam_search([[{"role": "user", "content": "q"}]], ["p"], [toy_db], sampler, KeywordPRM(), executor, max_steps=2)
    assert [c.status for c in pools[0]] == ["incomplete"]
    assert len(sampler.calls) == 2


# -- the pipeline -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "strategy, expected",
    [("greedy", WRONG), ("vote", WRONG), ("best-of-n", RIGHT), ("prm-vote", WRONG)],  # prm-vote: 0.9 against 0.8
)
def test_each_strategy_chooses_from_the_same_candidates(strategy, expected, toy_questions, executor):
    questions, db_dir = toy_questions
    sampler = ScriptedSampler([WRONG, RIGHT, BROKEN, WRONG, WRONG])  # PRM (min): 0.3, 0.8, 0, 0.3, 0.3
    records = list(predict(questions, db_dir, sampler, executor, strategy=strategy, n=5, prm=KeywordPRM()))
    assert [r["sql"] for r in records] == [expected, expected]
    if strategy == "greedy":
        assert sampler.calls == [("sample", 2, 1)]
    else:
        candidates = records[0]["candidates"]
        assert [c["status"] for c in candidates] == ["ok", "ok", "error", "ok", "ok"]
        assert [c["votes"] for c in candidates] == [3, 1, 0, 3, 3]
        assert candidates[1]["prm_scores"] == [0.9, 0.8] and candidates[1]["prm_score"] == 0.8
        assert candidates[2]["prm_score"] == 0.0


def test_predictions_are_read_and_scored_by_the_evaluator(toy_questions, executor, tmp_path):
    questions, db_dir = toy_questions
    records = predict(questions, db_dir, ScriptedSampler([WRONG, RIGHT, RIGHT]), executor, strategy="vote", n=3)
    path = tmp_path / "preds.jsonl"
    assert write_predictions(records, path) == 2
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert set(lines[0]) == {"index", "db_id", "question", "sql", "strategy", "selected", "candidates"}
    assert lines[0]["candidates"][0]["prm_score"] is None  # no PRM
    report = evaluate(questions, load_predictions(path, questions), db_dir, executor=executor)
    assert report.totals["correct"] == 2


def test_beam_strategy_records_its_final_beam(toy_questions, executor):
    questions, db_dir = toy_questions
    sampler = ScriptedSampler(steps={"": [(BROKEN, True), ("SELECT count(*) FROM singer WHERE age > 30", True)]})
    records = list(predict(questions[:1], db_dir, sampler, executor, strategy="beam", n=4, beam_width=2, prm=KeywordPRM()))
    assert records[0]["sql"] == "SELECT count(*) FROM singer WHERE age > 30"
    assert [c["status"] for c in records[0]["candidates"]] == ["ok", "error"]
    assert sampler.calls == [("continue", [""], 2)]


def test_the_prompt_is_the_style_the_policy_was_trained_on(toy_questions, executor):
    questions, db_dir = toy_questions

    class CompactPolicySampler(ScriptedSampler):
        model = type("Model", (), {"config": type("Config", (), {"processsql_prompt_style": "compact"})()})()

        def sample(self, conversations, n=1):
            self.seen = [c[-1]["content"] for c in conversations]
            return super().sample(conversations, n)

    sampler = CompactPolicySampler([RIGHT])
    prm = KeywordPRM()
    list(predict(questions[:1], db_dir, sampler, executor, strategy="best-of-n", n=1, prm=prm))
    assert sampler.seen == prm.prompts == ["Database: toy\nQuestion: How many singers are older than 30?"]
    list(predict(questions[:1], db_dir, sampler, executor, strategy="greedy", prompt_style="full"))
    assert "# Table: singer" in sampler.seen[0]  # an explicit style wins over the saved one


def test_questions_on_missing_databases_get_no_record(toy_questions, executor, caplog):
    questions, db_dir = toy_questions
    lost = {**questions[0], "index": 2, "db_id": "nowhere"}
    records = list(predict([*questions, lost], db_dir, ScriptedSampler([RIGHT]), executor, strategy="vote", n=1))
    assert [r["index"] for r in records] == [0, 1]
    assert "nowhere" in caplog.text


def test_predict_refuses_what_it_cannot_do(toy_questions, executor):
    questions, db_dir = toy_questions
    with pytest.raises(ValueError, match="needs a process reward model"):
        list(predict(questions, db_dir, ScriptedSampler([RIGHT]), executor, strategy="best-of-n"))
    with pytest.raises(ValueError, match="unknown strategy"):
        list(predict(questions, db_dir, ScriptedSampler([RIGHT]), executor, strategy="oracle"))


# -- loading and the command line ---------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("checkpoints")
    policy = save_tiny_checkpoint(root / "policy", hidden_size=32)
    prm = save_tiny_checkpoint(root / "prm", kind="token-classification", hidden_size=32)
    return policy, prm


def test_missing_checkpoints_fail_with_the_reason(tmp_path):
    with pytest.raises(ModelLoadError, match="no such file or directory"):
        load_sampler(tmp_path / "none")
    with pytest.raises(ModelLoadError, match="process reward model"):
        load_prm(tmp_path)  # a folder with no model in it
    with pytest.raises(ModelLoadError, match="no GGUF file model.gguf"):
        load_sampler(tmp_path, gguf_file="model.gguf")


def test_a_folder_that_is_not_a_checkpoint_is_named_as_such(tmp_path, capsys):
    dataset = tmp_path / "sft-data"
    (dataset / "train").mkdir(parents=True)
    (dataset / "dataset_dict.json").write_text('{"splits": ["train"]}')
    with pytest.raises(ModelLoadError, match=r"not a transformers checkpoint \(no config.json, adapter_config.json or prm_ensemble.json; it holds dataset_dict.json, train\)"):
        load_sampler(dataset, device="cpu")
    args = ["predict", "--model", str(dataset), "--sample", "--strategy", "greedy", "--output", str(tmp_path / "p.jsonl")]
    assert main(args) == 2
    assert "not a transformers checkpoint" in capsys.readouterr().err


def test_a_load_failure_gives_the_whole_reason_on_one_line(checkpoints, monkeypatch):
    import transformers

    def fail(*args, **kwargs):
        raise ValueError("Couldn't build the tokenizer from one of:\n(1) a tokenizer.json\n(2) a slow tokenizer")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", fail)
    with pytest.raises(ModelLoadError) as info:
        load_sampler(checkpoints[0], device="cpu")
    assert str(info.value).endswith("Couldn't build the tokenizer from one of: (1) a tokenizer.json (2) a slow tokenizer")


def test_a_policy_checkpoint_given_as_the_prm_is_refused(checkpoints, tmp_path, capsys):
    """Its scoring head would be newly initialised: random scores, not an error, unless refused."""
    policy, prm = checkpoints
    with pytest.raises(ModelLoadError, match="not a trained token-classification PRM: its checkpoint lacks score.bias, score.weight"):
        load_prm(policy, device="cpu")
    assert load_prm(prm, device="cpu").score_steps(["q"], [["SELECT 1"]])[0][0] >= 0.0
    args = ["predict", "--model", str(policy), "--prm", str(policy), "--sample", "--output", str(tmp_path / "p.jsonl")]
    assert main(args) == 2
    assert "lacks score.bias, score.weight" in capsys.readouterr().err


def test_predict_then_evaluate_on_the_sample_with_tiny_models(checkpoints, tmp_path, capsys):
    policy, prm = checkpoints
    out = tmp_path / "preds.jsonl"
    common = ["--sample", "--limit", "2", "--n", "2", "--max-new-tokens", "4", "--workers", "1", "--device", "cpu"]
    assert main(["predict", "--model", str(policy), "--prm", str(prm), *common, "--output", str(out)]) == 0
    assert "2 predictions (best-of-n) written" in capsys.readouterr().out
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["index"] for r in records] == [0, 1] and all(len(r["candidates"]) == 2 for r in records)

    report = tmp_path / "report.json"
    args = ["evaluate", "--model", str(policy), "--strategy", "vote", *common, "--output", str(report), "--quiet"]
    assert main(args) == 0
    saved = json.loads(report.read_text())
    assert saved["totals"]["n"] == 2 and saved["settings"]["strategy"] == "vote"
    assert (tmp_path / "report.predictions.jsonl").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["predict", "--model", "m", "--sample", "--output", "p.json"], "--output must end in .jsonl"),
        (["predict", "--model", "m", "--sample", "--output", "p.jsonl"], "--strategy best-of-n needs --prm"),
        (["predict", "--model", "m", "--sample", "--strategy", "vote", "--n", "0", "--output", "p.jsonl"], "--n must be at least 1"),
        (["predict", "--model", "./no-such-model", "--sample", "--strategy", "vote", "--output", "p.jsonl"], "no such file"),
        (["evaluate", "--sample"], "give --predictions, or --model"),
        (["evaluate", "--sample", "--model", "m", "--predictions", "p.jsonl"], "not both"),
        (["evaluate", "--sample", "--model", "m"], "--model needs --output"),
        (["evaluate", "--sample", "--predictions", "gold", "--limit", "3"], "--limit applies to predicting"),
    ],
)
def test_bad_predict_arguments_get_one_line_errors(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_predict_offers_the_packages_strategies_and_aggregations():
    import argparse

    from trl_processsql.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    choices = {a.dest: tuple(a.choices or ()) for a in commands["predict"]._actions}
    assert (choices["strategy"], choices["aggregation"]) == (STRATEGY_NAMES, tuple(AGGREGATIONS))


def test_the_vllm_backend_without_vllm_says_what_to_install(checkpoints):
    import importlib.util

    if importlib.util.find_spec("vllm"):
        pytest.skip("vllm is installed here")
    with pytest.raises(ModelLoadError, match="pip install vllm"):
        load_sampler(checkpoints[0], backend="vllm")
