"""Array conversions shared by the readers and writers: any image-like array to RGB uint8, resizing.

Conversion rules of :func:`to_rgb_uint8` (each lossy or surprising conversion warns once per
process, see :func:`warn_once`):

* ``bool`` -> 0 / 255; ``uint8`` kept; ``uint16`` scaled by 255/65535 (16-bit PNGs, warned);
  other integer types are accepted when their values lie in [0, 255].
* floating point values are taken to be in [0, 1]: multiplied by 255 and rounded. Values slightly
  outside are clipped (warned); values far outside (above 2 or below -1, e.g. a float image in
  [0, 255]) or NaN/inf are a :class:`~fomm.errors.FommError`.
* grayscale ``(H, W)`` or ``(H, W, 1)`` is replicated to three channels (warned).
* an alpha channel (``(H, W, 4)`` RGBA, ``(H, W, 2)`` gray+alpha) is composited over a white
  background (warned when any pixel is not fully opaque; a fully opaque alpha is dropped
  silently). White, rather than "drop alpha", because the colour under transparent pixels is
  often arbitrary (black, or left-over paint) while a white background is what viewers show.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import cv2
import numpy as np

from fomm.errors import FommError

_WARNED: set[str] = set()


def warn_once(key: str, message: str, stacklevel: int = 3) -> None:
    """``warnings.warn(message)`` the first time ``key`` is seen in this process."""
    if key in _WARNED:
        return
    _WARNED.add(key)
    warnings.warn(message, UserWarning, stacklevel=stacklevel)


def reset_warn_once() -> None:
    """Forget which one-time warnings were shown (for tests)."""
    _WARNED.clear()


def normalize_frame_shape(frame_shape: Sequence[int] | None) -> tuple[int, int] | None:
    """``(H, W)`` or ``(H, W, 3)`` -> ``(H, W)``; ``None`` stays ``None``."""
    if frame_shape is None:
        return None
    try:
        shape = tuple(int(s) for s in frame_shape)
    except (TypeError, ValueError):
        raise FommError(
            f"frame_shape {frame_shape!r} is not a sequence of integers; pass (height, width) "
            "or (height, width, 3), e.g. (256, 256, 3)"
        ) from None
    if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] != 3):
        raise FommError(
            f"frame_shape {frame_shape!r} is not (height, width) or (height, width, 3); pass e.g. (256, 256, 3)"
        )
    if shape[0] <= 0 or shape[1] <= 0:
        raise FommError(f"frame_shape {frame_shape!r} has a non-positive size; use positive sizes such as (256, 256)")
    return shape[0], shape[1]


def _to_uint8_values(a: np.ndarray) -> np.ndarray:
    """Convert the values (not the channel layout) of ``a`` to uint8."""
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * np.uint8(255)
    if a.dtype == np.uint16:
        warn_once(
            "uint16",
            "16-bit image data was converted to 8 bits per channel (values scaled by 255/65535); "
            "fomm works with 8-bit colour",
        )
        return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if np.issubdtype(a.dtype, np.floating):
        if not np.all(np.isfinite(a)):
            raise FommError(
                "image contains NaN or infinite values; check the computation that produced it "
                "(float images must hold values in [0, 1])"
            )
        lo, hi = float(a.min()), float(a.max())
        if hi > 2.0 or lo < -1.0:
            raise FommError(
                f"float image has values in [{lo:.3g}, {hi:.3g}] but floats must be in [0, 1]; "
                "divide by 255 (or pass a uint8 array)"
            )
        if hi > 1.0 + 1e-3 or lo < -1e-3:
            warn_once(
                "float-clip",
                f"float image values in [{lo:.3g}, {hi:.3g}] were clipped to [0, 1]",
            )
        return np.round(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8)
    if np.issubdtype(a.dtype, np.integer):
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi > 255:
            raise FommError(
                f"{a.dtype} image has values in [{lo}, {hi}], outside [0, 255]; pass uint8 values or floats in [0, 1]"
            )
        return a.astype(np.uint8)
    raise FommError(f"cannot use an image of dtype {a.dtype}; pass uint8 values or floats in [0, 1]")


def to_rgb_uint8(array) -> np.ndarray:
    """Return ``array`` as a C-contiguous uint8 ``(H, W, 3)`` RGB image (rules in the module doc)."""
    a = np.asarray(array)
    if a.size == 0:
        raise FommError(f"image is empty (shape {a.shape}); pass an image with at least one pixel")
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        warn_once("gray", "grayscale image was converted to RGB by replicating its channel")
        a = _to_uint8_values(a)
        return np.ascontiguousarray(np.repeat(a[:, :, None], 3, axis=2))
    if a.ndim != 3 or a.shape[-1] not in (2, 3, 4):
        hint = ""
        if a.ndim == 3 and a.shape[0] in (1, 3, 4):
            hint = " (a channels-first array? use array.transpose(1, 2, 0))"
        raise FommError(
            f"expected an image of shape (H, W), (H, W, 3) or (H, W, 4), got {a.shape}{hint}; "
            "pass a channels-last RGB image"
        )
    a = _to_uint8_values(a)
    if a.shape[-1] == 3:
        return np.ascontiguousarray(a)
    color, alpha = a[..., :-1], a[..., -1]
    if color.shape[-1] == 1:
        warn_once("gray", "grayscale image was converted to RGB by replicating its channel")
        color = np.repeat(color, 3, axis=2)
    if alpha.min() == 255:
        return np.ascontiguousarray(color)
    warn_once(
        "alpha",
        "image has transparent pixels (alpha channel); it was composited over a white background",
    )
    w = alpha.astype(np.float32)[..., None] / 255.0
    out = color.astype(np.float32) * w + 255.0 * (1.0 - w)
    return np.round(out).astype(np.uint8)


def to_float01(frames: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [0, 1] (any shape)."""
    return np.asarray(frames, dtype=np.float32) * np.float32(1.0 / 255.0)


