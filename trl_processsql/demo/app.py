"""The Gradio app: pick or upload a database, then explain a query or ask a question, step by step.

The page lays out what :mod:`.explain` and :mod:`.answer` compute; every message a visitor sees
for bad input (an upload that is not SQLite, an empty question, SQL that fails, a model that does
not load) is a :class:`DemoError` or a failed step shown in the status line, never a traceback.
Gradio 6 takes the theme and the style at launch: use :func:`launch`.
"""

from __future__ import annotations

import tempfile

import gradio as gr

from ..sql import ExecutionLimits, SQLExecutor
from ..sql.schema import SchemaError, render_schema
from .answer import Answer, answer_question
from .databases import DemoError, prepare_upload, sample_database, sample_databases
from .explain import Explanation, StepView, explain_sql
from .models import LazyModel, load_policy, load_prm

__all__ = ["EXAMPLES", "MAX_STEPS", "build_demo", "launch"]

MAX_STEPS = 10
"""Steps the page has room for; a longer chain shows its first steps and its final one."""

QUERY_TIMEOUT = 10.0
"""Seconds one step's view may run: a visitor's query must not hold the demo for long."""

MAX_UPLOAD = "200mb"
"""Largest file a visitor may upload."""

MAX_CANDIDATES = 32
"""Most candidates a visitor may ask best-of-N for (the paper samples 32)."""

EXAMPLES = [
    (
        "concert_singer",
        "What are the names of the singers who performed in a concert in 2014?",
        (
            "WITH concerts_2014 AS (\n  SELECT concert_ID FROM concert WHERE Year = 2014\n),\n\n"
            "singers_2014 AS (\n  SELECT DISTINCT sic.Singer_ID\n  FROM singer_in_concert AS sic\n"
            "  JOIN concerts_2014 AS c ON sic.concert_ID = c.concert_ID\n)\n\n"
            "SELECT s.Name FROM singer AS s JOIN singers_2014 AS x ON s.Singer_ID = x.Singer_ID"
        ),
    ),
    (
        "pets_1",
        "What is the average age of the students who have a dog?",
        (
            "WITH dogs AS (\n  SELECT PetID FROM Pets WHERE PetType = 'dog'\n),\n\n"
            "dog_owners AS (\n  SELECT DISTINCT h.StuID FROM Has_Pet AS h JOIN dogs AS d ON h.PetID = d.PetID\n)\n\n"
            "SELECT avg(s.Age) FROM Student AS s JOIN dog_owners AS o ON s.StuID = o.StuID"
        ),
    ),
    (
        "car_1",
        "Which European countries have at least 3 car makers, and how many?",
        (
            "WITH european_countries AS (\n  SELECT c.CountryId, c.CountryName\n"
            "  FROM countries AS c JOIN continents AS k ON c.Continent = k.ContId\n  WHERE k.Continent = 'europe'\n),\n\n"
            "makers_per_country AS (\n  SELECT Country, count(*) AS n_makers FROM car_makers GROUP BY Country\n)\n\n"
            "SELECT e.CountryName, m.n_makers\nFROM european_countries AS e JOIN makers_per_country AS m ON e.CountryId = m.Country\n"
            "WHERE m.n_makers >= 3"
        ),
    ),
]
"""(sample database, question, CoCTE answer) triples offered under the Explain tab."""

_INTRO = """\
# Chain-of-CTEs text-to-SQL, step by step
A [Reward-SQL](https://arxiv.org/abs/2505.04671) policy writes SQL as a **chain of common table expressions**:
each CTE is one reasoning step. Here every step is executed on its own, so you see what it computed, and a
**process reward model** (when one is loaded) scores each step. Paste any SQL in *Explain SQL* to see it as
steps, or ask a question when the demo runs with a policy model.
"""

_CSS = """
.sql-input textarea, .schema textarea { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.step-header { margin-top: 0.75rem; }
.step-header pre { margin: 0.25rem 0; }
"""

THEME = gr.themes.Soft(primary_hue="indigo", neutral_hue="slate")


def launch(demo: gr.Blocks, **kwargs):
    """``demo.launch`` with the demo's theme, style and upload limit (Gradio 6 takes them here)."""
    kwargs.setdefault("max_file_size", MAX_UPLOAD)
    return demo.launch(theme=THEME, css=_CSS, **kwargs)


# -- rendering ----------------------------------------------------------------------------------


def _step_markdown(step: StepView) -> str:
    title = "final answer" if step.final else (f"`{step.name}`" if step.name else "statement")
    facts = [step.size if step.ok else "failed"]
    if step.score is not None:
        facts.append(f"PRM score {step.score:.2f}")
    failure = "" if step.ok else f"\n\n**{step.summary}**"
    return f"### Step {step.index} · {title} · {' · '.join(facts)}\n```sql\n{step.sql}\n```{failure}"


