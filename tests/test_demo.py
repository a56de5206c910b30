"""The demo: step records without a UI, the app through gradio_client, and the page in a real browser."""

import shutil
import socket
import sqlite3
import tempfile
from pathlib import Path

import pytest

from trl_processsql.demo import DemoError, explain_sql, prepare_upload, sample_database, sample_databases
from trl_processsql.demo.answer import answer_question
from trl_processsql.demo.models import LazyModel, load_policy, load_prm

SINGERS_2014 = """WITH concerts_2014 AS (
  SELECT concert_ID FROM concert WHERE Year = 2014
),

singers_2014 AS (
  SELECT DISTINCT sic.Singer_ID
  FROM singer_in_concert AS sic
  JOIN concerts_2014 AS c ON sic.concert_ID = c.concert_ID
)

SELECT s.Name FROM singer AS s JOIN singers_2014 AS x ON s.Singer_ID = x.Singer_ID"""

DOG_OWNERS_AGE = """WITH dogs AS (
  SELECT PetID FROM Pets WHERE PetType = 'dog'
),

dog_owners AS (
  SELECT DISTINCT h.StuID FROM Has_Pet AS h JOIN dogs AS d ON h.PetID = d.PetID
)

SELECT avg(s.Age) FROM Student AS s JOIN dog_owners AS o ON s.StuID = o.StuID"""


class FixedPolicy:
    """A stand-in policy: its k-th candidate is always ``completions[k]``."""

    def __init__(self, *completions):
        self.completions = completions
        self.calls = []

    def sampler(self, n):
        return self

    def sample(self, conversations, n):
        self.calls.append((conversations, n))
        return [list(self.completions[:n]) for _ in conversations]


# -- step records ---------------------------------------------------------------------------------


def test_explain_runs_every_step_of_a_chain_on_a_sample_database(executor):
    explanation = explain_sql(sample_database("concert_singer"), SINGERS_2014, executor)
    steps = explanation.steps
    assert [(s.index, s.name, s.final) for s in steps] == [(1, "concerts_2014", False), (2, "singers_2014", False), (3, None, True)]
    assert [s.status for s in steps] == ["ok"] * 3
    assert [s.row_count for s in steps] == [3, 5, 5]
    assert steps[0].headers == ["concert_ID"] and steps[0].rows == [["1"], ["2"], ["4"]]
    assert steps[1].sql.startswith("singers_2014 AS (") and "SELECT * FROM singers_2014" in steps[1].view_sql
    assert sorted(row[0] for row in steps[2].rows) == ["John Nizinik", "Justin Brown", "Rose White", "Timbaland", "Tribal King"]
    assert all(s.score is None for s in steps) and explanation.score is None and explanation.failed is None
    assert explanation.message == "3 steps, every view executed; the answer has 5 rows"


def test_failing_sql_names_the_step_and_the_reason(executor):
    broken = SINGERS_2014.replace("sic.Singer_ID\n", "sic.Singer_Id_typo\n")
    explanation = explain_sql(sample_database("concert_singer"), broken, executor)
    assert [s.status for s in explanation.steps] == ["ok", "error", "error"]
    failed = explanation.failed
    assert failed.index == 2 and failed.rows == [] and "no such column: sic.Singer_Id_typo" in failed.summary
    assert explanation.message == "step 2 (singers_2014) failed: error: no such column: sic.Singer_Id_typo"


def test_a_refused_query_and_a_cut_off_chain_are_explained(executor):
    refused = explain_sql(sample_database("pets_1"), "WITH p AS (SELECT 1)\n\nSELECT load_extension('x') FROM p", executor)
    assert [s.status for s in refused.steps] == ["ok", "rejected"]
    assert refused.message == "step 2 failed: rejected: function load_extension() is not allowed"
    cut = explain_sql(sample_database("pets_1"), "WITH dogs AS (SELECT PetID FROM Pets WHERE PetType = 'dog'),\n\n", executor)
    assert [(s.name, s.final, s.row_count) for s in cut.steps] == [("dogs", False, 2)]
    assert cut.message == "1 step, every view executed, but the chain ends before its final statement"
    assert cut.notes == ["the SQL is cut off before it ends"]


