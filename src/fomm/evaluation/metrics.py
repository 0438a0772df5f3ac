"""Evaluation metrics for image animation and video reconstruction.

All frame metrics take channel-last frames, either one frame ``(H, W, C)`` or a clip
``(T, H, W, C)``, as numpy arrays (torch tensors are accepted and moved to the CPU). ``uint8``
input is divided by 255; float input is taken to be already in ``[0, 1]``. The two arguments of a
metric must have the same shape.

Conventions (the FOMM paper's reconstruction protocol):

* :func:`l1` -- mean absolute difference over every pixel, channel and frame, on ``[0, 1]``.
* :func:`psnr` -- the **mean of per-frame PSNR** (not PSNR of the clip's mean squared error).
  A frame that matches exactly has infinite PSNR; when averaging, each frame's PSNR is capped at
  :data:`PSNR_CAP_DB` (100 dB) so one identical frame cannot turn the mean into ``inf``. Only
  when *every* frame is identical is ``inf`` returned.
* :func:`ssim` -- Wang et al. (2004) SSIM, 11x11 Gaussian window with sigma 1.5, K1 = 0.01,
  K2 = 0.03, population (not sample) covariances, per channel then averaged; numerically the
  same as scikit-image's ``structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, channel_axis=-1, data_range=1)``. The SSIM map is computed only
  where the whole window lies inside the image (the *valid* region, i.e. 5 pixels are dropped on
  each side) -- exactly the region scikit-image averages over, so padding never enters the
  result. Frames must therefore be at least 11x11. Clips: mean of per-frame SSIM.
* :func:`akd` -- average keypoint distance in pixels; :func:`aed` -- average Euclidean
  distance between identity embeddings from a user-supplied embedder.
* :func:`akd_l1` -- AKD as the paper's evaluation code computes it (the authors' pose-evaluation
  repository, ``cmp.py``): per frame the mean *absolute coordinate difference* over the keypoints'
  x and y, then the mean over frames. For the same keypoints it is smaller than the Euclidean
  :func:`akd` (``(|dx| + |dy|) / 2`` against ``sqrt(dx**2 + dy**2)``); compare it with the
  paper's tables.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping

import numpy as np

from fomm.data import image_ops as _image_ops
from fomm.errors import FommError

__all__ = [
    "PSNR_CAP_DB",
    "SSIM_WINDOW",
    "SSIM_SIGMA",
    "as_float_frames",
    "l1",
    "mse_per_frame",
    "psnr_per_frame",
    "psnr",
    "ssim_per_frame",
    "ssim",
    "kp_to_pixels",
    "kp_from_pixels",
    "akd",
    "akd_l1",
    "aed",
    "aed_from_embeddings",
    "frame_metrics",
    "summarize",
]

#: Per-frame PSNR is capped at this value (dB) before averaging over frames.
PSNR_CAP_DB = 100.0
#: Side of the Gaussian SSIM window (``2 * int(3.5 * sigma + 0.5) + 1`` for sigma 1.5).
SSIM_WINDOW = 11
#: Standard deviation of the Gaussian SSIM window, in pixels.
SSIM_SIGMA = 1.5
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03
_SSIM_CHUNK = 8  # frames filtered at once


# --------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------


def _to_numpy(x):
    """Return ``x`` as a numpy array (torch tensors are detached and moved to the CPU)."""
    if type(x).__module__.split(".")[0] == "torch":
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def as_float_frames(x, name: str = "frames") -> np.ndarray:
    """Return ``x`` as a float64 array on ``[0, 1]`` with shape ``(T, H, W, C)``.

    A single frame ``(H, W, C)`` becomes a clip of one frame. ``uint8`` is divided by 255;
    float input is kept as is (it must already be on ``[0, 1]``).
    """
    arr = _to_numpy(x)
    if arr.ndim not in (3, 4):
        raise FommError(
            f"{name} has shape {tuple(arr.shape)}; pass one frame (H, W, C) or a clip (T, H, W, C), channels last"
        )
    if arr.dtype == np.uint8:
        arr = _image_ops.to_float01(arr, np.float64)
    elif np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool:
        arr = arr.astype(np.float64, copy=False)
    else:
        raise FommError(f"{name} has dtype {arr.dtype}; pass uint8 or float frames in [0, 1]")
    if arr.ndim == 3:
        arr = arr[None]
    return arr


def _pair(a, b):
    fa = as_float_frames(a, "first frames")
    fb = as_float_frames(b, "second frames")
    if fa.shape != fb.shape:
        raise FommError(
            f"frames differ in shape: {fa.shape[1:]} x {fa.shape[0]} vs {fb.shape[1:]} x {fb.shape[0]}; "
            "compare clips of the same length and size (resize or trim one first)"
        )
    if fa.size == 0:
        raise FommError("frames are empty; pass at least one frame with pixels")
    return fa, fb


# --------------------------------------------------------------------------------------------
# L1 / PSNR
# --------------------------------------------------------------------------------------------


def l1(a, b) -> float:
    """Mean absolute difference of ``a`` and ``b`` on ``[0, 1]`` (FOMM reconstruction L1)."""
    fa, fb = _pair(a, b)
    return float(np.mean(np.abs(fa - fb)))


def mse_per_frame(a, b) -> np.ndarray:
    """Mean squared error of each frame, shape ``(T,)``."""
    fa, fb = _pair(a, b)
    return np.mean((fa - fb) ** 2, axis=(1, 2, 3))


def psnr_per_frame(a, b, data_range: float = 1.0) -> np.ndarray:
    """PSNR in dB of each frame, shape ``(T,)``; ``inf`` where a frame matches exactly (no cap)."""
    if not data_range > 0:
        raise FommError(f"data_range is {data_range}; pass the positive value range of the frames (1.0)")
    mse = mse_per_frame(a, b)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(float(data_range) ** 2 / mse)


def psnr(a, b, data_range: float = 1.0, cap_db: float = PSNR_CAP_DB) -> float:
    """Mean over frames of per-frame PSNR in dB.

    Each frame's PSNR is ``10 log10(data_range**2 / MSE)``. Before averaging, per-frame values are
    capped at ``cap_db`` (default :data:`PSNR_CAP_DB` = 100 dB), so an exactly matching frame
    counts as 100 dB instead of making the mean infinite. If every frame matches exactly the
    result is ``inf``.
    """
    per_frame = psnr_per_frame(a, b, data_range)
    if np.all(np.isinf(per_frame)):
        return math.inf
    return float(np.mean(np.minimum(per_frame, cap_db)))


# --------------------------------------------------------------------------------------------
# SSIM
# --------------------------------------------------------------------------------------------


def _gaussian_taps(sigma: float = SSIM_SIGMA, size: int = SSIM_WINDOW) -> np.ndarray:
    r = size // 2
    x = np.arange(-r, r + 1, dtype=np.float64)
    w = np.exp(-0.5 * (x / sigma) ** 2)
    return w / w.sum()


def _valid_filter(x: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of ``x`` (T, H, W, C) over axes H and W."""
    n = taps.size
    h_out = x.shape[1] - n + 1
    out = taps[0] * x[:, 0:h_out]
    for i in range(1, n):
        out = out + taps[i] * x[:, i : i + h_out]
    w_out = x.shape[2] - n + 1
    res = taps[0] * out[:, :, 0:w_out]
    for i in range(1, n):
        res = res + taps[i] * out[:, :, i : i + w_out]
    return res


