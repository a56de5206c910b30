"""The rewardsql format of the paper's released checkpoints: prompt text, PRM input string, tag positions, scores."""

import json

import pytest
import torch

from trl_processsql.cli import main
from trl_processsql.cocte import Step, StepResult
from trl_processsql.formats import FORMATS, get_format
from trl_processsql.inference import TransformersSampler, load_prm, load_sampler, score_candidates
from trl_processsql.prm import ProcessRewardModel
from trl_processsql.sql import ExecutionResult
from trl_processsql.small_models import build_tiny_model, build_tokenizer

CHAIN = [
    ("WITH old AS (SELECT id FROM singer WHERE age > 40)", ((1,), (3,)), "{(1,): 1, (3,): 1}"),
    ("SELECT count(*) FROM old", ((2,),), "{(2,): 1}"),
]
PROMPT = "Question: How many singers are old? "


@pytest.fixture(scope="module")
def tokenizer():
    """A byte-level tokenizer in which the tag " и" and the verdicts " +" and " -" are single tokens."""
    texts = [f"{sql}<result>{view}</result> и + и -" for sql, _, view in CHAIN] * 40 + [PROMPT] * 5
    return build_tokenizer(texts, vocab_size=400)


@pytest.fixture(scope="module")
def causal_lm(tokenizer):
    return build_tiny_model(tokenizer, "causal-lm", hidden_size=32, seed=3)


def _views():
    views, at = [], 0
    for k, (sql, rows, _) in enumerate(CHAIN):
        name = "old" if k == 0 else None
        views.append(StepResult(Step(name, sql, at, at + len(sql)), sql, ExecutionResult("ok", rows, ("x",)), "our rendering"))
        at += len(sql) + 2
    return views


def test_the_tag_and_verdicts_are_single_tokens(tokenizer):
    assert [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in (" и", " +", " -")] == [1, 1, 1]


def test_prm_input_string_of_a_known_chain(tokenizer, causal_lm):
    prm = ProcessRewardModel(causal_lm, tokenizer, format="rewardsql")
    steps = FORMATS["rewardsql"].prm_steps(_views())
    encoded = prm.encode(PROMPT, steps)
    expected = (
        "Question: How many singers are old? "
        "WITH old AS (SELECT id FROM singer WHERE age > 40)<result>{(1,): 1, (3,): 1}</result> и "
        "SELECT count(*) FROM old;<result>{(2,): 1}</result> и "
    )
    assert tokenizer.decode(encoded.input_ids) == expected
    # the prompt and the steps are one text: the prompt's last space joins the first step's first word
    assert encoded.input_ids == tokenizer(expected)["input_ids"]
    # our own format: the view as an SQL comment after each step, no tag
    assert FORMATS["processsql"].prm_steps(_views())[1] == "SELECT count(*) FROM old\n-- our rendering"


def test_tag_positions_are_the_tag_tokens(tokenizer, causal_lm):
    prm = ProcessRewardModel(causal_lm, tokenizer, format="rewardsql")
    encoded = prm.encode(PROMPT, FORMATS["rewardsql"].prm_steps(_views()))
    tag_id = tokenizer(" и", add_special_tokens=False)["input_ids"][0]
    assert encoded.step_ends == [i for i, t in enumerate(encoded.input_ids) if t == tag_id]
    assert len(encoded.step_ends) == 2 and encoded.input_ids[-1] != tag_id  # the text ends with a space after the last tag
    short = ProcessRewardModel(causal_lm, tokenizer, format="rewardsql", max_length=encoded.step_ends[0] + 1)
    assert short.encode(PROMPT, FORMATS["rewardsql"].prm_steps(_views())).step_ends == encoded.step_ends[:1]