def test_cells_are_display_text_and_long_results_are_cut(executor, toy_db):
    explanation = explain_sql(toy_db, "WITH c AS (SELECT country FROM singer)\n\nSELECT * FROM c", executor)
    assert ["NULL"] in explanation.steps[0].rows
    many = explain_sql(sample_database("car_1"), "WITH cars AS (SELECT Id FROM cars_data)\n\nSELECT Id FROM cars", executor)
    assert many.steps[0].row_count == 101 and len(many.steps[0].rows) == 100
    assert many.steps[0].size == "more than 100 rows (first 100 shown)"
    assert many.steps[1].row_count == 406 and many.steps[1].size == "406 rows (first 100 shown)"


@pytest.mark.parametrize("text", ["", "   \n", "I do not know which table holds that.", "DELETE FROM Pets"])
def test_text_without_sql_is_rejected_with_a_clear_message(executor, text):
    with pytest.raises(DemoError, match="no SQL"):
        explain_sql(sample_database("pets_1"), text, executor)


def test_the_examples_offered_in_the_page_run_step_by_step(executor):
    pytest.importorskip("gradio", reason='the app needs gradio: pip install -e ".[demo]"')
    from trl_processsql.demo.app import EXAMPLES

    for db_id, question, sql in EXAMPLES:
        explanation = explain_sql(sample_database(db_id), sql, executor)
        assert len(explanation.steps) == 3 and explanation.failed is None and not explanation.notes, (db_id, question)
        assert explanation.steps[-1].row_count > 0


def test_sample_databases_are_the_bundled_spider_ones():
    assert sample_databases() == ["car_1", "concert_singer", "dog_kennels", "employee_hire_evaluation", "pets_1"]
    with pytest.raises(DemoError, match="choose one of car_1"):
        sample_database("../etc/passwd")


# -- uploads --------------------------------------------------------------------------------------


def test_an_upload_that_is_not_sqlite_is_rejected(tmp_path, executor):
    fake = tmp_path / "data.sqlite"
    fake.write_text("id,name\n1,Joe\n")
    with pytest.raises(DemoError, match="data.sqlite is not a SQLite database"):
        prepare_upload(fake, tmp_path / "uploads", executor)
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    with pytest.raises(DemoError, match="corrupt.db cannot be read as a SQLite database"):
        prepare_upload(corrupt, tmp_path / "uploads", executor)
    empty = tmp_path / "empty.sqlite"
    sqlite3.connect(empty).execute("PRAGMA user_version = 1").connection.close()
    with pytest.raises(DemoError, match="no tables"):
        prepare_upload(empty, tmp_path / "uploads", executor)
    assert not list((tmp_path / "uploads").glob("*/data.sqlite"))  # rejected before it was copied
    zero = tmp_path / "zero.sqlite"
    zero.touch()
    with pytest.raises(DemoError, match=r"zero.sqlite is not a SQLite database: it is an empty file \(0 bytes\)"):
        prepare_upload(zero, tmp_path / "uploads", executor)


def test_an_upload_is_copied_once_and_queried_as_the_copy(tmp_path, toy_db, executor):
    uploads = tmp_path / "uploads"
    copy = prepare_upload(toy_db, uploads, executor, name="my shop.sqlite")
    assert copy.parent.parent == uploads and copy.name == "my_shop.sqlite"
    assert copy.read_bytes() == toy_db.read_bytes()
    assert prepare_upload(toy_db, uploads, executor, name="my shop.sqlite") == copy
    explanation = explain_sql(copy, "SELECT count(*) FROM singer", executor)
    assert explanation.steps[0].rows == [["4"]]


# -- question mode --------------------------------------------------------------------------------


@pytest.mark.parametrize("question", ["", "   "])
def test_an_empty_question_is_rejected(question, executor):
    with pytest.raises(DemoError, match="type a question first"):
        answer_question(sample_database("pets_1"), question, FixedPolicy("SELECT 1"), executor)


def test_a_question_without_a_policy_says_how_to_load_one(executor):
    with pytest.raises(DemoError, match="--model"):
        answer_question(sample_database("pets_1"), "How many pets?", None, executor)