def _status_markdown(explanation: Explanation, source: str, extra: list[str]) -> str:
    line = f"**{explanation.message}** · database: {source}"
    if explanation.score is not None:
        line += f" · PRM score of the chain: **{explanation.score:.2f}**"
    notes = explanation.notes + extra
    if len(explanation.steps) > MAX_STEPS:
        hidden = len(explanation.steps) - MAX_STEPS
        notes.append(f"the chain has {len(explanation.steps)} steps: {hidden} before the last one are not shown")
    return line + "".join(f"\n- {note}" for note in notes)


def _step_updates(steps: list[StepView]) -> list:
    shown = steps if len(steps) <= MAX_STEPS else steps[: MAX_STEPS - 1] + steps[-1:]
    headers = [gr.Markdown(_step_markdown(step), visible=True) for step in shown]
    tables = [
        gr.Dataframe({"headers": step.headers, "data": step.rows}, visible=True)
        if step.ok
        else gr.Dataframe(visible=False)
        for step in shown
    ]
    empty = MAX_STEPS - len(shown)
    return headers + [gr.Markdown(visible=False)] * empty + tables + [gr.Dataframe(visible=False)] * empty


def _candidates_update(answer: Answer | None):
    if answer is None or not answer.candidates:
        return gr.Dataframe(visible=False)
    rows = [
        [
            str(i + 1),
            "chosen" if i == answer.selected else "",
            c["status"],
            "" if c["prm_score"] is None else f"{c['prm_score']:.2f}",
            str(c["votes"]),
            " ".join(c["sql"].split())[:160] or "(no SQL)",
        ]
        for i, c in enumerate(answer.candidates)
    ]
    headers = ["#", "", "status", "PRM score", "votes", "SQL"]
    return gr.Dataframe({"headers": headers, "data": rows}, visible=True)


def _selection_note(answer: Answer) -> list[str]:
    if not answer.candidates:
        return []
    if not any(c["status"] == "ok" for c in answer.candidates):
        return [f"none of the {len(answer.candidates)} candidates ran: the first one is shown"]
    how = "PRM best-of-N among the candidates that ran" if answer.strategy == "best-of-n" else "execution vote (no PRM loaded)"
    return [f"candidate {answer.selected + 1} of {len(answer.candidates)} chosen by {how}"]


def _page(status: str, steps: list[StepView], completion: str | None = None, answer: Answer | None = None) -> list:
    """Every output, in the order of ``outputs`` in :func:`build_demo`."""
    written = gr.Code(completion, visible=True) if completion is not None else gr.Code(visible=False)
    return [status, written, _candidates_update(answer), *_step_updates(steps)]


def _error_page(message: str, completion: str | None = None, answer: Answer | None = None) -> list:
    return _page(f"**Error:** {message}", [], completion, answer)


# -- the app ------------------------------------------------------------------------------------


