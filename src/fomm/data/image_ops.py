"""The one place where arrays become images: values, channels, sizes and keypoint pixels.

Everything in fomm that turns an array into an image (the readers and writers of
:mod:`fomm.data.video_io`, the animation engine, drawing, cropping, evaluation, training
visualisation) goes through these functions, so one input gives the same image everywhere.

Values (:func:`to_rgb_uint8` gives uint8, :func:`to_rgb_float01` float32 in [0, 1]):

* ``bool`` -> 0 / 1 (255 in uint8); ``uint8`` / 255; ``uint16`` / 65535 (16-bit PNGs, warned);
  other integer types are accepted when their values lie in [0, 255].
* floating point values are taken to be in [0, 1]. Values slightly outside are clipped (warned);
  values far outside (above 2 or below -1, e.g. a float image in [0, 255]) are a
  :class:`~fomm.errors.FommError`; so is any NaN or infinite value (:func:`check_finite` names
  how many and where the first one is).

Channels (the same rules for files and arrays, in both value ranges):

* grayscale ``(H, W)`` or ``(H, W, 1)`` is replicated to three channels (warned).
* an alpha channel (``(H, W, 4)`` RGBA, ``(H, W, 2)`` gray+alpha) is composited over a white
  background (warned when any pixel is not fully opaque; a fully opaque alpha is dropped
  silently). White, rather than "drop alpha", because the colour under transparent pixels is
  often arbitrary (black, or left-over paint) while a white background is what viewers show.

Each lossy or surprising conversion warns once per process (:func:`warn_once`), or once per
request of a server (:func:`warn_once_scope`).

Sizes: :func:`resize_frame` / :func:`resize_frames` (area when shrinking; cubic for integer and
linear for float images when growing, or a named interpolation) and :func:`fit_aspect` (centre
crop, letterbox or stretch to an aspect ratio).

Keypoints: the model's normalised ``(x, y)`` in [-1, 1] map to pixels with
``x_px = (x + 1) / 2 * (W - 1)``, ``y_px = (y + 1) / 2 * (H - 1)`` (:func:`kp_to_pixels`,
inverse :func:`pixels_to_kp`): -1 is the centre of the first pixel and +1 the centre of the last,
matching the model's coordinate grid ``2 * i / (n - 1) - 1``.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator, Sequence

import cv2
import numpy as np

from fomm.errors import FommError, plural

__all__ = [
    "FIT_MODES",
    "INTERPOLATIONS",
    "check_finite",
    "fit_aspect",
    "kp_to_pixels",
    "normalize_frame_shape",
    "pixels_to_kp",
    "reset_warn_once",
    "resize_frame",
    "resize_frames",
    "to_float01",
    "to_numpy",
    "to_rgb_float01",
    "to_rgb_uint8",
    "to_uint8",
    "warn_once",
    "warn_once_scope",
]

_WARNED: set[str] = set()
_scope = threading.local()  # .seen: the keys warned in this thread's warn_once_scope, if one runs

#: :func:`fit_aspect` modes: centre crop, letterbox (pad), or leave it to the resize (stretch).
FIT_MODES = ("crop", "pad", "stretch")
#: :func:`resize_frame` interpolations by name.
INTERPOLATIONS = {
    "area": cv2.INTER_AREA,
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "nearest": cv2.INTER_NEAREST,
}


def warn_once(key: str, message: str, stacklevel: int = 3) -> None:
    """``warnings.warn(message)`` the first time ``key`` is seen in this process, or in this
    thread's :func:`warn_once_scope` when one runs."""
    seen = getattr(_scope, "seen", None)
    seen = _WARNED if seen is None else seen
    if key in seen:
        return
    seen.add(key)
    warnings.warn(message, UserWarning, stacklevel=stacklevel)


@contextlib.contextmanager
def warn_once_scope() -> Iterator[None]:
    """Inside the block, :func:`warn_once` in this thread warns once per block, not once per
    process: each request of a server (``fomm app``) is told the notes that apply to it, not only
    the process's first request. Other threads, and the command line, are unaffected."""
    outer = getattr(_scope, "seen", None)
    _scope.seen = set()
    try:
        yield
    finally:
        _scope.seen = outer


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