def test_the_policy_is_prompted_with_the_schema_and_its_answer_explained(executor):
    policy = FixedPolicy(f"Here are the steps:\n```sql\n{DOG_OWNERS_AGE}\n```")
    answer = answer_question(sample_database("pets_1"), "Average age of dog owners?", policy, executor)
    assert policy.calls[0][1] == 1 and answer.candidates == [] and answer.strategy is None
    prompt = policy.calls[0][0][0][-1]["content"]
    assert "Database: pets_1" in prompt and prompt.endswith("Question: Average age of dog owners?")
    assert [s.name for s in answer.explanation.steps] == ["dogs", "dog_owners", None]
    assert answer.explanation.steps[-1].rows == [["19.0"]]
    no_sql = answer_question(sample_database("pets_1"), "Who?", FixedPolicy("I cannot tell."), executor)
    assert no_sql.explanation is None and no_sql.completion == "I cannot tell."


def test_best_of_n_votes_among_the_candidates_that_ran(executor):
    pool = FixedPolicy("SELECT count(*) FROM Pets", "SELECT nope FROM Pets", "SELECT count(PetID) FROM Pets", "Not sure.")
    answer = answer_question(sample_database("pets_1"), "How many pets are there?", pool, executor, n=4)
    assert answer.strategy == "vote" and answer.selected == 0
    assert [(c["status"], c["votes"], c["prm_score"]) for c in answer.candidates] == [
        ("ok", 2, None), ("error", 0, None), ("ok", 2, None), ("no_sql", 0, None)
    ]
    assert answer.explanation.steps[-1].rows == [["3"]]
    with pytest.raises(DemoError, match="at least 1"):
        answer_question(sample_database("pets_1"), "How many pets?", pool, executor, n=0)


@pytest.fixture(scope="module")
def tiny_checkpoints(tmp_path_factory):
    """A tiny random policy and a tiny random PRM, saved as checkpoints."""
    from trl_processsql.small_models import save_tiny_checkpoint

    root = tmp_path_factory.mktemp("tiny")
    return save_tiny_checkpoint(root / "policy", "causal-lm"), save_tiny_checkpoint(root / "prm", "token-classification")


def test_real_checkpoints_answer_and_score_every_step(tiny_checkpoints, executor):
    policy_dir, prm_dir = tiny_checkpoints
    policy, prm = load_policy(policy_dir, max_new_tokens=8), load_prm(prm_dir)
    assert policy.sampler(1).temperature == 0 and policy.sampler(3).temperature == 1.0
    answer = answer_question(sample_database("concert_singer"), "Who sang in 2014?", policy, executor, prm)
    assert isinstance(answer.completion, str) and answer.candidates == []
    several = answer_question(sample_database("concert_singer"), "Who sang in 2014?", policy, executor, prm, n=3)
    assert several.strategy == "best-of-n" and len(several.candidates) == 3 and 0 <= several.selected < 3
    question = "What are the names of the singers who performed in a concert in 2014?"
    scored = explain_sql(sample_database("concert_singer"), SINGERS_2014, executor, prm, question)
    scores = [s.score for s in scored.steps]
    assert len(scores) == 3 and all(0.0 <= s <= 1.0 for s in scores) and scored.score == pytest.approx(min(scores))
    broken = explain_sql(sample_database("concert_singer"), "SELECT nope FROM singer", executor, prm, question)
    assert broken.steps[0].score == 0.0  # a step whose view fails scores 0, as in GRPO


def test_a_checkpoint_that_cannot_load_gives_its_reason(tmp_path):
    from trl_processsql.inference import ModelLoadError

    with pytest.raises(ModelLoadError, match="cannot load the policy from /no/such/model: no such"):
        load_policy("/no/such/model")
    with pytest.raises(ModelLoadError, match="cannot load the policy from ./missing-model: no such"):
        load_policy("./missing-model")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match=f"cannot load the process reward model from {tmp_path}"):
        load_prm(tmp_path)


