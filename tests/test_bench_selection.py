"""The selection benchmark's held-out design: its two halves of mutation kinds."""

import sys
from pathlib import Path

from trl_processsql.labeling import MUTATIONS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def test_the_two_folds_split_every_mutation_kind_between_them():
    from bench_selection import FOLDS

    first, second = map(set, FOLDS)
    assert not first & second and first | second == set(MUTATIONS)
