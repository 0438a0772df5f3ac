"""Training augmentations of the original FOMM configs, in numpy (no torchvision).

Config keys (``dataset_params.augmentation_params`` of the original YAML files)::

    flip_param:     {horizontal_flip: bool, time_flip: bool}
    rotation_param: {degrees: d}                  # or [min, max]
    resize_param:   {ratio: [min, max], interpolation: bilinear | nearest}
    crop_param:     {size: [h, w]}                # or one number
    jitter_param:   {brightness: b, contrast: c, saturation: s, hue: h}

applied in that order (the original's). A clip is ``(T, H, W, 3)`` float32 in [0, 1] (a list of
frames is accepted); the same random transform is applied to every frame of the clip, and the
result stays in [0, 1]. Only resize and crop change the frame size (crop fixes it again, as in the
original ``mgif`` config). All randomness comes from the ``numpy.random.Generator`` passed in, so
a seeded generator gives the same result every time.

* Flips: with probability 1/2 each, the clip is reversed in time (``time_flip``) and mirrored
  left-right (``horizontal_flip``). Unlike the original, both may happen to one clip (the
  original returned early after a time flip).
* Colour jitter follows torchvision's ``ColorJitter``: a brightness factor in
  ``[max(0, 1-b), 1+b]`` (multiply), a contrast factor (blend with the frame's mean gray level),
  a saturation factor (blend with the frame's grayscale), a hue shift in ``[-h, h]`` of a full
  turn (in HSV), applied in a random order; each parameter may also be a ``(min, max)`` pair.
  Gray levels use ITU-R 601 weights (0.299, 0.587, 0.114), and the result is clipped to [0, 1]
  after each step, as torchvision does.
* Rotation: an angle drawn in ``[-d, d]`` degrees, counter-clockwise about the frame centre,
  bilinear, same size, black outside (the original used scikit-image's ``rotate`` that way).
* Resize: both sides scaled by one factor drawn in ``ratio`` (sizes truncated to integers);
  bilinear by default (the original defaulted to nearest; ``interpolation: nearest`` gives that).
* Crop: a random window of ``size``; a frame smaller than that is first padded, centred, by
  repeating its border pixels (as the original did).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from fomm.data.image_ops import resize_frames
from fomm.errors import FommError

__all__ = [
    "AllAugmentationTransform",
    "ColorJitter",
    "RandomCrop",
    "RandomFlip",
    "RandomResize",
    "RandomRotation",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_hue",
    "adjust_saturation",
    "hsv_to_rgb",
    "rgb_to_hsv",
]

_GRAY = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _as_clip(clip) -> tuple[np.ndarray, bool]:
    """``(clip as float32 (T, H, W, 3), whether a single (H, W, 3) frame was given)``."""
    a = np.asarray(clip, dtype=np.float32)
    single = a.ndim == 3
    if single:
        a = a[None]
    if a.ndim != 4 or a.shape[-1] != 3:
        raise FommError(
            f"augmentations expect frames of shape (T, H, W, 3), got {a.shape}; pass RGB frames, channels last"
        )
    return a, single


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """RGB in [0, 1] (``(..., 3)``) to HSV with all three channels in [0, 1] (hue in turns)."""
    rgb = np.asarray(rgb, dtype=np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    maxc = np.maximum(np.maximum(r, g), b)
    minc = np.minimum(np.minimum(r, g), b)
    delta = maxc - minc
    safe = np.where(delta > 0, delta, np.float32(1.0))
    # hue in sixths of a turn, by which channel is the largest (red wins ties, then green)
    h = np.where(maxc == b, (r - g) / safe + 4.0, 0.0)
    h = np.where(maxc == g, (b - r) / safe + 2.0, h)
    h = np.where(maxc == r, (g - b) / safe, h)
    h = (h / 6.0) % 1.0
    s = delta / np.where(maxc > 0, maxc, np.float32(1.0))
    out = np.empty(rgb.shape, dtype=np.float32)
    out[..., 0] = np.where(delta > 0, h, 0.0)
    out[..., 1] = s
    out[..., 2] = maxc
    return out


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_hsv`."""
    hsv = np.asarray(hsv, dtype=np.float32)
    h6 = (hsv[..., 0] % 1.0) * 6.0
    v = hsv[..., 2]
    vs = v * hsv[..., 1]
    out = np.empty(hsv.shape, dtype=np.float32)
    # channel c = v - v*s*clip(min(k, 4 - k), 0, 1) with k = (n + 6h) mod 6, n = 5, 3, 1 for r, g, b
    for channel, n in enumerate((5.0, 3.0, 1.0)):
        k = (h6 + n) % 6.0
        out[..., channel] = v - vs * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return out


def _gray(clip: np.ndarray) -> np.ndarray:
    return (clip @ _GRAY)[..., None]


def adjust_brightness(clip: np.ndarray, factor: float) -> np.ndarray:
    return np.clip(clip * np.float32(factor), 0.0, 1.0)


