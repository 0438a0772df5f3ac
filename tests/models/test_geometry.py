"""Geometry functions against hand-computed small cases."""

import math

import numpy as np
import torch

from fomm.models import geometry as g


def test_coordinate_grid_corners_and_order():
    grid = g.make_coordinate_grid((3, 5))
    assert grid.shape == (3, 5, 2)
    # x runs along the width, y along the height; -1 and 1 are the first and last cell centres
    assert torch.allclose(grid[0, :, 0], torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0]))
    assert torch.allclose(grid[:, 0, 1], torch.tensor([-1.0, 0.0, 1.0]))
    assert torch.all(grid[1, :, 1] == 0)


def test_kp2gaussian_values():
    mean = torch.tensor([[[0.0, 0.0]]])  # (1, 1, 2)
    heat = g.kp2gaussian(mean, (3, 3), kp_variance=0.5)
    assert heat.shape == (1, 1, 3, 3)
    assert heat[0, 0, 1, 1] == 1.0
    # corner (1, 1): squared distance 2 -> exp(-0.5 * 2 / 0.5) = exp(-2)
    assert math.isclose(float(heat[0, 0, 0, 0]), math.exp(-2), rel_tol=1e-6)
    # edge (0, 1): squared distance 1 -> exp(-1)
    assert math.isclose(float(heat[0, 0, 0, 1]), math.exp(-1), rel_tol=1e-6)


def test_soft_argmax_of_a_delta_is_its_cell():
    heat = torch.zeros(1, 2, 5, 5)
    heat[0, 0, 4, 0] = 1  # bottom-left
    heat[0, 1, 2, 3] = 1
    kp = g.heatmap_to_keypoints(heat)
    assert torch.allclose(kp[0, 0], torch.tensor([-1.0, 1.0]))
    assert torch.allclose(kp[0, 1], torch.tensor([0.5, 0.0]))


def test_soft_argmax_averages():
    heat = torch.zeros(1, 1, 3, 3)
    heat[0, 0, 0, 0] = 0.5
    heat[0, 0, 2, 2] = 0.5
    assert torch.allclose(g.heatmap_to_keypoints(heat), torch.zeros(1, 1, 2))


def test_sparse_motions_translation_and_identity():
    kp_s = torch.tensor([[[0.5, -0.5]]])
    kp_d = torch.tensor([[[0.0, 0.0]]])
    motions = g.sparse_motions((3, 3), kp_s, kp_d)
    assert motions.shape == (1, 2, 3, 3, 2)
    identity = g.make_coordinate_grid((3, 3))
    assert torch.equal(motions[0, 0], identity)
    # translation: driving point z maps to z - d + s
    assert torch.allclose(motions[0, 1], identity + torch.tensor([0.5, -0.5]))


def test_sparse_motions_with_jacobians():
    kp_s = torch.zeros(1, 1, 2)
    kp_d = torch.zeros(1, 1, 2)
    j_s = torch.tensor([[[[2.0, 0.0], [0.0, 1.0]]]])
    j_d = torch.tensor([[[[1.0, 0.0], [0.0, 0.5]]]])
    motions = g.sparse_motions((3, 3), kp_s, kp_d, j_s, j_d)
    identity = g.make_coordinate_grid((3, 3))
    # J_s @ J_d^-1 = diag(2, 2)
    assert torch.allclose(motions[0, 1], 2 * identity)


def test_warp_identity_and_shift():
    image = torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4)
    identity = g.make_coordinate_grid((4, 4)).unsqueeze(0)
    assert torch.allclose(g.warp(image, identity, align_corners=True), image)
    # with align_corners False the identity grid samples half a pixel in: interior still moves
    shifted = identity.clone()
    shifted[..., 0] += 2 / 3  # one pixel to the right with align_corners=True on 4 pixels
    out = g.warp(image, shifted, align_corners=True)
    assert torch.allclose(out[0, 0, :, :3], image[0, 0, :, 1:])


def test_resize_grid_keeps_identity():
    grid = g.make_coordinate_grid((4, 4)).unsqueeze(0)
    assert g.resize_grid(grid, (4, 4)) is grid
    big = g.resize_grid(grid, (8, 8))
    assert big.shape == (1, 8, 8, 2)
    assert torch.all(big[0, :, 1:, 0] >= big[0, :, :-1, 0])  # monotone in x


def test_affine_points():
    theta = torch.tensor([[[2.0, 0.0, 0.1], [0.0, 3.0, -0.2]]])
    pts = torch.tensor([[1.0, 1.0], [0.0, -1.0]])
    out = g.affine_grid(theta, pts)
    assert torch.allclose(out, torch.tensor([[[2.1, 2.8], [0.1, -3.2]]]))


def test_tps_reduces_to_affine_without_control_params():
    theta = torch.eye(2, 3).unsqueeze(0) + 0.1
    pts = torch.rand(1, 7, 2) * 2 - 1
    cp = g.make_coordinate_grid((5, 5)).view(-1, 2)
    out = g.tps_warp_points(pts, theta, cp, torch.zeros(1, 1, 25))
    assert torch.allclose(out, g.affine_grid(theta, pts))


def test_tps_basis_value():
    # one control point at the origin, one point at (0.5, 0.5): r = L1 = 1 -> r^2 log(r + 1e-6)
    pts = torch.tensor([[[0.5, 0.5]]])
    out = g.tps_warp_points(pts, torch.eye(2, 3).unsqueeze(0), torch.zeros(1, 2), torch.ones(1, 1, 1))
    expected = 0.5 + math.log(1 + 1e-6)
    assert torch.allclose(out, torch.tensor([[[expected, expected]]]))


def test_convex_hull_area():
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0.5]])
    assert math.isclose(g.convex_hull_area(square), 1.0)
    triangle = np.array([[0, 0], [2, 0], [0, 2]])
    assert math.isclose(g.convex_hull_area(triangle), 2.0)
    assert g.convex_hull_area(np.array([[0, 0], [1, 1], [2, 2]])) == 0.0
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(10, 2))
    try:
        from scipy.spatial import ConvexHull
    except ImportError:  # pragma: no cover
        return
    assert math.isclose(g.convex_hull_area(pts), ConvexHull(pts).volume, rel_tol=1e-12)
