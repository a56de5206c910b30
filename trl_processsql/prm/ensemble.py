"""Several token-classification PRMs as one: the mean of their step scores.

PRMs trained alike but for the seed agree on the errors they were trained on and disagree on the
others, where one seed's verdict is partly luck; the mean of their step probabilities does not hang
on one draw (``benchmarks/bench_selection.py`` measures the ensemble against its members on error
kinds left out of training: its worst case lies between theirs or above, its mean about theirs). :class:`StepScoreEnsemble`
answers like one token-classification model (its logits are those of the mean probability), so
every user of :class:`~trl_processsql.prm.ProcessRewardModel` (best-of-N, step beam, PRM-GRPO,
the demo) takes it unchanged; each forward pass runs every member.

On disk an ensemble is one folder: the shared tokenizer, ``prm_ensemble.json`` naming the member
folders, and one checkpoint per member, each as :class:`~trl_processsql.prm.ProcessRewardTrainer`
saved it. ``ProcessRewardModel.from_pretrained`` reads such a folder, locally or from the Hub.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Sequence

import torch

__all__ = ["ENSEMBLE_FILE", "StepScoreEnsemble", "ensemble_members", "save_prm_ensemble"]

ENSEMBLE_FILE = "prm_ensemble.json"
# What must agree between members for one encoding of the input to serve them all.
SHARED_CONFIG = ("prm_step_separator", "prm_max_length", "prm_max_prompt_length", "vocab_size")


class StepScoreEnsemble(torch.nn.Module):
    """Token-classification models with one label, read as one: ``sigmoid(logits)`` is the mean of theirs.

    >>> from trl_processsql.small_models import build_tiny_model, build_tokenizer
    >>> tokenizer = build_tokenizer(["SELECT name FROM singer"])
    >>> members = [build_tiny_model(tokenizer, "token-classification", seed=s).eval() for s in (0, 1)]
    >>> ids = torch.tensor([[5, 6, 7]])
    >>> mean = torch.stack([torch.sigmoid(m(input_ids=ids).logits) for m in members]).mean(0)
    >>> torch.allclose(torch.sigmoid(StepScoreEnsemble(members)(input_ids=ids).logits), mean)
    True
    """

    def __init__(self, members: Sequence[torch.nn.Module]):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member PRM")
        for member in members:
            if getattr(member.config, "num_labels", 1) != 1:
                raise ValueError(f"every member must be a token-classification PRM with num_labels=1, one has {member.config.num_labels}")
            for key in SHARED_CONFIG:
                if getattr(member.config, key, None) != getattr(members[0].config, key, None):
                    raise ValueError(
                        f"ensemble members disagree on {key} ({getattr(members[0].config, key, None)!r} against "
                        f"{getattr(member.config, key, None)!r}): one encoding of the steps must serve them all"
                    )
        self.members = torch.nn.ModuleList(members)
        self.config = members[0].config  # the step separator and token limits the scoring side reads

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs):
        from transformers.modeling_outputs import TokenClassifierOutput

        logits = [m(input_ids=input_ids, attention_mask=attention_mask, **kwargs).logits for m in self.members]
        probabilities = torch.stack([torch.sigmoid(x.double()) for x in logits]).mean(0)  # double: no saturation at 0 or 1
        return TokenClassifierOutput(logits=torch.logit(probabilities).to(logits[0].dtype))


def ensemble_members(path_or_repo_id: str | os.PathLike, **hub_kwargs) -> list[str] | None:
    """The member folders of a saved ensemble, or None where ``path_or_repo_id`` holds a single model."""
    if os.path.isdir(path_or_repo_id):
        index = Path(path_or_repo_id) / ENSEMBLE_FILE
        found = str(index) if index.is_file() else None
    else:
        from transformers.utils import cached_file

        try:
            found = cached_file(
                str(path_or_repo_id), ENSEMBLE_FILE, _raise_exceptions_for_missing_entries=False,
                _raise_exceptions_for_connection_errors=False, **hub_kwargs,
            )
        except (OSError, ValueError):  # not a repo id either: the model loader says why
            found = None
    if found is None:
        return None
    try:
        members = json.loads(Path(found).read_text())["members"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path_or_repo_id!s}: {ENSEMBLE_FILE} must be a JSON object with a list of member folders under 'members'") from exc
    if not isinstance(members, list) or not members or not all(isinstance(m, str) for m in members):
        raise ValueError(f"{path_or_repo_id!s}: {ENSEMBLE_FILE} names no member folder")
    if os.path.isdir(path_or_repo_id):
        missing = [m for m in members if not (Path(path_or_repo_id) / m).is_dir()]
        if missing:
            raise ValueError(f"{path_or_repo_id!s}: {ENSEMBLE_FILE} names member folders that are not there: {', '.join(missing)}")
    return members


def save_prm_ensemble(members: Sequence[str | os.PathLike], output_dir: str | os.PathLike) -> Path:
    """Write the saved PRMs in ``members`` (local folders, as the trainer saved them) as one ensemble folder.

    The members must share one tokenizer (the same vocabulary), which is saved at the top of
    ``output_dir``; ``ProcessRewardModel.from_pretrained(output_dir)`` then scores with the mean of
    the members' step scores.
    """
    from transformers import AutoTokenizer

    if len(members) < 2:
        raise ValueError(f"an ensemble needs two member PRMs or more, got {len(members)}")
    output_dir = Path(output_dir)
    if any(Path(m).resolve() == output_dir.resolve() for m in members):
        raise ValueError(f"{output_dir} is one of the members: write the ensemble to a new folder")
    tokenizers = [AutoTokenizer.from_pretrained(m) for m in members]
    for member, tokenizer in zip(members[1:], tokenizers[1:]):
        if tokenizer.get_vocab() != tokenizers[0].get_vocab():
            raise ValueError(f"{member} has another tokenizer than {members[0]}: ensemble members must share one")
    output_dir.mkdir(parents=True, exist_ok=True)
    names = []
    for k, member in enumerate(members):
        names.append(f"member-{k}")
        shutil.copytree(member, output_dir / names[-1], dirs_exist_ok=True, ignore=shutil.ignore_patterns("checkpoint-*", "runs"))
    tokenizers[0].save_pretrained(output_dir)
    (output_dir / ENSEMBLE_FILE).write_text(json.dumps({"members": names, "combine": "mean of step probabilities"}, indent=2) + "\n")
    return output_dir
