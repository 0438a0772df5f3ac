"""Drawing helpers: keypoints in colour, side-by-side panels, grids and contact sheets.

Generic on purpose: the animation CLI, training visualisations and the demo all use them.

* Images are ``(H, W, 3)`` arrays, uint8 or float in [0, 1]; every function returns a new array
  (inputs are never modified) of the input's dtype (uint8 when inputs of both kinds are mixed).
* Keypoints are given the way the model produces them: ``(K, 2)`` ``(x, y)`` in [-1, 1]
  (a numpy array, a torch tensor, or a keypoint dict holding ``'value'``; a leading batch axis of
  one is dropped). They are mapped to pixels with the project's one convention,
  :func:`fomm.data.image_ops.kp_to_pixels`: ``x_px = (x + 1) / 2 * (W - 1)`` (-1 and +1 are the
  centres of the first and last pixels, as in the model's coordinate grid).
* Keypoint ``k`` of ``K`` gets colour ``gist_rainbow(k / K)``, matplotlib's colormap reproduced
  here (no matplotlib needed), so keypoint colours match the original visualizer's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from fomm.data.image_ops import kp_to_pixels, resize_frames, to_numpy, to_rgb_float01, to_rgb_uint8, to_uint8
from fomm.errors import FommError, plural

__all__ = [
    "GIST_RAINBOW",
    "contact_sheet",
    "default_radius",
    "draw_keypoints",
    "gist_rainbow",
    "grid",
    "keypoint_colors",
    "keypoints_array",
    "keypoints_to_pixels",
    "label_panel",
    "labelled_row",
    "side_by_side",
    "to_uint8",
    "vstack",
]

#: matplotlib's ``gist_rainbow`` segment data: ``(x, (r, g, b))`` anchors, linearly interpolated.
GIST_RAINBOW = (
    (0.000, (1.00, 0.00, 0.16)),
    (0.030, (1.00, 0.00, 0.00)),
    (0.215, (1.00, 1.00, 0.00)),
    (0.400, (0.00, 1.00, 0.00)),
    (0.586, (0.00, 1.00, 1.00)),
    (0.770, (0.00, 0.00, 1.00)),
    (0.954, (1.00, 0.00, 1.00)),
    (1.000, (1.00, 0.00, 0.75)),
)
_LUT_SIZE = 256  # matplotlib's default number of colormap entries


def _gist_rainbow_lut() -> np.ndarray:
    xs = np.array([x for x, _ in GIST_RAINBOW])
    rgb = np.array([c for _, c in GIST_RAINBOW])
    grid_x = np.linspace(0.0, 1.0, _LUT_SIZE)
    return np.stack([np.interp(grid_x, xs, rgb[:, c]) for c in range(3)], axis=-1).astype(np.float32)


_GIST_RAINBOW_LUT = _gist_rainbow_lut()


def gist_rainbow(x) -> np.ndarray:
    """RGB colours in [0, 1] (shape ``x.shape + (3,)``) of matplotlib's ``gist_rainbow`` at ``x``.

    Like matplotlib, ``x`` is looked up in a 256-entry table (``int(x * 256)``, clipped to
    [0, 255]), so the values equal ``matplotlib.cm.gist_rainbow(x)[..., :3]``.
    """
    x = np.asarray(x, dtype=np.float64)
    index = np.clip((x * _LUT_SIZE).astype(np.int64), 0, _LUT_SIZE - 1)
    return _GIST_RAINBOW_LUT[index]


def keypoint_colors(num_kp: int, colormap: Callable = gist_rainbow) -> np.ndarray:
    """``(num_kp, 3)`` float colours in [0, 1]: keypoint ``k`` gets ``colormap(k / num_kp)``."""
    if num_kp < 0:
        raise FommError(f"number of keypoints must be >= 0, got {num_kp}")
    if num_kp == 0:
        return np.zeros((0, 3), np.float32)
    return np.asarray(colormap(np.arange(num_kp) / num_kp), dtype=np.float32)[:, :3]


# ----------------------------------------------------------------------------------------------
# Conversions (all in fomm.data.image_ops)
# ----------------------------------------------------------------------------------------------
def _as_image(image, what: str = "image") -> np.ndarray:
    """An ``(H, W, 3)`` panel: uint8 stays uint8, anything else becomes float32 in [0, 1]
    (:func:`fomm.data.image_ops.to_rgb_uint8` / :func:`~fomm.data.image_ops.to_rgb_float01`)."""
    arr = to_numpy(image)
    if arr.ndim not in (2, 3):
        raise FommError(f"{what} has shape {tuple(arr.shape)}; expected an (H, W, 3) image")
    if arr.ndim == 2 or arr.shape[-1] == 1:  # a map shown in gray on purpose: replicated silently
        arr = np.repeat(arr.reshape(*arr.shape[:2], 1), 3, axis=-1)
    if arr.dtype == np.uint8:
        return to_rgb_uint8(arr, what, ndim=3)
    return to_rgb_float01(arr, what, ndim=3)


def _common_dtype(images: Sequence[np.ndarray]) -> list[np.ndarray]:
    """All uint8 if any is uint8 (display output), else all float32."""
    if any(im.dtype == np.uint8 for im in images):
        return [to_uint8(im) for im in images]
    return [im.astype(np.float32, copy=False) for im in images]


def keypoints_array(keypoints) -> np.ndarray:
    """``(K, 2)`` float array from an array, a tensor or a keypoint dict (``'value'``)."""
    if isinstance(keypoints, dict):
        if "value" not in keypoints:
            raise FommError("keypoint dict has no 'value' entry; pass the keypoint detector's output")
        keypoints = keypoints["value"]
    kp = to_numpy(keypoints).astype(np.float64)
    if kp.ndim == 3 and kp.shape[0] == 1:
        kp = kp[0]
    if kp.ndim != 2 or kp.shape[-1] != 2:
        raise FommError(f"keypoints have shape {tuple(kp.shape)}; expected (K, 2) (x, y) values in [-1, 1]")
    return kp


def keypoints_to_pixels(keypoints, size_hw: Sequence[int]) -> np.ndarray:
    """``(K, 2)`` pixel ``(x, y)`` positions of [-1, 1] keypoints on an ``(H, W)`` image
    (:func:`fomm.data.image_ops.kp_to_pixels`)."""
    return kp_to_pixels(keypoints_array(keypoints), size_hw)


# ----------------------------------------------------------------------------------------------
# Keypoints
# ----------------------------------------------------------------------------------------------
def default_radius(size_hw: Sequence[int]) -> float:
    """Disc radius in pixels: the original's 5 px on 256-pixel frames, scaled, at least 2."""
    return max(2.0, 5.0 * min(int(size_hw[0]), int(size_hw[1])) / 256.0)