def to_numpy(x) -> np.ndarray:
    """A numpy array from an array-like or a torch tensor (detached, on the CPU; no torch import)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu()
        if str(x.dtype) in ("torch.bfloat16", "torch.float16"):
            x = x.float()
        return x.numpy()
    return np.asarray(x)


# ----------------------------------------------------------------------------------------------
# Values
# ----------------------------------------------------------------------------------------------
def check_finite(array, what: str = "image") -> None:
    """FommError when ``array`` holds NaN or infinite values, naming their count and the first."""
    a = np.asarray(array)
    if not np.issubdtype(a.dtype, np.inexact):
        return
    bad = ~np.isfinite(a)
    if not bad.any():
        return
    count = int(bad.sum())
    first = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), a.shape))
    raise FommError(
        f"{what} has {plural(count, 'NaN or infinite value')} (first at index {first}); "
        "check the computation that produced it (float images must hold values in [0, 1])"
    )


def _check_float_range(a: np.ndarray, what: str) -> bool:
    """Whether float ``a`` (finite) needs clipping to [0, 1]; FommError when far outside."""
    lo, hi = float(a.min()), float(a.max())
    if hi > 2.0 or lo < -1.0:
        raise FommError(
            f"{what} has float values in [{lo:.3g}, {hi:.3g}], outside [0, 1]; divide by 255 (or pass a uint8 array)"
        )
    if hi > 1.0 + 1e-3 or lo < -1e-3:
        warn_once("float-clip", f"float image values in [{lo:.3g}, {hi:.3g}] were clipped to [0, 1]", stacklevel=5)
    return hi > 1.0 or lo < 0.0


def _integer_range(a: np.ndarray, what: str) -> None:
    lo, hi = int(a.min()), int(a.max())
    if lo < 0 or hi > 255:
        raise FommError(
            f"{what} ({a.dtype}) has values in [{lo}, {hi}], outside [0, 255]; pass uint8 values or floats in [0, 1]"
        )


def _warn_16bit() -> None:
    warn_once(
        "uint16",
        "16-bit image data was converted to 8 bits per channel (values scaled by 255/65535); "
        "fomm works with 8-bit colour",
        stacklevel=5,
    )


def _values_uint8(a: np.ndarray, what: str) -> np.ndarray:
    """The values (not the channel layout) of ``a`` as uint8."""
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * np.uint8(255)
    if a.dtype == np.uint16:
        _warn_16bit()
        return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if np.issubdtype(a.dtype, np.floating):
        check_finite(a, what)
        _check_float_range(a, what)
        return np.round(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8)
    if np.issubdtype(a.dtype, np.integer):
        _integer_range(a, what)
        return a.astype(np.uint8)
    raise FommError(f"cannot use {what} of dtype {a.dtype}; pass uint8 values or floats in [0, 1]")


def _values_float01(a: np.ndarray, what: str) -> np.ndarray:
    """The values (not the channel layout) of ``a`` as float32 in [0, 1]."""
    if a.dtype == np.uint8:
        return a.astype(np.float32) * np.float32(1.0 / 255.0)
    if a.dtype == np.bool_:
        return a.astype(np.float32)
    if a.dtype == np.uint16:
        _warn_16bit()
        return a.astype(np.float32) * np.float32(1.0 / 65535.0)
    if np.issubdtype(a.dtype, np.floating):
        check_finite(a, what)
        a = a.astype(np.float32, copy=False)
        return np.clip(a, 0.0, 1.0) if _check_float_range(a, what) else a
    if np.issubdtype(a.dtype, np.integer):
        _integer_range(a, what)
        return a.astype(np.float32) * np.float32(1.0 / 255.0)
    raise FommError(f"cannot use {what} of dtype {a.dtype}; pass uint8 values or floats in [0, 1]")


def to_uint8(image) -> np.ndarray:
    """Display conversion, any shape, channels untouched: uint8 kept (the same object); bool ->
    0/255; float in [0, 1] scaled by 255, rounded and clipped (NaN -> 0); other integers clipped
    to [0, 255]. Accepts torch tensors."""
    arr = to_numpy(image)
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * np.uint8(255)
    if not np.issubdtype(arr.dtype, np.floating):
        return np.clip(arr, 0, 255).astype(np.uint8)
    return np.clip(np.rint(np.nan_to_num(arr * 255.0)), 0, 255).astype(np.uint8)


def to_float01(frames, dtype=np.float32) -> np.ndarray:
    """uint8 (or bool) -> ``dtype`` in [0, 1]; float arrays are only cast. Any shape, channels untouched."""
    arr = to_numpy(frames)
    if arr.dtype == np.uint8:
        return arr.astype(dtype) * np.dtype(dtype).type(1.0 / 255.0)
    if arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.floating):
        return arr.astype(dtype, copy=False)
    raise FommError(f"cannot use frames of dtype {arr.dtype}; pass uint8 values or floats in [0, 1]")


# ----------------------------------------------------------------------------------------------
# Channels
# ----------------------------------------------------------------------------------------------
def _layout_error(a: np.ndarray, what: str, ndim: int | None) -> FommError:
    layout = "(T, H, W, 3)" if ndim == 4 else "(H, W), (H, W, 3) or (H, W, 4)"
    hint = ""
    if a.ndim >= 3 and a.shape[-3] in (1, 3, 4) and a.shape[-1] not in (1, 2, 3, 4):
        hint = " (a channels-first array? use array.transpose(1, 2, 0))"
    channels = f" ({a.shape[-1]} channels)" if a.ndim == (ndim or 3) else ""
    return FommError(
        f"{what} has shape {tuple(a.shape)}{channels}; expected {layout}, channels last with 1 (gray), "
        f"3 (RGB) or 4 (RGBA) channels{hint}"
    )


def _image_array(array, what: str, ndim: int | None) -> np.ndarray:
    """``array`` as numpy with a channel axis (:func:`_with_channel_axis`); an empty one is an error."""
    a = to_numpy(array)
    if a.size == 0:
        raise FommError(f"{what} is empty (shape {a.shape}); pass an image with at least one pixel")
    return _with_channel_axis(a, what, ndim)


def _with_channel_axis(a: np.ndarray, what: str, ndim: int | None) -> np.ndarray:
    """``a`` with a last channel axis of 1-4 entries; ``ndim`` counts it (3: an image, 4: a clip)."""
    if ndim is None:
        ndim = 2 if a.ndim == 2 else max(a.ndim, 3)
        if ndim == 2:
            return a[..., None]
    if a.ndim == ndim - 1:
        return a[..., None]
    if a.ndim != ndim or a.shape[-1] not in (1, 2, 3, 4):
        raise _layout_error(a, what, ndim)
    return a


def _to_rgb(a: np.ndarray, white: float) -> np.ndarray:
    """``(..., C)`` (C in 1-4, values where ``white`` is full intensity) -> ``(..., 3)``."""
    channels = a.shape[-1]
    if channels == 3:
        return a
    color = a if channels in (1, 3) else a[..., :-1]
    if color.shape[-1] == 1:
        warn_once("gray", "grayscale image was converted to RGB by replicating its channel", stacklevel=5)
        color = np.repeat(color, 3, axis=-1)
    if channels in (1, 3):
        return color
    alpha = a[..., -1]
    if alpha.min() >= white:
        return color
    warn_once(
        "alpha",
        "image has transparent pixels (alpha channel); it was composited over a white background",
        stacklevel=5,
    )
    w = alpha.astype(np.float32)[..., None] / np.float32(white)
    out = color.astype(np.float32) * w + np.float32(white) * (1.0 - w)
    return np.round(out).astype(np.uint8) if a.dtype == np.uint8 else out.astype(a.dtype, copy=False)


def to_rgb_uint8(array, what: str = "image", ndim: int | None = None) -> np.ndarray:
    """``array`` as a C-contiguous uint8 ``(..., H, W, 3)`` RGB image (rules in the module doc).

    ``ndim``: 3 for one image, 4 for a clip ``(T, H, W, C)``; a missing channel axis means gray.
    Default: ``(H, W)`` is gray, anything else has its channels last.
    """
    a = _image_array(array, what, ndim)
    return np.ascontiguousarray(_to_rgb(_values_uint8(a, what), 255))


def to_rgb_float01(array, what: str = "image", ndim: int | None = None) -> np.ndarray:
    """``array`` as C-contiguous float32 ``(..., H, W, 3)`` RGB in [0, 1] (rules in the module doc).

    ``ndim`` as in :func:`to_rgb_uint8`. Accepts torch tensors.
    """
    a = _image_array(array, what, ndim)
    return np.ascontiguousarray(_to_rgb(_values_float01(a, what), 1.0))


# ----------------------------------------------------------------------------------------------
# Sizes
# ----------------------------------------------------------------------------------------------
def _interpolation(name: str, shrinking: bool, floating: bool) -> int:
    if name == "auto":
        if shrinking:
            return cv2.INTER_AREA
        return cv2.INTER_LINEAR if floating else cv2.INTER_CUBIC
    if name not in INTERPOLATIONS:
        raise FommError(f"unknown interpolation '{name}'; use auto or one of {', '.join(INTERPOLATIONS)}")
    return INTERPOLATIONS[name]


def resize_frame(frame: np.ndarray, size: Sequence[int], interpolation: str = "auto") -> np.ndarray:
    """Resize ``frame`` (``(H, W)`` or ``(H, W, C)``) to ``size = (H, W)``, keeping its dtype.

    ``interpolation="auto"``: shrinking (neither side grows) uses area averaging; growing uses
    cubic for integer images (saturating, so it stays in range) and linear for float images (no
    overshoot outside [0, 1]). Or name one of :data:`INTERPOLATIONS` (``nearest`` keeps pixels
    sharp when enlarging small frames for display). Returns ``frame`` itself when it already has
    that size.
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
    interp = _interpolation(interpolation, shrinking, np.issubdtype(work.dtype, np.floating))
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


