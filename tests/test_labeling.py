"""Step labels: mutations of gold chains, execution checks, Monte Carlo rollouts, the label-steps command and its Hub push."""

import random
from collections import Counter

import pytest
from datasets import DatasetDict, load_from_disk

from trl_processsql.cli import main
from trl_processsql.cocte import STEP_SEPARATOR, parse_cocte
from trl_processsql.data import load_questions, sample_paths
from trl_processsql.labeling import (
    MUTATIONS,
    GoldChain,
    RolloutLabeler,
    Trajectory,
    gold_chains,
    label_statistics,
    label_steps,
    mutate_step,
    mutation_rows,
    policy_rows,
    stepwise_card,
    stepwise_dataset,
    stepwise_stats,
    trajectory_rows,
)
from trl_processsql.sql import results_match
from trl_processsql.sql.schema import read_schema

QUESTIONS_FILE, DB_DIR = sample_paths()

# On the toy database of conftest: French singers with a concert are Ann (two concerts) and Bo.
GOLD_SQL = "SELECT DISTINCT s.name FROM singer AS s JOIN concert AS c ON c.singer_id = s.id WHERE s.country = 'France'"
RICH_CHAIN = """WITH french AS (
  SELECT id, name, age FROM singer WHERE country = 'France' AND age > 30
),

performed AS (
  SELECT f.name, c.year FROM french AS f JOIN concert AS c ON c.singer_id = f.id
)

SELECT name, MAX(year) AS last_year FROM performed GROUP BY name ORDER BY last_year DESC LIMIT 5"""
NEGATED_CHAIN = """WITH young AS (
  SELECT id FROM singer WHERE age < 40 AND NOT name LIKE '%o%'
),

both_years AS (
  SELECT singer_id FROM concert WHERE year = 2014 INTERSECT SELECT singer_id FROM concert WHERE year = 2015
)

SELECT s.country, COUNT(DISTINCT c.year) AS n FROM singer AS s LEFT JOIN concert AS c ON c.singer_id = s.id
WHERE s.id IN (SELECT id FROM young) OR s.id IN (SELECT singer_id FROM both_years) GROUP BY s.country ORDER BY n DESC, s.country"""
WRONG_FINAL = """WITH french AS (SELECT id, name FROM singer WHERE country = 'France'),

performances AS (SELECT f.name FROM french AS f JOIN concert AS c ON c.singer_id = f.id),

names AS (SELECT name FROM performances)

SELECT name FROM names"""  # Ann twice: a wrong answer under Spider's multiset comparison
RIGHT = WRONG_FINAL.replace("SELECT name FROM names", "SELECT DISTINCT name FROM names")
SMALLER = [WRONG_FINAL.replace("FROM names", f"FROM names WHERE name = '{name}'") for name in ("Ann", "Bo")]  # 1 row each
FAILING = WRONG_FINAL.replace("SELECT name FROM names", "SELECT nickname FROM names")
ANSWER = "SELECT name FROM singer WHERE country = 'France' AND id IN (SELECT singer_id FROM concert)"


def _continuation(prefix: str, reaches_gold: bool) -> str:
    """What a policy may write after a prefix: one more CTE after a comma, else the final SELECT."""
    answer = ANSWER if reaches_gold else "SELECT name FROM singer"
    return f"answer AS ({answer})\n\nSELECT name FROM answer" if prefix.rstrip().endswith(",") else answer


def _chain(db_path, sql, gold_sql=GOLD_SQL):
    question = {"index": 0, "db_id": "toy", "question": "Which French singers performed?", "gold_sql": gold_sql}
    return GoldChain(question, db_path, parse_cocte(sql))


def _long_chain(steps: int) -> str:
    """``steps - 1`` CTEs that each copy the previous one, then a final SELECT of every singer (not the gold)."""
    ctes = ["WITH s1 AS (SELECT id, name, country FROM singer),"]
    ctes += [f"s{k} AS (SELECT id, name, country FROM s{k - 1})," for k in range(2, steps)]
    ctes[-1] = ctes[-1].removesuffix(",")
    return STEP_SEPARATOR.join([*ctes, f"SELECT name FROM s{steps - 1}"])


class FakePolicy:
    """Stands in for ``RolloutLabeler.generate``: from a prefix of k steps, ``hits[k - 1]`` of the continuations reach gold."""

    def __init__(self, hits, samples=()):
        self.hits, self.samples, self.calls = hits, list(samples), []

    def __call__(self, prompts, answer_starts, num, desc="sampling"):
        self.calls.append((list(prompts), list(answer_starts), num))
        if not any(answer_starts):  # sampling whole trajectories
            return [self.samples[:num] for _ in prompts]
        out = []
        for start in answer_starts:
            hits = self.hits[start.count(STEP_SEPARATOR) - 1]
            out.append([_continuation(start, True)] * hits + [_continuation(start, False)] * (num - hits))
        return out


def _labeler(executor, fake, **kwargs):
    labeler = RolloutLabeler(None, None, executor, **{"num_rollouts": 4, **kwargs})
    labeler.generate = fake
    return labeler


# -- mutations ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", MUTATIONS)
def test_each_mutation_applies_to_a_toy_chain_and_changes_only_its_step(kind, toy_db):
    schema = read_schema(toy_db)
    found = [
        (cocte, k, mutant)
        for cocte in (parse_cocte(RICH_CHAIN), parse_cocte(NEGATED_CHAIN))
        for seed in range(10)
        for k in range(len(cocte.steps))
        if (mutant := mutate_step(cocte, k, kind, schema, random.Random(seed))) is not None
    ]
    assert found, f"{kind} never applied"
    for cocte, k, mutant in found:
        assert len(mutant.steps) == len(cocte.steps) and mutant.steps[k].text != cocte.steps[k].text
        assert [s.text for j, s in enumerate(mutant.steps) if j != k] == [s.text for j, s in enumerate(cocte.steps) if j != k]