def test_step_scores_are_p_plus_against_p_minus_at_each_tag(tokenizer, causal_lm):
    prm = ProcessRewardModel(causal_lm, tokenizer, format="rewardsql")
    prompt, steps = PROMPT, FORMATS["rewardsql"].prm_steps(_views())
    encoded = prm.encode(prompt, steps)
    with torch.no_grad():
        logits = causal_lm(torch.tensor([encoded.input_ids])).logits[0]
    plus, minus = (tokenizer(t, add_special_tokens=False)["input_ids"][0] for t in (" +", " -"))
    expected = [torch.softmax(logits[p, [plus, minus]], -1)[0].item() for p in encoded.step_ends]
    assert prm.score_steps([prompt], [steps])[0] == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="reads its verdicts at ' и'"):
        ProcessRewardModel(causal_lm, tokenizer, format="rewardsql", step_tag=" ки")
    with pytest.raises(ValueError, match="unknown format"):
        get_format("other")


def test_the_policy_reads_plain_text_without_chat_template(tokenizer, causal_lm):
    conversation = [{"role": "user", "content": PROMPT}]
    plain = TransformersSampler(causal_lm, tokenizer, format="rewardsql", max_new_tokens=4)
    assert plain.prompt_text(conversation) == PROMPT  # the released policy's prompt ends in the space its answer follows
    assert plain.prompt_text(conversation, "WITH a AS (SELECT 1),\n\n") == PROMPT + "WITH a AS (SELECT 1),\n\n"
    assert TransformersSampler(causal_lm, tokenizer).prompt_text(conversation).startswith("<|im_start|>user\n")
    no_template = build_tokenizer(["SELECT 1"] * 5, vocab_size=300)
    no_template.chat_template = None
    with pytest.raises(ValueError, match="format='rewardsql'"):
        TransformersSampler(causal_lm, no_template)
    assert len(TransformersSampler(causal_lm, no_template, format="rewardsql", max_new_tokens=3).sample([conversation], 2)[0]) == 2


def test_candidates_are_scored_through_the_prm_s_format(tokenizer, causal_lm, toy_db, sandbox):
    seen = []

    class Recording(ProcessRewardModel):
        def score_steps(self, prompts, completions):
            seen.extend(completions)
            return super().score_steps(prompts, completions)

    prm = Recording(causal_lm, tokenizer, format="rewardsql")
    completion = "WITH old AS (SELECT id FROM singer WHERE age > 40)\n\nSELECT count(*) FROM old"
    [candidate] = score_candidates(["Question?"], [completion], [toy_db], sandbox, prm)
    assert candidate.ok and len(candidate.prm_scores) == 2
    assert seen[0][0].startswith("WITH old AS (SELECT id FROM singer WHERE age > 40)") and seen[0][0].endswith("</result>")
    assert "<result>" in seen[0][1] and "-- " not in seen[0][1]


def test_cli_predicts_and_evaluates_in_the_rewardsql_format(tokenizer, causal_lm, tmp_path, capsys):
    checkpoint = tmp_path / "causal"
    causal_lm.save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)
    assert load_prm(checkpoint, format="rewardsql", device="cpu").format.name == "rewardsql"
    assert load_sampler(checkpoint, device="cpu", format="rewardsql").format.name == "rewardsql"
    out = tmp_path / "report.json"
    common = ["--sample", "--model", str(checkpoint), "--prm", str(checkpoint), "--format", "rewardsql", "--device", "cpu"]
    argv = ["evaluate", *common, "--n", "2", "--limit", "2", "--max-new-tokens", "8", "--output", str(out), "--workers", "1"]
    assert main(argv) == 0
    report = json.loads(out.read_text())
    assert report["settings"]["format"] == "rewardsql" and report["totals"]["n"] == 2
    records = [json.loads(line) for line in out.with_suffix(".predictions.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all(len(r["candidates"]) == 2 for r in records)
    assert main(["predict", *common, "--prm-step-tag", " ки", "--output", str(tmp_path / "p.jsonl")]) == 2
    assert "fixes the PRM's step tag" in capsys.readouterr().err


def test_demo_loads_both_models_in_the_format(tokenizer, causal_lm, tmp_path):
    from trl_processsql.demo.models import load_policy
    from trl_processsql.demo.models import load_prm as demo_prm

    checkpoint = tmp_path / "causal"
    causal_lm.save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)
    policy = load_policy(checkpoint, max_new_tokens=4, format="rewardsql")
    assert policy.sampler(1).format.name == policy.sampler(4).format.name == "rewardsql"
    assert demo_prm(checkpoint, format="rewardsql").step_tag == " и"
