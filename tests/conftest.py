"""Fixtures shared by every test folder.

- ``parity_dir``: the parity fixture made by the original implementation (tests/fixtures/parity).
- ``tiny_checkpoint``: the seeded random tiny-64 model as a checkpoint file, written once per run.
- ``synthetic_dataset``: a cached ``write_dataset`` (one folder per distinct set of arguments).

The shared files are read-only by convention: a test that needs to change one copies it first.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_CANDIDATES = [
    os.environ.get("FOMM_PARITY_DIR", ""),
    str(Path(__file__).resolve().parent / "fixtures" / "parity"),
]


def parity_root() -> Path | None:
    for candidate in _CANDIDATES:
        if candidate and (Path(candidate) / "manifest.json").is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    root = parity_root()
    if root is None:
        pytest.fail("the parity fixture (tests/fixtures/parity) was not found; restore it with git checkout")
    return root


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """``random_checkpoint(..., "tiny-64", seed=0)``: the one tiny model the command tests animate with."""
    from fomm.testing import random_checkpoint

    return random_checkpoint(tmp_path_factory.mktemp("tiny-checkpoint") / "tiny.pth.tar", "tiny-64", seed=0)


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory):
    """``make(category, **write_dataset_args) -> root``: each distinct dataset is generated once per run."""
    from fomm.data.synthetic import write_dataset

    made: dict[tuple, Path] = {}

    def make(category: str = "puppet", **kwargs) -> Path:
        key = (category, tuple(sorted(kwargs.items())))
        if key not in made:
            root = tmp_path_factory.mktemp(f"synthetic-{category}") / category
            made[key] = write_dataset(root, category, progress=False, **kwargs)
        return made[key]

    return make
