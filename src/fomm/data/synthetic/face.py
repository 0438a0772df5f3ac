"""Cartoon talking heads (the VoxCeleb stand-in).

A face is described in *face units*: x across (the face's half-width at eye level is 1), y down,
origin at the face centre; the half-height is ``aspect``. Features (eyes, pupils, brows, nose,
mouth) sit on an ellipsoid surface so that a small yaw/pitch shifts and foreshortens them
(``x' = x cos(yaw) + z sin(yaw)``, then pitch), while the head outline, skin and hair are a rigid
textured sprite. Face units map to frame units by the head transform
``translation + scale * face_hw * Rot(rotation) @ (x', y')``; the shoulders follow the
translation and a third of the rotation.

Per frame the pose holds head translation / scale / in-plane rotation / yaw / pitch, per-eye
openness (blinks), gaze, per-brow raise, mouth opening and smile. Side names are the subject's
own: ``l_eye`` appears on the image's right.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from . import render as R

# Sampling lives in its own module; the category interface (sample_identity, sample_trajectory, pose_at,
# POSE_KEYS) is read from this one.
from .face_sampling import POSE_KEYS as POSE_KEYS
from .face_sampling import pose_at as pose_at
from .face_sampling import sample_identity as sample_identity
from .face_sampling import sample_trajectory as sample_trajectory

PART_NAMES = (
    "body",
    "l_ear",
    "r_ear",
    "hair",
    "face",
    "l_eye",
    "r_eye",
    "l_iris",
    "r_iris",
    "l_brow",
    "r_brow",
    "nose",
    "mouth",
)
PART_INDEX = {name: i for i, name in enumerate(PART_NAMES)}

KEYPOINT_NAMES = (
    "l_brow_outer",
    "l_brow_inner",
    "r_brow_inner",
    "r_brow_outer",
    "l_eye_outer",
    "l_eye_top",
    "l_eye_inner",
    "l_pupil",
    "r_eye_inner",
    "r_eye_top",
    "r_eye_outer",
    "r_pupil",
    "nose_tip",
    "mouth_left",
    "mouth_right",
    "mouth_top",
    "mouth_bottom",
    "chin",
)

# Parts a keypoint is drawn on when nothing hides it (pupils / eye tops need open eyes).
KEYPOINT_PARTS = {
    "l_brow_outer": ("l_brow",),
    "l_brow_inner": ("l_brow",),
    "r_brow_inner": ("r_brow",),
    "r_brow_outer": ("r_brow",),
    "l_eye_outer": ("l_eye", "face", "l_iris"),
    "l_eye_inner": ("l_eye", "face", "l_iris"),
    "r_eye_outer": ("r_eye", "face", "r_iris"),
    "r_eye_inner": ("r_eye", "face", "r_iris"),
    "l_eye_top": ("l_eye", "l_iris", "face"),
    "r_eye_top": ("r_eye", "r_iris", "face"),
    "l_pupil": ("l_iris",),
    "r_pupil": ("r_iris",),
    "nose_tip": ("nose",),
    "mouth_left": ("mouth", "face"),
    "mouth_right": ("mouth", "face"),
    "mouth_top": ("mouth",),
    "mouth_bottom": ("mouth",),
    "chin": ("face",),
}


_MAX_SCALE = 1.15
_UNIT_CIRCLE = R.ellipse_points(0.0, 0.0, 1.0, 1.0, 20)
_SURFACE_DEPTH = 0.9


# --------------------------------------------------------------------------------------------
# Geometry (face units)
# --------------------------------------------------------------------------------------------
def _surface_z(ident: dict, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    r2 = x**2 + (y / ident["aspect"]) ** 2
    return _SURFACE_DEPTH * np.sqrt(np.clip(1.0 - r2, 0.0, 1.0))


class _Projector:
    """Face units (x, y, optional extra depth) -> frame units for one pose."""

    def __init__(self, ident: dict, pose: dict):
        self.ident = ident
        yaw, pitch = float(pose["yaw"]), float(pose["pitch"])
        self.cy, self.sy = math.cos(yaw), math.sin(yaw)
        self.cp, self.sp = math.cos(pitch), math.sin(pitch)
        self.lin = R.rotation(float(pose["rotation"])) * float(pose["scale"]) * ident["face_hw"]
        self.trans = np.asarray(pose["translation"], np.float64)

    def __call__(self, pts: np.ndarray, extra_z: np.ndarray | float = 0.0, z: np.ndarray | None = None) -> np.ndarray:
        pts = np.asarray(pts, np.float64).reshape(-1, 2)
        x, y = pts[:, 0], pts[:, 1]
        if z is None:
            z = _surface_z(self.ident, x, y)
        z = z + extra_z
        x1 = x * self.cy + z * self.sy
        z1 = -x * self.sy + z * self.cy
        y1 = y * self.cp + z1 * self.sp
        return np.stack([x1, y1], axis=1) @ self.lin.T + self.trans


def _face_inside(ident: dict, x: np.ndarray, y: np.ndarray, grow: float = 0.0) -> np.ndarray:
    a = ident["aspect"] * (1 + grow)
    n = ident["roundness"]
    narrow = 1.0 - ident["jaw"] * 0.45 * (np.clip(y, 0, None) / a) ** 2
    return np.abs(x / ((1 + grow) * narrow)) ** n + np.abs(y / a) ** n <= 1.0


_TS: dict = {}


def _ts(n: int) -> np.ndarray:
    if n not in _TS:
        _TS[n] = np.linspace(0.0, 1.0, n)
    return _TS[n]


def _eye(ident: dict, side: float, openness: float, n: int = 13):
    """Upper and lower lid curves (inner -> outer corner, (n,2)) and the eye centre."""
    dx, w, h = ident["eye_dx"], ident["eye_w"], ident["eye_h"]
    t = _ts(n)
    inner = np.array([side * (dx - w), ident["eye_y"]])
    outer = np.array([side * (dx + w), ident["eye_y"] - ident["eye_tilt"] * w])
    line = inner[None] + t[:, None] * (outer - inner)[None]
    bump = np.sin(math.pi * t)
    k = 0.7 - 1.7 * float(np.clip(openness, 0.0, 1.0))
    upper = line + np.stack([np.zeros(n), k * h * bump**0.8], axis=1)
    lower = line + np.stack([np.zeros(n), 0.7 * h * bump**0.9], axis=1)
    upper = np.minimum(upper, lower - [0.0, 0.004])  # a closed eye is a thin slit, never inverted
    upper[[0, -1]] = lower[[0, -1]] = line[[0, -1]]
    centre = 0.5 * (inner + outer) + np.array([0.0, 0.05 * h])
    return upper, lower, centre, inner, outer


def _brow(ident: dict, side: float, raise_: float, n: int = 10):
    """Brow centre line (inner -> outer, (n,2)) and half-thickness per point."""
    dx, L = ident["eye_dx"], ident["brow_len"]
    t = _ts(n)
    x = side * (dx - L + 2 * L * t)
    base = ident["eye_y"] - ident["eye_h"] * 0.6 - ident["brow_gap"]
    y = base - ident["brow_arch"] * np.sin(math.pi * t) - ident["brow_tilt"] * (t - 0.5) * 0.5
    r = float(raise_)
    y = y - 0.07 * r + 0.05 * max(-r, 0.0) * (1 - t)  # frowning pulls the inner end down
    half = ident["brow_thick"] * (1.0 - 0.45 * t) * 0.5
    return np.stack([x, y], axis=1), half


def _mouth(ident: dict, opening: float, smile: float, n: int = 15):
    w, y0 = ident["mouth_hw"], ident["mouth_y"]
    o = float(np.clip(opening, 0, 1)) * ident["mouth_max_open"]
    s = float(smile)
    t = _ts(n)
    bump = np.sin(math.pi * t)
    half_w = w * (1.0 + 0.12 * s - 0.1 * o / max(ident["mouth_max_open"], 1e-6))
    x = -half_w + 2 * half_w * t  # image left -> right (r corner -> l corner)
    corner_y = y0 - 0.07 * s
    line = corner_y + 0.07 * s * bump  # a smile bends the lips' line up at the corners
    upper_in = line - 0.15 * o * bump
    lower_in = line + 0.85 * o * bump
    lt = ident["lip_thick"]
    bow = 1.0 - 0.35 * np.exp(-(((t - 0.5) / 0.08) ** 2))  # cupid's bow dip
    upper_out = upper_in - lt * bump**0.7 * bow
    lower_out = lower_in + 1.3 * lt * bump**0.7
    P = lambda yy: np.stack([x, yy], axis=1)  # noqa: E731
    return P(upper_out), P(upper_in), P(lower_in), P(lower_out), o


def _features(ident: dict, pose: dict) -> dict:
    """Per-frame feature geometry in face units: eyes, pupils, brows, mouth."""
    eye_open = np.asarray(pose["eye_open"], np.float64)
    gaze = np.asarray(pose["gaze"], np.float64)
    brow = np.asarray(pose["brow"], np.float64)
    feats: dict = {}
    for side, s, i in (("l", 1.0, 0), ("r", -1.0, 1)):
        upper, lower, centre, inner, outer = _eye(ident, s, eye_open[i])
        pupil = centre + gaze * [ident["eye_w"] * 0.4, ident["eye_h"] * 0.3]
        feats[f"{side}_eye"] = (upper, lower, inner, outer, pupil, float(eye_open[i]))
        feats[f"{side}_brow"] = _brow(ident, s, brow[i])
    feats["mouth"] = _mouth(ident, float(pose["mouth_open"]), float(pose["smile"]))
    return feats


def _keypoints_from(ident: dict, feats: dict) -> tuple[np.ndarray, np.ndarray]:
    pts: dict = {}
    extra = np.zeros(len(KEYPOINT_NAMES))
    for side in ("l", "r"):
        upper, lower, inner, outer, pupil, _ = feats[f"{side}_eye"]
        mid = len(upper) // 2
        pts[f"{side}_eye_inner"] = inner
        pts[f"{side}_eye_outer"] = outer
        pts[f"{side}_eye_top"] = upper[mid] + [0.0, 0.25 * (lower[mid, 1] - upper[mid, 1])]
        pts[f"{side}_pupil"] = pupil
        line, _ = feats[f"{side}_brow"]
        pts[f"{side}_brow_inner"] = line[1]
        pts[f"{side}_brow_outer"] = line[-2]
    pts["nose_tip"] = np.array([0.0, ident["nose_y"]])
    extra[KEYPOINT_NAMES.index("nose_tip")] = 0.9 * ident["nose_depth"]
    uo, ui, li, lo, _ = feats["mouth"]
    m = len(uo) // 2
    pts["mouth_right"] = ui[0] + [0.02, 0.0]  # subject's right is the image's left
    pts["mouth_left"] = ui[-1] - [0.02, 0.0]
    pts["mouth_top"] = 0.5 * (uo[m] + ui[m])
    pts["mouth_bottom"] = 0.5 * (li[m] + lo[m])
    pts["chin"] = np.array([0.0, ident["aspect"] * 0.93])
    return np.stack([pts[k] for k in KEYPOINT_NAMES]), extra


def keypoints_face_units(ident: dict, pose: dict) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (J,2) in face units (before projection) and their extra depth (J,)."""
    return _keypoints_from(ident, _features(ident, pose))


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------
def _head_sprites(ident: dict, density: float) -> dict:
    a, vol = ident["aspect"], ident["hair_volume"]
    top = -(a * (1 + vol)) - 0.05
    bottom = max(a, a * ident["hair_len"]) + 0.05
    side = 1 + vol + 0.05
    xx, yy, u0, v0 = R.sprite_grid(-side, side, top, bottom, density)
    seed = int(ident["texture_seed"])
    face = _face_inside(ident, xx, yy)
    # Skin: soft blotches, shading toward the outline, optional blush and freckles.
    mottle = R.value_noise(xx, yy, ident["skin_tex_freq"], seed + 11)[..., None]
    c1, c2 = np.asarray(ident["skin_color"], np.float32), np.asarray(ident["skin_color2"], np.float32)
    skin = c1 + (c2 - c1) * mottle
    skin = skin * (1.0 + 0.08 * (R.value_noise(xx, yy, 40.0, seed + 14)[..., None] - 0.5))
    r2 = np.clip(xx**2 + (yy / a) ** 2, 0, 1)
    skin = skin * (1.0 - 0.22 * r2**2)[..., None]
    for s in (-1.0, 1.0):
        d2 = ((xx - s * 0.5) / 0.2) ** 2 + ((yy - ident["nose_y"] - 0.08) / 0.14) ** 2
        blush = ident["blush"] * np.exp(-d2)
        skin = skin * (1 - blush[..., None]) + np.array([0.9, 0.35, 0.4], np.float32) * blush[..., None]
    if ident["freckles"] > 0:
        fr = R.value_noise(xx, yy, 40.0, seed + 12)
        mask = (fr > 0.78) & (np.abs(yy - ident["nose_y"]) < 0.25) & (np.abs(xx) < 0.8)
        skin = np.where(mask[..., None], skin * (1 - 0.3 * ident["freckles"]), skin)
    hair_tex = R.texture(
        xx * (1 + 0.2 * yy),
        yy,
        ident["hair_color"],
        ident["hair_color2"],
        R.TEX_STRIPES,
        ident["hair_tex_freq"],
        0.0,
        0.0,
        seed + 13,
        grain=0.1,
    )
    back = _face_inside(ident, xx, yy, grow=vol) & (yy < a * ident["hair_len"])
    fringe_y = -a * ident["hair_top"] + ident["fringe_wave"] * np.abs(
        np.sin(ident["fringe_freq"] * xx + ident["fringe_phase"])
    )
    fringe = face & (yy < fringe_y + 0.1 * xx**2 * a)
    layers = {
        "hair_back": R.make_sprite(hair_tex * 0.85, back, u0, v0, density, outline=0.03),
        "face": R.make_sprite(skin, face, u0, v0, density, outline=0.025, outline_dark=0.7),
        "fringe": R.make_sprite(hair_tex, fringe, u0, v0, density, outline=0.02, outline_dark=0.75),
    }
    # The three layers share one transform: pre-composite them into a single sprite.
    rgba = layers["hair_back"].rgba.copy()
    for key in ("face", "fringe"):
        top = layers[key].rgba
        rgba = rgba * (1.0 - top[..., 3:4]) + top
    layers["all"] = R.Sprite(np.ascontiguousarray(rgba, np.float32), u0, v0, density)
    return layers


