"""Tiny training inputs shared by the training tests: the tiny config, synthetic square videos and
``fomm train`` run as a subprocess (to kill or interrupt it).

A module of its own (not conftest.py, whose name every test folder's conftest shares) so that test
files can import it by name whatever other folders run with them."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
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
QUIET_FLAGS = ["--threads", "1", "--quiet", "--no-tensorboard", "--vis-every", "0"]
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def write_yaml(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def wait_for(predicate, timeout: float = 120.0) -> None:
    """Poll ``predicate`` (a subprocess's progress on disk) until it holds; fail after ``timeout`` s."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


def write_png_video(folder: Path, frames: np.ndarray) -> None:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{t:07d}.png"), np.ascontiguousarray(frame[..., ::-1]))


def moving_square_video(size: int, num_frames: int, seed: int) -> np.ndarray:
    """A coloured square moving over a coloured background, uint8 (T, size, size, 3)."""
    rng = np.random.default_rng(seed)
    bg = rng.integers(0, 120, 3)
    fg = rng.integers(130, 256, 3)
    side = size // 3
    frames = np.empty((num_frames, size, size, 3), np.uint8)
    x0, y0 = rng.integers(0, size - side, 2)
    dx, dy = rng.integers(-2, 3, 2)
    for t in range(num_frames):
        img = np.empty((size, size, 3), np.uint8)
        img[:] = bg
        x = int(np.clip(x0 + dx * t, 0, size - side))
        y = int(np.clip(y0 + dy * t, 0, size - side))
        img[y : y + side, x : x + side] = fg
        img[y + side // 3 : y + 2 * side // 3, x + side // 3 : x + 2 * side // 3] = 255 - fg
        frames[t] = img
    return frames