def test_a_lazy_model_loads_once_and_keeps_its_failure():
    from trl_processsql.inference import ModelLoadError

    calls = []

    def loader(name):
        calls.append(name)
        raise ModelLoadError(f"cannot load {name}")

    lazy = LazyModel("broken", loader)
    for _ in range(2):
        with pytest.raises(DemoError, match="cannot load broken"):
            lazy.get()
    assert calls == ["broken"] and lazy.given
    assert LazyModel(None, loader).get() is None and not LazyModel(None, loader).given


# -- the app, served ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(executor):
    """The demo with no model, served on 127.0.0.1 in a thread: its URL."""
    pytest.importorskip("gradio", reason='the app needs gradio: pip install -e ".[demo]"')
    from trl_processsql.demo.app import build_demo, launch

    demo = build_demo(executor=executor)
    port = _free_port()
    launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


STEPS = 3
"""Where the step outputs start: after the status line, what the model wrote, and the candidates."""


def _value(update):
    """The value of an output as gradio_client returns it (updates come as dicts)."""
    return update.get("value") if isinstance(update, dict) and update.get("__type__") == "update" else update


def test_the_explain_endpoint_returns_the_step_tables(served):
    from gradio_client import Client

    from trl_processsql.demo.app import MAX_STEPS

    client = Client(served, verbose=False)
    outputs = client.predict("concert_singer", None, SINGERS_2014, "", api_name="/explain")
    status, candidates = _value(outputs[0]), outputs[2]
    headers, tables = outputs[STEPS : STEPS + MAX_STEPS], outputs[STEPS + MAX_STEPS :]
    assert candidates["visible"] is False
    assert status.startswith("**3 steps, every view executed; the answer has 5 rows**")
    assert [h["visible"] for h in headers[:4]] == [True, True, True, False]
    assert "Step 2 · `singers_2014` · 5 rows" in headers[1]["value"]
    shown = [_value(t) for t in tables[:3]]
    assert [t["headers"] for t in shown] == [["concert_ID"], ["Singer_ID"], ["Name"]]
    assert [len(t["data"]) for t in shown] == [3, 5, 5]
    assert tables[3]["visible"] is False