@pytest.mark.parametrize(
    ("kind", "step", "planted"),
    [
        ("negation", 0, "AND name LIKE '%o%'"),
        ("negation", 2, "NOT s.id IN (SELECT id FROM young)"),
        ("count", 2, "COUNT(c.year)"),
        ("set_operation", 1, "EXCEPT"),
        ("set_operation", 1, "UNION"),
        ("join_type", 2, "FROM singer AS s JOIN concert AS c"),
        ("group_by", 2, "GROUP BY s.name"),
        ("sort_key", 2, "ORDER BY n DESC, s.age"),
        ("projection", 2, "SELECT s.country, COUNT(DISTINCT c.year) AS n, "),
    ],
)
def test_mutations_plant_the_error_they_name(kind, step, planted, toy_db):
    cocte, schema = parse_cocte(NEGATED_CHAIN), read_schema(toy_db)
    texts = {m.steps[step].text for seed in range(20) if (m := mutate_step(cocte, step, kind, schema, random.Random(seed)))}
    assert any(planted in text for text in texts), texts


def test_a_mutated_chain_still_runs_where_sqlite_allows_the_edit(toy_db, sandbox):
    cocte, schema = parse_cocte(NEGATED_CHAIN), read_schema(toy_db)
    for kind in ("negation", "count", "set_operation", "join_type", "group_by", "sort_key"):
        for seed in range(5):
            for k in range(len(cocte.steps)):
                if (mutant := mutate_step(cocte, k, kind, schema, random.Random(seed))) is not None:
                    assert sandbox.execute(toy_db, mutant.render()).ok, (kind, mutant.render())


def test_unknown_mutation_is_refused(toy_db):
    with pytest.raises(ValueError, match="unknown mutation 'typo'"):
        mutate_step(parse_cocte(RICH_CHAIN), 0, "typo", read_schema(toy_db), random.Random(0))


def test_only_mutants_whose_answer_differs_are_kept(toy_db, executor, monkeypatch):
    chain = _chain(toy_db, RIGHT)
    same = parse_cocte(RIGHT.replace("SELECT DISTINCT name FROM names", "SELECT DISTINCT name FROM names ORDER BY name"))
    wrong = parse_cocte(RIGHT.replace("country = 'France'", "country = 'Netherlands'"))
    offered = iter([same, wrong, None, None])
    monkeypatch.setattr("trl_processsql.labeling.builder.mutate_step", lambda *args: next(offered))
    rows = mutation_rows([chain], executor, mutants_per_question=2, attempts=4)
    assert [(row["source"], row["sql"]) for row in rows] == [("gold", chain.cocte.render()), ("mutation", wrong.render())]
    assert rows[0]["labels"] == [1.0] * 4 and rows[0]["mutation"] == ""
    step = int(rows[1]["mutation"].split("@")[1])  # the step the mutation was recorded at
    assert rows[1]["labels"] == [1.0] * (step - 1) + [0.0] * (5 - step)


def test_equivalents_keep_one_mutant_with_the_gold_answer_labelled_right(toy_db, executor, monkeypatch):
    chain = _chain(toy_db, RIGHT)
    same = parse_cocte(RIGHT.replace("SELECT DISTINCT name FROM names", "SELECT DISTINCT name FROM names ORDER BY name"))
    also_same = parse_cocte(RIGHT.replace("SELECT DISTINCT name FROM names", "SELECT DISTINCT name FROM names ORDER BY name DESC"))
    wrong = parse_cocte(RIGHT.replace("country = 'France'", "country = 'Netherlands'"))
    offered = iter([same, wrong, also_same, None])
    monkeypatch.setattr("trl_processsql.labeling.builder.mutate_step", lambda *args: next(offered))
    rows = mutation_rows([chain], executor, attempts=4, equivalents=True)
    assert [row["source"] for row in rows] == ["gold", "mutation", "equivalent"]
    assert rows[2]["sql"] == same.render() and rows[2]["labels"] == [1.0] * 4


def test_the_kind_kept_least_so_far_goes_first(toy_db, executor):
    def chain(index):
        question = {"index": index, "db_id": "toy", "question": "Oldest singers?", "gold_sql": RICH_CHAIN}
        return GoldChain(question, toy_db, parse_cocte(RICH_CHAIN))

    kinds = ("column", "literal", "table")
    rows = mutation_rows([chain(i) for i in range(12)], executor, kinds=kinds, balance_sizes=False)
    kept = Counter(row["mutation"].split("@")[0] for row in rows if row["source"] == "mutation")
    assert sum(kept.values()) == 12 and set(kept) == set(kinds) and max(kept.values()) - min(kept.values()) <= 1


def test_an_answer_right_under_one_comparison_mode_only_is_no_equivalent(toy_db, executor, monkeypatch):
    ordered = "SELECT name FROM singer ORDER BY name"  # the gold orders its rows: Spider's comparison keeps the order
    chain = _chain(toy_db, ordered, gold_sql=ordered)
    reversed_order = parse_cocte(ordered + " DESC")
    wrong = parse_cocte("SELECT name FROM singer WHERE country = 'France' ORDER BY name")
    offered = iter([reversed_order, wrong])
    monkeypatch.setattr("trl_processsql.labeling.builder.mutate_step", lambda *args: next(offered))
    rows = mutation_rows([chain], executor, attempts=2, equivalents=True)
    assert [row["source"] for row in rows] == ["gold", "mutation"]