def resize_frames(frames, size: Sequence[int], interpolation: str = "auto") -> np.ndarray:
    """``(..., H, W, C)`` frames resized to ``size = (H, W)`` (see :func:`resize_frame`); float
    frames are clipped to [0, 1] afterwards (cubic/linear never leave it, area neither; this
    guards rounding)."""
    arr = np.asarray(frames)
    if arr.ndim < 3:
        raise FommError(f"cannot resize frames of shape {arr.shape}; pass (..., H, W, C) frames")
    h, w = normalize_frame_shape(size)  # type: ignore[misc]
    if arr.shape[-3:-1] == (h, w):
        return arr
    flat = arr.reshape(-1, *arr.shape[-3:])
    out = np.stack([resize_frame(f, (h, w), interpolation) for f in flat])
    if np.issubdtype(out.dtype, np.floating):
        out = np.clip(out, 0, 1)
    return out.reshape(*arr.shape[:-3], h, w, arr.shape[-1])


def fit_aspect(frame: np.ndarray, size: Sequence[int], mode: str = "crop", fill: float = 0.0) -> np.ndarray:
    """``frame`` ``(H, W, C)`` brought to the aspect ratio of ``size = (h, w)``, not yet resized.

    ``crop``: the largest centred window of that aspect; ``pad``: letterbox, bands of ``fill``
    (0 black .. 1 white) added on two sides; ``stretch``: unchanged (the resize will squash it).
    """
    if mode not in FIT_MODES:
        raise FommError(f"unknown fit '{mode}'; use one of {', '.join(FIT_MODES)}")
    th, tw = normalize_frame_shape(size)  # type: ignore[misc]
    h, w = frame.shape[:2]
    if mode == "stretch" or h * tw == w * th:
        return frame
    if mode == "crop":
        if w * th > h * tw:  # too wide
            nw = max(1, int(round(h * tw / th)))
            x0 = (w - nw) // 2
            return frame[:, x0 : x0 + nw]
        nh = max(1, int(round(w * th / tw)))
        y0 = (h - nh) // 2
        return frame[y0 : y0 + nh]
    value = fill * 255 if frame.dtype == np.uint8 else fill
    if w * th > h * tw:
        nh = int(round(w * th / tw))
        top = (nh - h) // 2
        pads = ((top, nh - h - top), (0, 0))
    else:
        nw = int(round(h * tw / th))
        left = (nw - w) // 2
        pads = ((0, 0), (left, nw - w - left))
    pads += ((0, 0),) * (frame.ndim - 2)
    return np.pad(frame, pads, constant_values=np.asarray(value).astype(frame.dtype))


