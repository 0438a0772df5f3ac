"""Thin-plate spline transformations (Sec. 3.1, Eq. 2 of Zhao and Zhang, CVPR 2022).

A TPS maps a point p to ``T(p) = A [p; 1] + sum_i w_i U(||P_i - p||)`` with ``U(r) = r^2 log r^2``,
where the control points P_i (5 per transformation) are the driving keypoints and the parameters
(the affine A and the weights w) make T send them to the source keypoints. They solve the kernel
system

    [K + lambda I   P        ] [w  ]   [source kp]
    [P^T            lambda I ] [A^T] = [0        ],   K_ij = U(||P_i - P_j||), P = [P_i, 1],

with the whole (n + 3)-square matrix regularised by lambda = 0.01 (as the original does). The
solve lives in :func:`tps_parameters`, apart from the warp, so that the ONNX export can keep it
outside its graphs (ONNX has no linear solve): the graphs take the parameters as inputs.
"""

from __future__ import annotations

import torch

from fomm.models.geometry import make_coordinate_grid

REGULARISATION = 0.01  # lambda added to the diagonal of the kernel system


def tps_kernel(squared_distance: torch.Tensor) -> torch.Tensor:
    """``U = r^2 log r^2`` from ``r^2`` (with 1e-9 inside the log: U(0) = 0)."""
    return squared_distance * torch.log(squared_distance + 1e-9)


def tps_parameters(kp_driving: torch.Tensor, kp_source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve Eq. 2's kernel system for the K transformations of each batch element.

    ``kp_driving``, ``kp_source``: (B, K, n, 2) control points (n = 5) and their targets.
    Returns the affine part ``theta`` (B, K, 2, 3) and the kernel weights ``w`` (B, K, n, 2).
    """
    b, k, n, _ = kp_driving.shape
    kernel = _pairwise_kernel(kp_driving)  # (B, K, n, n)
    ones = torch.ones(b, k, n, 1, dtype=kp_driving.dtype, device=kp_driving.device)
    p = torch.cat([kp_driving, ones], dim=3)  # (B, K, n, 3)
    top = torch.cat([kernel, p], dim=3)  # (B, K, n, n + 3)
    bottom = torch.cat([p.transpose(2, 3), p.new_zeros(b, k, 3, 3)], dim=3)  # (B, K, 3, n + 3)
    system = torch.cat([top, bottom], dim=2)
    system = system + REGULARISATION * torch.eye(n + 3, dtype=system.dtype, device=system.device)
    targets = torch.cat([kp_source, kp_source.new_zeros(b, k, 3, 2)], dim=2)  # (B, K, n + 3, 2)
    # the original multiplies by the inverse; a solve is the same to float rounding
    params = torch.matmul(torch.inverse(system), targets)
    return params[:, :, n:, :].transpose(2, 3), params[:, :, :n, :]


def _pairwise_kernel(points: torch.Tensor) -> torch.Tensor:
    """``U(||P_i - P_j||)`` for (B, K, n, 2) points: (B, K, n, n)."""
    diff = points.unsqueeze(3) - points.unsqueeze(2)
    return tps_kernel(torch.linalg.vector_norm(diff, dim=4) ** 2)


def tps_warp(
    coordinates: torch.Tensor, control_points: torch.Tensor, theta: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Apply K transformations to N points: ``T_k(p) = theta_k [p; 1] + sum_i w_ki U(||P_ki - p||)``.

    ``coordinates`` (1 or B, N, 2); ``control_points`` (B, K, n, 2); ``theta`` (B, K, 2, 3);
    ``weights`` (B, K, n, 2). Returns (B, K, N, 2).
    """
    affine = torch.matmul(theta[..., :2], coordinates.unsqueeze(1).transpose(2, 3)) + theta[..., 2:]
    diff = coordinates[:, None, None] - control_points.unsqueeze(3)  # (B, K, n, N, 2)
    radial = tps_kernel((diff**2).sum(-1))  # (B, K, n, N)
    return affine.transpose(2, 3) + torch.matmul(radial.transpose(2, 3), weights)


def tps_grids(kp_driving: torch.Tensor, kp_source: torch.Tensor, spatial_size: tuple[int, int]) -> torch.Tensor:
    """Sampling grids of the K transformations that take driving keypoints to source ones.

    ``kp_driving``, ``kp_source``: (B, 5K, 2). Returns (B, K, H, W, 2): for each driving-frame
    pixel, where to sample the source.
    """
    b = kp_driving.shape[0]
    control = kp_driving.view(b, -1, 5, 2)
    theta, weights = tps_parameters(control, kp_source.view(b, -1, 5, 2))
    return tps_grids_from_parameters(control, theta, weights, spatial_size)


def tps_grids_from_parameters(
    control_points: torch.Tensor, theta: torch.Tensor, weights: torch.Tensor, spatial_size: tuple[int, int]
) -> torch.Tensor:
    """:func:`tps_grids` from solved parameters (control points (B, K, 5, 2)): (B, K, H, W, 2)."""
    h, w = spatial_size
    grid = make_coordinate_grid((h, w), control_points.dtype, control_points.device).view(1, h * w, 2)
    b, k = control_points.shape[:2]
    return tps_warp(grid, control_points, theta, weights).view(b, k, h, w, 2)


class RandomTPS:
    """A random TPS for the equivariance loss (Sec. 3.3): an affine part ``I + N(0, sigma_affine^2)``
    and kernel weights ``N(0, sigma_tps^2)`` on a ``points_tps`` x ``points_tps`` control grid, one
    per batch element; the same weight moves x and y (as in the original)."""

    def __init__(self, batch: int, sigma_affine: float, sigma_tps: float, points_tps: int, generator=None):
        noise = torch.randn(batch, 2, 3, generator=generator) * sigma_affine
        self.theta = noise + torch.eye(2, 3).view(1, 2, 3)  # (B, 2, 3)
        self.control_points = make_coordinate_grid((points_tps, points_tps)).view(1, -1, 2)  # (1, n, 2)
        self.weights = torch.randn(batch, 1, points_tps**2, generator=generator) * sigma_tps  # (B, 1, n)

    def warp_coordinates(self, coordinates: torch.Tensor) -> torch.Tensor:
        """(B or 1, N, 2) points -> (B, N, 2) warped points."""
        theta = self.theta.to(coordinates)
        affine = torch.matmul(theta[:, None, :, :2], coordinates.unsqueeze(-1)).squeeze(-1) + theta[:, None, :, 2]
        diff = coordinates.unsqueeze(2) - self.control_points.to(coordinates).unsqueeze(1)  # (B, N, n, 2)
        radial = tps_kernel((diff**2).sum(-1)) * self.weights.to(coordinates)  # (B, N, n)
        return affine + radial.sum(dim=2, keepdim=True)

    def grid(self, frame: torch.Tensor) -> torch.Tensor:
        """The sampling grid (B, H, W, 2) that warps ``frame`` (B, C, H, W)."""
        h, w = frame.shape[2:]
        coords = make_coordinate_grid((h, w), frame.dtype, frame.device).view(1, h * w, 2)
        return self.warp_coordinates(coords).view(-1, h, w, 2)
