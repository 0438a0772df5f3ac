"""Geometry as small pure functions on tensors.

Conventions (those of the original implementation):
- coordinates are normalised to [-1, 1] with ``2 * i / (n - 1) - 1`` per axis, so -1 and 1 are the
  centres of the first and last cells;
- points and grids are ordered ``(x, y)``: x runs along the width, y along the height;
- a sampling grid ``(B, H, W, 2)`` is what :func:`torch.nn.functional.grid_sample` takes.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32 when it is bf16/fp16 (the networks' output in fast inference or under
    autocast), else unchanged (float32, or float64 in the precision tests): what the geometry and
    the final activations compute in."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


def apply_2x2(m: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """``m @ p`` for 2x2 matrices ``m`` ``(..., 2, 2)`` and points ``p`` ``(..., 2)`` (broadcast).

    Written out elementwise rather than as a matmul: a batched matmul of millions of 2x2s (one per
    grid point and keypoint) is slow, and under bf16 autocast (training with ``--precision bf16``)
    a matmul would round the sampling grids to bf16 while elementwise ops keep float32. Measured
    with one thread on a puppet-64 training step: the bf16 ``bmm`` of these took 12% of the step.
    """
    x, y = p[..., 0], p[..., 1]
    return torch.stack([m[..., 0, 0] * x + m[..., 0, 1] * y, m[..., 1, 0] * x + m[..., 1, 1] * y], dim=-1)


def matmul_2x2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` for 2x2 matrices ``(..., 2, 2)``, elementwise (float32 under autocast, see
    :func:`apply_2x2`)."""
    return (a.unsqueeze(-1) * b.unsqueeze(-3)).sum(-2)


def make_coordinate_grid(spatial_size: tuple[int, int], dtype=torch.float32, device=None) -> torch.Tensor:
    """Identity sampling grid.

    ``spatial_size`` is ``(H, W)``; returns ``(H, W, 2)`` with ``[..., 0] = x`` and ``[..., 1] = y``.
    """
    h, w = spatial_size
    x = torch.arange(w, dtype=dtype, device=device)
    y = torch.arange(h, dtype=dtype, device=device)
    x = 2 * (x / (w - 1)) - 1
    y = 2 * (y / (h - 1)) - 1
    xx = x.view(1, -1).expand(h, w)
    yy = y.view(-1, 1).expand(h, w)
    return torch.stack([xx, yy], dim=2)


def kp2gaussian(mean: torch.Tensor, spatial_size: tuple[int, int], kp_variance: float) -> torch.Tensor:
    """Gaussian heatmaps centred on keypoints.

    ``mean`` is ``(..., K, 2)`` in [-1, 1]; returns ``(..., K, H, W)`` with values
    ``exp(-0.5 * |z - mean|^2 / kp_variance)``.
    """
    grid = make_coordinate_grid(spatial_size, mean.dtype, mean.device)
    lead = mean.shape[:-1]
    grid = grid.view((1,) * len(lead) + grid.shape)
    diff = grid - mean.view(*lead, 1, 1, 2)
    return torch.exp(-0.5 * (diff**2).sum(-1) / kp_variance)


def heatmap_to_keypoints(heatmap: torch.Tensor) -> torch.Tensor:
    """Soft-argmax: the expected coordinate under each heatmap.

    ``heatmap`` is ``(B, K, H, W)`` and sums to 1 over ``(H, W)``; returns ``(B, K, 2)`` in [-1, 1].
    """
    grid = make_coordinate_grid(heatmap.shape[2:], heatmap.dtype, heatmap.device)
    return (heatmap.unsqueeze(-1) * grid.view(1, 1, *grid.shape)).sum(dim=(2, 3))


