"""The category API of the procedural datasets: sample an identity and a trajectory, render frames,
part maps and whole videos, and derive every random stream of one video from its name and seed
(:func:`generate_video`). :mod:`fomm.data.synthetic` re-exports it (see its docstring)."""

from __future__ import annotations

import numpy as np

from fomm.errors import FommError

from . import face as _face
from . import puppet as _puppet
from . import render as _render

CATEGORIES = ("puppet", "face")
SPLITS = ("train", "test", "demo")
GENERATOR_VERSION = "fomm-synth-1"
FPS = 25

_MODULES = {"puppet": _puppet, "face": _face}


def _module(category: str):
    try:
        return _MODULES[category]
    except KeyError:
        raise FommError(f"unknown synthetic category {category!r}; use one of: {', '.join(CATEGORIES)}") from None


def keypoint_names(category: str) -> list[str]:
    """Names of the category's keypoints, in the order of the keypoint arrays."""
    return list(_module(category).KEYPOINT_NAMES)


def part_names(category: str) -> list[str]:
    """Names of the category's parts (the ids of :func:`render_part_map`)."""
    return list(_module(category).PART_NAMES)


def keypoint_parts(category: str) -> dict[str, tuple[str, ...]]:
    """For each keypoint, the parts it is drawn on when nothing hides it."""
    return dict(_module(category).KEYPOINT_PARTS)


def sample_identity(category: str, rng: np.random.Generator) -> dict:
    """Appearance and shape parameters of one identity (numpy arrays, floats and ints)."""
    return _render.canonical_params(_module(category).sample_identity(rng))


def sample_trajectory(category: str, num_frames: int, rng: np.random.Generator) -> dict:
    """Per-frame pose parameters: a dict of arrays whose first axis is the frame (T, ...)."""
    if int(num_frames) < 1:
        raise FommError(f"num_frames must be at least 1, got {num_frames}; pass a positive frame count")
    return _module(category).sample_trajectory(int(num_frames), rng)


def pose_at(poses: dict, t: int) -> dict:
    """Frame ``t``'s pose (for :func:`render_frame`) from a trajectory dict."""
    return {k: np.asarray(v)[t] for k, v in poses.items()}


def _check_size(size: int) -> int:
    size = int(size)
    if size < 16 or size > 2048:
        raise FommError(f"frame size {size} is out of range; use a size between 16 and 2048 (e.g. 64, 128, 256)")
    return size


def renderer(category: str, identity: dict, size: int):
    """A renderer bound to one identity and size (sprites and background drawn once); its
    ``render(pose_t, with_labels=False)`` returns ``(image, keypoints_px[, part_map])``."""
    mod = _module(category)
    cls = mod.PuppetRenderer if category == "puppet" else mod.FaceRenderer
    return cls(identity, _check_size(size))


def render_frame(category: str, identity: dict, pose_t: dict, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One frame: ``(uint8 (size, size, 3) RGB, keypoints_px (J, 2) float32 (x, y))``."""
    return renderer(category, identity, size).render(pose_t)


def render_part_map(category: str, identity: dict, pose_t: dict, size: int) -> np.ndarray:
    """Which part covers each pixel's centre: int32 (size, size), ids index :func:`part_names`,
    -1 for background. Occlusion follows the same draw order as the image."""
    return renderer(category, identity, size).render(pose_t, with_labels=True)[2]


def render_background(category: str, identity: dict, size: int) -> np.ndarray:
    """The identity's background alone, as a uint8 (size, size, 3) image."""
    size = _check_size(size)
    ss = _render.supersample_factor(size)
    return _render.downsample(_render.background_canvas(_render.canonical_params(identity), size, ss), size)


def render_video(category: str, identity: dict, poses: dict, size: int) -> tuple[np.ndarray, np.ndarray]:
    """All frames of a trajectory: ``(uint8 (T, H, W, 3), keypoints_px float32 (T, J, 2))``."""
    r = renderer(category, identity, size)
    num_frames = len(np.asarray(poses["scale"]))
    frames = np.empty((num_frames, r.size, r.size, 3), np.uint8)
    kps = np.empty((num_frames, len(keypoint_names(category)), 2), np.float32)
    for t in range(num_frames):
        frames[t], kps[t] = r.render(pose_at(poses, t))
    return frames, kps


def normalize_keypoints(keypoints_px: np.ndarray, size: int) -> np.ndarray:
    """Pixel keypoints -> ``[-1, 1]`` (``x_norm = 2 * x / (size - 1) - 1``)."""
    return _render.px_to_normalized(keypoints_px, size)


def identity_id(category: str, split: str, identity_index: int) -> str:
    return f"{category}-{split}-{int(identity_index):05d}"


def video_name(category: str, split: str, index: int, clips_per_identity: int = 1) -> str:
    """``<identity-id>#<clip>``, e.g. ``puppet-train-00012#000`` (FOMM's id sampling splits at '#')."""
    cpi = max(1, int(clips_per_identity))
    return f"{identity_id(category, split, int(index) // cpi)}#{int(index) % cpi:03d}"


def _seed_entropy(seed: int, category: str, *rest: int) -> list[int]:
    seed = int(seed)
    if seed < 0:
        raise FommError(f"seed must be a non-negative integer, got {seed}; pass e.g. --seed 0")
    return [seed, CATEGORIES.index(category) + 1, *[int(r) for r in rest]]


def video_params(
    category: str, split: str, index: int, seed: int, num_frames: int, clips_per_identity: int = 1
) -> dict:
    """Identity and trajectory of a video without rendering it (same streams as
    :func:`generate_video`): ``dict(identity, pose, name, identity_id)``."""
    _module(category)
    if split not in SPLITS:
        raise FommError(f"unknown split {split!r}; use one of: {', '.join(SPLITS)}")
    cpi = max(1, int(clips_per_identity))
    if int(index) < 0:
        raise FommError(f"video index must be non-negative, got {index}")
    ident_index, clip = divmod(int(index), cpi)
    s = SPLITS.index(split)
    ident_rng = np.random.default_rng(np.random.SeedSequence(_seed_entropy(seed, category, s, ident_index, 0)))
    traj_rng = np.random.default_rng(np.random.SeedSequence(_seed_entropy(seed, category, s, ident_index, 1, clip)))
    return {
        "identity": sample_identity(category, ident_rng),
        "pose": sample_trajectory(category, num_frames, traj_rng),
        "name": video_name(category, split, index, cpi),
        "identity_id": identity_id(category, split, ident_index),
    }


def generate_video(
    category: str, split: str, index: int, seed: int, num_frames: int, size: int, clips_per_identity: int = 1
) -> dict:
    """Render video ``index`` of a split.

    Returns ``dict(frames (T,H,W,3) uint8, keypoints_px (T,J,2), keypoints (T,J,2) in [-1,1],
    pose {name: (T,...)}, identity {name: array}, name, identity_id, category, split, index, size,
    fps, keypoint_names)``. With ``clips_per_identity = k``, videos ``k*i .. k*i+k-1`` share
    identity ``i`` and differ in motion.
    """
    params = video_params(category, split, index, seed, num_frames, clips_per_identity)
    frames, kps = render_video(category, params["identity"], params["pose"], size)
    return {
        "frames": frames,
        "keypoints_px": kps,
        "keypoints": normalize_keypoints(kps, frames.shape[2]),
        "pose": params["pose"],
        "identity": params["identity"],
        "name": params["name"],
        "identity_id": params["identity_id"],
        "category": category,
        "split": split,
        "index": int(index),
        "size": int(size),
        "fps": FPS,
        "keypoint_names": keypoint_names(category),
    }
