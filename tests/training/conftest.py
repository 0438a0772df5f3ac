"""Fixtures for the training tests: tiny configs and tiny synthetic datasets."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from training_inputs import TINY  # noqa: I001 - tests/training/training_inputs.py


@pytest.fixture
def tiny_config() -> dict:
    """A tiny config dict (32x32 frames, widths 4/32, GAN on, perceptual on the first 3 VGG layers)."""
    return copy.deepcopy(TINY)


@pytest.fixture(scope="session")
def tiny_data(synthetic_dataset) -> Path:
    """4 synthetic puppet videos of 8 frames at 32x32 (root/train/<name>/*.png)."""
    return synthetic_dataset("puppet", num_train=4, num_test=1, num_frames=8, size=32, seed=0, num_cross_pairs=0)


@pytest.fixture(scope="session")
def tpsmm_data(synthetic_dataset) -> Path:
    """4 synthetic puppet videos of 6 frames at 64x64: the TPSMM training tests' data."""
    return synthetic_dataset("puppet", num_train=4, num_test=1, num_frames=6, size=64, seed=5, num_cross_pairs=0)