def ssim_per_frame(a, b, data_range: float = 1.0) -> np.ndarray:
    """SSIM of each frame (mean over the valid region and the channels), shape ``(T,)``."""
    fa, fb = _pair(a, b)
    if not data_range > 0:
        raise FommError(f"data_range is {data_range}; pass the positive value range of the frames (1.0)")
    if fa.shape[1] < SSIM_WINDOW or fa.shape[2] < SSIM_WINDOW:
        raise FommError(
            f"frames are {fa.shape[2]}x{fa.shape[1]}; SSIM needs frames of at least "
            f"{SSIM_WINDOW}x{SSIM_WINDOW} pixels (its Gaussian window), use larger frames"
        )
    taps = _gaussian_taps()
    c1 = (_SSIM_K1 * data_range) ** 2
    c2 = (_SSIM_K2 * data_range) ** 2
    out = np.empty(fa.shape[0])
    for start in range(0, fa.shape[0], _SSIM_CHUNK):  # bounded memory on long clips
        x = fa[start : start + _SSIM_CHUNK]
        y = fb[start : start + _SSIM_CHUNK]
        mu_x = _valid_filter(x, taps)
        mu_y = _valid_filter(y, taps)
        var_x = _valid_filter(x * x, taps) - mu_x * mu_x
        var_y = _valid_filter(y * y, taps) - mu_y * mu_y
        cov = _valid_filter(x * y, taps) - mu_x * mu_y
        num = (2.0 * mu_x * mu_y + c1) * (2.0 * cov + c2)
        den = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
        out[start : start + len(x)] = np.mean(num / den, axis=(1, 2, 3))
    return out