def _body_sprite(ident: dict, density: float) -> R.Sprite:
    a = ident["aspect"]
    xx, yy, u0, v0 = R.sprite_grid(-2.8, 2.8, 0.2 * a, a + 2.6, density)
    neck = (np.abs(xx) < 0.5 + 0.08 * np.clip(yy - a, 0, None)) & (yy < a + 0.9)
    sy = a + 0.55
    shoulders = ((xx / 2.5) ** 2 + ((yy - sy - 1.2) / 1.2) ** 2 <= 1.0) | (yy > sy + 1.2) & (np.abs(xx) < 2.5)
    seed = int(ident["texture_seed"]) + 17
    shirt = R.texture(
        xx,
        yy,
        ident["shirt_color1"],
        ident["shirt_color2"],
        int(ident["shirt_tex_kind"]),
        ident["shirt_tex_freq"],
        ident["shirt_tex_angle"],
        0.0,
        seed,
    )
    collar = (yy > sy - 0.05) & (np.abs(xx) < 0.5 - (yy - sy) * 0.9)  # V-neck
    mottle = R.value_noise(xx, yy, ident["skin_tex_freq"], seed + 1)[..., None]
    c1, c2 = R.shade(ident["skin_color"], 0.8).astype(np.float32), R.shade(ident["skin_color2"], 0.8).astype(np.float32)
    neck_rgb = c1 + (c2 - c1) * mottle
    rgb = np.where((shoulders & ~collar)[..., None], shirt, neck_rgb)
    return R.make_sprite(rgb, neck | shoulders, u0, v0, density, outline=0.03)


