"""Test fixtures: the parity fixture made by the original implementation (tests/fixtures/parity)."""

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