def ssim(a, b, data_range: float = 1.0) -> float:
    """Mean over frames of per-frame SSIM (Wang et al. 2004; see the module docstring)."""
    return float(np.mean(ssim_per_frame(a, b, data_range)))


# --------------------------------------------------------------------------------------------
# keypoints
# --------------------------------------------------------------------------------------------


# One pixel convention for the whole project: fomm.data.image_ops.
kp_to_pixels = _image_ops.kp_to_pixels
kp_from_pixels = _image_ops.pixels_to_kp


def _distances(kp_pred, kp_true, ndims: tuple[int, ...]) -> np.ndarray:
    """Euclidean distance of each pair of matching keypoints, ``(T, K)`` (or ``(K,)``); NaN where
    either is missing. Both inputs must have one shape, ``(..., 2)`` with ``ndim`` in ``ndims``."""
    p = np.asarray(_to_numpy(kp_pred), dtype=np.float64)
    t = np.asarray(_to_numpy(kp_true), dtype=np.float64)
    if p.shape != t.shape or p.ndim not in ndims or p.shape[-1] != 2:
        raise FommError(f"keypoints have shapes {p.shape} and {t.shape}; pass two (T, K, 2) arrays of the same shape")
    return np.sqrt(np.sum((p - t) ** 2, axis=-1))


def akd(kp_pred, kp_true, visible=None) -> float:
    """Average keypoint distance in pixels.

    ``kp_pred`` and ``kp_true`` are ``(T, K, 2)`` (or ``(K, 2)``) pixel coordinates. The result
    is the mean, over all frames and keypoints, of the Euclidean distance between matching
    keypoints. A keypoint is skipped when any of its coordinates is NaN in either input (a
    missed detection) or when ``visible`` (boolean, ``(T, K)``) is False. Returns NaN when no
    keypoint is left.
    """
    dist = _distances(kp_pred, kp_true, (2, 3))
    keep = np.isfinite(dist)
    if visible is not None:
        vis = np.asarray(_to_numpy(visible), dtype=bool)
        if vis.shape != dist.shape:
            raise FommError(f"visible has shape {vis.shape}; pass a boolean (T, K) mask of shape {dist.shape}")
        keep &= vis
    if not keep.any():
        return math.nan
    return float(np.mean(dist[keep]))


def akd_l1(kp_pred, kp_true) -> float:
    """AKD by the paper's ``cmp.py``: the mean over frames of each frame's mean ``|a - b|`` over
    the x and y coordinates of its keypoints, in pixels.

    ``(T, K, 2)`` (or ``(K, 2)``) inputs. A keypoint with a NaN coordinate in either input is left
    out of its frame's mean, and a frame with none left out of the mean over frames (``cmp.py``
    has no missing keypoints; this is how :func:`akd` treats them). NaN when nothing is left.
    """
    _distances(kp_pred, kp_true, (2, 3))  # checks the shapes
    p = np.asarray(_to_numpy(kp_pred), dtype=np.float64)
    t = np.asarray(_to_numpy(kp_true), dtype=np.float64)
    if p.ndim == 2:
        p, t = p[None], t[None]
    diff = np.abs(p - t)  # (T, K, 2)
    found = np.isfinite(diff).all(axis=-1)  # (T, K)
    count = found.sum(axis=1)
    if not count.any():
        return math.nan
    per_frame = np.where(found[..., None], diff, 0.0).sum(axis=(1, 2)) / np.maximum(2 * count, 1)
    return float(np.mean(per_frame[count > 0]))


