"""The SFT script end to end on CPU, and every recipe parsed by the parser of the script it launches."""

import importlib.util
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from trl_processsql.data import load_questions, sample_paths
from trl_processsql.sft_data import build_sft_dataset, split_by_database

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def test_sft_script_trains_saves_and_the_model_generates(tmp_path, sandbox):
    """The smoke recipe with its paths pointed at tmp_path, two steps and one evaluation."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trl_processsql.small_models import save_tiny_checkpoint

    questions_file, db_dir = sample_paths()
    questions = [q for q in load_questions(questions_file) if q["db_id"] in ("concert_singer", "pets_1")]
    dataset, _ = build_sft_dataset(questions[:4] + questions[-4:], db_dir, executor=sandbox)
    split_by_database(dataset, 0.5).save_to_disk(tmp_path / "data")
    save_tiny_checkpoint(tmp_path / "policy", "causal-lm", hidden_size=32)
    output = tmp_path / "sft"
    overrides = {
        "model_name_or_path": tmp_path / "policy",
        "dataset_name": tmp_path / "data",
        "output_dir": output,
        "max_steps": 2,
        "max_length": 1024,
        "eval_strategy": "steps",
        "eval_steps": 2,
        "dataset_test_split": "test",
    }
    result = _run_smoke_recipe(overrides)
    assert "eval_loss" in result.stdout + result.stderr and f"model saved to {output}" in result.stdout

    tokenizer = AutoTokenizer.from_pretrained(output)
    model = AutoModelForCausalLM.from_pretrained(output)
    inputs = tokenizer.apply_chat_template(dataset[0]["prompt"], add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        generated = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    assert generated.shape[1] > inputs["input_ids"].shape[1]


def _recipes() -> list[Path]:
    """``recipes/<model>/<stage>/config.yaml`` and ``recipes/smoke/<stage>.yaml``."""
    return sorted(p for p in RECIPES.glob("*/*/config.yaml")) + sorted(RECIPES.glob("smoke/*.yaml"))


def _stage(recipe: Path) -> str:
    return recipe.stem if recipe.parent.name == "smoke" else recipe.parent.name


class _Parsed(Exception):
    """Raised instead of running the script's main once its parser has read the recipe."""


@pytest.mark.parametrize("recipe", _recipes(), ids=lambda p: str(p.relative_to(RECIPES)))
def test_recipe_has_no_unknown_key_for_its_script(recipe, monkeypatch):
    """Run the script as ``__main__`` with the recipe, stopping at the parser: the exact parser it builds, strictly."""
    import torch
    from trl import TrlParser

    module = f"trl_processsql.scripts.{_stage(recipe)}"
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} does not exist yet")
    args = ["--config", str(recipe)] + ([] if torch.cuda.is_available() else ["--use_cpu", "true"])  # bf16 recipes on CPU
    parse = TrlParser.parse_args_and_config

    def parse_strictly(parser, *unused, **also_unused):
        raise _Parsed(parse(parser, args, fail_with_unknown_args=True))

    monkeypatch.setattr(TrlParser, "parse_args_and_config", parse_strictly)
    monkeypatch.setattr(sys, "argv", [module])
    monkeypatch.delitem(sys.modules, module, raising=False)  # run afresh as __main__, as `python -m` does
    with pytest.raises(_Parsed) as parsed:
        runpy.run_module(module, run_name="__main__")
    values = yaml.safe_load(recipe.read_text())
    config = {key: value for namespace in parsed.value.args[0] for key, value in vars(namespace).items()}
    assert config["output_dir"] == values["output_dir"] and config["model_name_or_path"] == values["model_name_or_path"]


def test_every_recipe_is_in_the_recipes_readme():
    readme = (RECIPES / "README.md").read_text()
    for path in [*_recipes(), *RECIPES.glob("accelerate_configs/*.yaml")]:
        assert str(path.relative_to(RECIPES.parent)) in readme, f"{path} is not documented in recipes/README.md"


@pytest.mark.parametrize("path", sorted(RECIPES.glob("accelerate_configs/*.yaml")), ids=lambda p: p.name)
def test_accelerate_config_has_only_keys_accelerate_knows(path):
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.commands.launch import launch_command_parser

    config = ClusterConfig.from_yaml_file(path)  # raises on an unknown top-level key
    assert config.mixed_precision == "bf16"
    options = {option for action in launch_command_parser()._actions for option in action.option_strings}
    nested = {**config.deepspeed_config, **config.fsdp_config}
    assert not [key for key in nested if f"--{key}" not in options]


