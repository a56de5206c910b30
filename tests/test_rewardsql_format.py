"""The rewardsql format against strings written by hand from the released checkpoints' evaluation code and test set.

The prompt, the PRM's process text and the token ids the PRM is read at, on a bundled database
(concert_singer) and on a small Qwen2-style tokenizer built here.
"""

import sqlite3

import pytest
import torch

from trl_processsql.cocte import execute_steps, parse_cocte
from trl_processsql.data import database_path, sample_paths
from trl_processsql.formats import FORMATS
from trl_processsql.inference import TransformersSampler, score_candidates
from trl_processsql.prm import ProcessRewardModel
from trl_processsql.prompts import build_prompt
from trl_processsql.sql import SQLiteSandbox
from trl_processsql.sql.schema import SchemaError
from trl_processsql.small_models import build_tiny_model, build_tokenizer

REWARDSQL = FORMATS["rewardsql"]

SCHEMA = """【DB_ID】 concert_singer
【Schema】
# Table: stadium
[
(Stadium_ID:INTEGER, Primary Key, Examples: [1, 2, 3]),
(Location:TEXT, Examples: [Raith Rovers, Ayr United, East Fife]),
(Name:TEXT, Examples: [Stark's Park, Somerset Park, Bayview Stadium]),
(Capacity:INTEGER, Examples: [10104, 11998, 2000]),
(Highest:INTEGER, Examples: [4812, 2363, 1980]),
(Lowest:INTEGER, Examples: [1294, 1057, 533]),
(Average:INTEGER, Examples: [2106, 1477, 864])
]
# Table: singer
[
(Singer_ID:INTEGER, Primary Key, Examples: [1, 2, 3]),
(Name:TEXT, Examples: [Joe Sharp, Timbaland, Justin Brown]),
(Country:TEXT, Examples: [Netherlands, United States, France]),
(Song_Name:TEXT, Examples: [You, Dangerous, Hey Oh]),
(Song_release_year:TEXT, Examples: [1992, 2008, 2013]),
(Age:INTEGER, Examples: [52, 32, 29]),
(Is_male:BOOLEAN, Examples: [True, True])
]
# Table: concert
[
(concert_ID:INTEGER, Primary Key, Examples: [1, 2, 3]),
(concert_Name:TEXT, Examples: [Auditions, Super bootcamp, Home Visits]),
(Theme:TEXT, Examples: [Free choice, Free choice 2, Bleeding Love]),
(Stadium_ID:TEXT, Examples: [1, 2, 10]),
(Year:TEXT, Examples: [2014, 2015])
]
# Table: singer_in_concert
[
(concert_ID:INTEGER, Primary Key, Examples: [1, 2, 3]),
(Singer_ID:TEXT, Primary Key, Examples: [2, 3, 5])
]
【Foreign keys】
concert.Stadium_ID=stadium.Stadium_ID
singer_in_concert.concert_ID=concert.concert_ID
singer_in_concert.Singer_ID=singer.Singer_ID"""

HEAD = "You are now a sqlite data analyst, and you are given a database schema as follows:\n\n    【Schema】\n    "
TAIL = (
    "\n\n    Please read and understand the database schema carefully, and generate an executable SQL based on the "
    "user's question and evidence. "
)
PROMPT = HEAD + SCHEMA + "\n\n    【Question】\n    How many singers do we have?\n\n    【Evidence】\n    " + TAIL

# Step 1 runs; step 2 asks for a column its CTE does not have.
COMPLETION = "WITH old AS (\n  SELECT Name, Age FROM singer WHERE Age > 40\n)\n\nSELECT Name FROM old WHERE Country = 'France'"
STEPS = [
    "WITH old AS ( SELECT Name, Age FROM singer WHERE Age > 40 )"
    "<result>{('Joe Sharp', 52): 1, ('Rose White', 41): 1, ('John Nizinik', 43): 1}</result>",
    "SELECT Name FROM old WHERE Country = 'France';<result>Total SQL result:0, Execution error: no such column: Country</result>",
]
PRM_INPUT = PROMPT + STEPS[0] + " и " + STEPS[1] + " и "


@pytest.fixture(scope="module")
def concert_singer():
    return database_path(sample_paths()[1], "concert_singer")


@pytest.fixture(scope="module")
def tokenizer():
    """Byte-level BPE split as Qwen2 splits text, in which " и", " +" and " -" are single tokens."""
    return build_tokenizer([PRM_INPUT, " + -  и и + и -"] * 20, vocab_size=600)