def akd_per_keypoint(kp_pred, kp_true) -> np.ndarray:
    """``(K,)`` mean distance in pixels of each keypoint over the frames of two ``(T, K, 2)``
    arrays (NaN for a keypoint never found); the parts of :func:`akd`, which averages them all."""
    dist = _distances(kp_pred, kp_true, (3,))
    found = np.isfinite(dist)
    count = found.sum(axis=0)
    total = np.where(found, dist, 0.0).sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def aed(frames_pred, frames_true, embedder: Callable[[np.ndarray], np.ndarray]) -> float:
    """Average Euclidean distance between identity embeddings of matching frames.

    ``embedder`` receives a float64 clip ``(T, H, W, C)`` on ``[0, 1]`` and must return ``(T, D)``
    embeddings. The result is the mean over frames of ``||e_pred - e_true||_2``.

    The paper's AED uses an external person re-identification network (faces: OpenFace-style
    embeddings). For faces, ``fomm.evaluation.face_metrics.FaceMetricFns().embeddings`` (dlib,
    ``pip install 'fomm[faces]'``) is one; pass any embedder you have. Frames whose embedding is
    NaN (no face found) are skipped (:func:`aed_from_embeddings`).
    """
    if not callable(embedder):
        raise FommError("embedder is not callable; pass a function mapping (T, H, W, C) frames to (T, D)")
    fa, fb = _pair(frames_pred, frames_true)
    return aed_from_embeddings(embedder(fa), embedder(fb), fa.shape[0])


def aed_from_embeddings(emb_pred, emb_true, num_frames: int | None = None) -> float:
    """Mean over frames of ``||e_pred - e_true||_2`` for ``(T, D)`` embeddings. A frame whose
    embedding is NaN in either input (no face found) is skipped; NaN when none is left."""
    ea = np.asarray(_to_numpy(emb_pred), dtype=np.float64)
    eb = np.asarray(_to_numpy(emb_true), dtype=np.float64)
    n = ea.shape[0] if num_frames is None else num_frames
    if ea.ndim == 1 and n == 1:
        ea, eb = ea[None], eb[None]
    if ea.shape != eb.shape or ea.ndim != 2 or ea.shape[0] != n:
        raise FommError(
            f"embedder returned shapes {ea.shape} and {eb.shape}; it must return one vector per frame, (T={n}, D)"
        )
    dist = np.linalg.norm(ea - eb, axis=1)
    dist = dist[np.isfinite(dist)]
    return float(np.mean(dist)) if dist.size else math.nan


# --------------------------------------------------------------------------------------------
# per-video records and their summary
# --------------------------------------------------------------------------------------------


def frame_metrics(pred, true, data_range: float = 1.0) -> dict:
    """Per-video record ``{"num_frames", "l1", "psnr", "ssim"}`` for :func:`summarize`."""
    fa, fb = _pair(pred, true)
    return {
        "num_frames": int(fa.shape[0]),
        "l1": l1(fa, fb),
        "psnr": psnr(fa, fb, data_range),
        "ssim": ssim(fa, fb, data_range),
    }


def summarize(records: Iterable[Mapping]) -> dict:
    """Average per-video metric dicts, weighting each video by its frame count.

    Every record must hold ``"num_frames"`` (a positive int). Every other key whose value is a
    real number is a metric; its summary is ``sum(n_i * m_i) / sum(n_i)`` over the records that
    have it with a non-NaN value (so a video with no valid keypoints does not count for AKD).
    Non-numeric values (names, paths) are ignored. ``inf`` is kept (a PSNR of ``inf`` means the
    video matched exactly). The result also holds ``"num_videos"`` and ``"num_frames"`` (totals).
    """
    records = list(records)
    if not records:
        raise FommError("no records to summarize; pass at least one per-video metric dict")
    sums: dict = {}
    weights: dict = {}
    total = 0
    for i, rec in enumerate(records):
        n = rec.get("num_frames") if isinstance(rec, Mapping) else None
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise FommError(
                f"record {i} has no positive integer 'num_frames'; add the video's frame count to every record"
            )
        total += int(n)
        for key, value in rec.items():
            if key == "num_frames" or isinstance(value, bool):
                continue
            if isinstance(value, np.ndarray) and value.ndim == 0:
                value = value.item()
            if not isinstance(value, (int, float, np.integer, np.floating)):
                continue
            value = float(value)
            if math.isnan(value):
                continue
            sums[key] = sums.get(key, 0.0) + int(n) * value
            weights[key] = weights.get(key, 0) + int(n)
    out = {key: sums[key] / weights[key] for key in sums}
    out["num_videos"] = len(records)
    out["num_frames"] = total
    return out
