"""Articulated 2-D puppets (the Tai-Chi / MGif stand-in).

A puppet has 15 rigid parts (torso, neck, head, upper/lower arm and hand on each side, upper/lower
leg and foot on each side) hanging from a kinematic tree rooted at the pelvis, and 20 keypoints
(the joints plus the head top, hand tips and toes). Side names are the puppet's own: it faces the
camera, so its ``l_`` limbs appear on the image's right at rest.

Body coordinates are frame units (see :mod:`render`) with the pelvis at the origin. Angles are
measured from "straight down": the direction of angle ``a`` is ``(sin a, cos a)``. Each limb's
angle is relative to its parent and bounded by :data:`JOINT_LIMITS` (a 2-D projection of a body,
so an elbow may appear to bend either way; a knee bends one way only). The whole body is then
scaled, rotated and translated (pose ``scale``, ``rotation``, ``translation`` = pelvis position).

Draw order follows per-frame depths: each arm has a smooth ``*_arm_depth`` in (-1, 1) that puts it
in front of the torso (and, above 0.33, of the head) or behind it, so limbs cross the torso; the
legs are behind the torso and their ``*_leg_depth`` decides which leg overlaps the other.
"""

from __future__ import annotations

import math

import numpy as np

from . import render as R

PART_NAMES = (
    "torso",
    "neck",
    "head",
    "l_upper_arm",
    "l_lower_arm",
    "l_hand",
    "r_upper_arm",
    "r_lower_arm",
    "r_hand",
    "l_upper_leg",
    "l_lower_leg",
    "l_foot",
    "r_upper_leg",
    "r_lower_leg",
    "r_foot",
)
PART_INDEX = {name: i for i, name in enumerate(PART_NAMES)}

KEYPOINT_NAMES = (
    "head_top",
    "head",
    "neck",
    "pelvis",
    "l_shoulder",
    "l_elbow",
    "l_wrist",
    "l_hand_tip",
    "r_shoulder",
    "r_elbow",
    "r_wrist",
    "r_hand_tip",
    "l_hip",
    "l_knee",
    "l_ankle",
    "l_toe",
    "r_hip",
    "r_knee",
    "r_ankle",
    "r_toe",
)

# The parts each keypoint belongs to (it lies inside each of their shapes).
KEYPOINT_PARTS = {
    "head_top": ("head",),
    "head": ("head",),
    "neck": ("neck", "torso"),
    "pelvis": ("torso",),
    "l_shoulder": ("torso", "l_upper_arm"),
    "l_elbow": ("l_upper_arm", "l_lower_arm"),
    "l_wrist": ("l_lower_arm", "l_hand"),
    "l_hand_tip": ("l_hand",),
    "r_shoulder": ("torso", "r_upper_arm"),
    "r_elbow": ("r_upper_arm", "r_lower_arm"),
    "r_wrist": ("r_lower_arm", "r_hand"),
    "r_hand_tip": ("r_hand",),
    "l_hip": ("torso", "l_upper_leg"),
    "l_knee": ("l_upper_leg", "l_lower_leg"),
    "l_ankle": ("l_lower_leg", "l_foot"),
    "l_toe": ("l_foot",),
    "r_hip": ("torso", "r_upper_leg"),
    "r_knee": ("r_upper_leg", "r_lower_leg"),
    "r_ankle": ("r_lower_leg", "r_foot"),
    "r_toe": ("r_foot",),
}

# Relative joint angles (radians): (low, high).
JOINT_LIMITS = {
    "torso": (-0.3, 0.3),  # lean of the torso
    "neck": (-0.35, 0.35),
    "head": (-0.45, 0.45),
    "shoulder": (-0.6, 2.9),  # abduction; negative swings the arm across the body
    "elbow": (-0.9, 2.3),  # inward flexion (negative: projected outward bend)
    "wrist": (-0.7, 0.7),
    "hip": (-0.25, 0.9),  # abduction; negative crosses the legs
    "knee": (0.0, 1.3),
    "ankle": (-0.4, 0.5),
}

POSE_KEYS = (
    "translation",
    "scale",
    "rotation",
    "torso",
    "neck",
    "head",
    "l_shoulder",
    "l_elbow",
    "l_wrist",
    "r_shoulder",
    "r_elbow",
    "r_wrist",
    "l_hip",
    "l_knee",
    "l_ankle",
    "r_hip",
    "r_knee",
    "r_ankle",
    "l_arm_depth",
    "r_arm_depth",
    "l_leg_depth",
    "r_leg_depth",
)

