"""What several commands share: the error line, the question data options, at-least-one checks and loading a policy."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from ._options import CommandError, Options, option

__all__ = ["DataOptions", "at_least_one", "fail", "load_policy"]


def fail(message: str) -> int:
    """Print the one-line error and return the exit code of bad usage."""
    print(f"trl-processsql: error: {message}", file=sys.stderr)
    return 2


def at_least_one(options, *names: str) -> None:
    """Counts that must be positive when given."""
    for name in names:
        value = getattr(options, name)
        if value is not None and value < 1:
            raise CommandError(f"--{name.replace('_', '-')} must be at least 1, got {value}")


def load_policy(path: str, options, **settings):
    """The sampler of the policy at ``path`` with the sampling options ``predict`` and ``label-steps`` share, which
    ``settings`` add to or replace; a model that does not load is a :class:`CommandError`."""
    from ..inference import ModelLoadError, load_sampler

    shared = ("backend", "device", "temperature", "max_new_tokens", "batch_size")
    settings = {name: getattr(options, name) for name in shared} | settings
    try:
        return load_sampler(path, **settings)
    except (ModelLoadError, ImportError) as exc:
        raise CommandError(str(exc)) from exc


@dataclass(kw_only=True)
class DataOptions(Options):
    """--questions and --db-dir, or --sample."""

    questions: str | None = option(None, help="Spider- or BIRD-format questions JSON", group="data", card=True, shared=True)
    db_dir: str | None = option(None, help="folder with <db_id>/<db_id>.sqlite", group="data", card=True, shared=True)
    sample: bool = option(False, help="use the sample questions and databases bundled with the package", group="data",
                          card=True, shared=True)

    def check(self):
        if self.sample and (self.questions or self.db_dir):
            raise CommandError("--sample replaces --questions and --db-dir: give one or the other")
        if not self.sample and not (self.questions and self.db_dir):
            raise CommandError("give --questions and --db-dir, or --sample")

    def paths(self):
        """``(questions_file, db_dir)``: the bundled sample's or the ones given."""
        if self.sample:
            from ..data import sample_paths

            return sample_paths()
        return self.questions, self.db_dir

    def load(self, limit: int | None = None):
        """``(questions, db_dir)``, the first ``limit`` questions; a missing folder or bad file is a :class:`CommandError`."""
        from ..data import QuestionFileError, load_questions

        questions_file, db_dir = self.paths()
        if not Path(db_dir).is_dir():
            raise CommandError(f"database folder not found: {db_dir}")
        try:
            return load_questions(questions_file)[:limit], db_dir
        except QuestionFileError as exc:
            raise CommandError(str(exc)) from exc