@pytest.fixture(scope="module")
def sample_chains(executor):
    questions = load_questions(QUESTIONS_FILE)[::5]
    return gold_chains(questions, DB_DIR, executor)[0]


def test_mutant_labels_are_right_before_the_mutated_step_and_wrong_from_it(sample_chains, executor):
    rows = mutation_rows(sample_chains, executor, seed=1)
    pairs = []  # (mutant, its gold): rows come as a question's gold, then its mutants
    for row in rows:
        if row["source"] == "gold":
            gold = row
        else:
            pairs.append((row, gold))
    assert len(pairs) > 40
    for row, gold in pairs:
        step = int(row["mutation"].split("@")[1])
        assert row["labels"] == [1.0] * (step - 1) + [0.0] * (len(row["labels"]) - step + 1)
        assert row["sql"] != gold["sql"] and row["question"] == gold["question"]
    assert any(row["labels"][0] == 1.0 for row, _ in pairs)  # some errors start after the first step
    queries = [(DB_DIR / r["db_id"] / f"{r['db_id']}.sqlite", r["sql"]) for pair in pairs for r in pair]
    results = executor.execute_many(queries)
    for mine, gold in zip(results[::2], results[1::2]):  # every kept mutant answers differently, or fails
        assert not (mine.ok and results_match(mine.rows, gold.rows, "bird") and results_match(mine.rows, gold.rows, "spider"))


def test_mutation_rows_are_balanced_and_deterministic(sample_chains, executor):
    rows = mutation_rows(sample_chains, executor, seed=3)
    stats = label_statistics(rows)
    assert stats["by_source"]["gold"] == stats["by_source"]["mutation"] > 40
    assert sum(stats["by_mutation"].values()) == stats["by_source"]["mutation"]
    assert rows == mutation_rows(sample_chains, executor, seed=3)
    assert rows != mutation_rows(sample_chains, executor, seed=4)
    two = mutation_rows(sample_chains, executor, seed=3, mutants_per_question=2)
    per_question = label_statistics(two)["by_source"]
    assert per_question["gold"] == stats["by_source"]["gold"] < per_question["mutation"] <= 2 * per_question["gold"]


def test_kept_mutants_are_balanced_between_larger_and_smaller_results(sample_chains, executor):
    def larger_share(rows):
        sizes = {}
        for row in rows:  # each gold row comes before its mutants; views end with "N rows" or "1 row"
            count = row["completions"][-1].split(" row")[0].rsplit(" ", 1)[-1]
            size = int(count) if count.isdigit() else -1
            if row["source"] == "gold":
                gold = size
            else:
                sizes[row["sql"]] = size > gold
        return sum(sizes.values()) / len(sizes)

    balanced = larger_share(mutation_rows(sample_chains, executor, seed=3))
    plain = larger_share(mutation_rows(sample_chains, executor, seed=3, balance_sizes=False))
    assert plain < 0.25 and balanced > 0.35  # most mutations shrink a result; balancing seeks out the ones that grow it


def test_equivalents_answer_as_the_gold_does_one_per_question_of_several_kinds(sample_chains, executor):
    rows = mutation_rows(sample_chains, executor, seed=3, equivalents=True)
    plain = mutation_rows(sample_chains, executor, seed=3)
    assert [row for row in rows if row["source"] != "equivalent"] == plain
    assert label_statistics(rows)["by_mutation"] == label_statistics(plain)["by_mutation"]  # the kinds of the errors only
    pairs = []
    for row in rows:
        if row["source"] == "gold":
            gold, count = row, 0
        elif row["source"] == "equivalent":
            count += 1
            assert count == 1 and set(row["labels"]) == {1.0} and row["sql"] != gold["sql"]
            pairs.append((row, gold))
    assert len(pairs) > 20 and len({row["mutation"].split("@")[0] for row, _ in pairs}) >= 4
    queries = [(DB_DIR / r["db_id"] / f"{r['db_id']}.sqlite", r["sql"]) for pair in pairs for r in pair]
    results = executor.execute_many(queries)
    for mine, gold in zip(results[::2], results[1::2]):
        assert mine.ok and results_match(mine.rows, gold.rows, "bird") and results_match(mine.rows, gold.rows, "spider")


def test_mutation_rows_plant_only_the_kinds_asked_for(sample_chains, executor):
    rows = mutation_rows(sample_chains, executor, kinds=("literal", "aggregate"), seed=3)
    kinds = label_statistics(rows)["by_mutation"]
    assert set(kinds) == {"literal", "aggregate"} and sum(kinds.values()) > 10
    with pytest.raises(ValueError, match="unknown mutation kinds"):
        mutation_rows(sample_chains, executor, kinds=("literal", "typo"))


def test_gold_chains_carry_the_prompt_style_the_policy_reads(toy_db, executor):
    question = {"index": 0, "db_id": "toy", "question": "Who sang?", "gold_sql": GOLD_SQL, "evidence": ""}
    (full,), _ = gold_chains([question], toy_db.parent.parent, executor)
    (compact,), _ = gold_chains([question], toy_db.parent.parent, executor, prompt_style="compact")
    assert compact.prompt == "Database: toy\nQuestion: Who sang?"
    assert "# Table: singer" in full.prompt and full.prompt.endswith("Question: Who sang?")