def adjust_contrast(clip: np.ndarray, factor: float) -> np.ndarray:
    mean = _gray(clip).mean(axis=(1, 2, 3), keepdims=True)  # one gray level per frame
    return np.clip(np.float32(factor) * clip + np.float32(1.0 - factor) * mean, 0.0, 1.0)


def adjust_saturation(clip: np.ndarray, factor: float) -> np.ndarray:
    return np.clip(np.float32(factor) * clip + np.float32(1.0 - factor) * _gray(clip), 0.0, 1.0)


def adjust_hue(clip: np.ndarray, shift: float) -> np.ndarray:
    if shift == 0:
        return clip
    hsv = rgb_to_hsv(clip)
    hsv[..., 0] = (hsv[..., 0] + np.float32(shift)) % 1.0
    return np.clip(hsv_to_rgb(hsv), 0.0, 1.0)


def _range(name: str, value, center: float, bound: tuple[float, float]) -> tuple[float, float] | None:
    """torchvision's parameter rule: a number v means [center - v, center + v] (clipped)."""
    if value is None:
        return None
    if isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool):
        v = float(value)
        if v < 0:
            raise FommError(f"jitter_param {name}={value} is negative; use a value >= 0 (e.g. 0.1)")
        lo, hi = max(bound[0], center - v), center + v
        if name == "hue" and v > 0.5:
            raise FommError(f"jitter_param hue={value} is above 0.5; use a value in [0, 0.5] (a fraction of a turn)")
    elif isinstance(value, Sequence) and len(value) == 2 and not isinstance(value, str):
        lo, hi = float(value[0]), float(value[1])
        if not (bound[0] <= lo <= hi <= bound[1]):
            raise FommError(
                f"jitter_param {name}={list(value)} is not an increasing range within {list(bound)}; "
                "fix the (min, max) pair"
            )
    else:
        raise FommError(f"jitter_param {name}={value!r} is not a number or a (min, max) pair; use e.g. 0.1")
    if lo == hi == center:
        return None
    return lo, hi


class RandomFlip:
    """Reverse the clip in time and/or mirror it horizontally, each with probability 1/2."""

    def __init__(self, time_flip: bool = False, horizontal_flip: bool = False):
        self.time_flip = bool(time_flip)
        self.horizontal_flip = bool(horizontal_flip)

    def __call__(self, clip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        u_time, u_horizontal = rng.random(2)  # always drawn: the stream does not depend on flags
        if self.time_flip and u_time < 0.5:
            clip = clip[::-1]
        if self.horizontal_flip and u_horizontal < 0.5:
            clip = clip[:, :, ::-1]
        return clip


class ColorJitter:
    """torchvision-style colour jitter, the same for every frame of a clip (see module doc)."""

    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0):
        self.brightness = _range("brightness", brightness, 1.0, (0.0, float("inf")))
        self.contrast = _range("contrast", contrast, 1.0, (0.0, float("inf")))
        self.saturation = _range("saturation", saturation, 1.0, (0.0, float("inf")))
        self.hue = _range("hue", hue, 0.0, (-0.5, 0.5))

    def get_params(self, rng: np.random.Generator):
        """``(order, brightness, contrast, saturation, hue)``; ``None`` for a disabled operation."""
        order = rng.permutation(4)
        draws = rng.random(4)  # always drawn, for a stable stream
        values = []
        for rng_range, u in zip((self.brightness, self.contrast, self.saturation, self.hue), draws):
            values.append(None if rng_range is None else rng_range[0] + (rng_range[1] - rng_range[0]) * float(u))
        return (order, *values)

    def __call__(self, clip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        order, b, c, s, h = self.get_params(rng)
        ops = (
            (adjust_brightness, b),
            (adjust_contrast, c),
            (adjust_saturation, s),
            (adjust_hue, h),
        )
        for k in order:
            fn, value = ops[k]
            if value is not None:
                clip = fn(clip, value)
        return clip


def _pair(name: str, value, symmetric: bool) -> tuple[float, float]:
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) and symmetric:
        return -abs(float(value)), abs(float(value))
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        try:
            lo, hi = float(value[0]), float(value[1])
        except (TypeError, ValueError):
            lo, hi = float("nan"), float("nan")
        if lo <= hi:
            return lo, hi
    form = "a number or a [min, max] pair" if symmetric else "a [min, max] pair"
    raise FommError(f"augmentation {name}={value!r} is not {form}; fix the config")


class RandomRotation:
    """Rotate every frame by one angle drawn in ``degrees`` (a number d means [-d, d])."""

    def __init__(self, degrees=0.0):
        self.degrees = _pair("rotation_param.degrees", degrees, symmetric=True)

    def __call__(self, clip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        angle = float(rng.uniform(*self.degrees))
        if angle == 0.0:
            return clip
        h, w = clip.shape[1:3]
        matrix = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0)
        return np.stack(
            [
                cv2.warpAffine(
                    np.ascontiguousarray(frame),
                    matrix,
                    (w, h),
                    flags=cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_CONSTANT,
                    borderValue=(0.0, 0.0, 0.0),
                )
                for frame in clip
            ]
        )