@pytest.mark.parametrize("recipe", sorted(RECIPES.glob("*/prm_grpo/config.yaml")), ids=lambda p: p.parent.parent.name)
def test_gpu_grpo_recipes_sample_with_vllm_and_leave_memory_to_the_prm(recipe):
    import dataclasses

    from trl import GRPOConfig

    values = yaml.safe_load(recipe.read_text())
    assert values["use_vllm"] is True and values["vllm_mode"] == "colocate"
    assert 0 < values["vllm_gpu_memory_utilization"] <= 0.3  # the rest holds the policy's training state and the PRM
    assert {key for key in values if key.startswith("vllm")} <= {field.name for field in dataclasses.fields(GRPOConfig)}
    assert values["prm_model_name_or_path"] and values["bf16"] is True


def test_sft_script_records_the_datas_prompt_style_in_the_saved_config(tmp_path):
    """build-sft --prompt-style tables records the style with the data; the trained checkpoint carries it to inference."""
    import json

    from transformers import AutoConfig

    from trl_processsql.cli import main
    from trl_processsql.prompts import saved_prompt_style
    from trl_processsql.small_models import save_tiny_checkpoint

    questions_file, db_dir = sample_paths()
    questions = tmp_path / "questions.json"
    pets = [q for q in json.loads(Path(questions_file).read_text()) if q["db_id"] == "pets_1"]
    questions.write_text(json.dumps(pets[:4]))
    data = tmp_path / "data"
    build = ["build-sft", "--questions", str(questions), "--db-dir", str(db_dir), "--prompt-style", "tables"]
    assert main([*build, "--output", str(data)]) == 0
    save_tiny_checkpoint(tmp_path / "policy", "causal-lm", hidden_size=32)
    output = tmp_path / "sft"
    overrides = {"model_name_or_path": tmp_path / "policy", "dataset_name": data, "output_dir": output, "max_steps": 1}
    _run_smoke_recipe(overrides)
    assert saved_prompt_style(AutoConfig.from_pretrained(output)) == "tables"


def _run_smoke_recipe(overrides: dict) -> subprocess.CompletedProcess:
    """The SFT script on the smoke recipe with ``overrides``; fails the test if it fails."""
    args = [f"--{key}={value}" for key, value in overrides.items()]
    result = subprocess.run(
        [sys.executable, "-m", "trl_processsql.scripts.sft", "--config", str(RECIPES / "smoke" / "sft.yaml"), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _script_args(data: Path, prompt_style=None, record=None):
    """The SFT script's arguments for the dataset folder ``data``, with ``record`` as build-sft's record if given."""
    import json

    from trl_processsql.scripts.sft import DATA_RECORD, SFTScriptArguments

    data.mkdir(exist_ok=True)
    if record is not None:
        (data / DATA_RECORD).write_text(json.dumps(record))
    return SFTScriptArguments(dataset_name=str(data), prompt_style=prompt_style)


def test_the_prompt_style_field_wins_over_the_datas_record_and_full_is_the_default(tmp_path):
    from trl_processsql.scripts.sft import data_prompt_style

    recorded = {"prompt_style": "tables"}
    assert data_prompt_style(_script_args(tmp_path / "data", record=recorded)) == "tables"
    assert data_prompt_style(_script_args(tmp_path / "data", prompt_style="compact", record=recorded)) == "compact"
    assert data_prompt_style(_script_args(tmp_path / "unrecorded")) == "full"  # build-sft's default, and a Hub dataset's


def test_an_unknown_prompt_style_stops_the_script_before_it_loads_anything(tmp_path):
    from trl_processsql.scripts.sft import DATA_RECORD, main

    with pytest.raises(ValueError, match=r"unknown prompt style 'wide' \(from --prompt_style\): choose one of full, tables"):
        main(_script_args(tmp_path / "data", prompt_style="wide"), training_args=None, model_args=None)
    with pytest.raises(ValueError, match=rf"unknown prompt style 'schema' \(from .*{DATA_RECORD}\)"):
        main(_script_args(tmp_path / "data", record={"prompt_style": "schema"}), training_args=None, model_args=None)


def test_the_prompt_style_field_parses_from_the_command_line():
    from trl import ModelConfig, SFTConfig, TrlParser

    from trl_processsql.scripts.sft import SFTScriptArguments

    parser = TrlParser((SFTScriptArguments, SFTConfig, ModelConfig))
    args = ["--dataset_name", "d", "--output_dir", "o", "--use_cpu", "true", "--prompt_style", "tables"]
    script_args, _, _ = parser.parse_args_and_config(args)
    assert script_args.prompt_style == "tables"