# -- execution labels -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql, labels",
    [
        (RIGHT, [1.0, 1.0, 1.0, 1.0]),
        (WRONG_FINAL, [1.0, 1.0, 1.0, 0.0]),
        (WRONG_FINAL.replace("f.name FROM", "f.nickname FROM"), [1.0, 0.0, 0.0, 0.0]),
        (RIGHT.rsplit(STEP_SEPARATOR, 1)[0], [1.0, 1.0, 0.0]),  # cut off after a CTE: no answer
    ],
    ids=["right", "wrong answer", "failing step", "no final step"],
)
def test_execution_labels_of_policy_chains(sql, labels, toy_db, executor):
    found = RolloutLabeler(None, None, executor).label([Trajectory(_chain(toy_db, sql), parse_cocte(sql))], rollouts=False)[0]
    assert found.labels == labels and found.rollouts == 0 and not found.estimates
    assert len(found.views) == len(labels)


# -- Monte Carlo rollouts --------------------------------------------------------------------------------


def test_rollout_shares_are_exact_with_a_known_policy(toy_db, executor):
    chain = _chain(toy_db, WRONG_FINAL)
    trajectory = Trajectory(chain, chain.cocte)
    fake = FakePolicy(hits=[3, 1, 0])
    found = _labeler(executor, fake, binary_search=False).label([trajectory])[0]
    assert found.estimates == {0: 0.75, 1: 0.25, 2: 0.0}
    assert found.labels == [0.75, 0.25, 0.0, 0.0] and found.first_bad == 2 and found.rollouts == 12
    prompts, starts, num = fake.calls[0]
    assert num == 4 and prompts == [chain.prompt] * 3
    assert starts[1] == STEP_SEPARATOR.join(s.text for s in chain.cocte.steps[:2]) + STEP_SEPARATOR

    hard = _labeler(executor, FakePolicy(hits=[3, 1, 0]), binary_search=False, soft=False).label([trajectory])[0]
    assert hard.labels == [1.0, 1.0, 0.0, 0.0]


def test_binary_search_fills_unevaluated_steps_from_the_next_evaluated_one(toy_db, executor):
    chain = _chain(toy_db, WRONG_FINAL)
    labeler = _labeler(executor, FakePolicy(hits=[3, 1, 0]))
    found = labeler.label([Trajectory(chain, chain.cocte)])[0]
    assert found.estimates == {1: 0.25, 2: 0.0}  # bisection: step 2 first, then step 3
    assert found.labels == [0.25, 0.25, 0.0, 0.0] and found.first_bad == 2
    assert labeler.counts == {"rollouts": 8, "prefixes": 2, "exhaustive rollouts": 12}


def test_no_rollout_is_spent_on_or_after_a_failing_step(toy_db, executor):
    sql = WRONG_FINAL.replace("SELECT name FROM performances", "SELECT nickname FROM performances")
    chain = _chain(toy_db, sql)
    for binary, prefixes, labels in ((True, [2], [1.0, 1.0, 0.0, 0.0]), (False, [1, 2], [0.5, 1.0, 0.0, 0.0])):
        fake = FakePolicy(hits=[2, 4, 4])
        found = _labeler(executor, fake, binary_search=binary).label([Trajectory(chain, chain.cocte)])[0]
        assert [start.count(STEP_SEPARATOR) for _, starts, _ in fake.calls for start in starts] == prefixes
        assert found.labels == labels and found.first_bad == 2


def test_a_right_answer_needs_no_rollout_with_binary_search(toy_db, executor):
    chain = _chain(toy_db, RIGHT)
    fake = FakePolicy(hits=[4, 2, 1])
    found = _labeler(executor, fake).label([Trajectory(chain, chain.cocte)])[0]
    assert found.labels == [1.0] * 4 and found.first_bad is None and found.rollouts == 0 and not fake.calls
    scanned = _labeler(executor, FakePolicy(hits=[4, 2, 1]), binary_search=False).label([Trajectory(chain, chain.cocte)])[0]
    assert scanned.labels == [1.0, 0.5, 0.25, 1.0] and scanned.first_bad is None


def test_binary_search_finds_the_same_first_bad_step_with_fewer_rollouts(toy_db, executor):
    """Monotone cases on a 6-step chain with a wrong answer: rollouts reach gold before step b, none from it."""
    chain = _chain(toy_db, _long_chain(6))
    trajectory = Trajectory(chain, chain.cocte)
    for b in range(6):  # b = 5: every prefix can still be repaired, only the answer itself is wrong
        hits = [2 if k < b else 0 for k in range(5)]
        bisected, scanned = (
            _labeler(executor, FakePolicy(hits), binary_search=binary).label([trajectory])[0] for binary in (True, False)
        )
        assert bisected.first_bad == scanned.first_bad == b
        assert bisected.rollouts <= 3 * 4 < scanned.rollouts == 5 * 4
        assert bisected.labels == scanned.labels == [0.5] * b + [0.0] * (6 - b)