def build_demo(model=None, prm=None, *, executor=None, max_new_tokens: int = 512) -> gr.Blocks:
    """The demo as a ``gr.Blocks``: start it with :func:`launch`.

    ``model`` (the policy) and ``prm`` are loaded objects (a :class:`~.models.Policy`, a
    :class:`~trl_processsql.prm.ProcessRewardModel`), checkpoint names loaded on first use (a
    failure is shown in the page), or None: without a policy only the Explain tab answers, and
    without a PRM steps are not scored. ``executor`` runs the queries (default: one sandboxed
    worker with a 10 s deadline per view).
    """
    policy = LazyModel(model, lambda name: load_policy(name, max_new_tokens))
    reward = LazyModel(prm, load_prm)
    executor = executor or SQLExecutor(num_workers=1, limits=ExecutionLimits(timeout=QUERY_TIMEOUT))
    uploads = tempfile.TemporaryDirectory(prefix="trl-processsql-demo-")  # removed with the app
    samples = sample_databases()

    def database(sample: str, upload: str | None):
        """The file to query and how to name it: the upload if there is one, else the sample."""
        if upload:
            path = prepare_upload(upload, uploads.name, executor)
            return path, f"uploaded `{path.name}`"
        if not sample:
            raise DemoError("choose a sample database or upload a SQLite file")
        return sample_database(sample), f"`{sample}` (Spider sample)"

    def show_database(sample, upload):
        try:
            path, source = database(sample, upload)
            schema = render_schema(path, n_examples=2)
        except (DemoError, SchemaError) as exc:
            return f"**Error:** {exc}", ""
        return f"Querying {source}", schema

    def scorer(extra: list[str]):
        """The PRM, or None with the reason added to ``extra`` when it does not load."""
        try:
            return reward.get()
        except DemoError as exc:
            extra.append(f"steps are not scored: {exc}")
            return None

    def explain(sample, upload, sql, question):
        extra: list[str] = []
        try:
            path, source = database(sample, upload)
            prm_model = scorer(extra) if question and question.strip() else None
            if reward.given and not (question and question.strip()):
                extra.append("type the question the SQL answers to have the PRM score its steps")
            explanation = explain_sql(path, sql, executor, prm_model, question or "")
        except DemoError as exc:
            return _error_page(str(exc))
        return _page(_status_markdown(explanation, source, extra), explanation.steps)

    def ask(sample, upload, question, n):
        extra: list[str] = []
        try:
            path, source = database(sample, upload)
            if not (question and question.strip()):
                raise DemoError("type a question first")
            answer = answer_question(path, question, policy.get(), executor, scorer(extra), int(n))
        except DemoError as exc:
            return _error_page(str(exc))
        extra += _selection_note(answer)
        if answer.explanation is None:
            message = "the chosen answer holds no SQL query: what the model wrote is shown below"
            return _error_page("; ".join([message, *extra]), answer.completion, answer)
        return _page(_status_markdown(answer.explanation, source, extra), answer.explanation.steps, answer.completion, answer)

    # the first database's note is part of the page: a load event answering after the user picked another one would overwrite it
    first_note, first_schema = show_database(EXAMPLES[0][0], None)
    with gr.Blocks(title="trl-processsql: chain-of-CTEs text-to-SQL", analytics_enabled=False) as demo:
        gr.Markdown(_INTRO)
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=280):
                sample = gr.Dropdown(samples, value=EXAMPLES[0][0], label="Sample database (Spider)", elem_id="sample")
                upload = gr.File(label="…or upload a SQLite file", type="filepath", elem_id="upload")
                db_note = gr.Markdown(first_note, elem_id="database")
                with gr.Accordion("Schema (what the model reads)", open=False):
                    schema = gr.Textbox(first_schema, show_label=False, lines=14, max_lines=30, interactive=False, elem_classes="schema")
            with gr.Column(scale=3):
                with gr.Tabs():
                    with gr.Tab("Explain SQL", id="explain"):
                        sql = gr.Textbox(
                            EXAMPLES[0][2],
                            label="SQL: a chain of CTEs, or any SELECT",
                            lines=12,
                            max_lines=40,
                            elem_id="sql",
                            elem_classes="sql-input",
                        )
                        explain_question = gr.Textbox(
                            EXAMPLES[0][1],
                            label="Question the SQL answers (optional: with a PRM loaded, it scores the steps against it)",
                            elem_id="explain-question",
                        )
                        explain_button = gr.Button("Explain steps", variant="primary", elem_id="explain-button")
                        gr.Examples(
                            [list(example) for example in EXAMPLES],
                            [sample, explain_question, sql],
                            label="Examples",
                            example_labels=[f"{db}: {question}" for db, question, _ in EXAMPLES],
                        )
                    with gr.Tab("Ask a question", id="ask"):
                        if not policy.given:
                            gr.Markdown(
                                "No policy model is loaded, so this tab is off. To ask questions, start the demo with "
                                "`trl-processsql demo --model CHECKPOINT [--prm CHECKPOINT]` (in a Space: set the "
                                "`PROCESSSQL_MODEL` and `PROCESSSQL_PRM` variables)."
                            )
                        question = gr.Textbox(
                            label="Question", placeholder=EXAMPLES[0][1], elem_id="question", interactive=policy.given
                        )
                        n = gr.Slider(
                            1,
                            MAX_CANDIDATES,
                            value=1,
                            step=1,
                            label="Candidates (best-of-N)",
                            info="1: one greedy answer. More: sampled at temperature 1, one chosen by the PRM "
                            "(or by execution vote without a PRM).",
                            interactive=policy.given,
                            elem_id="candidates-count",
                        )
                        ask_button = gr.Button(
                            "Write SQL and explain it", variant="primary", elem_id="ask-button", interactive=policy.given
                        )
        status = gr.Markdown(elem_id="status")
        written = gr.Code(label="What the model wrote", language="markdown", interactive=False, visible=False)
        candidates = gr.Dataframe(visible=False, interactive=False, wrap=True, label="Candidates", elem_id="candidates")
        headers, tables = [], []
        for k in range(1, MAX_STEPS + 1):
            headers.append(gr.Markdown(visible=False, elem_id=f"step-{k}", elem_classes="step-header"))
            tables.append(
                gr.Dataframe(
                    visible=False,
                    interactive=False,
                    show_label=False,
                    max_height=360,
                    label=f"result of step {k}",
                    elem_id=f"step-{k}-table",
                )
            )
        outputs = [status, written, candidates, *headers, *tables]

        for event in (sample.change, upload.change):
            event(show_database, [sample, upload], [db_note, schema], api_name=False, queue=False)
        explain_button.click(explain, [sample, upload, sql, explain_question], outputs, api_name="explain")
        ask_button.click(ask, [sample, upload, question, n], outputs, api_name="ask")
        question.submit(ask, [sample, upload, question, n], outputs, api_name=False)
    return demo