_MAX_SCALE = 1.2  # sprites are drawn at this many canvas pixels per frame unit per scale unit


def _dir(a: float) -> np.ndarray:
    return np.array([math.sin(a), math.cos(a)])


def _perp(a: float) -> np.ndarray:
    return np.array([math.cos(a), -math.sin(a)])


# --------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------
def sample_identity(rng: np.random.Generator) -> dict:
    """Body proportions, per-part colours/textures and a background for one puppet.

    The draws happen in a fixed order (proportions, outfit, part textures, hair, background,
    texture seed): a seed always gives the same identity."""
    u = rng.uniform
    ident: dict = {}
    _sample_proportions(rng, ident)
    base, clothes = _sample_outfit(rng)
    ident.update(_sample_part_textures(rng, base, clothes))
    ident["hair_color"] = R.hsv(u(0.0, 0.15) if rng.random() < 0.8 else rng.random(), u(0.3, 0.9), u(0.1, 0.6))
    ident["hair_level"] = float(u(0.05, 0.45))
    _sample_background(rng, ident)
    ident["texture_seed"] = np.int64(rng.integers(0, 2**31 - 1))
    return ident


def _sample_proportions(rng: np.random.Generator, ident: dict) -> None:
    """Segment lengths and limb radii (frame units, before the pose's global scale), scaled so
    that the standing height is 0.7-0.8 of the frame."""
    u = rng.uniform
    head_ry = u(0.06, 0.078)
    lengths = {
        "torso_len": u(0.19, 0.24),
        "neck_len": u(0.03, 0.05),
        "upper_arm_len": u(0.12, 0.15),
        "lower_arm_len": u(0.11, 0.14),
        "hand_len": u(0.035, 0.05),
        "upper_leg_len": u(0.15, 0.19),
        "lower_leg_len": u(0.14, 0.18),
        "foot_len": u(0.045, 0.065),
        "shoulder_width": u(0.12, 0.17),
        "hip_width": u(0.075, 0.11),
    }
    standing = (
        2 * head_ry + lengths["neck_len"] + lengths["torso_len"] + lengths["upper_leg_len"] + lengths["lower_leg_len"]
    )
    k = u(0.7, 0.8) / standing
    for name, val in lengths.items():
        ident[name] = float(val * k)
    ident["head_ry"] = float(head_ry * k)
    ident["head_rx"] = float(head_ry * k * u(0.72, 0.92))
    bulk = u(0.8, 1.2) * k
    ident["arm_r0"] = float(u(0.027, 0.034) * bulk)
    ident["arm_r1"] = float(ident["arm_r0"] * u(0.72, 0.88))
    ident["arm_r2"] = float(ident["arm_r1"] * u(0.7, 0.85))
    ident["hand_r"] = float(ident["arm_r2"] * u(1.05, 1.3))
    ident["leg_r0"] = float(u(0.034, 0.042) * bulk)
    ident["leg_r1"] = float(ident["leg_r0"] * u(0.7, 0.85))
    ident["leg_r2"] = float(ident["leg_r1"] * u(0.65, 0.8))
    ident["foot_r"] = float(ident["leg_r2"] * u(0.9, 1.1))
    ident["neck_r"] = float(u(0.017, 0.023) * bulk)
    ident["torso_top_w"] = float(ident["shoulder_width"] / 2 + ident["arm_r0"] * u(0.6, 0.9))
    ident["torso_bottom_w"] = float(ident["hip_width"] / 2 + ident["leg_r0"] * u(0.8, 1.1))
    ident["waist"] = float(u(0.0, 0.25))