class FaceRenderer(R.Renderer):
    """Renders one face identity at one size; sprites and background are built once."""

    def __init__(self, identity: dict, size: int):
        super().__init__(identity, size)
        density = self.scale_px * self.identity["face_hw"] * _MAX_SCALE
        self.head = _head_sprites(self.identity, density)
        self.body = _body_sprite(self.identity, density)
        self._static = self._static_shapes()

    def _to_canvas(self, pts_frame: np.ndarray) -> np.ndarray:
        return pts_frame * self.scale_px - 0.5

    def _static_shapes(self) -> list:
        """Per-identity shapes in face units: (points, z or None, extra_z, colour, part)."""
        ident = self.identity
        skin = ident["skin_color"]
        shapes = []
        for part, s in (("l_ear", 1.0), ("r_ear", -1.0)):  # behind the head, receding
            ear = R.ellipse_points(s * 0.97, ident["ear_y"], 0.16, ident["ear_size"], 20)
            shapes.append((ear, np.full(len(ear), -0.25), 0.0, R.shade(skin, 0.8), part))
            inner = R.ellipse_points(s * 1.0, ident["ear_y"], 0.07, ident["ear_size"] * 0.6, 16)
            shapes.append((inner, np.full(len(inner), -0.25), 0.0, R.shade(skin, 0.6), part))
        ny, nw, nl, nd = ident["nose_y"], ident["nose_w"], ident["nose_len"], ident["nose_depth"]
        bridge = np.array([[-0.035, ny - nl], [0.035, ny - nl], [nw * 0.9, ny + 0.02], [-nw * 0.9, ny + 0.02]])
        shapes.append((bridge, None, np.array([0.25, 0.25, 0.7, 0.7]) * nd, R.shade(skin, 0.84), "nose"))
        tip = R.ellipse_points(0.0, ny - 0.01, nw * 0.75, nw * 0.55, 18)
        shapes.append((tip, None, np.full(len(tip), 0.9 * nd), R.shade(skin, 0.95), "nose"))
        for s in (-1.0, 1.0):
            nostril = R.ellipse_points(s * nw * 0.55, ny + 0.045, nw * 0.25, nw * 0.14, 12)
            shapes.append((nostril, None, np.full(len(nostril), 0.6 * nd), R.shade(skin, 0.35), "nose"))
        return shapes

    def render(self, pose: dict, with_labels: bool = False):
        """(uint8 image, keypoints_px (J,2) float32[, part-id map (size,size) int32, -1 = none]).

        1) The frame's shapes in face units (:meth:`_items`); 2) one projection of all their
        points (:meth:`_project`); 3) drawing back to front on the supersampled canvas (:meth:`_draw`).
        """
        proj = _Projector(self.identity, pose)
        canvas, labels = self._blank(with_labels)
        items = self._items(pose)
        kp_canvas = self._draw(canvas, labels, items, self._project(items, proj), proj, pose)
        kp = ((kp_canvas + 0.5) / self.ss - 0.5).astype(np.float32)  # canvas -> output pixels
        return self._outputs(canvas, labels, kp)

    def _items(self, pose: dict) -> list:
        """The frame's shapes in face units, in draw order. Each item is ``(op, points (N, 2),
        z (N,) or None, extra_z, colour, part, arg)``; ``op``: ``fill``, ``clip`` (drawn only inside
        the most recent fill), ``stroke`` (``arg``: width in face units), ``head`` (the sprite, no
        points) or ``keypoints``. Explicit depths ``z`` replace the surface's; ``extra_z`` adds."""
        ident = self.identity
        items: list = []
        ears, nose = self._static[:4], self._static[4:]
        items += [("fill", pts, z, ez, col, part, None) for pts, z, ez, col, part in ears]
        items.append(("head",) + (None,) * 6)
        items += [("fill", pts, z, ez, col, part, None) for pts, z, ez, col, part in nose]
        feats = _features(ident, pose)
        for side in ("l", "r"):
            items += _eye_items(ident, feats, side)
        for side in ("l", "r"):
            items.append(_brow_item(ident, feats, side))
        items += _mouth_items(ident, feats)
        kp_units, kp_extra = _keypoints_from(ident, feats)
        items.append(("keypoints", kp_units, None, kp_extra, None, None, None))
        return items

    def _project(self, items: list, proj: _Projector) -> Iterator[np.ndarray]:
        """The canvas points ``(N, 2)`` of each item but the head, in order, from one projection."""
        geo = [it for it in items if it[0] != "head"]
        pts = np.concatenate([it[1] for it in geo])
        zs = _surface_z(self.identity, pts[:, 0], pts[:, 1])
        start = 0
        for it in geo:  # explicit depths (ears) replace the surface; extra depths add to it
            end = start + len(it[1])
            if it[2] is not None:
                zs[start:end] = it[2]
            zs[start:end] += it[3]
            start = end
        canvas_pts = self._to_canvas(proj(pts, z=zs))
        splits = np.cumsum([len(it[1]) for it in geo])[:-1]
        return iter(np.split(canvas_pts, splits))

    def _draw(self, canvas, labels, items: list, projected: Iterator, proj: _Projector, pose: dict) -> np.ndarray:
        """Draw the shoulders, then ``items`` back to front, on ``canvas`` (and ``labels``); returns
        the keypoints in canvas pixels ``(J, 2)``."""
        hw_s = self.identity["face_hw"] * float(pose["scale"])
        px_per_unit = hw_s * self.scale_px  # canvas pixels per face unit
        rb = R.rotation(float(pose["rotation"]) / 3.0) * hw_s  # shoulders: a third of the roll
        m = R.sprite_matrix(self.body, proj.trans, rb[:, 0], rb[:, 1], self.scale_px)
        R.paste_sprite(canvas, self.body, m, labels, PART_INDEX["body"])
        clips = _ClipGroup(canvas, labels)
        kp_canvas = None
        for op, _, _, _, color, part, arg in items:
            if op != "clip":
                clips.flush()
            if op == "head":
                self._paste_head(canvas, labels, proj)
                continue
            cpts = next(projected)
            if op == "fill":
                R.fill_polygon(canvas, cpts, color, labels, PART_INDEX[part])
                clips.last_fill = cpts
            elif op == "clip":
                clips.group.append((cpts, color, part))
            elif op == "stroke":
                R.stroke_polyline(canvas, cpts, color, max(1.0, arg * px_per_unit))
            elif op == "keypoints":
                kp_canvas = cpts
        clips.flush()
        return kp_canvas

    def _paste_head(self, canvas, labels, proj: _Projector) -> None:
        """The head sprite (outline, skin, hair), with slight horizontal foreshortening by yaw."""
        fx = 0.6 + 0.4 * proj.cy
        m = R.sprite_matrix(self.head["all"], proj.trans, proj.lin[:, 0] * fx, proj.lin[:, 1], self.scale_px)
        R.paste_sprite(canvas, self.head["all"], m)
        if labels is not None:
            scratch = np.zeros_like(canvas)
            for key, lab in (("hair_back", "hair"), ("face", "face"), ("fringe", "hair")):
                R.paste_sprite(scratch, self.head[key], m, labels, PART_INDEX[lab])