def draw_keypoints(image, keypoints, radius: float | None = None, colors=None, outline: bool = False) -> np.ndarray:
    """Draw keypoints as filled discs in colour; returns a new image of the same dtype.

    ``image``: ``(H, W, 3)`` (or a batch ``(B, H, W, 3)`` with keypoints ``(B, K, 2)``), uint8 or
    float in [0, 1]. ``keypoints``: ``(K, 2)`` ``(x, y)`` in [-1, 1] (see the module doc).
    ``radius``: disc radius in pixels (default :func:`default_radius`); a pixel is painted when its
    centre is closer than ``radius`` to the keypoint, as ``skimage.draw.circle`` does in the
    original. ``colors``: ``(K, 3)`` floats in [0, 1] (default :func:`keypoint_colors`).
    ``outline``: ring each disc in black, for keypoints on busy or similarly coloured images.
    Keypoints outside the image are clipped (partly drawn or skipped).
    """
    arr = to_numpy(image)
    if arr.ndim == 4:  # a batch
        if isinstance(keypoints, dict):
            keypoints = keypoints["value"]
        kps = to_numpy(keypoints)
        if kps.ndim != 3 or len(kps) != len(arr):
            raise FommError(
                f"a batch of {plural(len(arr), 'image')} needs keypoints of shape ({len(arr)}, K, 2), got {tuple(kps.shape)}"
            )
        return np.stack([draw_keypoints(im, kp, radius, colors, outline) for im, kp in zip(arr, kps)])
    img = _as_image(arr).copy()
    h, w = img.shape[:2]
    pixels = keypoints_to_pixels(keypoints, (h, w))
    cols = keypoint_colors(len(pixels)) if colors is None else np.asarray(to_numpy(colors), np.float32)
    if len(cols) < len(pixels):
        raise FommError(
            f"{plural(len(cols), 'colour')} given for {plural(len(pixels), 'keypoint')}; pass one colour per keypoint"
        )
    cols = cols[:, :3]
    if img.dtype == np.uint8:
        cols = np.clip(np.rint(cols * 255), 0, 255).astype(np.uint8)
    r = float(default_radius((h, w)) if radius is None else radius)
    if r <= 0:
        return img
    ring = max(1.0, r / 3.0) if outline else 0.0
    extent = r + ring
    for (x, y), color in zip(pixels, cols):
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        r0, r1 = max(int(math.floor(y - extent)), 0), min(int(math.ceil(y + extent)) + 1, h)
        c0, c1 = max(int(math.floor(x - extent)), 0), min(int(math.ceil(x + extent)) + 1, w)
        if r0 >= r1 or c0 >= c1:
            continue
        rr, cc = np.mgrid[r0:r1, c0:c1]
        dist2 = (rr - y) ** 2 + (cc - x) ** 2
        patch = img[r0:r1, c0:c1]
        if ring:
            patch[(dist2 < extent**2) & (dist2 >= r**2)] = 0
        patch[dist2 < r**2] = color
    return img


