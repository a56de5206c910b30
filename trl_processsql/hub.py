"""Dataset cards and publishing to the Hugging Face Hub.

Every dataset this package writes (SFT data, stepwise PRM data, predictions) goes to the Hub the
same way: :func:`dataset_card` renders ``hub_cards/dataset_card.md`` from what the caller knows
(kind, title, description, columns, figures, the command that built it) and :func:`push_dataset`
uploads the card and the data. Nothing here runs at import time or touches the network until
:func:`push_dataset` is called.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Iterable, Mapping

__all__ = [
    "BASE_TAGS",
    "CARDS_DIR",
    "SPIDER_SOURCE",
    "ModelCardMixin",
    "dataset_card",
    "model_card",
    "push_dataset",
    "size_category",
]

_PACKAGE_DIR = Path(__file__).parent
# A wheel ships the templates inside the package; a checkout (editable install) keeps them at its top.
CARDS_DIR = next(
    (d for d in (_PACKAGE_DIR / "hub_cards", _PACKAGE_DIR.parent / "hub_cards") if (d / "model_card.md").is_file()),
    _PACKAGE_DIR / "hub_cards",
)
"""The folder of the model and dataset card templates."""

BASE_TAGS = ("text-to-sql", "sql", "process-supervision", "trl", "trl-processsql")

SPIDER_SOURCE = (
    "Questions, gold SQL and databases come from Spider 1.0 (Tao Yu et al., *Spider: A Large-Scale Human-Labeled "
    "Dataset for Complex and Cross-Domain Semantic Parsing and Text-to-SQL Task*, EMNLP 2018, "
    "https://yale-lily.github.io/spider), released under CC BY-SA 4.0. This derived dataset is shared under the "
    "same license; keep the attribution when you redistribute it."
)
"""The attribution a card carries for Spider-derived data (the license is ``cc-by-sa-4.0``)."""

_REWARD_SQL_PAPER = {
    "title": "Reward-SQL: Boosting Text-to-SQL via Stepwise Reasoning and Process-Supervised Rewards",
    "id": "2505.04671",
    "citation": textwrap.dedent("""\
        @article{zhang2025rewardsql,
            title        = {{Reward-SQL: Boosting Text-to-SQL via Stepwise Reasoning and Process-Supervised Rewards}},
            author       = {Yuxin Zhang and Meihao Fan and Ju Fan and Mingyang Yi and Yuyu Luo and Jian Tan and Guoliang Li},
            year         = 2025,
            eprint       = {arXiv:2505.04671},
        }"""),
}
"""The method's paper as TRL's trainers describe theirs (``_paper``): title, arXiv id, BibTeX."""

_SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"))


def size_category(num_rows: int) -> str:
    """The Hub's ``size_categories`` value for a dataset of ``num_rows`` rows.

    >>> size_category(299), size_category(7000), size_category(10**8)
    ('n<1K', '1K<n<10K', 'n>10M')
    """
    return next((label for bound, label in _SIZES if num_rows < bound), "n>10M")


def dataset_card(
    repo_id: str,
    *,
    kind: str,
    title: str,
    description: str,
    columns: Mapping[str, str],
    stats: Mapping[str, str] | None = None,
    command: str | None = None,
    num_rows: int | None = None,
    source: str = SPIDER_SOURCE,
    license: str = "cc-by-sa-4.0",
    tags: Iterable[str] = (),
    task_categories: Iterable[str] = ("text-generation",),
):
    """A ``huggingface_hub.DatasetCard`` for a dataset built by this package.

    ``kind`` names the data in a few words ("SFT", "stepwise supervision"); ``columns`` maps each
    column to what it holds; ``stats`` are figures shown as a table (coverage, skipped rows);
    ``command`` is the command line that built the data; ``source`` attributes the original data.
    The metadata carries ``license``, ``task_categories``, :data:`BASE_TAGS` plus ``tags``,
    ``pretty_name`` (the title) and, given ``num_rows``, ``size_categories``.

    >>> card = dataset_card("me/toy", kind="SFT", title="Toy", description="A toy.", columns={"prompt": "the question"})
    >>> card.data.license, card.data.tags[:2], card.data.pretty_name
    ('cc-by-sa-4.0', ['text-to-sql', 'sql'], 'Toy')
    >>> 'load_dataset("me/toy")' in card.text
    True
    """
    from huggingface_hub import DatasetCard, DatasetCardData

    card_data = DatasetCardData(
        language=["en"],
        license=license,
        task_categories=list(task_categories),
        tags=list(dict.fromkeys([*BASE_TAGS, *tags])),
        pretty_name=title,
        size_categories=[size_category(num_rows)] if num_rows is not None else None,
    )
    return DatasetCard.from_template(
        card_data,
        template_path=str(CARDS_DIR / "dataset_card.md"),
        repo_id=repo_id,
        kind=kind,
        title=title,
        description=description,
        columns=dict(columns),
        stats=dict(stats or {}),
        command=command,
        source=source,
    )


def push_dataset(dataset, repo_id: str, *, private: bool = False, token: str | None = None, **card) -> str:
    """Push a ``Dataset`` or ``DatasetDict`` to the Hub with a card; returns the dataset's URL.

    ``card`` holds the keyword arguments of :func:`dataset_card` (``kind``, ``title``,
    ``description``, ``columns``, ...). The card goes up first: ``push_to_hub`` then keeps its text
    and adds the metadata that tells ``load_dataset`` where the splits are (``configs``,
    ``dataset_info``), which a card uploaded afterwards would erase.
    """
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    repo_url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    repo_id = repo_url.repo_id  # a bare name gets the user's namespace
    rendered = dataset_card(repo_id, num_rows=_num_rows(dataset), **card)
    kind = card["kind"]
    api.upload_file(
        path_or_fileobj=str(rendered).encode("utf-8"),
        path_in_repo="README.md",
        repo_id=repo_id,
        repo_type="dataset",
        commit_message=f"Add the {kind} dataset card",
    )
    dataset.push_to_hub(repo_id, private=private, token=token, commit_message=f"Upload the {kind} dataset")
    return f"{repo_url.endpoint}/datasets/{repo_id}"


def _num_rows(dataset) -> int:
    rows = dataset.num_rows
    return sum(rows.values()) if isinstance(rows, dict) else rows


def model_card(
    repo_id: str,
    *,
    kind: str,
    model_name: str,
    trainer_name: str,
    description: str = "",
    base_model: str | None = None,
    datasets: Iterable[str] = (),
    results: Mapping[str, float] | None = None,
    tags: Iterable[str] = (),
    license: str = "apache-2.0",
):
    """A ``huggingface_hub.ModelCard`` for a policy (``kind="policy"``) or a PRM (``kind="prm"``).

    ``results`` maps a benchmark name ("Spider dev") to its execution accuracy in [0, 1]; it
    becomes the card's ``model-index``. The usage snippet matches ``kind``.

    >>> card = model_card("me/prm", kind="prm", model_name="prm", trainer_name="ProcessRewardTrainer",
    ...                   base_model="Qwen/Qwen2.5-0.5B", results={"Spider dev": 0.5})
    >>> card.data.library_name, card.data.pipeline_tag, card.data.eval_results[0].metric_value
    ('transformers', 'token-classification', 0.5)
    >>> "ProcessRewardModel.from_pretrained" in card.text
    True
    """
    from importlib.metadata import version

    from huggingface_hub import ModelCard, ModelCardData

    eval_results = _eval_results(kind, results)
    card_data = ModelCardData(
        model_name=model_name,
        base_model=base_model,
        datasets=list(datasets) or None,
        library_name="transformers",
        license=license,
        pipeline_tag=_PIPELINE_TAGS[kind],
        tags=list(dict.fromkeys([*BASE_TAGS, *tags])),
        eval_results=eval_results or None,
    )
    versions = {name: version(name) for name in ("trl-processsql", "trl", "transformers", "torch")}
    body = _card_body(repo_id, kind, trainer_name, description, base_model, list(datasets), eval_results)
    return ModelCard.from_template(
        card_data, template_path=str(CARDS_DIR / "model_card.md"), model_name=model_name, body=body, versions=versions
    )


_PIPELINE_TAGS = {"policy": "text-generation", "prm": "token-classification"}


def _eval_results(kind: str, results: Mapping[str, float] | None) -> list:
    """The model-index entries of ``results``: execution accuracy for a policy, step AUROC for a PRM."""
    from huggingface_hub import EvalResult

    if kind not in _PIPELINE_TAGS:
        raise ValueError(f"kind must be 'policy' or 'prm', got {kind!r}")
    return [
        EvalResult(
            task_type="text-to-sql" if kind == "policy" else "token-classification",
            dataset_type=name.lower().replace(" ", "-"),
            dataset_name=name,
            metric_type="execution_accuracy" if kind == "policy" else "step_auroc",
            metric_name="execution accuracy" if kind == "policy" else "step AUROC",
            metric_value=float(value),
        )
        for name, value in (results or {}).items()
    ]


def _card_body(repo_id, kind, trainer_name, description, base_model, datasets, results) -> str:
    """What our cards say below the title: the model, its results and how to use it (``model_card_body.md``)."""
    import jinja2

    template = jinja2.Template((CARDS_DIR / "model_card_body.md").read_text(encoding="utf-8"))
    return template.render(
        repo_id=repo_id,
        kind=kind,
        trainer_name=trainer_name,
        description=description,
        base_model=base_model,
        datasets=datasets,
        results=results,
    )


class ModelCardMixin:
    """TRL's model card (tracker links, tags, citations) for the Reward-SQL paper, with our usage and a model-index.

    TRL renders the card with ``_paper`` set to the Reward-SQL paper and our tags added to the
    trainer's; its generic quick start gives way to our description, results and a usage snippet that
    runs, and ``card_results`` becomes the metadata's model-index. Set
    ``trainer.card_results = {"Spider dev": 0.81}`` after evaluating to put the figure in the card that
    ``save_model``/``push_to_hub`` write; ``card_license`` replaces the placeholder TRL's template leaves.
    """

    _paper = _REWARD_SQL_PAPER
    card_kind = "policy"
    card_license = "apache-2.0"
    card_description = ""
    card_results: Mapping[str, float] | None = None

    def create_model_card(self, model_name: str | None = None, dataset_name: str | None = None, tags=None, **kwargs):
        if not self.is_world_process_zero():
            return
        from huggingface_hub import ModelCard

        tags = [tags] if isinstance(tags, str) else list(tags or [])
        super().create_model_card(model_name=model_name, dataset_name=dataset_name, tags=[*BASE_TAGS, *tags])
        path = Path(self.args.output_dir) / "README.md"
        card = ModelCard.load(path)
        results = _eval_results(self.card_kind, self.card_results)
        card.data.model_name = card.data.model_name or path.parent.name  # the model-index is named after the model
        card.data.__dict__.pop("licence", None)  # TRL's template leaves a placeholder ("licence: license")
        card.data.license = self.card_license
        card.data.pipeline_tag = _PIPELINE_TAGS[self.card_kind]
        card.data.eval_results = results or None
        repo_id = self.hub_model_id or path.parent.name
        body = _card_body(repo_id, self.card_kind, type(self).__name__, self.card_description, None, [], results)
        card.text = _in_place_of_quick_start(card.text, body)
        if card.data.base_model is None:  # a local base: TRL's template would link a model named None
            card.text = card.text.replace("a fine-tuned version of [None](https://huggingface.co/None)", "fine-tuned")
        card.save(path)


def _in_place_of_quick_start(text: str, body: str) -> str:
    r"""TRL's card text with its "Quick start" section replaced by ``body`` (appended if the section is gone).

    >>> _in_place_of_quick_start("# M\n\n## Quick start\n\npipeline\n\n## Training procedure\n", "Ours.\n")
    '# M\n\nOurs.\n\n## Training procedure\n'
    """
    start, end = text.find("## Quick start"), text.find("## Training procedure")
    if start < 0 or end < start:
        return f"{text.rstrip()}\n\n{body.strip()}\n"
    return f"{text[:start]}{body.strip()}\n\n{text[end:]}"