@pytest.fixture(scope="module")
def causal_lm(tokenizer):
    return build_tiny_model(tokenizer, "causal-lm", hidden_size=32, seed=5)


class RecordingPRM(ProcessRewardModel):
    """Keeps every (prompt, steps) it encodes."""

    def encode(self, prompt, steps):
        self.__dict__.setdefault("seen", []).append((prompt, list(steps)))
        return super().encode(prompt, steps)


def _views(completion, db_path):
    return execute_steps(parse_cocte(completion), db_path, SQLiteSandbox())


def test_the_prompt_without_evidence(concert_singer):
    assert REWARDSQL.question_prompt("How many singers do we have?", concert_singer) == PROMPT
    assert REWARDSQL.question_prompt("How many singers do we have?", concert_singer, style="compact") == PROMPT


def test_the_prompt_with_evidence_carries_it_after_the_question_too(concert_singer):
    evidence = "older than 40 refers to Age > 40"
    expected = (
        HEAD + SCHEMA + "\n\n    【Question】\n    How many singers are older than 40? older than 40 refers to Age > 40"
        "\n\n    【Evidence】\n    older than 40 refers to Age > 40" + TAIL
    )
    assert REWARDSQL.question_prompt("How many singers are older than 40?", concert_singer, evidence) == expected
    # the question line is stripped as a whole; the evidence line keeps the evidence as it is given
    expected = HEAD + SCHEMA + "\n\n    【Question】\n    Ages? \nAge is in years\n\n    【Evidence】\n    \nAge is in years \n" + TAIL
    assert REWARDSQL.question_prompt("Ages?", concert_singer, "\nAge is in years \n") == expected


def test_the_processsql_prompt_is_build_prompt_s(concert_singer):
    question = "How many singers do we have?"
    assert FORMATS["processsql"].question_prompt(question, concert_singer, style="tables") == build_prompt(
        question, concert_singer, style="tables"
    )


def test_the_policy_continues_the_prompt_as_it_is(tokenizer, causal_lm):
    sampler = TransformersSampler(causal_lm, tokenizer, format="rewardsql", max_new_tokens=2)
    assert sampler.prompt_text([{"role": "user", "content": PROMPT}]) == PROMPT


def test_a_missing_database_raises(tmp_path):
    with pytest.raises(SchemaError, match="database not found"):
        REWARDSQL.question_prompt("?", tmp_path / "none.sqlite")


def test_the_process_text_of_a_chain_with_a_failing_step(concert_singer):
    assert REWARDSQL.prm_steps(_views(COMPLETION, concert_singer)) == STEPS


def test_whitespace_collapses_and_rows_are_counted(concert_singer):
    completion = "WITH  c AS (SELECT\tCountry\n    FROM singer)\n\n\nSELECT Country, count(*) AS n\nFROM c GROUP BY Country;\n"
    assert REWARDSQL.prm_steps(_views(completion, concert_singer)) == [
        "WITH c AS (SELECT Country FROM singer)<result>{('Netherlands',): 1, ('United States',): 1, ('France',): 4}</result>",
        "SELECT Country, count(*) AS n FROM c GROUP BY Country;<result>{('France', 4): 1, ('Netherlands', 1): 1, "
        "('United States', 1): 1}</result>",
    ]


def test_a_long_result_is_cut_at_500_characters(concert_singer):
    whole = (
        "{(1, 'Raith Rovers', \"Stark's Park\", 10104, 4812, 1294, 2106): 1, "
        "(2, 'Ayr United', 'Somerset Park', 11998, 2363, 1057, 1477): 1, "
        "(3, 'East Fife', 'Bayview Stadium', 2000, 1980, 533, 864): 1, "
        "(4, \"Queen's Park\", 'Hampden Park', 52500, 1763, 466, 730): 1, "
        "(5, 'Stirling Albion', 'Forthbank Stadium', 3808, 1125, 404, 642): 1, "
        "(6, 'Arbroath', 'Gayfield Park', 4125, 921, 411, 638): 1, "
        "(7, 'Alloa Athletic', 'Recreation Park', 3100, 1057, 331, 637): 1, "
        "(9, 'Peterhead', 'Balmoor', 4000, 837, 400, 615): 1, "
        "(10, 'Brechin City', 'Glebe Park', 3960, 780, 315, 552): 1}"
    )
    assert len(whole) > 500
    [step] = REWARDSQL.prm_steps(_views("SELECT * FROM stadium", concert_singer))
    assert step == f"SELECT * FROM stadium;<result>{whole[:500]}...}}</result>"


