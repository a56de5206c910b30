"""``trl-processsql space``: a Hugging Face Space folder that runs the demo."""

from __future__ import annotations

from dataclasses import dataclass

from ._options import CommandError, Options, option

DESCRIPTION = (
    "Write a Gradio Space folder that runs the demo: app.py, README.md (the Space's card, its sdk_version "
    "the installed gradio's), requirements.txt (trl-processsql's requirements and its demo extra, read from the "
    "installed package's metadata) and the package itself as a wheel, built from the source tree it is imported "
    "from, or copied from --wheel. A Space installs requirements.txt before the folder's other files are copied in, "
    "so app.py unpacks the wheel when it starts. The Space reads its policy and PRM from the variables "
    "PROCESSSQL_MODEL and PROCESSSQL_PRM, which default to --model and --prm; without a policy it explains pasted "
    "SQL only. Writing the folder twice from the same source tree gives the same bytes."
)


def _checkpoint(help: str):
    """A model the app loads by default: a Hub id, which the card lists and --push sets as a variable, or a path."""
    return option(None, metavar="ID_OR_PATH", help=help)


@dataclass(kw_only=True)
class SpaceOptions(Options):
    output: str = option(metavar="DIR", help="folder to write: new, empty, or written by this command before (its files are replaced)")
    model: str | None = _checkpoint(
        "default policy of the app; a Hub id is listed under models: in the card and set as the Space variable "
        "PROCESSSQL_MODEL by --push"
    )
    prm: str | None = _checkpoint(
        "default process reward model of the app; a Hub id is listed under models: and set as PROCESSSQL_PRM by --push"
    )
    wheel: str | None = option(
        None,
        metavar="PATH",
        help="copy this trl-processsql wheel into the folder instead of building one from the source tree "
        "(needed where the package was installed from a wheel)",
    )
    push: str | None = option(
        None,
        metavar="REPO_ID",
        help="then create the Space if it does not exist (Gradio SDK), set its variables for the Hub ids "
        "among --model and --prm, and upload the folder (needs a Hub token: hf auth login)",
    )
    private: bool = option(False, help="make the Space private when --push creates it")

    def check(self):
        if self.private and not self.push:
            raise CommandError("--private applies to --push: give both or neither")


OPTIONS = SpaceOptions


def run(options: SpaceOptions) -> int:
    from ..demo.space import SpaceError, check_repo_id, push_space, write_space

    try:
        if options.push:
            check_repo_id(options.push)
        folder = write_space(
            options.output, model=options.model, prm=options.prm, wheel=options.wheel, log=lambda line: print(line, flush=True)
        )
    except SpaceError as exc:
        raise CommandError(str(exc)) from exc
    for note in folder.notes:
        print(f"note: {note}")
    print(f"Space folder written to {folder.path}: {', '.join(folder.files)}")
    if not options.push:
        return 0
    try:
        url = push_space(folder, options.push, private=options.private)
    except Exception as exc:  # the folder is on disk whatever the Hub says
        raise CommandError(f"push to {options.push} failed ({exc}); the Space folder is in {folder.path}") from exc
    print(f"pushed to {url}")
    return 0