# ----------------------------------------------------------------------------------------------
# Keypoints
# ----------------------------------------------------------------------------------------------
def _half_extent(size_hw) -> tuple[float, float]:
    """``((W - 1) / 2, (H - 1) / 2)`` of an ``(H, W)`` size (an int: a square)."""
    try:
        h, w = (int(size_hw), int(size_hw)) if np.ndim(size_hw) == 0 else (int(s) for s in size_hw)
    except (TypeError, ValueError):
        raise FommError(f"size_hw is {size_hw!r}; pass the frame size as (height, width)") from None
    if h < 1 or w < 1:
        raise FommError(f"size_hw is {size_hw!r}; pass a positive frame size as (height, width)")
    return (w - 1) / 2.0, (h - 1) / 2.0


def _affine_last_axis(kp, scale, offset):
    if type(kp).__module__.split(".")[0] == "torch":
        return kp * kp.new_tensor(scale) + kp.new_tensor(offset)
    arr = np.asarray(kp, dtype=np.float64)
    if arr.shape[-1:] != (2,):
        raise FommError(f"keypoints have shape {arr.shape}; pass (..., 2) arrays of (x, y)")
    return arr * np.asarray(scale) + np.asarray(offset)


def kp_to_pixels(kp, size_hw):
    """Normalised keypoints ``(..., 2)`` = (x, y) in [-1, 1] -> pixel coordinates on an ``(H, W)``
    frame: ``x_px = (x + 1) / 2 * (W - 1)``, ``y_px = (y + 1) / 2 * (H - 1)`` (pixel centre ``i``
    is coordinate ``i``). numpy arrays (float64 out) or torch tensors (same dtype out)."""
    sx, sy = _half_extent(size_hw)
    return _affine_last_axis(kp, (sx, sy), (sx, sy))


def pixels_to_kp(kp_px, size_hw):
    """Inverse of :func:`kp_to_pixels`: pixel coordinates ``(..., 2)`` -> normalised [-1, 1]."""
    sx, sy = _half_extent(size_hw)
    if sx == 0 or sy == 0:
        raise FommError(f"size_hw is {size_hw!r}; normalizing needs frames at least 2 pixels wide and high")
    return _affine_last_axis(kp_px, (1.0 / sx, 1.0 / sy), (-1.0, -1.0))
