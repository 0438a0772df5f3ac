"""Shared raster helpers for the synthetic datasets: canvases, sprites, polygons, textures.

Geometry is expressed in *frame units*: ``(0, 0)`` is the top-left corner of the image and
``(1, 1)`` the bottom-right one, x to the right, y down. A point ``u`` in frame units lands at
pixel coordinate ``u * size - 0.5`` of a ``size``-pixel image (pixel centre ``i`` is coordinate
``i``). Drawing happens on a canvas supersampled ``ss`` times (``ss * size`` pixels a side),
which is then box-averaged down to ``size`` (``cv2.INTER_AREA`` with an integer factor), so edges
are anti-aliased. On the canvas the same point lands at ``u * size * ss - 0.5``.

Rigid textured parts are *sprites*: premultiplied RGBA images drawn once per identity in the
part's own coordinate frame and pasted per frame with one affine warp into the bounding box they
cover. Everything is deterministic: same inputs, same bytes.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import cv2
import numpy as np

from fomm.data.image_ops import resize_frame, to_uint8

# Fixed-point bits for cv2 polygon drawing (sub-pixel vertex positions).
_SHIFT = 4
_ONE = 1 << _SHIFT

# Sprite warps sample the nearest sprite pixel: sprites are drawn at least as finely as the
# supersampled canvas, which is box-averaged afterwards, so this costs no visible quality and is
# about three times faster than bilinear on float RGBA.
_WARP_INTERP = cv2.INTER_NEAREST

# Texture kinds, stored as integers in identity dictionaries.
TEX_STRIPES, TEX_NOISE, TEX_GRADIENT, TEX_DOTS, TEX_CHECKER = range(5)
TEXTURE_KINDS = ("stripes", "noise", "gradient", "dots", "checker")


def canonical_params(params: dict) -> dict:
    """Parameters as rendering expects them: scalars as Python ``float`` / ``int``, arrays as
    float64 (or int64) arrays. Identities read back from ``.npz`` files (0-d arrays) then render
    to exactly the same bytes as freshly sampled ones."""
    out = {}
    for key, value in params.items():
        a = np.asarray(value)
        if a.ndim == 0:
            out[key] = int(a) if a.dtype.kind in "iub" else float(a)
        else:
            out[key] = a.astype(np.int64 if a.dtype.kind in "iub" else np.float64)
    return out


def supersample_factor(size: int) -> int:
    """How many canvas pixels per output pixel (per axis) are drawn for an image of ``size``."""
    if size <= 96:
        return 3
    if size <= 192:
        return 3
    return 2


def units_to_px(points: np.ndarray, size: int) -> np.ndarray:
    """Frame units -> output pixel coordinates (pixel centre ``i`` is coordinate ``i``)."""
    return np.asarray(points, dtype=np.float64) * size - 0.5


def px_to_normalized(points_px: np.ndarray, size: int) -> np.ndarray:
    """Pixel coordinates -> ``[-1, 1]`` with ``x_norm = 2 * x / (size - 1) - 1``."""
    return (2.0 * np.asarray(points_px, dtype=np.float64) / (size - 1) - 1.0).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Colours
# --------------------------------------------------------------------------------------------
def hsv(h: float, s: float, v: float) -> np.ndarray:
    """An RGB colour (float64, 0..1) from hue (turns, wraps), saturation and value."""
    return np.array(colorsys.hsv_to_rgb(float(h) % 1.0, float(np.clip(s, 0, 1)), float(np.clip(v, 0, 1))))


def shade(color: np.ndarray, factor: float) -> np.ndarray:
    """Scale a colour's brightness, clipped to 0..1."""
    return np.clip(np.asarray(color, dtype=np.float64) * factor, 0.0, 1.0)


def contrasting(rng: np.random.Generator, color: np.ndarray) -> np.ndarray:
    """A second colour for a texture: the same hue family but clearly different in value/hue."""
    h, s, v = colorsys.rgb_to_hsv(*np.clip(color, 0, 1))
    if rng.random() < 0.5:  # darker or lighter variant
        v2 = v * rng.uniform(0.45, 0.65) if v > 0.5 else min(1.0, v + rng.uniform(0.3, 0.45))
        return hsv(h + rng.uniform(-0.04, 0.04), s * rng.uniform(0.7, 1.1), v2)
    return hsv(h + rng.uniform(0.12, 0.35) * rng.choice([-1, 1]), rng.uniform(0.35, 0.8), rng.uniform(0.35, 0.95))


