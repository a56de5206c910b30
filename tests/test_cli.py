"""The trl-processsql command line: fast help, clear errors, the execute and evaluate commands."""

import argparse
import json
import re
import shlex
import subprocess
import sys

import pytest

from trl_processsql.cli import main


def _run(*args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "trl_processsql.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def test_help_loads_no_heavy_library():
    """The commands take their choices from the library's leaf modules, which load no torch (sqlglot, which they
    load, is light)."""
    code = (
        "import sys, contextlib, io\n"
        "import trl_processsql.cli\n"
        "trl_processsql.cli.build_parser()\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    for command in ['', *trl_processsql.cli.COMMANDS]:\n"
        "        try: trl_processsql.cli.main([command.replace('_', '-'), '--help'] if command else ['--help'])\n"
        "        except SystemExit: pass\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'trl', 'datasets') if m in sys.modules)\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _loaded_after(argv: list[str]) -> list[str]:
    """The command modules and sqlglot that ``main(argv)`` leaves imported, in a fresh interpreter."""
    code = (
        "import sys, contextlib, io, json\n"
        "from trl_processsql.cli import COMMANDS, main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    try: main({argv!r})\n"
        "    except SystemExit: pass\n"
        "print(json.dumps(sorted(m for m in sys.modules if m == 'sqlglot' or m.startswith('trl_processsql.cli.') "
        "and m.rpartition('.')[2] in COMMANDS)))\n"
    )
    return json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def test_top_level_help_imports_no_command_module():
    """``trl-processsql --help`` lists the commands without importing them, nor sqlglot, which their options load."""
    assert _loaded_after(["--help"]) == []


def test_a_command_imports_its_own_module_only():
    assert _loaded_after(["analyze", "--help"]) == ["trl_processsql.cli.sweep"]


def test_help_names_every_command():
    result = _run("--help")
    assert result.returncode == 0
    assert "execute" in result.stdout and "evaluate" in result.stdout


def test_python_dash_m_of_the_package_runs_the_command_line():
    result = subprocess.run([sys.executable, "-m", "trl_processsql", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "label-steps" in result.stdout


def test_the_cards_command_line_parses_back_to_the_settings_every_shard_shares():
    from trl_processsql.cli import build_parser
    from trl_processsql.cli._options import command_line, from_namespace, shared_settings
    from trl_processsql.cli.label_steps import LabelStepsOptions

    options = LabelStepsOptions(
        questions="q.json", db_dir="db", sources="mutations,rollouts", policy="p", equivalents=True, hard_labels=True,
        num_shards=2, shard_index=1, output="out dir",
    )
    line = command_line("label-steps", options)
    assert "--device" not in line and "--workers" not in line and line.endswith("--output 'out dir'")
    again = from_namespace(LabelStepsOptions, build_parser().parse_args(shlex.split(line)[1:]))
    assert shared_settings(again) == shared_settings(options)


def test_options_built_in_python_check_themselves_as_the_command_line_does():
    from trl_processsql.cli._options import CommandError
    from trl_processsql.cli.label_steps import LabelStepsOptions

    with pytest.raises(CommandError, match="sample chains from a policy: add --policy MODEL"):
        LabelStepsOptions(sample=True, sources="rollouts", output="out")
    with pytest.raises(CommandError, match="give --questions and --db-dir, or --sample"):
        LabelStepsOptions(output="out")


def _subcommands():
    from trl_processsql.cli import build_parser

    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_every_option_is_explained_in_help(command):
    """Each option's help says what it does, not only its default."""
    for action in _subcommands()[command]._actions:
        text = re.sub(r"\(default: %\(default\)s\)", "", action.help or "").strip()
        assert len(text) > 3, f"{command} {'/'.join(action.option_strings) or action.dest} has no help text"


def test_demo_host_and_port_default_to_gradios_environment_variables(monkeypatch):
    from trl_processsql.cli import build_parser

    assert (build_parser().parse_args(["demo"]).host, build_parser().parse_args(["demo"]).port) == ("127.0.0.1", 7860)
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7999")
    args = build_parser().parse_args(["demo"])
    assert (args.host, args.port) == ("0.0.0.0", 7999)
    assert build_parser().parse_args(["demo", "--port", "8001"]).port == 8001


def test_demo_without_gradio_says_what_works_from_a_clone(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio raises ImportError
    assert main(["demo"]) == 2
    assert capsys.readouterr().err.strip() == 'trl-processsql: error: the demo needs gradio: from a clone of the repository, pip install -e ".[demo]"'


def test_execute_prints_the_result_table(toy_db, capsys):
    assert main(["execute", "--db", str(toy_db), "SELECT name, age FROM singer ORDER BY age LIMIT 2"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["name", "|", "age"]
    assert "Cy" in out and "(2 rows" in out


def test_execute_refuses_a_write_with_a_clear_message_and_exit_code_2(toy_db, capsys):
    assert main(["execute", "--db", str(toy_db), "UPDATE singer SET age = 0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("trl-processsql: error: rejected:") and "read-only" in err


def test_execute_on_a_missing_file_says_so(tmp_path, capsys):
    assert main(["execute", "--db", str(tmp_path / "none.sqlite"), "SELECT 1"]) == 2
    assert "not found" in capsys.readouterr().err


def test_execute_says_error_once_for_a_failing_query(toy_db, capsys):
    assert main(["execute", "--db", str(toy_db), "SELECT * FROM nowhere"]) == 2
    assert capsys.readouterr().err.strip() == "trl-processsql: error: no such table: nowhere"


def test_execute_on_a_folder_says_it_is_a_folder(tmp_path, capsys):
    assert main(["execute", "--db", str(tmp_path), "SELECT 1"]) == 2
    assert f"{tmp_path} is a folder, not a database file" in capsys.readouterr().err


@pytest.mark.parametrize("content", [b"", b"id,name\n1,Joe\n"])
def test_execute_refuses_a_file_that_is_not_sqlite_even_for_select_1(tmp_path, capsys, content):
    notadb = tmp_path / "notadb.sqlite"
    notadb.write_bytes(content)
    assert main(["execute", "--db", str(notadb), "SELECT 1"]) == 2
    captured = capsys.readouterr()
    assert "is not a SQLite database" in captured.err and captured.out == ""


def test_evaluate_sample_gold_prints_a_table_and_writes_the_report(tmp_path):
    out = tmp_path / "report.json"
    result = _run("evaluate", "--sample", "--predictions", "gold", "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert "100.0%" in result.stdout and "299" in result.stdout
    assert json.loads(out.read_text())["totals"]["accuracy"] == 1.0


@pytest.fixture
def notadb_questions(tmp_path):
    """Two questions on a database folder whose file is not SQLite: every gold query fails."""
    (tmp_path / "db" / "shop").mkdir(parents=True)
    (tmp_path / "db" / "shop" / "shop.sqlite").write_text("id,name\n1,pen\n")
    questions = tmp_path / "questions.json"
    questions.write_text(json.dumps([{"db_id": "shop", "question": "?", "query": f"SELECT {k}"} for k in (1, 2)]))
    return questions, tmp_path / "db"


def test_evaluate_on_a_database_folder_that_does_not_exist_is_an_error_naming_it(notadb_questions, tmp_path, capsys):
    questions, _ = notadb_questions
    missing = tmp_path / "no-such-folder"
    assert main(["evaluate", "--questions", str(questions), "--db-dir", str(missing), "--predictions", "gold"]) == 2
    assert f"database folder not found: {missing}" in capsys.readouterr().err


def test_evaluate_where_every_database_is_missing_is_an_error(notadb_questions, tmp_path, capsys):
    questions, _ = notadb_questions
    assert main(["evaluate", "--questions", str(questions), "--db-dir", str(tmp_path), "--predictions", "gold"]) == 2
    err = capsys.readouterr().err
    assert f"none of the databases the questions use is in {tmp_path}" in err and "shop" in err


def test_evaluate_prints_gold_failures_with_their_reason_and_fails_when_all_gold_failed(notadb_questions, capsys):
    questions, db_dir = notadb_questions
    assert main(["evaluate", "--questions", str(questions), "--db-dir", str(db_dir), "--predictions", "gold", "--quiet"]) == 2
    captured = capsys.readouterr()
    assert "gold failures 2" in captured.out
    assert "every gold query failed" in captured.err and "is not a SQLite database" in captured.err
    assert main(["evaluate", "--questions", str(questions), "--db-dir", str(db_dir), "--predictions", "gold"]) == 2
    out = capsys.readouterr().out
    assert "gold queries that failed, scored 0 (2):" in out
    assert "question 1 (shop): gold query error:" in out and "is not a SQLite database" in out


def test_evaluate_quiet_without_output_prints_the_one_line_result(capsys):
    assert main(["evaluate", "--sample", "--predictions", "gold", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("EX 100.0% (299 of 299, spider semantics)") and len(out.splitlines()) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["evaluate", "--predictions", "gold"], "give --questions and --db-dir, or --sample"),
        (["evaluate", "--sample", "--questions", "q.json", "--predictions", "gold"], "--sample replaces"),
        (["evaluate", "--sample", "--predictions", "does-not-exist.sql"], "predictions file not found"),
        (["evaluate", "--questions", "nope.json", "--db-dir", ".", "--predictions", "gold"], "questions file not found"),
        (["execute", "--db", "x.sqlite", "--timeout", "0", "SELECT 1"], "timeout must be positive"),
    ],
)
def test_bad_arguments_get_one_line_errors(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_build_sft_offers_exactly_the_prompt_styles():
    """The command offers the prompt styles the prompts module builds, and the full prompt by default."""
    from trl_processsql.prompts import PROMPT_STYLES

    style = next(a for a in _subcommands()["build-sft"]._actions if a.dest == "prompt_style")
    assert tuple(style.choices) == PROMPT_STYLES and style.default == "full"


@pytest.mark.parametrize("style", ["tables", None])
def test_build_sft_writes_prompts_in_the_prompt_style_and_records_it(style, tmp_path):
    from datasets import load_from_disk

    from trl_processsql.data import database_path, sample_paths
    from trl_processsql.prompts import build_prompt

    output = tmp_path / "sft"
    chosen = ["--prompt-style", style] if style else []
    assert main(["build-sft", "--sample", "--output", str(output), "--workers", "2", *chosen]) == 0
    recorded = json.loads((output / "processsql_sft.json").read_text())
    assert recorded == {"prompt_style": style or "full"}
    row = load_from_disk(output)["train"][0]
    db_path = database_path(sample_paths()[1], row["db_id"])
    assert row["prompt"][0]["content"] == build_prompt(row["question"], db_path, style=style or "full")
