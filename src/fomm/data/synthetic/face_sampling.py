"""Cartoon talking heads: sampling an identity (shape, colours, textures, background) and a smooth
trajectory of head poses with blinks, gaze, brows and talking (face units: see :mod:`.face`)."""

from __future__ import annotations

import math

import numpy as np

from . import render as R

POSE_KEYS = ("translation", "scale", "rotation", "yaw", "pitch", "eye_open", "gaze", "brow", "mouth_open", "smile")

_SKIN_TONES = (
    (0.07, 0.35, 0.95),
    (0.07, 0.45, 0.85),
    (0.06, 0.55, 0.7),
    (0.06, 0.6, 0.5),
    (0.05, 0.6, 0.36),
    (0.09, 0.3, 0.9),
    (0.08, 0.5, 0.62),
)


def sample_identity(rng: np.random.Generator) -> dict:
    """Face shape, feature geometry, colours/textures and a background for one head.

    The draws happen in a fixed order (geometry, skin and hair, shirt and background, texture
    seed): a seed always gives the same identity."""
    ident = _sample_geometry(rng)
    _sample_skin_and_hair(rng, ident)
    _sample_shirt_and_background(rng, ident)
    ident["texture_seed"] = np.int64(rng.integers(0, 2**31 - 1))
    return ident


def _sample_geometry(rng: np.random.Generator) -> dict:
    """Face shape and feature geometry, floats in face units (see the module docstring)."""
    u = rng.uniform
    ident: dict = {
        "face_hw": u(0.235, 0.275),
        "aspect": u(1.15, 1.38),
        "roundness": u(2.0, 2.9),
        "jaw": u(0.05, 0.6),
        "eye_y": u(-0.2, -0.02),
        "eye_dx": u(0.36, 0.46),
        "eye_w": u(0.2, 0.27),
        "eye_h": u(0.12, 0.17),
        "eye_tilt": u(-0.08, 0.15),
        "iris_scale": u(0.85, 1.1),
        "pupil_scale": u(0.38, 0.55),
        "brow_gap": u(0.17, 0.25),
        "brow_len": u(0.17, 0.25),
        "brow_thick": u(0.045, 0.075),
        "brow_tilt": u(-0.12, 0.15),
        "brow_arch": u(0.0, 0.06),
        "nose_y": u(0.17, 0.3),
        "nose_w": u(0.08, 0.13),
        "nose_len": u(0.18, 0.3),
        "nose_depth": u(0.25, 0.45),
        "mouth_y": u(0.5, 0.66),
        "mouth_hw": u(0.22, 0.33),
        "lip_thick": u(0.04, 0.065),
        "mouth_max_open": u(0.12, 0.2),
        "ear_y": u(-0.05, 0.1),
        "ear_size": u(0.18, 0.26),
        "hair_top": u(0.5, 0.78),
        "hair_volume": u(0.04, 0.2),
        "hair_len": u(-0.2, 0.9),
        "fringe_wave": u(0.0, 0.12),
        "fringe_freq": u(4.0, 10.0),
        "fringe_phase": u(0, 2 * math.pi),
    }
    return {k: float(v) for k, v in ident.items()}


def _sample_skin_and_hair(rng: np.random.Generator, ident: dict) -> None:
    """Skin (a human tone, or now and then a cartoon colour), hair, brow, iris and lip colours (3,)."""
    u = rng.uniform
    if rng.random() < 0.85:
        h, s, v = _SKIN_TONES[int(rng.integers(0, len(_SKIN_TONES)))]
        skin = R.hsv(h + u(-0.02, 0.02), s * u(0.85, 1.15), v * u(0.9, 1.08))
    else:  # a cartoon colour
        skin = R.hsv(rng.random(), u(0.25, 0.5), u(0.6, 0.9))
    ident["skin_color"] = skin
    ident["skin_color2"] = R.shade(skin, u(0.86, 0.93))
    ident["skin_tex_freq"] = u(5.0, 10.0)
    ident["blush"] = u(0.0, 0.35)
    ident["freckles"] = u(0.0, 1.0) if rng.random() < 0.3 else 0.0
    hair = (
        R.hsv(u(0.02, 0.12), u(0.3, 0.9), u(0.08, 0.65))
        if rng.random() < 0.75
        else R.hsv(rng.random(), u(0.4, 0.9), u(0.4, 0.9))
    )
    ident["hair_color"] = hair
    ident["hair_color2"] = R.shade(hair, u(1.4, 1.9)) if hair.max() < 0.5 else R.shade(hair, u(0.55, 0.75))
    ident["hair_tex_freq"] = u(18.0, 34.0)
    ident["brow_color"] = R.shade(hair, 0.7)
    ident["iris_color"] = R.hsv(rng.choice([0.08, 0.3, 0.55, 0.6, 0.1]) + u(-0.03, 0.03), u(0.4, 0.9), u(0.3, 0.8))
    ident["lip_color"] = R.hsv(u(-0.03, 0.03), u(0.35, 0.65), u(0.45, 0.85)) * 0.5 + skin * 0.5