# --------------------------------------------------------------------------------------------
# Textures
# --------------------------------------------------------------------------------------------
def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def value_noise(x: np.ndarray, y: np.ndarray, freq: float, seed: int) -> np.ndarray:
    """Smooth noise in 0..1 at coordinates (x, y) (any units), ``freq`` lattice cells per unit.

    The lattice is anchored at the coordinates' origin, so the pattern does not depend on the
    sampling resolution: a sprite drawn at 64 or 256 pixels shows the same texture.
    """
    x = np.asarray(x, np.float32)
    y = np.asarray(y, np.float32)
    gx = x * freq
    gy = y * freq
    ox, oy = math.floor(float(gx.min())) - 2, math.floor(float(gy.min())) - 2
    nx = int(math.ceil(float(gx.max()))) - ox + 3
    ny = int(math.ceil(float(gy.max()))) - oy + 3
    lattice = np.random.default_rng(seed).random((ny, nx), dtype=np.float32)
    out = cv2.remap(
        lattice,
        (gx - ox).astype(np.float32),
        (gy - oy).astype(np.float32),
        interpolation=cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REFLECT,
    )
    return np.clip(out, 0.0, 1.0)


def texture(
    x: np.ndarray,
    y: np.ndarray,
    color1,
    color2,
    kind: int,
    freq: float,
    angle: float,
    phase: float,
    seed: int,
    grain: float = 0.07,
) -> np.ndarray:
    """A procedural RGB texture (float32, 0..1) sampled at coordinates (x, y) in units.

    ``kind`` is one of ``TEX_*``: soft stripes, blotchy noise, a linear gradient, polka dots or a
    soft checkerboard mixing ``color1`` and ``color2``; ``freq`` is in cycles per unit. A fine
    grain is added to every kind so that even flat areas carry trackable texture.
    """
    x = np.asarray(x, np.float32)
    y = np.asarray(y, np.float32)
    ca, sa = math.cos(angle), math.sin(angle)
    xr = x * ca + y * sa
    yr = -x * sa + y * ca
    kind = int(kind)
    if kind == TEX_STRIPES:
        w = _smoothstep(-0.45, 0.45, np.sin(2 * math.pi * freq * xr + phase))
    elif kind == TEX_NOISE:
        w = _smoothstep(0.3, 0.7, value_noise(x, y, freq * 1.5, seed))
    elif kind == TEX_GRADIENT:
        w = 0.5 + 0.5 * np.sin(math.pi * freq * 0.5 * xr + phase)
        w = 0.8 * w + 0.2 * value_noise(x, y, freq * 2.0, seed)
    elif kind == TEX_DOTS:
        s = np.sin(2 * math.pi * freq * xr + phase) * np.sin(2 * math.pi * freq * yr + phase)
        w = _smoothstep(0.35, 0.65, s)
    elif kind == TEX_CHECKER:
        s = np.sin(2 * math.pi * freq * xr + phase) * np.sin(2 * math.pi * freq * yr)
        w = _smoothstep(-0.25, 0.25, s)
    else:
        raise ValueError(f"unknown texture kind {kind}")
    c1 = np.asarray(color1, np.float32)
    c2 = np.asarray(color2, np.float32)
    img = c1 + (c2 - c1) * w[..., None]
    if grain > 0:
        g = value_noise(x, y, max(freq, 4.0) * 5.0, seed + 7919) - 0.5
        img = img * (1.0 + grain * 2.0 * g[..., None])
    return np.clip(img, 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Sprites
# --------------------------------------------------------------------------------------------
@dataclass
class Sprite:
    """A premultiplied RGBA image of a part drawn in its local frame.

    Sprite pixel ``(col, row)`` is the local point ``(u0 + col / density, v0 + row / density)``.
    ``mask`` is the binary shape (used for part maps).
    """

    rgba: np.ndarray  # (h, w, 4) float32, premultiplied
    u0: float
    v0: float
    density: float

    def local_grid(self) -> tuple[np.ndarray, np.ndarray]:
        h, w = self.rgba.shape[:2]
        u = self.u0 + np.arange(w, dtype=np.float32) / self.density
        v = self.v0 + np.arange(h, dtype=np.float32) / self.density
        return np.meshgrid(u, v)


def sprite_grid(umin: float, umax: float, vmin: float, vmax: float, density: float, pad: int = 2):
    """Local coordinate grids (U, V) covering a box, with ``pad`` transparent pixels around it."""
    u0 = umin - pad / density
    v0 = vmin - pad / density
    w = int(math.ceil((umax - umin) * density)) + 2 * pad + 1
    h = int(math.ceil((vmax - vmin) * density)) + 2 * pad + 1
    u = u0 + np.arange(w, dtype=np.float32) / density
    v = v0 + np.arange(h, dtype=np.float32) / density
    uu, vv = np.meshgrid(u, v)
    return uu, vv, u0, v0


def make_sprite(
    rgb: np.ndarray,
    mask: np.ndarray,
    u0: float,
    v0: float,
    density: float,
    outline: float = 0.0,
    outline_dark: float = 0.55,
) -> Sprite:
    """Build a sprite from colours and a boolean mask; darken a rim ``outline`` units wide."""
    mask = np.asarray(mask, bool).copy()
    mask[:2, :] = mask[-2:, :] = False
    mask[:, :2] = mask[:, -2:] = False
    rgb = np.asarray(rgb, np.float32)
    if outline > 0:
        dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
        width = outline * density
        k = outline_dark + (1.0 - outline_dark) * _smoothstep(width * 0.6, width * 1.2, dist)
        rgb = rgb * k[..., None]
    alpha = mask.astype(np.float32)
    rgba = np.concatenate([rgb * alpha[..., None], alpha[..., None]], axis=-1)
    return Sprite(np.ascontiguousarray(rgba, dtype=np.float32), float(u0), float(v0), float(density))


def sprite_matrix(sprite: Sprite, origin, axis_u, axis_v, scale_px: float) -> np.ndarray:
    """2x3 affine from sprite pixels to canvas pixels.

    The part's local point ``(u, v)`` is at frame units ``origin + u * axis_u + v * axis_v``;
    ``scale_px`` is canvas pixels per frame unit (``size * ss``).
    """
    a = np.stack([np.asarray(axis_u, np.float64), np.asarray(axis_v, np.float64)], axis=1)  # 2x2
    lin = a * (scale_px / sprite.density)
    off = (np.asarray(origin, np.float64) + a @ np.array([sprite.u0, sprite.v0])) * scale_px - 0.5
    return np.concatenate([lin, off[:, None]], axis=1)


def _covering_box(points: np.ndarray, canvas: np.ndarray) -> tuple[int, int, int, int] | None:
    """The canvas pixels ``(x0, y0, x1, y1)`` (ends excluded) around ``points`` (N, 2), with a
    pixel to spare, cut to the canvas; None when nothing of it is on the canvas."""
    H, W = canvas.shape[:2]
    x0 = max(int(math.floor(points[:, 0].min())) - 1, 0)
    x1 = min(int(math.ceil(points[:, 0].max())) + 2, W)
    y0 = max(int(math.floor(points[:, 1].min())) - 1, 0)
    y1 = min(int(math.ceil(points[:, 1].max())) + 2, H)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def paste_sprite(
    canvas: np.ndarray, sprite: Sprite, matrix: np.ndarray, labels: np.ndarray | None = None, label: int = 0
) -> None:
    """Alpha-composite a sprite onto a float32 canvas through a 2x3 sprite->canvas affine."""
    h, w = sprite.rgba.shape[:2]
    corners = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], np.float64)
    box = _covering_box(corners @ matrix[:, :2].T + matrix[:, 2], canvas)
    if box is None:
        return
    x0, y0, x1, y1 = box
    m = matrix.copy()
    m[0, 2] -= x0
    m[1, 2] -= y0
    warped = cv2.warpAffine(
        sprite.rgba, m, (x1 - x0, y1 - y0), flags=_WARP_INTERP, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0)
    )
    alpha = warped[..., 3]
    roi = canvas[y0:y1, x0:x1]
    # roi = roi * (1 - alpha) + rgb (premultiplied); cv2 is several times faster than numpy here.
    rgb = cv2.cvtColor(warped, cv2.COLOR_RGBA2RGB)
    keep = cv2.cvtColor(1.0 - alpha, cv2.COLOR_GRAY2RGB)
    roi[...] = cv2.add(cv2.multiply(roi, keep), rgb)
    if labels is not None:
        labels[y0:y1, x0:x1][alpha > 0.5] = label