def test_the_page_reports_bad_input_in_the_status_line(served, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(served, verbose=False)
    fake = tmp_path / "notes.sqlite"
    fake.write_text("not a database")
    status = _value(client.predict("pets_1", handle_file(str(fake)), "SELECT 1", "", api_name="/explain")[0])
    assert status == "**Error:** notes.sqlite is not a SQLite database: its first bytes are not 'SQLite format 3'"
    status = _value(client.predict("pets_1", None, "SELECT nope FROM Pets", "", api_name="/explain")[0])
    assert "step 1 failed: error: no such column: nope" in status
    assert _value(client.predict("pets_1", None, "  ", 1, api_name="/ask")[0]) == "**Error:** type a question first"
    assert "no policy model is loaded" in _value(client.predict("pets_1", None, "How many pets?", 1, api_name="/ask")[0])


def test_an_uploaded_database_is_explained(served, toy_db):
    from gradio_client import Client, handle_file

    from trl_processsql.demo.app import MAX_STEPS

    client = Client(served, verbose=False)
    outputs = client.predict("pets_1", handle_file(str(toy_db)), "SELECT name FROM singer WHERE age > 40", "", api_name="/explain")
    assert "database: uploaded `toy.sqlite`" in _value(outputs[0])
    assert _value(outputs[STEPS + MAX_STEPS])["data"] == [["Joe"], ["Bo"]]


def test_a_model_that_cannot_load_is_reported_in_the_page(executor):
    pytest.importorskip("gradio", reason='the app needs gradio: pip install -e ".[demo]"')
    from gradio_client import Client

    from trl_processsql.demo.app import build_demo, launch

    demo = build_demo(model="/no/such/policy", prm="/no/such/prm", executor=executor)
    port = _free_port()
    launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        status = _value(client.predict("pets_1", None, "How many pets?", 1, api_name="/ask")[0])
        assert status.startswith("**Error:** cannot load the policy from /no/such/policy: no such")
        status = _value(client.predict("pets_1", None, "SELECT count(*) FROM Pets", "How many pets?", api_name="/explain")[0])
        assert "steps are not scored: cannot load the process reward model from /no/such/prm: no such" in status
    finally:
        demo.close()


def test_a_question_with_best_of_n_shows_the_candidates_and_the_chosen_steps(executor):
    pytest.importorskip("gradio", reason='the app needs gradio: pip install -e ".[demo]"')
    from gradio_client import Client

    from trl_processsql.demo.app import MAX_STEPS, build_demo, launch

    policy = FixedPolicy("I think:\n```sql\nSELECT nope FROM Pets\n```", DOG_OWNERS_AGE, DOG_OWNERS_AGE.replace("avg", "AVG"))
    demo = build_demo(model=policy, executor=executor)
    port = _free_port()
    launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        outputs = client.predict("pets_1", None, "Average age of dog owners?", 3, api_name="/ask")
    finally:
        demo.close()
    status, written, candidates = _value(outputs[0]), _value(outputs[1]), _value(outputs[2])
    assert status.startswith("**3 steps, every view executed; the answer has 1 row**")
    assert "candidate 2 of 3 chosen by execution vote (no PRM loaded)" in status
    assert written == DOG_OWNERS_AGE
    assert [row[:5] for row in candidates["data"]] == [
        ["1", "", "error", "", "0"], ["2", "chosen", "ok", "", "2"], ["3", "", "ok", "", "2"]
    ]
    assert _value(outputs[STEPS + MAX_STEPS + 2])["data"] == [["19.0"]]


def test_the_demo_command_exits_2_for_a_checkpoint_that_does_not_exist(capsys):
    pytest.importorskip("gradio", reason='the app needs gradio: pip install -e ".[demo]"')
    from trl_processsql.cli import main

    assert main(["demo", "--model", "/no/such/policy"]) == 2
    assert capsys.readouterr().err.startswith("trl-processsql: error: cannot load the policy from /no/such/policy: no such")


# -- the page, in a real browser ----------------------------------------------------------------------

CHROMIUM, CHROMEDRIVER = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture
def browser():
    """Debian's headless chromium driven through chromedriver, with a fresh profile."""
    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
        pytest.skip("the browser test needs Debian's chromium and its driver: apt-get install -y chromium chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver", reason="the browser test needs selenium: pip install selenium")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,2000",
    ):
        options.add_argument(flag)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            yield driver
        finally:
            driver.quit()


