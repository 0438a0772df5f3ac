"""Simple baselines for animation / reconstruction evaluation.

They give the numbers a motion model has to beat on data with known ground-truth keypoints:

* :func:`static_baseline` -- the source frame repeated (no motion at all).
* :func:`global_affine_baseline` -- per frame, the least-squares global affine taking the source
  keypoints to the target keypoints, applied to the source image. Fed with ground-truth target
  keypoints it is an *oracle global-motion* baseline: the best a single affine can do.

Coordinates are pixels, ``(x, y)`` = (column, row), and the centre of pixel ``i`` is coordinate
``i`` (the convention of :func:`fomm.evaluation.metrics.kp_to_pixels`). Frames are channel-last
``(H, W, C)``; ``uint8`` is converted to float on ``[0, 1]``, float frames keep their dtype.
"""

from __future__ import annotations

import numpy as np

from fomm.data.image_ops import to_float01
from fomm.errors import FommError

__all__ = [
    "static_baseline",
    "fit_affine",
    "fit_affine_batch",
    "warp_affine_frame",
    "global_affine_baseline",
]

_BORDERS = ("replicate", "reflect", "constant")


def _float_frame(frame, name="source_frame") -> np.ndarray:
    if type(frame).__module__.split(".")[0] == "torch":
        frame = frame.detach().cpu().numpy()
    arr = np.asarray(frame)
    if arr.ndim != 3:
        raise FommError(f"{name} has shape {arr.shape}; pass one channel-last frame (H, W, C)")
    if arr.dtype == np.uint8:
        return to_float01(arr, np.float64)
    if np.issubdtype(arr.dtype, np.floating):
        return arr
    raise FommError(f"{name} has dtype {arr.dtype}; pass uint8 or float frames in [0, 1]")


def static_baseline(source_frame, num_frames: int) -> np.ndarray:
    """The source frame repeated ``num_frames`` times: ``(T, H, W, C)``, every frame == source."""
    src = _float_frame(source_frame)
    if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) or num_frames < 1:
        raise FommError(f"num_frames is {num_frames!r}; pass a positive number of frames")
    return np.repeat(src[None], int(num_frames), axis=0)


# --------------------------------------------------------------------------------------------
# affine fitting
# --------------------------------------------------------------------------------------------


def _as_float(x) -> np.ndarray:
    if type(x).__module__.split(".")[0] == "torch":
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _points(pts, name) -> np.ndarray:
    arr = _as_float(pts)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise FommError(f"{name} has shape {arr.shape}; pass (K, 2) point coordinates (x, y)")
    return arr


def fit_affine(src_pts, dst_pts, tol: float = 1e-6) -> np.ndarray:
    """Least-squares 2D affine ``A`` (2, 3) with ``dst ~= A @ [src; 1]``.

    Points with a NaN coordinate (in either array) are dropped. The model is chosen from the
    spread of the remaining source points (singular values ``s0 >= s1`` of the centred points):

    * ``s1 > tol * s0``: full affine (6 parameters, needs 3 non-collinear points);
    * collinear (``s1 <= tol * s0`` but ``s0`` > 0): similarity -- rotation, uniform scale and
      translation (4 parameters), which two distinct points determine;
    * a single distinct point: translation by the mean displacement.
    """
    src = _points(src_pts, "src_pts")
    dst = _points(dst_pts, "dst_pts")
    if src.shape != dst.shape:
        raise FommError(f"src_pts {src.shape} and dst_pts {dst.shape} differ; pass matching (K, 2) points")
    ok = np.all(np.isfinite(src), axis=1) & np.all(np.isfinite(dst), axis=1)
    src, dst = src[ok], dst[ok]
    if len(src) == 0:
        raise FommError("no finite keypoint pairs to fit an affine to; pass at least one visible keypoint")

    centre = src.mean(axis=0)
    sv = np.linalg.svd(src - centre, compute_uv=False) if len(src) > 1 else np.zeros(2)
    scale = max(float(sv[0]), 1.0)  # pixel coordinates: below one pixel of spread counts as a point
    if sv[0] <= tol * scale:
        t = np.mean(dst - src, axis=0)
        return np.array([[1.0, 0.0, t[0]], [0.0, 1.0, t[1]]])
    if len(sv) < 2 or sv[1] <= tol * sv[0]:
        # similarity: x' = a x - b y + tx ; y' = b x + a y + ty
        k = len(src)
        m = np.zeros((2 * k, 4))
        m[0::2] = np.stack([src[:, 0], -src[:, 1], np.ones(k), np.zeros(k)], axis=1)
        m[1::2] = np.stack([src[:, 1], src[:, 0], np.zeros(k), np.ones(k)], axis=1)
        a, b, tx, ty = np.linalg.lstsq(m, dst.reshape(-1), rcond=None)[0]
        return np.array([[a, -b, tx], [b, a, ty]])
    design = np.concatenate([src, np.ones((len(src), 1))], axis=1)
    sol = np.linalg.lstsq(design, dst, rcond=None)[0]  # (3, 2)
    return sol.T.copy()