def _sample_outfit(rng: np.random.Generator) -> tuple[dict, set]:
    """An outfit (shirt, trousers, shoes), a skin tone: the base colour (3,) of each part group,
    and the groups that are clothes."""
    u = rng.uniform
    skin = R.hsv(u(0.02, 0.11), u(0.25, 0.65), u(0.35, 0.95))
    shirt = R.hsv(rng.random(), u(0.45, 0.95), u(0.5, 0.95))
    sleeve = R.hsv(rng.random(), u(0.45, 0.95), u(0.5, 0.95)) if rng.random() < 0.4 else shirt
    pants = R.hsv(rng.random(), u(0.35, 0.85), u(0.3, 0.8))
    shoes = R.hsv(rng.random(), u(0.2, 0.7), u(0.15, 0.45))
    long_sleeves = rng.random() < 0.5
    base = {
        "torso": shirt,
        "neck": skin,
        "head": skin,
        "upper_arm": sleeve,
        "lower_arm": sleeve if long_sleeves else skin,
        "hand": skin,
        "upper_leg": pants,
        "lower_leg": pants,
        "foot": shoes,
    }
    clothes = {"torso", "upper_arm", "upper_leg", "lower_leg", "foot"} | ({"lower_arm"} if long_sleeves else set())
    return base, clothes


def _sample_part_textures(rng: np.random.Generator, base: dict, clothes: set) -> dict:
    """Per-part colours ``(P, 3)`` and texture kind / frequency / angle / phase ``(P,)``: garments
    get a pattern shared by both sides, skin soft blotches; the left side is a little lighter."""
    u = rng.uniform
    n = len(PART_NAMES)
    color1 = np.zeros((n, 3))
    color2 = np.zeros((n, 3))
    kind = np.zeros(n, np.int64)
    freq = np.zeros(n)
    angle = np.zeros(n)
    phase = np.zeros(n)
    group_tex: dict = {}
    for i, name in enumerate(PART_NAMES):
        group = name[2:] if name[:2] in ("l_", "r_") else name
        side = {"l_": 1.1, "r_": 0.9}.get(name[:2], 1.0)
        c1 = R.shade(base[group], side * u(0.95, 1.05))
        if group in clothes:
            if group not in group_tex:  # both sides of a garment share a pattern
                group_tex[group] = (
                    int(rng.integers(0, len(R.TEXTURE_KINDS))),
                    u(9.0, 20.0),
                    u(0, math.pi),
                    R.contrasting(rng, c1),
                )
            kind[i], freq[i], angle[i], c2 = group_tex[group]
            c2 = R.shade(c2, side)
        else:  # skin: soft blotches
            kind[i], freq[i], angle[i] = R.TEX_NOISE, u(10.0, 18.0), 0.0
            c2 = R.shade(c1, u(0.75, 0.85))
        color1[i], color2[i], phase[i] = c1, c2, u(0, 2 * math.pi)
    return {
        "part_color1": color1,
        "part_color2": color2,
        "part_tex_kind": kind,
        "part_tex_freq": freq,
        "part_tex_angle": angle,
        "part_tex_phase": phase,
    }


def _sample_background(rng: np.random.Generator, ident: dict) -> None:
    u = rng.uniform
    h = rng.random()
    c1 = R.hsv(h, u(0.08, 0.35), u(0.5, 0.85))
    ident["bg_color1"] = c1
    ident["bg_color2"] = R.shade(R.hsv(h + u(-0.08, 0.08), u(0.08, 0.35), c1.max()), u(0.7, 0.85))
    ident["bg_tex_kind"] = np.int64(rng.integers(0, len(R.TEXTURE_KINDS)))
    ident["bg_tex_freq"] = float(u(4.0, 10.0))
    ident["bg_tex_angle"] = float(u(0, math.pi))
    ident["bg_tex_phase"] = float(u(0, 2 * math.pi))
    ident["bg_vignette"] = float(u(0.0, 0.4))
    ident["bg_floor_y"] = float(u(0.74, 0.88))
    hf = rng.random()
    ident["floor_color1"] = R.hsv(hf, u(0.1, 0.4), u(0.35, 0.7))
    ident["floor_color2"] = R.hsv(hf + u(-0.1, 0.1), u(0.1, 0.4), u(0.2, 0.5))
    ident["floor_tex_freq"] = float(u(1.0, 2.0))