# --------------------------------------------------------------------------------------------
# Polygons
# --------------------------------------------------------------------------------------------
def fill_polygon(
    canvas: np.ndarray, points_canvas: np.ndarray, color, labels: np.ndarray | None = None, label: int = 0
) -> None:
    """Fill a polygon given in canvas pixel coordinates (sub-pixel precise, no AA: the canvas is
    supersampled and averaged down afterwards)."""
    pts = np.round(np.asarray(points_canvas, np.float64) * _ONE).astype(np.int32).reshape(-1, 1, 2)
    if len(pts) < 3:
        return
    cv2.fillPoly(canvas, [pts], tuple(float(c) for c in color), lineType=cv2.LINE_8, shift=_SHIFT)
    if labels is not None:
        cv2.fillPoly(labels, [pts], int(label), lineType=cv2.LINE_8, shift=_SHIFT)


def stroke_polyline(canvas: np.ndarray, points_canvas: np.ndarray, color, thickness: float) -> None:
    """Draw an open polyline of the given thickness (canvas pixels) with round joints."""
    pts = np.round(np.asarray(points_canvas, np.float64) * _ONE).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(
        canvas,
        [pts],
        False,
        tuple(float(c) for c in color),
        thickness=max(1, int(round(thickness))),
        lineType=cv2.LINE_8,
        shift=_SHIFT,
    )