def test_the_prm_reads_the_prompt_then_the_steps(tokenizer, causal_lm, concert_singer):
    seen = []

    class Recording(ProcessRewardModel):
        def encode(self, prompt, steps):
            encoded = super().encode(prompt, steps)
            seen.append(self.tokenizer.decode(encoded.input_ids))
            return encoded

    prm = Recording(causal_lm, tokenizer, format="rewardsql")
    [candidate] = score_candidates([PROMPT], [COMPLETION], [concert_singer], SQLiteSandbox(), prm)
    assert seen == [PRM_INPUT]
    assert candidate.status == "error" and len(candidate.prm_scores) == 2


def test_verdict_and_tag_ids_are_computed_as_the_released_code_does(tokenizer, causal_lm):
    plus, minus, tag = (tokenizer(t, add_special_tokens=False)["input_ids"] for t in (" +", " -", " и"))
    assert len(plus) == len(minus) == len(tag) == 1
    assert tokenizer.encode(" + -") == plus + minus
    assert len(tokenizer.encode("  и")) == 2 and tokenizer.encode("  и")[-1] == tag[0]  # " " then " и"
    assert REWARDSQL.verdict_ids(tokenizer) == tokenizer.encode(" + -")
    assert REWARDSQL.tag_id(tokenizer) == tokenizer.encode("  и")[-1]
    prm = ProcessRewardModel(causal_lm, tokenizer, format="rewardsql")
    assert (prm.verdict_ids, prm.tag_id) == (tokenizer.encode(" + -"), tokenizer.encode("  и")[-1])
    assert prm.max_length == causal_lm.config.max_position_embeddings  # the whole text, as the release reads it


def test_step_scores_are_the_released_code_s_reading(tokenizer, causal_lm):
    prm = ProcessRewardModel(causal_lm, tokenizer, format="rewardsql")
    # the released PRM service: encode the whole text, softmax over the verdict logits, keep the tag positions
    input_ids = torch.tensor([tokenizer.encode(PRM_INPUT)])
    with torch.no_grad():
        logits = causal_lm(input_ids).logits[:, :, tokenizer.encode(" + -")]
    expected = logits.softmax(dim=-1)[:, :, 0][input_ids == tokenizer.encode("  и")[-1]].tolist()
    assert len(expected) == 2
    assert prm.score_steps([PROMPT], [STEPS])[0] == pytest.approx(expected, abs=1e-6)


def test_a_tokenizer_without_two_verdict_tokens_is_refused(causal_lm):
    other = build_tokenizer(["SELECT name FROM singer"] * 5, vocab_size=300)
    with pytest.raises(ValueError, match="not the two verdicts"):
        ProcessRewardModel(causal_lm, other, format="rewardsql")