def test_policy_rows_sample_label_and_drop_samples_without_sql(toy_db, executor):
    chain = _chain(toy_db, RIGHT)
    fake = FakePolicy(hits=[3, 1, 0], samples=[f"Here you go:\n```sql\n{WRONG_FINAL}\n```", "I cannot answer that."])
    labeler = _labeler(executor, fake)
    rows = policy_rows([chain], labeler, samples_per_question=2)
    assert len(rows) == 1 and rows[0]["source"] == "policy" and rows[0]["mutation"] == ""
    assert rows[0]["sql"] == WRONG_FINAL and rows[0]["labels"] == [0.25, 0.25, 0.0, 0.0]
    assert rows[0]["completions"][0].startswith("WITH french AS") and "\n-- 2 rows (id, name)" in rows[0]["completions"][0]
    assert labeler.counts["samples"] == 2 and labeler.counts["samples without SQL"] == 1
    stats = stepwise_stats(rows, counts=labeler.counts)
    assert stats["policy samples"] == "2 (1 without SQL, dropped)"
    assert stats["rollouts generated"] == "8 from 2 step prefixes (a scan of every prefix needs 12)"
    executed = policy_rows([chain], _labeler(executor, FakePolicy([0, 0, 0], fake.samples)), rollouts=False)
    assert executed[0]["labels"] == [1.0, 1.0, 1.0, 0.0]


def test_policy_rows_running_only_drops_samples_whose_answer_fails(toy_db, executor):
    chain = _chain(toy_db, RIGHT)
    failing = WRONG_FINAL.replace("SELECT name FROM names", "SELECT nickname FROM names")
    fake = FakePolicy(hits=[0, 0, 0], samples=[WRONG_FINAL, failing])
    every = policy_rows([chain], _labeler(executor, fake), samples_per_question=2, rollouts=False)
    running = policy_rows([chain], _labeler(executor, fake), samples_per_question=2, rollouts=False, running_only=True)
    assert [r["sql"] for r in every] == [WRONG_FINAL, failing] and every[1]["labels"][-1] == 0.0
    assert [r["sql"] for r in running] == [WRONG_FINAL]


def test_policy_rows_balance_sizes_keeps_as_many_wrong_answers_larger_than_the_gold_as_not(toy_db, executor):
    chain = _chain(toy_db, RIGHT)  # the gold answer has 2 rows; WRONG_FINAL has 3
    fake = FakePolicy(hits=[0, 0, 0], samples=[RIGHT, WRONG_FINAL, *SMALLER, FAILING])
    picked = set()
    for seed in range(8):
        rows = policy_rows([chain], _labeler(executor, fake), samples_per_question=5, rollouts=False, balance_sizes=True, seed=seed)
        kept = [r["sql"] for r in rows]
        assert kept[:2] == [RIGHT, WRONG_FINAL] and kept[-1] == FAILING  # the right answer and what fails stay
        assert len(kept) == 4 and kept[2] in SMALLER  # one of the two smaller wrong answers, to match the one larger
        picked.add(kept[2])
    assert picked == set(SMALLER)  # the seed decides which
    every = policy_rows([chain], _labeler(executor, fake), samples_per_question=5, rollouts=False)
    assert len(every) == 5


def test_policy_rows_mixed_only_keeps_the_questions_with_a_right_and_a_wrong_sample(toy_db, executor):
    chains = [_chain(toy_db, RIGHT) for _ in range(3)]
    samples = [[RIGHT, WRONG_FINAL, FAILING], [RIGHT, RIGHT, FAILING], [WRONG_FINAL, *SMALLER]]  # per question
    labeler = _labeler(executor, lambda prompts, starts, num, desc="": samples[: len(prompts)])
    rows = policy_rows(chains, labeler, samples_per_question=3, rollouts=False, mixed_only=True)
    assert [r["sql"] for r in rows] == [RIGHT, WRONG_FINAL, FAILING, RIGHT, RIGHT, FAILING]  # a failing answer is a wrong one
    rows = policy_rows(chains, labeler, samples_per_question=3, rollouts=False, running_only=True, mixed_only=True)
    assert [r["sql"] for r in rows] == [RIGHT, WRONG_FINAL]
    assert len(policy_rows(chains, labeler, samples_per_question=3, rollouts=False)) == 9


def test_trajectory_rows_filter_samples_labelled_once(toy_db, executor):
    chains = [_chain(toy_db, RIGHT) for _ in range(2)]
    samples = [[RIGHT, WRONG_FINAL, FAILING], [WRONG_FINAL, *SMALLER]]
    labeler = _labeler(executor, lambda prompts, starts, num, desc="": samples[: len(prompts)])
    trajectories = labeler.sample(chains, 3)
    labelled = labeler.label(trajectories, rollouts=False)
    every = trajectory_rows(trajectories, labelled, executor)
    assert [r["sql"] for r in every] == [RIGHT, WRONG_FINAL, FAILING, WRONG_FINAL, *SMALLER]
    mixed = trajectory_rows(trajectories, labelled, executor, running_only=True, mixed_only=True)
    assert [r["sql"] for r in mixed] == [RIGHT, WRONG_FINAL]  # the same labels, filtered again: nothing sampled twice
    assert labeler.counts["samples"] == 6
    with pytest.raises(ValueError, match="3 trajectories but 2 labelled"):
        trajectory_rows(trajectories[:3], labelled[:2], executor)

def test_label_steps_combines_sources_and_checks_them(toy_db, executor):
    questions = [{"index": 0, "db_id": "toy", "question": "Which French singers performed?", "gold_sql": GOLD_SQL}]
    labeler = _labeler(executor, FakePolicy(hits=[3, 1, 0], samples=[WRONG_FINAL]))
    rows, skipped = label_steps(questions, toy_db.parent.parent, executor, sources=("mutations", "rollouts"), labeler=labeler)
    assert "policy" in {row["source"] for row in rows} and set(skipped) <= {"no mutant changes the answer"}
    with pytest.raises(ValueError, match="unknown label source typo"):
        label_steps(questions, toy_db.parent.parent, executor, sources=("typo",))
    with pytest.raises(ValueError, match="pass a RolloutLabeler"):
        label_steps(questions, toy_db.parent.parent, executor, sources=("execution",))