def ellipse_points(cx: float, cy: float, rx: float, ry: float, n: int = 32) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def fill_polygons_clipped(
    canvas: np.ndarray, clip_canvas: np.ndarray, polygons: list, labels: np.ndarray | None = None, label: int = 0
) -> None:
    """Fill ``polygons`` [(points_canvas, color), ...] in order, only inside polygon
    ``clip_canvas`` (any simple polygon), e.g. an iris inside the eye opening."""
    clip_canvas = np.asarray(clip_canvas, np.float64)
    box = _covering_box(clip_canvas, canvas)
    if box is None:
        return
    x0, y0, x1, y1 = box
    off = np.array([x0, y0], np.float64)
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    fill_polygon(mask, clip_canvas - off, (1,))
    inside = mask.astype(bool)
    if not inside.any():
        return
    layer = canvas[y0:y1, x0:x1].copy()
    for pts, color in polygons:
        fill_polygon(layer, np.asarray(pts, np.float64) - off, color)
    canvas[y0:y1, x0:x1][inside] = layer[inside]
    if labels is not None:
        lab = labels[y0:y1, x0:x1].copy()
        for pts, _ in polygons:
            fill_polygon(lab, np.asarray(pts, np.float64) - off, (int(label),))
        labels[y0:y1, x0:x1][inside] = lab[inside]


# --------------------------------------------------------------------------------------------
# Canvas
# --------------------------------------------------------------------------------------------
def downsample(canvas: np.ndarray, size: int) -> np.ndarray:
    """Box-average a supersampled float canvas (0..1) to a ``size`` uint8 RGB image (through
    :mod:`fomm.data.image_ops`: area resize, then rounded to uint8)."""
    return to_uint8(resize_frame(canvas, (size, size), "area"))


def sample_labels(labels: np.ndarray, size: int, ss: int) -> np.ndarray:
    """Part-id map at output resolution: the canvas label at each output pixel's centre."""
    c = ss // 2
    return labels[c::ss, c::ss][:size, :size].copy()


def background_canvas(params: dict, size: int, ss: int) -> np.ndarray:
    """A textured background (float32 canvas, ``size*ss`` a side) from identity parameters.

    Keys used (all prefixed ``bg_``): ``color1``, ``color2``, ``tex_kind``, ``tex_freq``,
    ``tex_angle``, ``tex_phase``, ``vignette``, and optionally ``floor_y``, ``floor_color1``,
    ``floor_color2`` (a floor below ``floor_y`` frame units, with receding tiles).
    """
    n = size * ss
    coords = (np.arange(n, dtype=np.float32) + 0.5) / n  # frame units of canvas pixel centres
    xx, yy = np.meshgrid(coords, coords)
    seed = int(params["texture_seed"]) + 101
    img = texture(
        xx,
        yy,
        params["bg_color1"],
        params["bg_color2"],
        int(params["bg_tex_kind"]),
        float(params["bg_tex_freq"]),
        float(params["bg_tex_angle"]),
        float(params["bg_tex_phase"]),
        seed,
        grain=0.1,
    )
    # Low-frequency light variation so that the background is never flat.
    light = value_noise(xx, yy, 3.0, seed + 1)
    img *= (0.85 + 0.3 * light)[..., None]
    if "bg_floor_y" in params:
        fy = float(params["bg_floor_y"])
        below = yy > fy
        depth = np.clip((yy - fy) / max(1e-3, 1.0 - fy), 0.0, 1.0) + 0.05
        # Perspective tiles: columns converge to a vanishing point above the frame centre.
        fx = (xx - 0.5) / depth
        fz = 1.0 / depth
        tiles = texture(
            fx,
            fz,
            params["floor_color1"],
            params["floor_color2"],
            TEX_CHECKER,
            float(params["floor_tex_freq"]),
            0.0,
            0.0,
            seed + 2,
            grain=0.12,
        )
        img = np.where(below[..., None], tiles, img)
        # A soft shadow line where wall meets floor.
        edge = np.exp(-(((yy - fy) * n / (1.5 * ss)) ** 2))
        img *= (1.0 - 0.35 * edge)[..., None]
    vig = float(params.get("bg_vignette", 0.0))
    if vig > 0:
        r2 = (xx - 0.5) ** 2 + (yy - 0.5) ** 2
        img *= (1.0 - vig * r2 * 2.0)[..., None]
    return np.clip(img, 0.0, 1.0).astype(np.float32)