def explain_dog_owners(browser, wait) -> list[str]:
    """Pick pets_1 in the page, explain ``DOG_OWNERS_AGE`` with its question, wait for the three steps; their titles."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.find_element(By.CSS_SELECTOR, "#sample input").click()
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, '#sample li[aria-label="pets_1"]')).click()
    wait.until(lambda d: "pets_1" in d.find_element(By.ID, "database").text)
    sql = browser.find_element(By.CSS_SELECTOR, "#sql textarea")
    sql.send_keys(Keys.CONTROL, "a")
    sql.send_keys(Keys.DELETE)
    sql.send_keys(DOG_OWNERS_AGE)
    question = browser.find_element(By.CSS_SELECTOR, "#explain-question textarea")
    question.send_keys(Keys.CONTROL, "a")
    question.send_keys("What is the average age of the students who have a dog?")
    browser.find_element(By.ID, "explain-button").click()
    wait.until(lambda d: d.find_element(By.ID, "step-3-table").is_displayed())
    status = browser.find_element(By.ID, "status").text
    assert "3 steps, every view executed; the answer has 1 row" in status and "pets_1" in status
    return [" ".join(browser.find_element(By.ID, f"step-{k}").text.split()) for k in (1, 2, 3)]


@pytest.mark.slow
def test_the_page_explains_a_pasted_chain_step_by_step(served, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    browser.get(served)
    wait.until(lambda d: d.find_elements(By.ID, "explain-button"))

    titles = explain_dog_owners(browser, wait)
    assert titles[0].startswith("Step 1 · dogs · 2 rows") and "PetType = 'dog'" in titles[0]
    assert titles[1].startswith("Step 2 · dog_owners · 1 row")
    assert titles[2].startswith("Step 3 · final answer · 1 row")
    grids = [browser.find_element(By.CSS_SELECTOR, f"#step-{k}-table [role=grid]") for k in (1, 2, 3)]
    assert [int(grid.get_attribute("aria-rowcount")) - 1 for grid in grids] == [2, 1, 1]  # the header row is counted
    assert "19.0" in grids[2].text and "avg(s.Age)" in grids[2].text
    assert not any(element.is_displayed() for element in browser.find_elements(By.ID, "step-4"))

    screenshot = tmp_path / "demo_explain.png"
    browser.save_screenshot(str(screenshot))
    print(f"screenshot: {screenshot}")
    assert screenshot.stat().st_size > 10_000


@pytest.fixture
def answering(executor):
    """The demo answering questions, served on 127.0.0.1: with the checkpoints named by ``PROCESSSQL_DEMO_MODEL`` and
    ``PROCESSSQL_DEMO_PRM`` (a trained policy and PRM, such as the SmolLM2 ones ``bench_method.py --base`` writes), else
    with a stand-in policy that writes a fixed chain and no PRM. Yields the URL and whether a real model answers."""
    import os

    pytest.importorskip("gradio", reason='the app needs gradio: pip install -e ".[demo]"')
    from trl_processsql.demo.app import build_demo, launch

    model, prm = os.environ.get("PROCESSSQL_DEMO_MODEL"), os.environ.get("PROCESSSQL_DEMO_PRM")
    demo = build_demo(model=model or FixedPolicy(DOG_OWNERS_AGE), prm=prm, executor=executor, max_new_tokens=192)
    port = _free_port()
    launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/", bool(model and prm)
    demo.close()


@pytest.mark.slow
def test_the_page_answers_a_question_with_the_policys_own_steps(answering, browser, tmp_path):
    """Ask a question, see the policy's chain executed step by step. The stand-in's chain runs whole; a real policy
    picks among 8 samples with its PRM, and every step it shows carries the PRM's score. With ``PROCESSSQL_SCREENSHOT``
    the page is saved there (the README's picture of the demo is made this way)."""
    import os

    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    from trl_processsql.demo.app import MAX_STEPS

    url, real = answering
    database, asked, candidates = (("concert_singer", "How many concerts are there in each stadium? Show the stadium name.", 8) if real
                                   else ("pets_1", "What is the average age of the students who have a dog?", 1))
    wait = WebDriverWait(browser, 300)
    browser.get(url)
    wait.until(lambda d: d.find_elements(By.ID, "explain-button"))
    browser.find_element(By.XPATH, "//button[@role='tab'][contains(., 'Ask a question')]").click()
    wait.until(lambda d: d.find_element(By.ID, "ask-button").is_displayed())
    browser.find_element(By.CSS_SELECTOR, "#sample input").click()
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, f'#sample li[aria-label="{database}"]')).click()
    wait.until(lambda d: database in d.find_element(By.ID, "database").text)
    count = browser.find_element(By.CSS_SELECTOR, "#candidates-count input[type=number]")
    count.send_keys(Keys.CONTROL, "a")
    count.send_keys(str(candidates), Keys.TAB)
    question = browser.find_element(By.CSS_SELECTOR, "#question textarea")
    question.send_keys(Keys.CONTROL, "a")
    question.send_keys(asked)
    browser.find_element(By.ID, "ask-button").click()

    wait.until(lambda d: d.find_element(By.ID, "step-1").is_displayed())
    status = browser.find_element(By.ID, "status").text
    assert database in status, status
    shown = [e for k in range(1, MAX_STEPS + 1) for e in browser.find_elements(By.ID, f"step-{k}") if e.is_displayed()]
    headers = [" ".join(e.text.split()) for e in shown]
    assert headers[0].startswith("Step 1 · ")
    if real:
        assert f"of {candidates} chosen by PRM best-of-N" in status, status
        assert all("PRM score" in h for h in headers), headers
    else:
        assert "every view executed" in status
        assert [h.split(" · ")[1] for h in headers] == ["dogs", "dog_owners", "final answer"]
    screenshot = Path(os.environ.get("PROCESSSQL_SCREENSHOT") or tmp_path / "demo_answer.png")
    browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000