def fit_affine_batch(src_pts, dst_pts, tol: float = 1e-6) -> np.ndarray:
    """:func:`fit_affine` per frame: ``src_pts`` (K, 2) or (T, K, 2), ``dst_pts`` (T, K, 2) -> (T, 2, 3)."""
    dst = _as_float(dst_pts)
    src = _as_float(src_pts)
    if dst.ndim != 3 or dst.shape[-1] != 2:
        raise FommError(f"dst_pts has shape {dst.shape}; pass (T, K, 2) keypoints per frame")
    if src.ndim == 2:
        src = np.broadcast_to(src, dst.shape)
    if src.shape != dst.shape:
        raise FommError(f"src_pts {src.shape} and dst_pts {dst.shape} differ; pass (K, 2) or (T, K, 2) matching points")
    if len(dst) == 0:
        return np.zeros((0, 2, 3))
    return np.stack([fit_affine(s, d, tol) for s, d in zip(src, dst)])


# --------------------------------------------------------------------------------------------
# warping
# --------------------------------------------------------------------------------------------


def _reflect(coord: np.ndarray, n: int) -> np.ndarray:
    """Mirror coordinates about the image edges at -0.5 and n - 0.5 (``cba|abc|cba``)."""
    period = 2 * n
    c = np.mod(coord + 0.5, period)
    c = np.where(c >= n, period - c, c)
    return c - 0.5


def warp_affine_frame(frame, A, border: str = "replicate", fill: float = 0.0) -> np.ndarray:
    """Warp ``frame`` (H, W, C) so that source point ``p`` lands at ``A @ [p; 1]`` in the output.

    Inverse mapping: output pixel ``q`` samples the source at ``A^-1 (q)`` with bilinear
    interpolation, in float64 (so an integer translation moves pixels exactly). Samples outside
    the image are taken by ``border``:

    * ``"replicate"`` (default): the nearest edge pixel;
    * ``"reflect"``: the image mirrored about its outer edges (``cba|abc|cba``);
    * ``"constant"``: ``fill`` outside; bilinear weights still blend edge pixels with ``fill``
      within one pixel of the edge.

    Returns float (the input's float dtype; float64 for ``uint8`` input).
    """
    src = _float_frame(frame, "frame")
    if border not in _BORDERS:
        raise FommError(f"border is {border!r}; pass one of {', '.join(_BORDERS)}")
    A = np.asarray(A, dtype=np.float64)
    if A.shape != (2, 3) or not np.all(np.isfinite(A)):
        raise FommError(f"affine has shape {A.shape} or non-finite entries; pass a finite (2, 3) matrix")
    lin = A[:, :2]
    if abs(np.linalg.det(lin)) < 1e-12:
        raise FommError("affine is singular (it collapses the image); pass an invertible (2, 3) matrix")
    inv = np.linalg.inv(lin)
    h, w = src.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    dx, dy = xs - A[0, 2], ys - A[1, 2]
    sx = inv[0, 0] * dx + inv[0, 1] * dy
    sy = inv[1, 0] * dx + inv[1, 1] * dy
    return _bilinear(src.astype(np.float64, copy=False), sx, sy, border, fill).astype(src.dtype, copy=False)


def _bilinear(img, sx, sy, border, fill):
    h, w = img.shape[:2]
    if border == "reflect":
        sx, sy = _reflect(sx, w), _reflect(sy, h)
    inside = None
    if border == "constant":
        inside = (sx > -1) & (sx < w) & (sy > -1) & (sy < h)
    x0 = np.floor(sx)
    y0 = np.floor(sy)
    fx = (sx - x0)[..., None]
    fy = (sy - y0)[..., None]
    x0 = x0.astype(np.int64)
    y0 = y0.astype(np.int64)
    x1, y1 = x0 + 1, y0 + 1

    def tap(yi, xi):
        v = img[np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)]
        if border == "constant":
            out_of = (xi < 0) | (xi > w - 1) | (yi < 0) | (yi > h - 1)
            v = np.where(out_of[..., None], fill, v)
        return v

    top = tap(y0, x0) * (1 - fx) + tap(y0, x1) * fx
    bot = tap(y1, x0) * (1 - fx) + tap(y1, x1) * fx
    out = top * (1 - fy) + bot * fy
    if inside is not None:
        out = np.where(inside[..., None], out, fill)
    return out


def global_affine_baseline(source_frame, source_kp_px, driving_kp_px, border: str = "replicate") -> np.ndarray:
    """Per frame, warp the source by the least-squares affine from source to target keypoints.

    ``source_kp_px`` (K, 2) and ``driving_kp_px`` (T, K, 2) are pixel coordinates (use
    :func:`fomm.evaluation.metrics.kp_to_pixels` for normalized keypoints); NaN keypoints are
    ignored per frame. Returns ``(T, H, W, C)``. With ground-truth target keypoints this is an
    oracle global-motion baseline.
    """
    src = _float_frame(source_frame)
    kp_src = _points(source_kp_px, "source_kp_px")
    affines = fit_affine_batch(kp_src, driving_kp_px)
    if affines.shape[0] == 0:
        raise FommError("driving_kp_px has no frames; pass (T, K, 2) keypoints with T >= 1")
    return np.stack([warp_affine_frame(src, a, border) for a in affines])
