"""Tiny training inputs shared by the training tests: the tiny config and ``fomm train`` run as a
subprocess (to kill or interrupt it). Tiny videos come from :mod:`fomm.testing`.

A module of its own (not conftest.py, whose name every test folder's conftest shares) so that test
files can import it by name whatever other folders run with them."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import yaml

TINY = {
    "dataset_params": {
        "root_dir": None,
        "frame_shape": [32, 32, 3],
        "id_sampling": False,
        "augmentation_params": {"flip_param": {"horizontal_flip": True, "time_flip": True}},
    },
    "model_params": {
        "common_params": {"num_kp": 5, "num_channels": 3, "estimate_jacobian": True},
        "kp_detector_params": {
            "temperature": 0.1,
            "block_expansion": 4,
            "max_features": 32,
            "scale_factor": 0.5,
            "num_blocks": 3,
        },
        "generator_params": {
            "block_expansion": 4,
            "max_features": 32,
            "num_down_blocks": 2,
            "num_bottleneck_blocks": 1,
            "estimate_occlusion_map": True,
            "dense_motion_params": {"block_expansion": 4, "max_features": 32, "num_blocks": 3, "scale_factor": 0.5},
        },
        "discriminator_params": {"scales": [1], "block_expansion": 4, "max_features": 32, "num_blocks": 3, "sn": True},
    },
    "train_params": {
        "num_epochs": 3,
        "num_repeats": 2,
        "epoch_milestones": [2],
        "lr_generator": 2e-4,
        "lr_discriminator": 2e-4,
        "lr_kp_detector": 2e-4,
        "batch_size": 2,
        "scales": [1, 0.5],
        "checkpoint_freq": 1,
        "transform_params": {"sigma_affine": 0.05, "sigma_tps": 0.005, "points_tps": 5},
        "loss_weights": {
            "generator_gan": 1,
            "discriminator_gan": 1,
            "feature_matching": [10, 10, 10],
            "perceptual": [10, 10, 10, 0, 0],
            "equivariance_value": 10,
            "equivariance_jacobian": 10,
        },
    },
    "visualizer_params": {"kp_size": 2},
}


# ``fomm train`` in a subprocess: one thread each, and no progress bar, TensorBoard or pictures
FOMM_TRAIN = [sys.executable, "-m", "fomm.cli", "train"]
QUIET_FLAGS = [
    "--threads",
    "1",
    "--quiet",
    "--no-tensorboard",
    "--vis-every",
    "0",
    "--precision",
    "fp32",
]  # the runs' numbers must not depend on the CPU's bf16 (the default is auto)
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def write_yaml(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def log_lines(run: Path) -> int:
    """Lines in the run's log.csv so far (header included; 0 before it is written)."""
    log = run / "log.csv"
    return len(log.read_text().splitlines()) if log.is_file() else 0


def wait_for(predicate, timeout: float = 120.0) -> None:
    """Poll ``predicate`` (a subprocess's progress on disk) until it holds; fail after ``timeout`` s."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out")
