"""TPSMM's dense motion network (Sec. 3.2): from K thin-plate spline transformations and a background
transformation it predicts the optical flow (Eq. 6, a per-pixel softmax mixture of the K + 1
transformations, the "contribution maps") and multi-resolution occlusion masks for the inpainting
network (Sec. 3.3)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from fomm.models.blocks import AntiAliasInterpolation2d, Hourglass, UpBlock2d
from fomm.models.geometry import at_least_fp32, kp2gaussian, make_coordinate_grid
from fomm.models.tpsmm.tps import tps_grids_from_parameters, tps_parameters

OCCLUSION_MASKS = 4  # masks at the hourglass' two finest levels and two more up-sampled ones


def instance_norm(channels: int, affine: bool = True) -> nn.InstanceNorm2d:
    """The normalisation of every TPSMM hourglass block (an affine InstanceNorm, no running stats)."""
    return nn.InstanceNorm2d(channels, affine=affine)


class DenseMotionNetwork(nn.Module):
    """``dense_motion_network(source_image, kp_driving, kp_source, bg_param=None, dropout_flag=False,
    dropout_p=0)`` with images (B, C, H, W) and ``{'fg_kp': (B, 5K, 2)}`` keypoints returns

    - ``deformation`` (B, h, w, 2): the optical flow at ``scale_factor`` resolution (Eq. 6);
    - ``contribution_maps`` (B, K + 1, h, w): background first;
    - ``deformed_source`` (B, K + 1, C, h, w): the source warped by each transformation;
    - ``occlusion_map``: a list of (B, 1, h_i, w_i) masks, coarsest first (h/2, h, 2h, 4h at
      ``scale_factor`` 0.25 with ``multi_mask``), else one mask at (h, w).
    """

    def __init__(
        self,
        block_expansion: int,
        num_blocks: int,
        max_features: int,
        num_tps: int,
        num_channels: int,
        scale_factor: float = 0.25,
        bg: bool = False,
        multi_mask: bool = True,
        kp_variance: float = 0.01,
    ):
        super().__init__()
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor)
        self.scale_factor = scale_factor
        self.multi_mask = multi_mask
        self.num_tps = num_tps
        self.bg = bg
        self.kp_variance = kp_variance
        in_features = num_channels * (num_tps + 1) + num_tps * 5 + 1
        self.hourglass = Hourglass(block_expansion, in_features, num_blocks, max_features, norm=instance_norm)
        levels = self.hourglass.decoder.level_filters  # channels per decoder level, deepest first
        self.maps = nn.Conv2d(levels[-1], num_tps + 1, kernel_size=7, padding=3)
        if multi_mask:
            # up-sampling blocks take the finest level to the image size, halving the width each time
            self.up_nums = int(math.log(1 / scale_factor, 2))
            widths = [levels[-1] // (2**i) for i in range(self.up_nums + 1)]
            self.up = nn.ModuleList(
                UpBlock2d(widths[i], widths[i + 1], norm=instance_norm) for i in range(self.up_nums)
            )
            from_levels = levels[len(levels) - (OCCLUSION_MASKS - self.up_nums) :]
            mask_inputs = list(from_levels) + widths[1:]
        else:
            self.up_nums = 0
            mask_inputs = [levels[-1]]
        self.occlusion = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=7, padding=3) for c in mask_inputs)

    @property
    def compute_dtype(self) -> torch.dtype:
        """The dtype the hourglass and the contribution head run in: their weights' (fp32, also in
        fast inference; bf16/fp16 if converted, :func:`fomm.models.fused.to_low_precision`)."""
        return self.maps.weight.dtype

    @property
    def mask_dtype(self) -> torch.dtype:
        """The dtype of the occlusion heads and their up-sampling blocks: low precision in fast
        inference, where the hourglass and the contribution head before them stay fp32
        (:class:`fomm.models.tpsmm.inference.TpsmmInference`)."""
        return self.occlusion[0].weight.dtype

    def forward(self, source_image, kp_driving, kp_source, bg_param=None, dropout_flag=False, dropout_p=0.0):
        if self.scale_factor != 1:
            source_image = self.down(source_image)
        return self.motion(source_image, kp_driving, kp_source, bg_param, dropout_flag, dropout_p)

    def motion(self, source_small, kp_driving, kp_source, bg_param=None, dropout_flag=False, dropout_p=0.0) -> dict:
        """:meth:`forward` on a source already at the network's resolution (B, C, h, w)."""
        b, _, h, w = source_small.shape
        transformations = self.transformations(kp_driving["fg_kp"], kp_source["fg_kp"], (h, w), bg_param)
        return self.from_transformations(source_small, kp_driving, kp_source, transformations, dropout_flag, dropout_p)

    def from_transformations(self, source_small, kp_driving, kp_source, transformations, dropout_flag, dropout_p):
        """The network's outputs given the K + 1 sampling grids (B, K + 1, h, w, 2)."""
        b, _, h, w = source_small.shape
        heatmaps = self.heatmap_representations((h, w), kp_driving["fg_kp"], kp_source["fg_kp"])
        deformed = self.deformed_sources(source_small, transformations)  # (B, K + 1, C, h, w)
        # the hourglass runs in its weights' dtype; the contribution maps, flow and masks come back
        # in fp32 (the flow is a sampling grid)
        inp = torch.cat([heatmaps, deformed.flatten(1, 2)], 1).to(self.compute_dtype)
        levels = self.hourglass.decoder.levels(self.hourglass.encoder(inp))
        logits = at_least_fp32(self.maps(levels[-1]))
        if dropout_flag:
            contribution = dropout_softmax(logits, dropout_p)
        else:
            contribution = F.softmax(logits, dim=1)
        # Eq. 6: the flow is the contribution-weighted sum of the K + 1 transformations
        deformation = (transformations * contribution.unsqueeze(-1)).sum(dim=1)
        return {
            "deformed_source": deformed,
            "contribution_maps": contribution,
            "deformation": deformation,
            "occlusion_map": self.occlusion_maps(levels),
        }

    def heatmap_representations(self, size, kp_driving: torch.Tensor, kp_source: torch.Tensor) -> torch.Tensor:
        """Gaussian heatmaps of the driving minus the source keypoints, a zero channel first:
        (B, 5K + 1, h, w)."""
        heatmap = kp2gaussian(kp_driving, size, self.kp_variance) - kp2gaussian(kp_source, size, self.kp_variance)
        return torch.cat([heatmap.new_zeros(heatmap.shape[0], 1, *size), heatmap], dim=1)

    def transformations(self, kp_driving, kp_source, size, bg_param=None) -> torch.Tensor:
        """The background transformation (identity, or the affine ``bg_param`` (B, 3, 3)) and the K
        TPS transformations (Eq. 2) as sampling grids (B, K + 1, h, w, 2)."""
        b = kp_driving.shape[0]
        theta, weights = tps_parameters(kp_driving.view(b, -1, 5, 2), kp_source.view(b, -1, 5, 2))
        return self.transformations_from_parameters(kp_driving, theta, weights, size, bg_param)

    def transformations_from_parameters(self, kp_driving, theta, weights, size, bg_param=None) -> torch.Tensor:
        """:meth:`transformations` from the solved TPS parameters (theta (B, K, 2, 3), weights
        (B, K, 5, 2)): no linear solve, so an ONNX graph can hold it."""
        b = kp_driving.shape[0]
        background = background_grid(b, size, bg_param, kp_driving.dtype, kp_driving.device)
        control = kp_driving.reshape(b, -1, 5, 2)
        return torch.cat([background, tps_grids_from_parameters(control, theta, weights, size)], dim=1)

    def deformed_sources(self, source_small: torch.Tensor, transformations: torch.Tensor) -> torch.Tensor:
        """The source warped by each grid: (B, K + 1, C, h, w)."""
        b, n, h, w, _ = transformations.shape
        c = source_small.shape[1]
        repeated = source_small.unsqueeze(1).expand(b, n, c, h, w).reshape(b * n, c, h, w)
        deformed = F.grid_sample(repeated, transformations.reshape(b * n, h, w, 2), align_corners=True)
        return deformed.view(b, n, c, h, w)

    def occlusion_maps(self, levels: list[torch.Tensor]) -> list[torch.Tensor]:
        """Sigmoid masks from the finest hourglass levels, then from up-sampled finest features."""
        if self.mask_dtype != self.compute_dtype:  # fast inference: fp32 hourglass, low-precision heads
            levels = [x.to(self.mask_dtype) for x in levels[-OCCLUSION_MASKS:]]
        if not self.multi_mask:
            return [torch.sigmoid(at_least_fp32(self.occlusion[0](levels[-1])))]
        from_levels = OCCLUSION_MASKS - self.up_nums
        masks = [
            torch.sigmoid(at_least_fp32(conv(x)))
            for conv, x in zip(self.occlusion, levels[len(levels) - from_levels :])
        ]
        features = levels[-1]
        for up, conv in zip(self.up, self.occlusion[from_levels:]):
            features = up(features)
            masks.append(torch.sigmoid(at_least_fp32(conv(features))))
        return masks