# ----------------------------------------------------------------------------------------------
# Layouts
# ----------------------------------------------------------------------------------------------
def _resize_to_height(image: np.ndarray, height: int, interpolation: str = "auto") -> np.ndarray:
    h, w = image.shape[:2]
    width = max(1, int(round(w * height / h)))
    return resize_frames(image, (height, width), interpolation)


def _fill(dtype, value: float):
    return np.uint8(round(value * 255)) if dtype == np.uint8 else np.float32(value)


def side_by_side(panels: Sequence, height: int | None = None, gap: int = 0, background: float = 1.0) -> np.ndarray:
    """Panels placed left to right, each scaled (aspect kept) to ``height`` (default: the tallest).

    ``gap`` pixels of ``background`` (0 black .. 1 white) separate the panels.
    """
    images = _common_dtype([_as_image(p, f"panel {i}") for i, p in enumerate(panels)])
    if not images:
        raise FommError("no panels to lay out; pass at least one image")
    height = int(height or max(im.shape[0] for im in images))
    images = [_resize_to_height(im, height) for im in images]
    if gap > 0:
        spacer = np.full((height, int(gap), 3), _fill(images[0].dtype, background), images[0].dtype)
        images = [x for im in images for x in (im, spacer)][:-1]
    return np.concatenate(images, axis=1)


def vstack(images: Sequence, gap: int = 0, background: float = 1.0) -> np.ndarray:
    """Images placed top to bottom, left-aligned; narrower ones are padded with ``background``."""
    items = _common_dtype([_as_image(p, f"image {i}") for i, p in enumerate(images)])
    if not items:
        raise FommError("no images to stack; pass at least one image")
    width = max(im.shape[1] for im in items)
    fill = _fill(items[0].dtype, background)
    rows = []
    for k, im in enumerate(items):
        if im.shape[1] < width:
            pad = np.full((im.shape[0], width - im.shape[1], 3), fill, im.dtype)
            im = np.concatenate([im, pad], axis=1)
        if k and gap > 0:
            rows.append(np.full((int(gap), width, 3), fill, im.dtype))
        rows.append(im)
    return np.concatenate(rows, axis=0)


def grid(rows: Sequence[Sequence], gap: int = 0, background: float = 1.0) -> np.ndarray:
    """A grid from rows of images: each row laid out with :func:`side_by_side`, rows stacked.

    The layout of the original visualizer (one row per sample: source, driving, prediction, ...).
    """
    return vstack([side_by_side(row, gap=gap, background=background) for row in rows], gap=gap, background=background)


def contact_sheet(
    images: Sequence,
    columns: int | None = None,
    gap: int = 2,
    background: float = 1.0,
    labels: Sequence[str] | None = None,
    cell_size: Sequence[int] | None = None,
) -> np.ndarray:
    """Thumbnails on a grid of ``columns`` (default ``ceil(sqrt(n))``) columns.

    Every image is scaled (aspect kept) to fit a cell of ``cell_size=(H, W)`` (default: the
    largest image) and centred in it. ``labels`` (one per image) are written in the cells'
    top-left corners.
    """
    items = _common_dtype([_as_image(p, f"image {i}") for i, p in enumerate(images)])
    n = len(items)
    if n == 0:
        raise FommError("no images for the contact sheet; pass at least one image")
    if labels is not None and len(labels) != n:
        raise FommError(f"{plural(len(labels), 'label')} given for {plural(n, 'image')}; pass one label per image")
    columns = int(columns or math.ceil(math.sqrt(n)))
    if columns < 1:
        raise FommError(f"columns must be >= 1, got {columns}")
    rows = math.ceil(n / columns)
    ch, cw = (
        (int(cell_size[0]), int(cell_size[1]))
        if cell_size
        else (max(im.shape[0] for im in items), max(im.shape[1] for im in items))
    )
    dtype = items[0].dtype
    fill = _fill(dtype, background)
    sheet = np.full((rows * ch + (rows - 1) * gap, columns * cw + (columns - 1) * gap, 3), fill, dtype)
    for k, im in enumerate(items):
        h, w = im.shape[:2]
        scale = min(ch / h, cw / w)
        if scale != 1.0:
            im = resize_frames(im, (max(1, int(round(h * scale))), max(1, int(round(w * scale)))))
        h, w = im.shape[:2]
        r, c = divmod(k, columns)
        y0 = r * (ch + gap) + (ch - h) // 2
        x0 = c * (cw + gap) + (cw - w) // 2
        sheet[y0 : y0 + h, x0 : x0 + w] = im
        if labels is not None and labels[k]:
            _label(sheet, str(labels[k]), r * (ch + gap), c * (cw + gap), cw)
    return sheet