def sparse_motions(
    spatial_size: tuple[int, int],
    kp_source: torch.Tensor,
    kp_driving: torch.Tensor,
    jacobian_source: torch.Tensor | None = None,
    jacobian_driving: torch.Tensor | None = None,
) -> torch.Tensor:
    """The K+1 candidate backward warps of the dense motion network (Eq. 4 of the paper).

    Keypoint k maps a driving-frame point z to ``J_s,k @ J_d,k^-1 @ (z - d_k) + s_k`` (a first-order
    Taylor expansion of the motion around the keypoint; a pure translation without Jacobians).
    The identity grid (background) comes first.

    ``kp_source``, ``kp_driving``: ``(B, K, 2)``; jacobians ``(B, K, 2, 2)`` or None.
    Returns ``(B, K+1, H, W, 2)`` sampling grids.
    """
    h, w = spatial_size
    bs, num_kp, _ = kp_driving.shape
    identity = make_coordinate_grid((h, w), kp_source.dtype, kp_source.device).view(1, 1, h, w, 2)
    coordinates = identity - kp_driving.view(bs, num_kp, 1, 1, 2)
    if jacobian_driving is not None:
        jacobian = matmul_2x2(jacobian_source, torch.inverse(jacobian_driving))
        coordinates = apply_2x2(jacobian.view(bs, num_kp, 1, 1, 2, 2), coordinates)
    driving_to_source = coordinates + kp_source.view(bs, num_kp, 1, 1, 2)
    return torch.cat([identity.expand(bs, 1, h, w, 2), driving_to_source], dim=1)


def warp(
    image: torch.Tensor, grid: torch.Tensor, align_corners: bool = False, padding_mode: str = "zeros"
) -> torch.Tensor:
    """Backward-warp ``image`` ``(B, C, H, W)`` with a grid ``(B, h, w, 2)``; returns ``(B, C, h, w)``.

    ``align_corners=False`` reproduces the original code under today's PyTorch; ``True`` reproduces
    it under the PyTorch 1.0 it was written for (see :class:`fomm.config.ModelParams`).
    """
    return F.grid_sample(image, grid, mode="bilinear", padding_mode=padding_mode, align_corners=align_corners)


def resize_grid(grid: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinearly resize a sampling grid ``(B, h, w, 2)`` to ``(B, H, W, 2)``."""
    if tuple(grid.shape[1:3]) == tuple(size):
        return grid
    grid = F.interpolate(grid.permute(0, 3, 1, 2), size=size, mode="bilinear", align_corners=False)
    return grid.permute(0, 2, 3, 1)


def affine_grid(theta: torch.Tensor, coordinates: torch.Tensor) -> torch.Tensor:
    """Apply affine maps to points.

    ``theta`` is ``(B, 2, 3)``, ``coordinates`` ``(B, N, 2)`` or ``(N, 2)``; returns ``(B, N, 2)``
    with ``theta[:, :, :2] @ p + theta[:, :, 2]``.
    """
    if coordinates.dim() == 2:
        coordinates = coordinates.unsqueeze(0)
    return apply_2x2(theta[:, None, :, :2], coordinates) + theta[:, None, :, 2]


def tps_warp_points(
    coordinates: torch.Tensor,
    theta: torch.Tensor,
    control_points: torch.Tensor,
    control_params: torch.Tensor,
) -> torch.Tensor:
    """Random affine plus thin-plate-spline warp of points (the equivariance transform of the
    paper's Sec. 3.3: keypoints and Jacobians must follow it, Eq. 7).

    ``coordinates``: ``(B, N, 2)``; ``theta``: ``(B, 2, 3)``; ``control_points``: ``(P, 2)``;
    ``control_params``: ``(B, 1, P)``. The radial basis is ``r^2 log(r + 1e-6)`` with ``r`` the
    L1 distance to each control point, added to both coordinates. Returns ``(B, N, 2)``.
    """
    transformed = affine_grid(theta.to(coordinates.dtype), coordinates)
    dist = coordinates.unsqueeze(2) - control_points.to(coordinates.dtype).view(1, 1, -1, 2)
    dist = dist.abs().sum(-1)  # (B, N, P)
    basis = dist**2 * torch.log(dist + 1e-6)
    offset = (basis * control_params.to(coordinates.dtype)).sum(dim=2, keepdim=True)
    return transformed + offset


def convex_hull_area(points: np.ndarray) -> float:
    """Area of the convex hull of ``(N, 2)`` points (0 for fewer than 3 non-collinear points)."""
    pts = np.unique(np.asarray(points, dtype=np.float64), axis=0)
    if len(pts) < 3:
        return 0.0
    pts = pts[np.lexsort((pts[:, 1], pts[:, 0]))]

    def half(seq):
        chain: list[np.ndarray] = []
        for p in seq:
            while len(chain) >= 2:
                o, a = chain[-2], chain[-1]
                if (a[0] - o[0]) * (p[1] - o[1]) - (a[1] - o[1]) * (p[0] - o[0]) > 0:
                    break
                chain.pop()
            chain.append(p)
        return chain[:-1]

    hull = np.array(half(pts) + half(pts[::-1]))
    x, y = hull[:, 0], hull[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