def sample_trajectory(num_frames: int, rng: np.random.Generator) -> dict:
    """Smooth per-frame pose parameters: sums of random sinusoids squashed into joint limits."""
    T = int(num_frames)
    u = rng.uniform
    pose, sig = R.global_motion(
        rng,
        T,
        centre=(0.5, 0.52),
        jitter=0.04,
        shift=0.03,
        scale=(0.92, 1.06),
        tilt=0.08,
        sway=0.05,
        band=(0.004, 0.02),
        rotation_band=(0.004, 0.02),
    )

    def joint(limit, bias, amp, fmin=0.005, fmax=0.02):
        lo, hi = JOINT_LIMITS[limit]
        return R.bounded(bias + amp * sig(fmin, fmax), lo, hi)

    pose["torso"] = joint("torso", u(-0.4, 0.4), u(0.3, 0.7), 0.004, 0.02)
    pose["neck"] = joint("neck", u(-0.4, 0.4), u(0.3, 0.8))
    pose["head"] = joint("head", u(-0.4, 0.4), u(0.4, 0.9))
    for side in ("l", "r"):
        pose[f"{side}_shoulder"] = joint("shoulder", u(-1.2, 0.6), u(0.5, 1.0))
        pose[f"{side}_elbow"] = joint("elbow", u(-0.6, 0.8), u(0.5, 1.0))
        pose[f"{side}_wrist"] = joint("wrist", u(-0.4, 0.4), u(0.4, 0.9))
    for side in ("l", "r"):
        pose[f"{side}_hip"] = joint("hip", u(-1.2, 0.1), u(0.3, 0.8), 0.004, 0.025)
        pose[f"{side}_knee"] = joint("knee", u(-1.5, 0.0), u(0.3, 0.9), 0.004, 0.025)
        pose[f"{side}_ankle"] = joint("ankle", u(-0.4, 0.4), u(0.3, 0.8), 0.004, 0.025)
    for side in ("l", "r"):
        pose[f"{side}_arm_depth"] = np.tanh(u(-0.3, 1.2) + u(0.5, 1.5) * sig(0.004, 0.025))
    for side in ("l", "r"):
        pose[f"{side}_leg_depth"] = np.tanh(u(0.5, 1.5) * sig(0.004, 0.025))
    return {k: np.asarray(pose[k], np.float64) for k in POSE_KEYS}


# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------
def _segment(ident: dict, name: str) -> tuple[float, float, float]:
    """(length, proximal radius, distal radius) of a limb-like part."""
    g = name[2:] if name[:2] in ("l_", "r_") else name
    if g == "upper_arm":
        return ident["upper_arm_len"], ident["arm_r0"], ident["arm_r1"]
    if g == "lower_arm":
        return ident["lower_arm_len"], ident["arm_r1"], ident["arm_r2"]
    if g == "hand":
        return ident["hand_len"], ident["hand_r"] * 0.8, ident["hand_r"]
    if g == "upper_leg":
        return ident["upper_leg_len"], ident["leg_r0"], ident["leg_r1"]
    if g == "lower_leg":
        return ident["lower_leg_len"], ident["leg_r1"], ident["leg_r2"]
    if g == "foot":
        return ident["foot_len"], ident["foot_r"] * 0.9, ident["foot_r"] * 0.75
    if g == "neck":
        return ident["neck_len"], ident["neck_r"], ident["neck_r"]
    raise KeyError(name)


def _torso_half_width(ident: dict, u: np.ndarray) -> np.ndarray:
    L = ident["torso_len"]
    t = np.clip(u / L, 0.0, 1.0)
    w = ident["torso_bottom_w"] + (ident["torso_top_w"] - ident["torso_bottom_w"]) * t
    return w * (1.0 - ident["waist"] * 0.35 * np.sin(math.pi * t) ** 2)


_TORSO_MARGIN = 0.03