class RandomResize:
    """Scale both sides of every frame by one factor drawn in ``ratio``."""

    def __init__(self, ratio=(3.0 / 4.0, 4.0 / 3.0), interpolation: str = "bilinear"):
        self.ratio = _pair("resize_param.ratio", ratio, symmetric=False)
        if self.ratio[0] <= 0:
            raise FommError(f"augmentation resize_param.ratio={list(ratio)} must be positive; use e.g. [0.9, 1.1]")
        modes = {"bilinear": "linear", "nearest": "nearest"}  # config name -> fomm.data.image_ops name
        if interpolation not in modes:
            raise FommError(f"resize_param.interpolation={interpolation!r} is unknown; use 'bilinear' or 'nearest'")
        self.interpolation = interpolation
        self._mode = modes[interpolation]

    def __call__(self, clip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        factor = float(rng.uniform(*self.ratio))
        h, w = clip.shape[1:3]
        new_h, new_w = max(1, int(h * factor)), max(1, int(w * factor))
        if (new_h, new_w) == (h, w):
            return clip
        return resize_frames(clip, (new_h, new_w), self._mode)


class RandomCrop:
    """Crop one random ``size = (h, w)`` window from every frame (edge padding when too small)."""

    def __init__(self, size):
        if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
            size = (size, size)
        ok = isinstance(size, Sequence) and not isinstance(size, str) and len(size) == 2
        if not ok or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in size):
            raise FommError(
                f"augmentation crop_param.size={size!r} is not a positive [height, width]; use e.g. [256, 256]"
            )
        self.size = (int(size[0]), int(size[1]))

    def __call__(self, clip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = self.size
        im_h, im_w = clip.shape[1:3]
        pad_h = (0, 0) if h <= im_h else ((h - im_h) // 2, (h - im_h + 1) // 2)
        pad_w = (0, 0) if w <= im_w else ((w - im_w) // 2, (w - im_w + 1) // 2)
        if pad_h != (0, 0) or pad_w != (0, 0):
            clip = np.pad(clip, ((0, 0), pad_h, pad_w, (0, 0)), mode="edge")
            im_h, im_w = clip.shape[1:3]
        y, x = int(rng.integers(0, im_h - h + 1)), int(rng.integers(0, im_w - w + 1))
        return clip[:, y : y + h, x : x + w]


class AllAugmentationTransform:
    """The original FOMM's augmentation pipeline: flip, rotation, resize, crop, colour jitter.

    ``AllAugmentationTransform(**config["dataset_params"]["augmentation_params"])``; each
    parameter is a mapping of the options above, or ``None`` to skip that step.
    """

    def __init__(
        self,
        flip_param: Mapping | None = None,
        jitter_param: Mapping | None = None,
        resize_param: Mapping | None = None,
        rotation_param: Mapping | None = None,
        crop_param: Mapping | None = None,
    ):
        self.flip = self._build(RandomFlip, "flip_param", flip_param, ("time_flip", "horizontal_flip"))
        self.rotation = self._build(RandomRotation, "rotation_param", rotation_param, ("degrees",))
        self.resize = self._build(RandomResize, "resize_param", resize_param, ("ratio", "interpolation"))
        self.crop = self._build(RandomCrop, "crop_param", crop_param, ("size",))
        self.jitter = self._build(
            ColorJitter, "jitter_param", jitter_param, ("brightness", "contrast", "saturation", "hue")
        )

    @staticmethod
    def _build(cls, name, params, allowed):
        if params is None:
            return None
        if not isinstance(params, Mapping):
            raise FommError(
                f"augmentation {name} must be a mapping of {', '.join(allowed)}, got {params!r}; fix the config"
            )
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise FommError(f"unknown key(s) {', '.join(map(str, unknown))} in {name}; use only {', '.join(allowed)}")
        try:
            return cls(**params)
        except TypeError as exc:  # a required option missing
            raise FommError(f"augmentation {name} is incomplete ({exc}); give {', '.join(allowed)}") from None

    def __call__(self, clip, rng: np.random.Generator | None = None) -> np.ndarray:
        """Transform a clip ``(T, H, W, 3)`` (or a list of frames) in [0, 1]; returns float32."""
        if rng is None:
            rng = np.random.default_rng()
        out, single = _as_clip(clip)
        for step in (self.flip, self.rotation, self.resize, self.crop, self.jitter):
            if step is not None:
                out = step(out, rng)
        out = np.clip(out, 0.0, 1.0) if self.rotation is not None or self.resize is not None else out
        out = np.ascontiguousarray(out, dtype=np.float32)
        return out[0] if single else out