class Renderer:
    """The part every category's renderer shares: one identity at one size, its supersampled
    background built once, a blank canvas per frame and the frame's outputs from it."""

    def __init__(self, identity: dict, size: int):
        self.identity = canonical_params(identity)
        self.size = int(size)
        self.ss = supersample_factor(self.size)
        self.scale_px = float(self.size * self.ss)
        self.background = background_canvas(self.identity, self.size, self.ss)

    def _blank(self, with_labels: bool):
        """The background canvas to draw on and, with labels, a part-id canvas (-1 = none)."""
        canvas = self.background.copy()
        n = canvas.shape[0]
        return canvas, np.full((n, n), -1, np.int32) if with_labels else None

    def _outputs(self, canvas: np.ndarray, labels: np.ndarray | None, kp: np.ndarray):
        """(uint8 image, keypoints_px[, part-id map]) at the output size."""
        image = downsample(canvas, self.size)
        if labels is not None:
            return image, kp, sample_labels(labels, self.size, self.ss)
        return image, kp


# --------------------------------------------------------------------------------------------
# Motion signals (shared by the pose samplers)
# --------------------------------------------------------------------------------------------
def smooth_signal(
    rng: np.random.Generator, num_frames: int, fmin: float, fmax: float, components: int = 3
) -> np.ndarray:
    """A smooth zero-mean signal of about unit standard deviation: a sum of ``components``
    sinusoids with random frequencies in ``[fmin, fmax]`` cycles per frame and random phases."""
    t = np.arange(num_frames, dtype=np.float64)
    freqs = rng.uniform(fmin, fmax, components)
    phases = rng.uniform(0.0, 2.0 * math.pi, components)
    amps = rng.uniform(0.4, 1.0, components)
    amps *= math.sqrt(2.0) / np.sqrt(np.sum(amps**2))
    return np.sum(amps[:, None] * np.sin(2.0 * math.pi * freqs[:, None] * t[None] + phases[:, None]), axis=0)


def global_motion(
    rng: np.random.Generator,
    num_frames: int,
    centre,
    jitter: float,
    shift: float,
    scale: tuple[float, float],
    tilt: float,
    sway: float,
    band: tuple[float, float],
    rotation_band: tuple[float, float],
):
    """The whole figure's smooth motion, and the signal maker the rest of a trajectory uses.

    Returns ``(pose, sig)``: ``pose`` holds ``translation`` (T, 2) around ``centre`` (jittered by
    up to ``jitter``, swinging by about ``shift``), ``scale`` (T,) from a base drawn in ``scale``
    and ``rotation`` (T,) in radians from a base in +-``tilt`` swinging by ``sway``;
    ``sig(fmin, fmax)`` draws a further smooth (T,) signal from the same ``rng``.
    """

    def sig(fmin: float, fmax: float) -> np.ndarray:
        return smooth_signal(rng, num_frames, fmin, fmax)

    centre = np.asarray(centre, dtype=np.float64) + rng.uniform(-jitter, jitter, 2)
    pose = {
        "translation": centre[None] + shift * np.stack([sig(*band), sig(*band)], axis=1),
        "scale": rng.uniform(*scale) * np.exp(0.05 * sig(*band)),
        "rotation": rng.uniform(-tilt, tilt) + sway * sig(*rotation_band),
    }
    return pose, sig


def bounded(z: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map an unbounded signal smoothly into ``(lo, hi)`` (``z = 0`` gives the middle)."""
    return lo + (hi - lo) * (0.5 + 0.5 * np.tanh(z))


def rotation(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])
