"""``fomm synth --preview``: one PNG grid of sample frames with the ground-truth keypoints drawn."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fomm.data.drawing import draw_keypoints, grid
from fomm.data.image_ops import pixels_to_kp
from fomm.data.video_io import write_image
from fomm.errors import FommError

from .generate import generate_video


def upscale_nearest(frame: np.ndarray, keypoints_px: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Enlarge ``frame`` (H, W, 3) ``factor`` times (each pixel a block) and move its ``(J, 2)``
    pixel keypoints with it: pixel centre ``i`` becomes ``factor * i + (factor - 1) / 2``."""
    big = np.repeat(np.repeat(frame, factor, axis=0), factor, axis=1)
    return big, factor * np.asarray(keypoints_px, np.float64) + (factor - 1) / 2


def preview_grid(
    category: str,
    size: int = 64,
    seed: int = 0,
    num_videos: int = 4,
    num_columns: int = 6,
    num_frames: int = 48,
    display: int = 192,
) -> np.ndarray:
    """``(rows * display', cols * display', 3)`` uint8 grid: one row per training video ``0 ..
    num_videos - 1`` of the dataset with this ``seed`` (the same videos ``fomm synth`` writes),
    ``num_columns`` frames spread over its ``num_frames``, each enlarged to about ``display`` pixels
    with its ground-truth keypoints drawn (colours in keypoint-name order)."""
    if num_videos < 1 or num_columns < 1:
        raise FommError("the preview needs at least one video and one frame")
    factor = max(1, int(round(display / size)))
    columns = np.unique(np.linspace(0, num_frames - 1, num_columns).round().astype(int))
    rows = []
    for index in range(num_videos):
        video = generate_video(category, "train", index, seed, num_frames, size)
        row = []
        for t in columns:
            big, kp_px = upscale_nearest(video["frames"][t], video["keypoints_px"][t], factor)
            kp = pixels_to_kp(kp_px, big.shape[:2])
            row.append(draw_keypoints(big, kp, radius=max(2.0, factor * 0.9), outline=True))
        rows.append(row)
    return grid(rows, gap=2, background=1.0)


def write_preview(path: str | os.PathLike, category: str, **kwargs) -> Path:
    """Write :func:`preview_grid` as a PNG at ``path`` (atomically) and return the path."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise FommError(f"--preview writes a PNG; give a path ending in .png, not {path.name!r}")
    return write_image(path, preview_grid(category, **kwargs))
