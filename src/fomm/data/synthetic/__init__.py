"""Procedural video datasets with exactly known ground truth.

Two categories stand in for the paper's data: ``"puppet"`` (articulated bodies, like Tai-Chi /
MGif) and ``"face"`` (cartoon talking heads, like VoxCeleb). A video is an *identity* (shape,
colours, textures, background: :func:`sample_identity`) performing a *pose trajectory*
(:func:`sample_trajectory`); :func:`render_video` draws it and returns the keypoints. Because
identity and pose are separate, any identity can be rendered performing any other video's motion,
which gives exact ground truth for cross-identity animation.

Everything is deterministic: :func:`generate_video` derives its random streams from
``(category, split, identity index, clip, seed)``, so the same arguments give identical bytes, and
train / test identities come from disjoint streams. :func:`write_dataset` lays a dataset out on
disk in the original FOMM folder layout (see :mod:`fomm.data.synthetic.dataset`).

Keypoint pixel coordinates put pixel centre ``i`` at coordinate ``i``; normalised keypoints use
``x_norm = 2 * x / (W - 1) - 1``.
"""

from __future__ import annotations

from .dataset import make_demo_assets, write_dataset
from .generate import (
    CATEGORIES,
    FPS,
    GENERATOR_VERSION,
    SPLITS,
    generate_video,
    identity_id,
    keypoint_names,
    keypoint_parts,
    normalize_keypoints,
    part_names,
    pose_at,
    render_background,
    render_frame,
    render_part_map,
    render_video,
    renderer,
    sample_identity,
    sample_trajectory,
    video_name,
    video_params,
)

__all__ = [
    "CATEGORIES",
    "FPS",
    "GENERATOR_VERSION",
    "SPLITS",
    "generate_video",
    "identity_id",
    "keypoint_names",
    "keypoint_parts",
    "make_demo_assets",
    "normalize_keypoints",
    "part_names",
    "pose_at",
    "render_background",
    "render_frame",
    "render_part_map",
    "render_video",
    "renderer",
    "sample_identity",
    "sample_trajectory",
    "video_name",
    "video_params",
    "write_dataset",
]
