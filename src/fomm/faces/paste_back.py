"""Paste animated face crops back into the full source photo, at the photo's own resolution.

``fomm animate --crop`` animates a square crop of the photo (``box`` from
:func:`fomm.faces.crop_image`). :class:`PasteBack` puts each animated crop frame back where the
crop came from:

1. the frame ``(s, s, 3)`` is resized to the box (``image_ops.resize_frame``);
2. optionally (``color_match=True``) its colours are matched to the photo's: per channel, the
   mean and standard deviation of the frame's *border ring* (the feathered band, where the two
   images meet) are mapped onto those of the photo's ring (a Reinhard-style transfer in RGB; the
   gain is clipped to [0.5, 2]). The statistics are averaged over time (each frame moves them
   30% of the way), so colours do not flicker;
3. it is blended over the photo with a feathered mask: 1 inside the box, falling to 0 at the box
   border over ``feather`` x the box's shorter side (default 0.1: 25 px for a 256 px box) with a
   smoothstep ``3t**2 - 2t**3`` (no kink at either end). Box sides that touch the photo border are
   not feathered (there is no seam there). Outside the box the output *is* the photo, bit for bit.

The output is the photo's size **rounded down to even** (the last row and/or column is dropped
when the size is odd), because H.264 with 4:2:0 chroma needs even sides; nothing is resampled.
The mask is built once; call the object on each frame as it arrives (streaming).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from fomm.data.image_ops import resize_frame, to_rgb_uint8
from fomm.errors import FommError

FEATHER = 0.1  # blend band, as a fraction of the box's shorter side
COLOR_MOMENTUM = 0.7  # colour statistics: new = 0.7 * previous + 0.3 * this frame's
GAIN_RANGE = (0.5, 2.0)


def even_size(h: int, w: int) -> tuple[int, int]:
    """``(H, W)`` rounded down to even (at least 2)."""
    return max(2, h - h % 2), max(2, w - w % 2)


def check_box(box: Sequence[float], photo_hw: Sequence[int]) -> tuple[int, int, int, int]:
    """``box`` as ints, or a FommError when it is empty or not inside the ``(H, W)`` photo."""
    h, w = int(photo_hw[0]), int(photo_hw[1])
    try:
        x0, y0, x1, y1 = (int(round(float(v))) for v in box[:4])
    except (TypeError, ValueError, IndexError):
        raise FommError(f"crop box {box!r} is not (x0, y0, x1, y1); pass the box crop_image returned") from None
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise FommError(
            f"crop box {(x0, y0, x1, y1)} is not inside the {w}x{h} photo; pass the box that was cropped from this photo"
        )
    return x0, y0, x1, y1


def feather_mask(
    box_hw: Sequence[int], margin: float, open_sides: Sequence[bool] = (True, True, True, True)
) -> np.ndarray:
    """``(h, w)`` float32 mask: 1 inside, smoothstep down to 0 over ``margin`` px towards each
    *open* side (left, top, right, bottom); closed sides stay 1 up to the edge."""
    h, w = int(box_hw[0]), int(box_hw[1])
    if margin <= 0:
        return np.ones((h, w), np.float32)
    far = np.float32(1e9)
    xs, ys = np.arange(w, dtype=np.float32) + 0.5, np.arange(h, dtype=np.float32) + 0.5
    left, top, right, bottom = open_sides
    dx = np.minimum(xs if left else far, (w - xs) if right else far)
    dy = np.minimum(ys if top else far, (h - ys) if bottom else far)
    t = np.clip(np.minimum(dy[:, None], dx[None, :]) / np.float32(margin), 0, 1)
    return (t * t * (3 - 2 * t)).astype(np.float32)


class PasteBack:
    """Composite animated crops into ``photo`` ``(H, W, 3)`` at ``box`` ``(x0, y0, x1, y1)``.

    ``feather``: blend band as a fraction of the box's shorter side (0 = hard edge);
    ``color_match``: match the frames' colours to the photo's (see the module docstring). Call
    the object on each crop frame ``(s, s, 3)`` (uint8, or float in [0, 1]): it returns a uint8
    frame of :attr:`out_hw` = the photo's size rounded down to even.
    """

    def __init__(self, photo, box: Sequence[float], *, feather: float = FEATHER, color_match: bool = False):
        if not 0 <= feather <= 0.5:
            raise FommError(f"feather must be in [0, 0.5] (a fraction of the box side), got {feather}; use e.g. 0.1")
        self.photo = to_rgb_uint8(photo)
        h, w = self.photo.shape[:2]
        self.box = check_box(box, (h, w))
        self.out_hw = even_size(h, w)
        x0, y0, x1, y1 = self.box
        self.margin = float(feather) * min(x1 - x0, y1 - y0)
        open_sides = (x0 > 0, y0 > 0, x1 < w, y1 < h)
        self.mask = feather_mask((y1 - y0, x1 - x0), self.margin, open_sides)[..., None]
        self.region = self.photo[y0:y1, x0:x1].astype(np.float32)
        self.ring = (self.mask[..., 0] < 1) if self.margin >= 1 else _edge_ring(self.mask.shape[:2])
        self.color_match = bool(color_match)
        self._stats: tuple[np.ndarray, np.ndarray] | None = None
        self.photo_stats = _stats(self.region, self.ring)

    def _match(self, crop: np.ndarray) -> np.ndarray:
        mean, std = _stats(crop, self.ring)
        if self._stats is not None:
            k = COLOR_MOMENTUM
            mean, std = k * self._stats[0] + (1 - k) * mean, k * self._stats[1] + (1 - k) * std
        self._stats = (mean, std)
        p_mean, p_std = self.photo_stats
        gain = np.clip(p_std / np.maximum(std, 1e-3), *GAIN_RANGE)
        return (crop - mean) * gain + p_mean

    def __call__(self, frame) -> np.ndarray:
        frame = to_rgb_uint8(frame)
        if frame.ndim != 3:
            raise FommError(f"expected an animated crop frame (s, s, 3), got shape {frame.shape}")
        x0, y0, x1, y1 = self.box
        crop = resize_frame(frame, (y1 - y0, x1 - x0)).astype(np.float32)
        if self.color_match:
            crop = self._match(crop)
        blended = self.region + (crop - self.region) * self.mask
        out = self.photo.copy()
        out[y0:y1, x0:x1] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
        oh, ow = self.out_hw
        return np.ascontiguousarray(out[:oh, :ow])

    def paste_all(self, frames: Iterable) -> Iterator[np.ndarray]:
        """:meth:`__call__` on each frame of a stream, lazily."""
        for frame in frames:
            yield self(frame)


def _edge_ring(hw: Sequence[int]) -> np.ndarray:
    ring = np.zeros(tuple(hw), bool)
    ring[0, :] = ring[-1, :] = ring[:, 0] = ring[:, -1] = True
    return ring


def _stats(image: np.ndarray, ring: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation ``(3,)`` of ``image`` where ``ring`` is True."""
    values = image[ring].reshape(-1, image.shape[-1]).astype(np.float64)
    return values.mean(axis=0), values.std(axis=0)


def paste_back(photo, box: Sequence[float], frames: Iterable, **options) -> np.ndarray:
    """All ``frames`` pasted into ``photo`` at ``box``: ``(T, H', W', 3)`` uint8 (options as
    :class:`PasteBack`; ``H', W'`` the photo's size rounded down to even)."""
    paster = PasteBack(photo, box, **options)
    out = [paster(f) for f in frames]
    if not out:
        raise FommError("no frames to paste back; pass at least one animated frame")
    return np.stack(out)