def resize_frame(frame: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Resize ``frame`` (``(H, W)`` or ``(H, W, C)``) to ``size = (H, W)``, keeping its dtype.

    Shrinking (neither side grows) uses ``cv2.INTER_AREA``; growing uses ``cv2.INTER_CUBIC`` for
    integer images (saturating, so it stays in range) and ``cv2.INTER_LINEAR`` for float images
    (no overshoot outside [0, 1]). Returns ``frame`` itself when it already has that size.
    """
    shape = normalize_frame_shape(size)
    assert shape is not None
    h, w = shape
    frame = np.asarray(frame)
    if frame.ndim not in (2, 3):
        raise FommError(f"cannot resize an array of shape {frame.shape}; pass an (H, W) or (H, W, C) image")
    if frame.shape[:2] == (h, w):
        return frame
    dtype = frame.dtype
    work = frame
    if dtype == np.bool_:
        work = frame.astype(np.uint8) * np.uint8(255)
    elif dtype == np.float16 or (np.issubdtype(dtype, np.integer) and dtype not in (np.uint8, np.uint16, np.int16)):
        work = frame.astype(np.float32)
    shrinking = h <= frame.shape[0] and w <= frame.shape[1]
    if shrinking:
        interp = cv2.INTER_AREA
    elif np.issubdtype(work.dtype, np.floating):
        interp = cv2.INTER_LINEAR
    else:
        interp = cv2.INTER_CUBIC
    out = cv2.resize(np.ascontiguousarray(work), (w, h), interpolation=interp)
    if frame.ndim == 3 and out.ndim == 2:
        out = out[:, :, None]
    if dtype == np.bool_:
        return out >= 128
    if out.dtype != dtype:
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            out = np.clip(np.round(out), info.min, info.max)
        out = out.astype(dtype)
    return out
