"""Pass rates by sampling and execution, and the questions within the policy's reach (GRPO's prompts)."""

import pytest

from trl_processsql.inference import pass_rates, within_reach
from trl_processsql.inference import ChatSampler

RIGHT = "WITH adults AS (\n  SELECT id FROM singer WHERE age > 30\n)\n\nSELECT count(*) FROM adults"  # 3, the gold's answer
WRONG = "SELECT count(*) FROM singer WHERE age < 30"  # 1
BROKEN = "SELECT count(*) FROM singers"


class AnswersByQuestion(ChatSampler):
    """Answers each conversation in turn from the list its question names (the question is the prompt's last line)."""

    def __init__(self, answers):
        self.answers, self.calls = answers, []

    def sample(self, conversations, n=1):
        self.calls.append(n)
        picks = []
        for conversation in conversations:
            question = next(key for key in self.answers if key in conversation[-1]["content"])
            picks.append([self.answers[question][k % len(self.answers[question])] for k in range(n)])
        return picks


@pytest.fixture
def questions(toy_db):
    gold = {"db_id": "toy", "gold_sql": "SELECT count(*) FROM singer WHERE age > 30", "evidence": ""}
    return [{**gold, "index": 17, "question": q} for q in ("always right?", "sometimes right?", "never right?")], toy_db.parent.parent


def test_pass_rate_is_the_share_of_samples_whose_result_matches_the_gold(questions, executor):
    qs, db_dir = questions
    sampler = AnswersByQuestion({"always": [RIGHT], "sometimes": [RIGHT, WRONG, BROKEN, RIGHT], "never": [WRONG, BROKEN]})
    assert pass_rates(qs, db_dir, sampler, executor, n=4, prompt_style="compact") == [1.0, 0.5, 0.0]
    assert sampler.calls == [4]


def test_within_reach_keeps_questions_answered_sometimes_but_not_always(questions, executor):
    qs, db_dir = questions
    sampler = AnswersByQuestion({"always": [RIGHT], "sometimes": [WRONG, RIGHT], "never": [BROKEN]})
    rates = pass_rates(qs, db_dir, sampler, executor, n=2, prompt_style="compact")
    assert [q["question"] for q in within_reach(qs, rates)] == ["sometimes right?"]
    assert [q["question"] for q in within_reach(qs, rates, low=0.6, high=1.0)] == []


def test_a_question_without_its_database_gets_no_rate(questions, executor):
    qs, db_dir = questions
    qs = [*qs, {**qs[0], "db_id": "nowhere"}]
    rates = pass_rates(qs, db_dir, AnswersByQuestion({"right": [RIGHT]}), executor, n=2, prompt_style="compact")
    assert rates == [1.0, 1.0, 1.0, None]
    assert len(within_reach(qs, rates, low=0.0, high=1.0)) == 0


def test_bad_arguments_are_refused(questions, executor):
    qs, db_dir = questions
    with pytest.raises(ValueError, match="n must be at least 1"):
        pass_rates(qs, db_dir, AnswersByQuestion({"right": [RIGHT]}), executor, n=0)
    with pytest.raises(ValueError, match="3 questions but 2 pass rates"):
        within_reach(qs, [0.5, 0.5])
    with pytest.raises(ValueError, match="low < high"):
        within_reach(qs, [0.5] * 3, low=0.5, high=0.5)