def test_label_steps_passes_the_sample_filters_to_policy_rows(toy_db, executor):
    questions = [{"index": 0, "db_id": "toy", "question": "Which French singers performed?", "gold_sql": GOLD_SQL}]
    samples = [WRONG_FINAL, *SMALLER, FAILING]
    for filters, kept in (({}, 4), ({"running_only": True}, 3), ({"running_only": True, "balance_sizes": True}, 2)):
        labeler = _labeler(executor, FakePolicy(hits=[0, 0, 0], samples=samples))
        rows, _ = label_steps(questions, toy_db.parent.parent, executor, sources=("execution",), labeler=labeler, samples_per_question=4, **filters)
        assert len(rows) == kept


@pytest.fixture(scope="module")
def tiny_policy():
    from trl_processsql.small_models import build_tiny_model, build_tokenizer

    tokenizer = build_tokenizer()
    return build_tiny_model(tokenizer, hidden_size=32), tokenizer


def test_rollouts_with_a_real_tiny_model(tiny_policy, toy_db, executor):
    """A random model's continuations never reach gold: the mechanics (batches, padding, counts) are what is tested."""
    model, tokenizer = tiny_policy
    labeler = RolloutLabeler(model, tokenizer, executor, num_rollouts=3, max_new_tokens=6, batch_size=2, binary_search=False)
    texts = labeler.generate(["a short prompt", "a much longer prompt " * 20, "x"], ["", "WITH a AS (SELECT 1),\n\n", ""], 3)
    assert [len(t) for t in texts] == [3, 3, 3] and all(isinstance(s, str) for t in texts for s in t)
    assert tokenizer.padding_side == "right"
    chain = _chain(toy_db, WRONG_FINAL)
    found = labeler.label([Trajectory(chain, chain.cocte)])[0]
    assert found.labels[-1] == 0.0 and len(found.labels) == 4 and set(found.estimates) == {0, 1, 2}
    assert labeler.counts["rollouts"] == 9 and labeler.counts["prefixes"] == 3
    sampled = labeler.sample([chain], samples_per_question=2)
    assert labeler.counts["samples"] == 2 and len(sampled) + labeler.counts["samples without SQL"] == 2


def test_labeler_refuses_settings_that_cannot_sample(executor):
    with pytest.raises(ValueError, match="num_rollouts must be at least 1"):
        RolloutLabeler(None, None, executor, num_rollouts=0)
    with pytest.raises(ValueError, match="temperature must be positive"):
        RolloutLabeler(None, None, executor, temperature=0)
    from types import SimpleNamespace

    with pytest.raises(ValueError, match="temperature must be positive .*, got 0.0"):
        RolloutLabeler(None, None, executor, sampler=SimpleNamespace(temperature=0.0, tokenizer=None))


# -- the label-steps command --------------------------------------------------------------------------


def test_label_steps_on_the_sample_prints_statistics_and_saves_a_split_dataset(tmp_path, capsys):
    output = tmp_path / "labels"
    args = ["label-steps", "--sample", "--sources", "mutations", "--output", str(output), "--eval-fraction", "0.2"]
    assert main([*args, "--workers", "2"]) == 0
    out = capsys.readouterr().out
    saved = load_from_disk(output)
    assert isinstance(saved, DatasetDict) and set(saved) == {"train", "test"}
    assert not set(saved["train"]["db_id"]) & set(saved["test"]["db_id"])
    rows = saved.num_rows["train"] + saved.num_rows["test"]
    assert "questions: 299" in out and f"trajectories: {rows} (gold {rows // 2}, mutation {rows // 2})" in out
    assert "% positive, mean label" in out and "mutations: " in out and "first error: none " in out
    assert f"dataset written to {output}: train {saved.num_rows['train']} rows" in out
    assert saved["train"].features["labels"].feature.dtype == "float32"
    row = saved["train"][0]
    assert len(row["completions"]) == len(row["labels"]) and "\n-- " in row["completions"][0]


def test_label_steps_equivalents_add_right_mutants_to_the_same_gold_and_mutant_rows(tmp_path, capsys):
    args = ["label-steps", "--sample", "--limit", "60", "--sources", "mutations"]
    assert main([*args, "--output", str(tmp_path / "plain")]) == 0
    assert main([*args, "--equivalents", "--output", str(tmp_path / "equivalents")]) == 0
    plain, more = ([row for split in load_from_disk(tmp_path / name).values() for row in split] for name in ("plain", "equivalents"))
    assert [row for row in more if row["source"] != "equivalent"] == plain
    right = [row for row in more if row["source"] == "equivalent"]
    assert right and all(set(row["labels"]) == {1.0} and row["mutation"] for row in right)
    assert f"equivalent {len(right)}" in capsys.readouterr().out


def test_label_steps_plants_only_the_mutation_kinds_asked_for(tmp_path, capsys):
    args = ["label-steps", "--sample", "--limit", "60", "--mutation-kinds", "order, limit,count", "--output", str(tmp_path / "labels")]
    assert main(args) == 0
    rows = [row for split in load_from_disk(tmp_path / "labels").values() for row in split]
    kinds = {row["mutation"].split("@")[0] for row in rows if row["source"] == "mutation"}
    assert kinds == {"order", "limit", "count"}
    assert "--mutation-kinds 'order, limit,count'" in (tmp_path / "labels" / "README.md").read_text()