def _sample_shirt_and_background(rng: np.random.Generator, ident: dict) -> None:
    """The shirt's colours and texture, and the background's."""
    u = rng.uniform
    ident["shirt_color1"] = R.hsv(rng.random(), u(0.35, 0.9), u(0.35, 0.9))
    ident["shirt_color2"] = R.contrasting(rng, ident["shirt_color1"])
    ident["shirt_tex_kind"] = np.int64(rng.integers(0, len(R.TEXTURE_KINDS)))
    ident["shirt_tex_freq"] = u(3.0, 7.0)
    ident["shirt_tex_angle"] = u(0, math.pi)
    h = rng.random()
    ident["bg_color1"] = R.hsv(h, u(0.1, 0.5), u(0.4, 0.9))
    ident["bg_color2"] = R.hsv(h + u(-0.15, 0.15), u(0.1, 0.5), u(0.3, 0.8))
    ident["bg_tex_kind"] = np.int64(rng.integers(0, len(R.TEXTURE_KINDS)))
    ident["bg_tex_freq"] = u(3.0, 9.0)
    ident["bg_tex_angle"] = u(0, math.pi)
    ident["bg_tex_phase"] = u(0, 2 * math.pi)
    ident["bg_vignette"] = u(0.0, 0.5)


def _blinks(rng: np.random.Generator, T: int) -> np.ndarray:
    """Closure in 0..1 per frame from blinks at random times (about every 1-2.5 s at 25 fps)."""
    t = np.arange(T, dtype=np.float64)
    closed = np.zeros(T)
    mean_gap = rng.uniform(25.0, 60.0)
    tb = rng.uniform(-5.0, mean_gap)
    while tb < T + 5:
        w = rng.uniform(1.0, 1.8)
        closed = np.maximum(closed, np.exp(-(((t - tb) / w) ** 2)))
        tb += max(8.0, rng.exponential(mean_gap))
    return closed


def sample_trajectory(num_frames: int, rng: np.random.Generator) -> dict:
    """Smooth head motion with blinks, gaze shifts, brow raises and talking-like mouth motion."""
    T = int(num_frames)
    u = rng.uniform
    pose, sig = R.global_motion(
        rng,
        T,
        centre=(0.5, 0.43),
        jitter=0.03,
        shift=0.035,
        scale=(0.92, 1.04),
        tilt=0.06,
        sway=0.11,
        band=(0.004, 0.025),
        rotation_band=(0.005, 0.03),
    )
    pose["yaw"] = 0.3 * np.tanh(u(-0.5, 0.5) + 0.8 * sig(0.005, 0.03))
    pose["pitch"] = 0.12 * np.tanh(u(-0.3, 0.3) + 0.8 * sig(0.005, 0.03))
    base = R.bounded(u(0.5, 2.0) + 0.6 * sig(0.004, 0.02), 0.6, 1.0)
    closed = _blinks(np.random.default_rng(int(rng.integers(0, 2**62))), T)  # own stream: prefix-stable
    wink = 0.08 * sig(0.004, 0.02)
    pose["eye_open"] = np.clip(np.stack([base * (1 - closed) + wink, base * (1 - closed) - wink], axis=1), 0.0, 1.0)
    pose["gaze"] = np.stack(
        [np.tanh(u(-0.4, 0.4) + 0.9 * sig(0.01, 0.05)), 0.7 * np.tanh(u(-0.3, 0.3) + 0.7 * sig(0.01, 0.04))], axis=1
    )
    raise_ = u(-0.4, 0.4) + 0.9 * sig(0.006, 0.04)
    asym = 0.2 * sig(0.006, 0.03)
    pose["brow"] = np.tanh(np.stack([raise_ + asym, raise_ - asym], axis=1))
    pose["mouth_open"] = np.maximum(0.0, np.tanh(u(-0.6, 0.3) + u(0.7, 1.4) * sig(0.02, 0.09)))
    pose["smile"] = np.tanh(u(-0.4, 0.8) + 0.6 * sig(0.004, 0.025))
    return {k: np.asarray(pose[k], np.float64) for k in POSE_KEYS}


def pose_at(poses: dict, t: int) -> dict:
    return {k: np.asarray(v)[t] for k, v in poses.items()}