class _ClipGroup:
    """Consecutive ``clip`` shapes, drawn together only inside ``last_fill`` (the eye opening)."""

    def __init__(self, canvas: np.ndarray, labels: np.ndarray | None):
        self.canvas, self.labels = canvas, labels
        self.last_fill = None
        self.group: list = []

    def flush(self) -> None:
        if self.group:
            shapes = [(p, c) for p, c, _ in self.group]
            R.fill_polygons_clipped(self.canvas, self.last_fill, shapes, self.labels, PART_INDEX[self.group[0][2]])
            self.group.clear()


def _eye_items(ident: dict, feats: dict, side: str) -> list:
    """One eye (``side`` ``'l'`` or ``'r'``): the opening, iris, ring, pupil and highlight when
    open enough, then the upper lid and lower lash lines."""
    items = []
    upper, lower, _, _, pc, openness = feats[f"{side}_eye"]
    if openness > 0.08:
        ir = ident["eye_h"] * ident["iris_scale"]
        opening = np.concatenate([upper, lower[::-1][1:-1]])
        items.append(("fill", opening, None, 0.0, (0.95, 0.94, 0.9), f"{side}_eye", None))
        discs = (
            (pc, ir, ident["iris_color"]),
            (pc, ir * 0.72, R.shade(ident["iris_color"], 0.7)),
            (pc, ir * ident["pupil_scale"], (0.03, 0.03, 0.04)),
            (pc - 0.3 * ir, ir * 0.18, (1.0, 1.0, 1.0)),
        )  # iris, ring, pupil, highlight
        for (cx, cy), r, color in discs:
            items.append(("clip", _UNIT_CIRCLE * r + [cx, cy], None, 0.0, color, f"{side}_iris", None))
    items.append(("stroke", upper, None, 0.0, (0.08, 0.06, 0.06), None, 0.035))
    items.append(("stroke", lower[2:-2], None, 0.0, R.shade(ident["skin_color"], 0.7), None, 0.012))
    return items