def test_label_steps_with_a_policy_reports_samples_and_rollouts(tmp_path, capsys):
    from trl_processsql.small_models import save_tiny_checkpoint

    save_tiny_checkpoint(tmp_path / "policy", hidden_size=32)
    args = ["label-steps", "--sample", "--limit", "3", "--output", str(tmp_path / "labels"), "--policy", str(tmp_path / "policy")]
    args += ["--sources", "mutations,rollouts", "--samples-per-question", "2", "--num-rollouts", "2", "--max-new-tokens", "8"]
    assert main([*args, "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "policy samples: 6 (" in out and "rollouts generated: " in out


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "give --questions and --db-dir, or --sample"),
        (["--sample", "--questions", "q.json"], "--sample replaces"),
        (["--sample", "--sources", "mutations,typo"], "unknown source in --sources 'mutations,typo'"),
        (["--sample", "--sources", "rollouts"], "sample chains from a policy: add --policy MODEL"),
        (["--sample", "--policy", "m"], "--policy is used by the execution and rollouts sources"),
        (["--sample", "--balance-sizes"], "--mixed-only filter the policy's samples: add execution or rollouts"),
        (["--sample", "--mixed-only"], "--mixed-only filter the policy's samples: add execution or rollouts"),
        (["--sample", "--sources", "execution", "--policy", "m", "--equivalents"], "--mutation-kinds shape the mutations source: add mutations"),
        (["--sample", "--sources", "execution", "--policy", "m", "--mutation-kinds", "order"], "shape the mutations source: add mutations"),
        (["--sample", "--mutation-kinds", "order,typo"], "unknown kind in --mutation-kinds 'order,typo': choose from column, "),
        (["--sample", "--mutation-kinds", ","], "unknown kind in --mutation-kinds ','"),
        (["--sample", "--sources", "execution", "--policy", "no/such/model"], "cannot load the policy from no/such/model"),
        (["--sample", "--num-rollouts", "0"], "--num-rollouts must be at least 1"),
        (["--sample", "--limit", "0"], "--limit must be at least 1"),
        (["--sample", "--temperature", "0"], "--temperature must be positive"),
        (["--sample", "--eval-fraction", "1"], "--eval-fraction must lie between 0 and 1"),
        (["--sample", "--private"], "--private applies to --push-to-hub"),
        (["--questions", str(QUESTIONS_FILE), "--db-dir", "no/such/dir"], "database folder not found"),
    ],
)
def test_label_steps_bad_arguments_get_one_line_errors(extra, message, tmp_path, capsys):
    assert main(["label-steps", "--output", str(tmp_path / "out"), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_label_steps_replaces_a_saved_dataset_only_with_overwrite(tmp_path, capsys):
    args = ["label-steps", "--sample", "--limit", "5", "--output", str(tmp_path / "labels")]
    assert main(args) == 0
    assert main(args) == 2
    assert "exists and is not empty (add --overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("keep me")
    assert main(["label-steps", "--sample", "--output", str(tmp_path / "notes"), "--overwrite"]) == 2
    assert "does not hold a saved dataset" in capsys.readouterr().err


# -- dataset card and Hub push, offline -------------------------------------------------------------------


def test_stepwise_card_describes_every_column_and_the_figures(toy_db, executor):
    from huggingface_hub import DatasetCard

    from trl_processsql.hub import dataset_card

    rows = mutation_rows([_chain(toy_db, RICH_CHAIN, gold_sql=RICH_CHAIN)], executor, mutants_per_question=2)
    dataset = stepwise_dataset(rows)
    stats = stepwise_stats(rows)
    fields = stepwise_card(dataset, stats, command="trl-processsql label-steps --sample")
    card = DatasetCard(str(dataset_card("me/steps", num_rows=len(dataset), **fields)))
    assert card.data.task_categories == ["token-classification"] and {"prm", "stepwise-supervision"} <= set(card.data.tags)
    for column in dataset.column_names:
        assert f"| `{column}` |" in card.text
    assert stats["trajectories"] == "3 (mutation 2, gold 1)" and "| trajectories | 3 (mutation 2, gold 1) |" in card.text
    assert "trl-processsql label-steps --sample" in card.text and "stepwise labels data" in card.text


def test_label_steps_push_sends_the_card_then_the_data(tmp_path, monkeypatch, capsys):
    from huggingface_hub import DatasetCard, HfApi, RepoUrl

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    calls = []
    def create_repo(self, repo_id, **kwargs):
        calls.append(("create", kwargs))
        return RepoUrl(f"https://huggingface.co/datasets/me/{repo_id}")

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_file", lambda self, **kwargs: calls.append(("card", kwargs)))
    monkeypatch.setattr(DatasetDict, "push_to_hub", lambda self, repo_id, **kw: calls.append(("data", {"repo_id": repo_id, **kw})))
    args = ["label-steps", "--sample", "--limit", "20", "--seed", "2", "--output", str(tmp_path / "labels")]
    assert main([*args, "--push-to-hub", "steps", "--private"]) == 0
    assert [name for name, _ in calls] == ["create", "card", "data"]
    card = DatasetCard(calls[1][1]["path_or_fileobj"].decode("utf-8"))
    assert "| questions | 20 |" in card.text and "| first error |" in card.text
    assert "trl-processsql label-steps --sample --limit 20 --sources mutations --seed 2" in card.text
    assert calls[2][1]["repo_id"] == "me/steps" and calls[2][1]["private"] is True
    assert "dataset pushed to https://huggingface.co/datasets/me/steps" in capsys.readouterr().out


# -- labelling split into shards ---------------------------------------------------------------------------


def test_shard_bounds_split_whole_rounds_and_cover_every_question_once():
    from trl_processsql.labeling import shard_bounds

    for questions, shards, size in [(10, 3, 2), (7000, 8, 250), (5, 5, 1), (3, 4, 1)]:
        bounds = [shard_bounds(questions, shards, i, size) for i in range(shards)]
        assert [q for b in bounds for q in b] == list(range(questions))
        assert all(b.start % size == 0 for b in bounds if b)
    with pytest.raises(ValueError, match="shard index 2 is not one of the 2 shards"):
        shard_bounds(10, 2, 2)
    from trl_processsql.cli.label_steps import LabelStepsOptions
    from trl_processsql.labeling import ROUND_SIZE

    assert LabelStepsOptions(sample=True, output="out").round_size == ROUND_SIZE  # the command's default is the library's


def _recorded_labeling(executor, model, tokenizer, questions, *, seed=0, **shard):
    """Rows of label_steps through a TransformersSampler, and every text the sampler wrote, in order."""
    from trl_processsql.inference import TransformersSampler

    sampler = TransformersSampler(model, tokenizer, max_new_tokens=8, batch_size=2)
    labeler = RolloutLabeler(None, None, executor, sampler=sampler, num_rollouts=2)
    written, generate = [], labeler.generate
    labeler.generate = lambda *args, **kwargs: written.extend(out := generate(*args, **kwargs)) or out
    rows, skipped = label_steps(
        questions, DB_DIR, executor, sources=("rollouts",), labeler=labeler, samples_per_question=3,
        seed=seed, round_size=1, **shard,
    )
    return rows, written, labeler.counts


def test_shards_sample_and_label_exactly_what_one_run_does(tiny_policy, executor):
    model, tokenizer = tiny_policy
    questions = load_questions(QUESTIONS_FILE)[:3]
    rows, written, counts = _recorded_labeling(executor, model, tokenizer, questions)
    shards = [_recorded_labeling(executor, model, tokenizer, questions, num_shards=2, shard_index=i) for i in (1, 0)][::-1]
    assert [row for part in shards for row in part[0]] == rows
    assert [text for part in shards for text in part[1]] == written and len(written) == 3 and any(t for w in written for t in w)
    assert counts["samples"] == sum(part[2]["samples"] for part in shards) == 9
    assert _recorded_labeling(executor, model, tokenizer, questions, seed=1)[1] != written  # the seed does matter


@pytest.mark.slow
def test_label_steps_shards_merge_into_the_single_run_dataset(tmp_path, capsys):
    from trl_processsql.labeling import read_run
    from trl_processsql.small_models import save_tiny_checkpoint

    save_tiny_checkpoint(tmp_path / "policy", hidden_size=32)
    args = ["label-steps", "--sample", "--limit", "3", "--round-size", "1", "--sources", "mutations,execution"]
    args += ["--policy", str(tmp_path / "policy"), "--samples-per-question", "2", "--max-new-tokens", "8", "--device", "cpu"]
    assert main([*args, "--output", str(tmp_path / "single")]) == 0
    single_stats = capsys.readouterr().out.split("dataset written")[0]
    for i in range(2):
        assert main([*args, "--num-shards", "2", "--shard-index", str(i), "--output", str(tmp_path / f"shard{i}")]) == 0
    assert "questions: 2 (shard 1 of 2: questions 1 to 2)" in capsys.readouterr().out
    shards = [str(tmp_path / "shard1"), str(tmp_path / "shard0")]
    assert main(["merge-labels", *shards, "--output", str(tmp_path / "merged")]) == 0
    assert capsys.readouterr().out.split("dataset written")[0] == single_stats
    merged, single = load_from_disk(tmp_path / "merged"), load_from_disk(tmp_path / "single")
    assert merged["train"].to_list() == single["train"].to_list() and merged.num_rows["train"] > 0
    assert read_run(tmp_path / "merged").counts == read_run(tmp_path / "single").counts
    card = (tmp_path / "merged" / "README.md").read_text()
    assert "--num-shards 2 --shard-index 1" in card and "trl-processsql merge-labels" in card and "| questions | 3 |" in card
    assert main(["merge-labels", shards[0], "--output", str(tmp_path / "partial")]) == 2
    assert "cannot merge 2 shards: missing shard 0" in capsys.readouterr().err
    assert main(["merge-labels", shards[0], shards[0], "--output", str(tmp_path / "twice")]) == 2
    assert "missing shard 0; shard 1 given twice" in capsys.readouterr().err
    assert main([*args, "--seed", "3", "--num-shards", "2", "--shard-index", "0", "--output", str(tmp_path / "other")]) == 0
    assert main(["merge-labels", str(tmp_path / "other"), shards[0], "--output", str(tmp_path / "mixed")]) == 2
    assert "come from different runs: they differ in seed" in capsys.readouterr().err
    assert main(["merge-labels", str(tmp_path / "policy"), "--output", str(tmp_path / "bad")]) == 2
    assert "was not written by label-steps" in capsys.readouterr().err
    assert main([*args, "--num-shards", "4", "--shard-index", "0", "--output", str(tmp_path / "none")]) == 2
    assert "shard 0 of 4 has no question: 3 questions make 3 rounds" in capsys.readouterr().err