def _label(sheet: np.ndarray, text: str, y0: int, x0: int, width: int) -> None:
    """Write ``text`` at (x0, y0), white on a black box, scaled to the cell width."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = max(0.3, min(1.0, width / 256.0))
    thickness = 1
    (tw, th), base = cv2.getTextSize(text, font, scale, thickness)
    white = 255 if sheet.dtype == np.uint8 else 1.0
    box = sheet[y0 : y0 + th + base + 2, x0 : x0 + min(tw + 4, width)]
    box[...] = 0
    canvas = np.ascontiguousarray(sheet[y0 : y0 + th + base + 2, x0 : x0 + width])
    cv2.putText(canvas, text, (2, th + 1), font, scale, (white, white, white), thickness, cv2.LINE_AA)
    sheet[y0 : y0 + th + base + 2, x0 : x0 + width] = canvas


# ----------------------------------------------------------------------------------------------
# Labels
# ----------------------------------------------------------------------------------------------
#: Panels shorter than this are enlarged by :func:`labelled_row` so that labels stay legible.
MIN_LABEL_HEIGHT = 128


def _text_scale(text: str, band: int, width: int, font: int, thickness: int) -> float:
    """The font scale whose text fills about 60% of the band and fits the width."""
    (tw, th), _ = cv2.getTextSize(text, font, 1.0, thickness)
    return max(0.25, min(0.6 * band / max(th, 1), 0.92 * width / max(tw, 1)))


def label_panel(image, text: str, band: int | None = None, background: float = 0.15) -> np.ndarray:
    """``image`` ``(H, W, 3)`` with a band of ``band`` pixels (default ``max(14, H // 8)``) above
    it holding ``text`` centred, white on dark grey; returns a new ``(H + band, W, 3)`` image of
    the input's kind (uint8, or float in [0, 1])."""
    img = _as_image(image, f"panel '{text}'")
    h, w = img.shape[:2]
    band = int(band or max(14, h // 8))
    font, thickness = cv2.FONT_HERSHEY_SIMPLEX, 1 if band < 24 else 2
    strip = np.full((band, w, 3), int(round(background * 255)), np.uint8)
    if text:
        scale = _text_scale(text, band, w, font, thickness)
        (tw, th), _ = cv2.getTextSize(text, font, scale, thickness)
        origin = (max(0, (w - tw) // 2), (band + th) // 2)
        cv2.putText(strip, text, origin, font, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    if img.dtype != np.uint8:
        strip = strip.astype(np.float32) / np.float32(255.0)
    return np.concatenate([strip, img], axis=0)


def labelled_row(
    panels: Sequence,
    labels: Sequence[str],
    height: int | None = None,
    gap: int = 0,
    min_height: int = MIN_LABEL_HEIGHT,
    interpolation: str = "auto",
) -> np.ndarray:
    """:func:`side_by_side` with a label above each panel (``labels[i]`` over ``panels[i]``).

    Panels are scaled (aspect kept) to ``height`` (default: the tallest, and at least
    ``min_height`` so a 64-pixel panel's label is legible; ``interpolation="nearest"`` keeps
    enlarged pixels sharp), then labelled with :func:`label_panel`.
    """
    if len(labels) != len(panels):
        raise FommError(
            f"{plural(len(labels), 'label')} given for {plural(len(panels), 'panel')}; pass one label per panel"
        )
    images = _common_dtype([_as_image(p, f"panel {i}") for i, p in enumerate(panels)])
    if not images:
        raise FommError("no panels to lay out; pass at least one image")
    height = int(height or max(max(im.shape[0] for im in images), int(min_height)))
    images = [_resize_to_height(im, height, interpolation) for im in images]
    band = max(14, height // 8)
    return side_by_side([label_panel(im, str(t), band) for im, t in zip(images, labels)], gap=gap)