def _brow_item(ident: dict, feats: dict, side: str) -> tuple:
    """One brow: its centre line thickened by ``half`` (N,) along the normals, filled."""
    line, half = feats[f"{side}_brow"]
    d = np.gradient(line, axis=0)
    nrm = np.stack([-d[:, 1], d[:, 0]], axis=1)
    nrm /= np.sqrt((nrm**2).sum(axis=1, keepdims=True))
    outline = np.concatenate([line + nrm * half[:, None], (line - nrm * half[:, None])[::-1]])
    return ("fill", outline, None, 0.0, ident["brow_color"], f"{side}_brow", None)


def _mouth_items(ident: dict, feats: dict) -> list:
    """The lips; when open, the dark inside and the upper teeth; closed, the line between the lips."""
    uo, ui, li, lo, o = feats["mouth"]
    items = [("fill", np.concatenate([uo, lo[::-1][1:-1]]), None, 0.0, ident["lip_color"], "mouth", None)]
    if o > 0.004:
        items.append(("fill", np.concatenate([ui, li[::-1][1:-1]]), None, 0.0, (0.25, 0.05, 0.07), "mouth", None))
        teeth_low = ui + (li - ui) * 0.35
        items.append(("fill", np.concatenate([ui, teeth_low[::-1][1:-1]]), None, 0.0, (0.96, 0.95, 0.9), "mouth", None))
    else:
        items.append(("stroke", ui, None, 0.0, R.shade(ident["lip_color"], 0.45), None, 0.02))
    return items
