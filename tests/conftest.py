"""Shared test fixtures: the parity fixture made by the original implementation."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

_CANDIDATES = [
    os.environ.get("FOMM_PARITY_DIR", ""),
    str(Path(__file__).resolve().parents[1] / "shared" / "reference" / "fomm-parity"),
    str(Path(__file__).resolve().parents[2] / "shared" / "reference" / "fomm-parity"),
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
        pytest.fail("the parity fixture (shared/reference/fomm-parity) was not found; set FOMM_PARITY_DIR")
    return root