def test_types_examples_and_keys_follow_the_released_schema_reader(tmp_path):
    path = tmp_path / "club" / "club.sqlite"
    path.parent.mkdir()
    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            CREATE TABLE people (id int PRIMARY KEY, name varchar(20), height number, born date, seen datetime,
                                 member bool, email text, site text, bio text, motto text, note, price decimal(10,2),
                                 code number);
            INSERT INTO people VALUES
              (1, 'Ann', 1.5, '2001-02-03', '2020-01-02 03:04:05', 1, 'none', 'https://example.org',
               'A painter from the north', 'Always be kind to strangers, for some are angels now', 'a', 3.14159, 'x1'),
              (2, 'Bo', 2, '1999-12-31', '2021-05-06 07:08:09', 0, 'ann@example.com', 'home', 'Short', 'Hi', 'b', 2, 'x2'),
              (3, NULL, 1.5, NULL, NULL, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
              (4, '', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
              (5, 'Cy', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
              (6, 'Di', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
            CREATE TABLE place (id INTEGER PRIMARY KEY, name TEXT);
            CREATE TABLE `visit` (`id` INTEGER PRIMARY KEY, `person_id` INTEGER, `place_id` INTEGER,
              FOREIGN KEY (`person_id`) REFERENCES `people`(`id`), FOREIGN KEY (`place_id`) REFERENCES `place`(`id`),
              FOREIGN KEY (`person_id`) REFERENCES `people`(`id`));
            CREATE TABLE "ticket" ("id" int, "owner_id" int REFERENCES people, "visit_id" int, "person_id" int,
              FOREIGN KEY ("visit_id") REFERENCES "visit"("id"), FOREIGN KEY ("person_id") REFERENCES "people"("id"));
            """
        )
    # name: NULL and '' are among the first 5 distinct values; height: NUMERIC, read as decimals, shown as floats;
    # born, seen: one example; member: BOOLEAN; email, site: an address or a URL hides them all; bio: one value
    # is longer than 20 characters; motto: one is longer than 50; note: no declared type; price: 2 decimals kept;
    # code: text in a NUMERIC column does not convert. Keys: each once; backquoted parents in SQLite's order,
    # quoted ones in declared order, then the inline key, which refers to the parent's primary key.
    expected = (
        HEAD + "【DB_ID】 club\n【Schema】\n"
        "# Table: people\n[\n"
        "(id:INTEGER, Primary Key, Examples: [1, 2, 3]),\n"
        "(name:VARCHAR, Examples: [Ann, Bo, Cy]),\n"
        "(height:NUMERIC, Examples: [1.5, 2.0]),\n"
        "(born:DATE, Examples: [2001-02-03]),\n"
        "(seen:DATETIME, Examples: [2020-01-02 03:04:05]),\n"
        "(member:BOOLEAN, Examples: [True, False]),\n"
        "(email:TEXT),\n"
        "(site:TEXT),\n"
        "(bio:TEXT, Examples: [A painter from the north]),\n"
        "(motto:TEXT),\n"
        "(note:NULL, Examples: [a, b]),\n"
        "(price:DECIMAL, Examples: [3.14, 2.0]),\n"
        "(code:NUMERIC)\n"
        "]\n"
        "# Table: place\n[\n(id:INTEGER, Primary Key),\n(name:TEXT)\n]\n"
        "# Table: visit\n[\n(id:INTEGER, Primary Key),\n(person_id:INTEGER),\n(place_id:INTEGER)\n]\n"
        "# Table: ticket\n[\n(id:INTEGER),\n(owner_id:INTEGER),\n(visit_id:INTEGER),\n(person_id:INTEGER)\n]\n"
        "【Foreign keys】\n"
        "visit.person_id=people.id\n"
        "visit.place_id=place.id\n"
        "ticket.visit_id=visit.id\n"
        "ticket.person_id=people.id\n"
        "ticket.owner_id=people.id"
        "\n\n    【Question】\n    Who?\n\n    【Evidence】\n    " + TAIL
    )
    assert REWARDSQL.question_prompt("Who?", path) == expected


def test_predict_feeds_the_released_policy_and_prm_their_own_prompt(tokenizer, causal_lm, concert_singer):
    from trl_processsql.inference import predict
    from trl_processsql.sql import SQLExecutor

    sampler = TransformersSampler(causal_lm, tokenizer, temperature=0, max_new_tokens=4, format="rewardsql")
    sampled = []
    sampler.sample = lambda conversations, n: sampled.extend(c[-1]["content"] for c in conversations) or [["SELECT count(*) FROM singer"]] * len(conversations)
    question = {"index": 0, "db_id": "concert_singer", "question": "How many singers do we have?", "evidence": ""}
    prm = RecordingPRM(causal_lm, tokenizer, format="rewardsql")
    with SQLExecutor(num_workers=1) as executor:
        [record] = predict([question], sample_paths()[1], sampler, executor, strategy="best-of-n", n=1, prm=prm)
    expected = FORMATS["rewardsql"].question_prompt("How many singers do we have?", concert_singer)
    assert sampled == [expected] and [prompt for prompt, _ in prm.seen] == [expected] and record["sql"].startswith("SELECT count(*)")


def test_the_released_prm_reads_every_row_of_a_cte_view(tokenizer, causal_lm, concert_singer):
    """Its result text counts rows (``str(dict(Counter(rows)))``): a view cut at the processsql bound would miscount them."""
    completion = "WITH triples AS (SELECT a.Singer_ID FROM singer AS a, singer AS b, singer AS c)\n\nSELECT count(*) FROM triples"
    prm = RecordingPRM(causal_lm, tokenizer, format="rewardsql")
    score_candidates([PROMPT], [completion], [concert_singer], SQLiteSandbox(), prm)
    assert "<result>{(1,): 36, (2,): 36, (3,): 36, (4,): 36, (5,): 36, (6,): 36}</result>" in prm.seen[0][1][0]
    assert len(_views(completion, concert_singer)[0].result.rows) < 216  # the processsql bound, for contrast