def part_mask(ident: dict, name: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside test of part ``name`` at local coordinates (u along the bone, v across)."""
    if name == "torso":
        L = ident["torso_len"]
        half = L / 2 + _TORSO_MARGIN
        w = _torso_half_width(ident, u)
        return ((u - L / 2) / half) ** 4 + (v / w) ** 4 <= 1.0
    if name == "head":
        cu = 0.85 * ident["head_ry"]
        return ((u - cu) / ident["head_ry"]) ** 2 + (v / ident["head_rx"]) ** 2 <= 1.0
    L, r0, r1 = _segment(ident, name)
    t = np.clip(u / L, 0.0, 1.0)
    return np.hypot(u - t * L, v) <= r0 + (r1 - r0) * t


def _part_box(ident: dict, name: str) -> tuple[float, float, float, float]:
    if name == "torso":
        w = max(ident["torso_top_w"], ident["torso_bottom_w"])
        L = ident["torso_len"]
        return -_TORSO_MARGIN, L + _TORSO_MARGIN, -w, w
    if name == "head":
        ry, rx = ident["head_ry"], ident["head_rx"]
        cu = 0.85 * ry
        return cu - ry, cu + ry, -rx, rx
    L, r0, r1 = _segment(ident, name)
    r = max(r0, r1)
    return -r0, L + r1, -r, r


def pose_at(poses: dict, t: int) -> dict:
    """The pose of frame ``t`` from a trajectory dictionary."""
    return {k: np.asarray(v)[t] for k, v in poses.items()}


def skeleton(ident: dict, pose: dict) -> tuple[np.ndarray, dict, dict]:
    """Keypoints (J, 2) in frame units, part frames ``{part: (origin, axis_u, axis_v)}`` in frame
    units (axes include the global scale) and part depths ``{part: depth}`` for one pose."""
    g = lambda k: float(pose[k])  # noqa: E731
    a_t = g("torso")
    kp: dict = {}
    frames: dict = {}
    up_t = -_dir(a_t)
    kp["pelvis"] = np.zeros(2)
    kp["neck"] = ident["torso_len"] * up_t
    frames["torso"] = (kp["pelvis"], up_t, _perp(a_t))
    drop = _dir(a_t) * min(0.025, ident["torso_len"] * 0.12)
    # Neck and head.
    a_n = a_t + g("neck")
    frames["neck"] = (kp["neck"], -_dir(a_n), _perp(a_n))
    neck_top = kp["neck"] - ident["neck_len"] * _dir(a_n)
    a_h = a_n + g("head")
    frames["head"] = (neck_top, -_dir(a_h), _perp(a_h))
    kp["head"] = neck_top - 0.85 * ident["head_ry"] * _dir(a_h)
    kp["head_top"] = neck_top - (0.85 + 0.7) * ident["head_ry"] * _dir(a_h)
    for side, s in (("l", 1.0), ("r", -1.0)):
        sh = kp["neck"] + s * _perp(a_t) * ident["shoulder_width"] / 2 + drop
        a_ua = a_t + s * g(f"{side}_shoulder")
        el = sh + ident["upper_arm_len"] * _dir(a_ua)
        a_la = a_ua - s * g(f"{side}_elbow")
        wr = el + ident["lower_arm_len"] * _dir(a_la)
        a_ha = a_la + s * g(f"{side}_wrist")
        tip = wr + ident["hand_len"] * _dir(a_ha)
        kp.update({f"{side}_shoulder": sh, f"{side}_elbow": el, f"{side}_wrist": wr, f"{side}_hand_tip": tip})
        frames[f"{side}_upper_arm"] = (sh, _dir(a_ua), s * _perp(a_ua))
        frames[f"{side}_lower_arm"] = (el, _dir(a_la), s * _perp(a_la))
        frames[f"{side}_hand"] = (wr, _dir(a_ha), s * _perp(a_ha))
        hip = s * _perp(a_t) * ident["hip_width"] / 2
        a_ul = a_t + s * g(f"{side}_hip")
        kn = hip + ident["upper_leg_len"] * _dir(a_ul)
        a_ll = a_ul - s * g(f"{side}_knee")
        an = kn + ident["lower_leg_len"] * _dir(a_ll)
        a_ft = a_ll + s * (1.25 + g(f"{side}_ankle"))
        toe = an + ident["foot_len"] * _dir(a_ft)
        kp.update({f"{side}_hip": hip, f"{side}_knee": kn, f"{side}_ankle": an, f"{side}_toe": toe})
        frames[f"{side}_upper_leg"] = (hip, _dir(a_ul), s * _perp(a_ul))
        frames[f"{side}_lower_leg"] = (kn, _dir(a_ll), s * _perp(a_ll))
        frames[f"{side}_foot"] = (an, _dir(a_ft), s * _perp(a_ft))
    # Global similarity: body coordinates -> frame units.
    rot = R.rotation(g("rotation")) * g("scale")
    trans = np.asarray(pose["translation"], np.float64)
    keypoints = np.stack([rot @ kp[n] + trans for n in KEYPOINT_NAMES])
    world = {p: (rot @ o + trans, rot @ au, rot @ av) for p, (o, au, av) in frames.items()}
    depth = {"torso": 0.0, "neck": -0.2, "head": 0.3}
    for side in ("l", "r"):
        d = 0.9 * g(f"{side}_arm_depth")
        depth.update({f"{side}_upper_arm": d, f"{side}_lower_arm": d + 0.02, f"{side}_hand": d + 0.04})
        d = -0.6 + 0.1 * g(f"{side}_leg_depth")
        depth.update({f"{side}_upper_leg": d, f"{side}_lower_leg": d + 0.01, f"{side}_foot": d + 0.02})
    return keypoints, world, depth


def draw_order(depth: dict) -> list[str]:
    """Parts back to front (ties keep :data:`PART_NAMES` order)."""
    return sorted(PART_NAMES, key=lambda p: (depth[p], PART_INDEX[p]))


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------
def _part_sprite(ident: dict, name: str, density: float) -> R.Sprite:
    i = PART_INDEX[name]
    umin, umax, vmin, vmax = _part_box(ident, name)
    uu, vv, u0, v0 = R.sprite_grid(umin, umax, vmin, vmax, density)
    mask = part_mask(ident, name, uu, vv)
    seed = int(ident["texture_seed"]) * 31 + i
    rgb = R.texture(
        uu,
        vv,
        ident["part_color1"][i],
        ident["part_color2"][i],
        int(ident["part_tex_kind"][i]),
        float(ident["part_tex_freq"][i]),
        float(ident["part_tex_angle"][i]),
        float(ident["part_tex_phase"][i]),
        seed,
    )
    if name == "torso":
        w = _torso_half_width(ident, uu)
        across = np.clip(np.abs(vv) / w, 0, 1)
    elif name == "head":
        across = np.clip(np.abs(vv) / ident["head_rx"], 0, 1)
    else:
        L, r0, r1 = _segment(ident, name)
        t = np.clip(uu / L, 0, 1)
        across = np.clip(np.abs(vv) / (r0 + (r1 - r0) * t), 0, 1)
    rgb = rgb * (0.72 + 0.28 * np.sqrt(1.0 - across**2))[..., None]  # cylinder-like shading
    if name == "head":
        ry, rx = ident["head_ry"], ident["head_rx"]
        cu = 0.85 * ry
        hair = (uu - cu > ry * (ident["hair_level"] + 0.1 * np.cos(vv / rx * 9.0) * 0.5)) & mask
        hair_tex = R.texture(
            uu,
            vv,
            ident["hair_color"],
            R.shade(ident["hair_color"], 1.6),
            R.TEX_STRIPES,
            60.0,
            math.pi / 2 + 0.3,
            0.0,
            seed + 5,
        )
        rgb = np.where(hair[..., None], hair_tex, rgb)
        eye_u = cu + 0.05 * ry
        for sv in (-1, 1):
            eye = ((uu - eye_u) / (0.16 * ry)) ** 2 + ((vv - sv * 0.38 * rx) / (0.13 * rx)) ** 2 <= 1
            rgb = np.where(eye[..., None], np.float32(0.08), rgb)
        mouth = (np.abs(uu - (cu - 0.5 * ry)) < 0.06 * ry) & (np.abs(vv) < 0.3 * rx)
        rgb = np.where(mouth[..., None], np.array([0.45, 0.1, 0.1], np.float32), rgb)
    outline = 0.006 if name not in ("hand", "neck") else 0.004
    return R.make_sprite(rgb, mask, u0, v0, density, outline=outline)


class PuppetRenderer(R.Renderer):
    """Renders one puppet identity at one size; sprites and background are built once."""

    def __init__(self, identity: dict, size: int):
        super().__init__(identity, size)
        density = self.scale_px * _MAX_SCALE
        self.sprites = {name: _part_sprite(self.identity, name, density) for name in PART_NAMES}

    def render(self, pose: dict, with_labels: bool = False):
        """(uint8 image, keypoints_px (J,2) float32[, part-id map (size,size) int32, -1 = none])."""
        keypoints, frames, depth = skeleton(self.identity, pose)
        canvas, labels = self._blank(with_labels)
        for name in draw_order(depth):
            origin, au, av = frames[name]
            m = R.sprite_matrix(self.sprites[name], origin, au, av, self.scale_px)
            R.paste_sprite(canvas, self.sprites[name], m, labels, PART_INDEX[name])
        return self._outputs(canvas, labels, R.units_to_px(keypoints, self.size).astype(np.float32))
