"""Training-recipe options against keypoint collapse, and the keypoint-coverage measure.

All are off by default (the original presets do not set them); see docs/training-recipe.md:

* ``train_params.kp_spread_init`` (float, 0 = off) and ``kp_spread_steps`` (int): the keypoint
  detector's tempered heatmap logits get ``w(t) * spread_logit_bias`` with
  ``w(t) = kp_spread_init * max(0, 1 - t / kp_spread_steps)``, so training starts with the
  keypoints spread over the frame and the bias is gone after ``kp_spread_steps`` steps (and never
  applies at inference: the detector's ``spread_weight`` is 0 unless training sets it);
* ``train_params.equivariance_warmup_steps`` (int, 0 = off) and ``equivariance_warmup_factor``
  (float): both equivariance weights are multiplied by a factor that falls linearly from the
  warm-up factor to 1 over the warm-up steps;
* ``loss_weights.kp_separation`` (float, 0 = off) with ``train_params.kp_separation_sigma``
  (normalised units, default 0.1 = ~3 px at 64 px): :func:`separation_loss`;
* ``loss_weights.kp_motion`` (float, 0 = off) with ``train_params.kp_motion_size`` (pixels, default
  64): :func:`motion_coverage_loss` on a :func:`motion_map` pooled to at most that many pixels a
  side, which pulls keypoints onto the parts that move (thin limbs included).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from fomm.models.geometry import make_coordinate_grid


def _get(params, name: str, default):
    if isinstance(params, Mapping):
        return params.get(name, default)
    return getattr(params, name, default)


def spread_weight(train_params, step: int) -> float:
    """Weight of the keypoint spread bias at ``step`` (0-based): ``init * max(0, 1 - step / steps)``."""
    init = float(_get(train_params, "kp_spread_init", 0) or 0)
    steps = int(_get(train_params, "kp_spread_steps", 0) or 0)
    if init == 0 or steps <= 0:
        return 0.0
    return init * max(0.0, 1.0 - step / steps)


def equivariance_factor(train_params, step: int) -> float:
    """Multiplier of the equivariance weights at ``step``: from ``equivariance_warmup_factor``
    down to 1, linearly over ``equivariance_warmup_steps`` steps (1 when off)."""
    steps = int(_get(train_params, "equivariance_warmup_steps", 0) or 0)
    factor = float(_get(train_params, "equivariance_warmup_factor", 1) or 1)
    if steps <= 0:
        return 1.0
    return 1.0 + (factor - 1.0) * max(0.0, 1.0 - step / steps)


def separation_loss(kp: torch.Tensor, sigma: float) -> torch.Tensor:
    """Keypoint separation prior: ``mean over pairs k < l of exp(-|p_k - p_l|^2 / (2 sigma^2))``,
    averaged over the batch. ``kp``: ``(B, K, 2)`` normalised coordinates. 1 when all keypoints
    coincide, ~0 when every pair is several sigma apart; 0 for K < 2."""
    num_kp = kp.shape[1]
    if num_kp < 2:
        return kp.sum() * 0
    d2 = ((kp.unsqueeze(2) - kp.unsqueeze(1)) ** 2).sum(-1)  # (B, K, K)
    upper = torch.triu(torch.ones(num_kp, num_kp, dtype=torch.bool, device=kp.device), diagonal=1)
    return torch.exp(-d2[:, upper] / (2 * sigma**2)).mean()


def motion_map(source: torch.Tensor, driving: torch.Tensor, max_size: int) -> torch.Tensor:
    """Where the driving frame differs from the source: ``mean_c |driving - source|`` ``(B, H', W')``,
    average-pooled to at most ``max_size`` pixels a side (``train_params.kp_motion_size``), normalised to sum to 1 per frame (all zeros
    where nothing moved). No gradient. ``source`` / ``driving``: ``(B, C, H, W)``."""
    with torch.no_grad():
        diff = torch.abs(driving.float() - source.float()).mean(dim=1, keepdim=True)
        h, w = diff.shape[-2:]
        if max(h, w) > max_size:
            diff = torch.nn.functional.adaptive_avg_pool2d(diff, (min(h, max_size), min(w, max_size)))
        diff = diff[:, 0]
        return diff / diff.sum(dim=(1, 2), keepdim=True).clamp_min(1e-8)


def motion_coverage_loss(kp: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
    """Motion coverage prior: ``mean_b sum_p m_p * min_k |g_p - kp_k|^2``, the k-means cost of the
    moving pixels with the keypoints as centres. ``kp``: ``(B, K, 2)`` normalised coordinates;
    ``motion``: ``(B, H, W)`` weights summing to 1 per frame (:func:`motion_map`). Each moving pixel
    pulls only its nearest keypoint, so keypoints spread over whatever moves, thin limbs included,
    instead of all settling on the torso; 0 where nothing moved."""
    grid = make_coordinate_grid(tuple(motion.shape[-2:]), kp.dtype, kp.device).reshape(1, -1, 1, 2)
    d2 = ((grid - kp.unsqueeze(1)) ** 2).sum(-1)  # (B, H*W, K)
    nearest = d2.min(dim=2).values  # (B, H*W)
    return (nearest * motion.flatten(1).to(kp.dtype)).sum(dim=1).mean()


def normalized_to_px(kp: np.ndarray, size: int) -> np.ndarray:
    """Normalised ``[-1, 1]`` coordinates to pixels, ``(size - 1) * (x + 1) / 2`` (pixel centres,
    the convention of the synthetic ground truth ``keypoints_px``)."""
    return (size - 1) * (np.asarray(kp, dtype=np.float64) + 1) / 2


def keypoint_coverage(pred_px: np.ndarray, gt_px: np.ndarray, radius: float = 3.0) -> dict:
    """How well learned keypoints cover the ground-truth ones, averaged over frames.

    ``pred_px``: ``(T, K, 2)`` learned keypoints; ``gt_px``: ``(T, J, 2)`` ground truth (pixels).
    Returns ``covered`` (mean number of ground-truth keypoints with a learned keypoint within
    ``radius``), ``claimed`` (mean number of distinct ground-truth keypoints that are the nearest one
    of some learned keypoint within ``radius``: each learned keypoint claims at most one),
    ``on_target`` (mean number of learned keypoints within ``radius`` of some ground-truth keypoint)
    and ``spread_px`` (mean distance of the learned keypoints to their centroid: ~0 means collapsed).
    """
    pred = np.asarray(pred_px, dtype=np.float64)
    gt = np.asarray(gt_px, dtype=np.float64)
    if pred.ndim != 3 or gt.ndim != 3 or pred.shape[0] != gt.shape[0] or pred.shape[2] != 2 or gt.shape[2] != 2:
        raise ValueError(f"expected (T, K, 2) and (T, J, 2) keypoints, got {pred.shape} and {gt.shape}")
    dist = np.linalg.norm(pred[:, :, None, :] - gt[:, None, :, :], axis=-1)  # (T, K, J)
    near = dist <= radius
    covered = near.any(axis=1).sum(axis=1)
    nearest = dist.argmin(axis=2)  # (T, K)
    ok = np.take_along_axis(dist, nearest[..., None], axis=2)[..., 0] <= radius
    claimed = [len(set(nearest[t][ok[t]].tolist())) for t in range(pred.shape[0])]
    spread = np.linalg.norm(pred - pred.mean(axis=1, keepdims=True), axis=-1).mean(axis=1)
    return {
        "covered": float(covered.mean()),
        "claimed": float(np.mean(claimed)),
        "on_target": float(near.any(axis=2).sum(axis=1).mean()),
        "spread_px": float(spread.mean()),
        "num_frames": int(pred.shape[0]),
        "radius_px": float(radius),
    }