def background_grid(batch: int, size, bg_param=None, dtype=torch.float32, device=None) -> torch.Tensor:
    """The identity grid, or its image under the homogeneous affines ``bg_param`` (B, 3, 3):
    (B, 1, h, w, 2)."""
    h, w = size
    grid = make_coordinate_grid((h, w), dtype, device).view(1, 1, h, w, 2).expand(batch, 1, h, w, 2)
    if bg_param is None:
        return grid
    homogeneous = torch.cat([grid, grid.new_ones(batch, 1, h, w, 1)], dim=-1)
    moved = torch.matmul(bg_param.view(batch, 1, 1, 1, 3, 3), homogeneous.unsqueeze(-1)).squeeze(-1)
    return moved[..., :2] / moved[..., 2:3]


def dropout_softmax(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Eq. 7-8: a softmax over the K + 1 contribution maps in which each TPS map (not the
    background) is dropped with probability ``p`` per batch element: (B, K + 1, h, w).

    The original also divides the kept logits by 1 - p, but after taking their exponential, so it
    has no effect; it is left out here for the same result."""
    b, n = logits.shape[:2]
    keep = (torch.rand(b, n) < (1 - p)).to(logits)
    keep[:, 0] = 1
    exp = (logits - logits.max(dim=1, keepdim=True).values).exp() * keep.view(b, n, 1, 1)
    return exp / (exp.sum(dim=1, keepdim=True) + 1e-6)
