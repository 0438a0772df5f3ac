"""Dense motion network: from source and driving keypoints, K+1 candidate warps (K local affine
ones and the identity for the background); an hourglass looks at the source warped by each and
predicts soft masks that blend them into one dense flow, plus an occlusion map."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fomm.models.blocks import AntiAliasInterpolation2d, Hourglass
from fomm.models.geometry import at_least_fp32, kp2gaussian, sparse_motions, warp


class DenseMotionNetwork(nn.Module):
    """``forward(source_image, kp_driving, kp_source)`` returns a dict with
    ``deformation`` (B, h, w, 2), ``mask`` (B, K+1, h, w), ``sparse_deformed`` (B, K+1, C, h, w)
    and, when estimated, ``occlusion_map`` (B, 1, h, w); ``h, w`` are the image size times
    ``scale_factor``."""

    def __init__(
        self,
        block_expansion: int,
        num_blocks: int,
        max_features: int,
        num_kp: int,
        num_channels: int,
        estimate_occlusion_map: bool = False,
        scale_factor: float = 1,
        kp_variance: float = 0.01,
        align_corners: bool = False,
        anti_alias_sigma: float | None = None,
    ):
        super().__init__()
        self.hourglass = Hourglass(
            block_expansion=block_expansion,
            in_features=(num_kp + 1) * (num_channels + 1),
            max_features=max_features,
            num_blocks=num_blocks,
        )
        self.mask = nn.Conv2d(self.hourglass.out_filters, num_kp + 1, kernel_size=(7, 7), padding=(3, 3))
        if estimate_occlusion_map:
            self.occlusion = nn.Conv2d(self.hourglass.out_filters, 1, kernel_size=(7, 7), padding=(3, 3))
        else:
            self.occlusion = None
        self.num_kp = num_kp
        self.scale_factor = scale_factor
        self.kp_variance = kp_variance
        self.align_corners = align_corners
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor, anti_alias_sigma)

    def downsample(self, source_image: torch.Tensor) -> torch.Tensor:
        """The source at the motion resolution, ``(B, C, h, w)``."""
        return self.down(source_image) if self.scale_factor != 1 else source_image

    def heatmap_representation(self, spatial_size, kp_driving, kp_source) -> torch.Tensor:
        """Driving minus source Gaussian heatmaps ``H_k(z)`` (Eq. 6 as the original cites it), zero
        background first: ``(B, K+1, 1, h, w)``."""
        heatmap = kp2gaussian(kp_driving["value"], spatial_size, self.kp_variance) - kp2gaussian(
            kp_source["value"], spatial_size, self.kp_variance
        )
        zeros = heatmap.new_zeros(heatmap.shape[0], 1, *spatial_size)
        return torch.cat([zeros, heatmap], dim=1).unsqueeze(2)

    def sparse_motion(self, spatial_size, kp_driving, kp_source) -> torch.Tensor:
        """``(B, K+1, h, w, 2)`` candidate warps (Eq. 4, first-order approximation around each
        keypoint); pure translations for a model without Jacobians."""
        with_jacobian = "jacobian" in kp_driving and "jacobian" in kp_source
        return sparse_motions(
            spatial_size,
            kp_source["value"],
            kp_driving["value"],
            kp_source["jacobian"] if with_jacobian else None,
            kp_driving["jacobian"] if with_jacobian else None,
        )

    def deform_source(self, source: torch.Tensor, sparse_motion: torch.Tensor) -> torch.Tensor:
        """Warp the source with each candidate: ``(B, K+1, C, h, w)``."""
        bs, num_warps, h, w, _ = sparse_motion.shape
        channels = source.shape[1]
        repeated = source.unsqueeze(1).expand(bs, num_warps, channels, h, w).reshape(bs * num_warps, channels, h, w)
        deformed = warp(repeated, sparse_motion.reshape(bs * num_warps, h, w, 2), self.align_corners)
        return deformed.view(bs, num_warps, channels, h, w)

    def forward(self, source_image, kp_driving, kp_source, source_small: torch.Tensor | None = None):
        source = self.downsample(source_image) if source_small is None else source_small
        bs, _, h, w = source.shape
        heatmap = self.heatmap_representation((h, w), kp_driving, kp_source)
        sparse_motion = self.sparse_motion((h, w), kp_driving, kp_source)
        sparse_deformed = self.deform_source(source, sparse_motion)
        out = {"sparse_deformed": sparse_deformed}

        # the hourglass runs in its weights' dtype (bf16 in fast inference); masks, flow and
        # occlusion come back in fp32 (the flow is a sampling grid)
        inp = torch.cat([heatmap, sparse_deformed], dim=2).view(bs, -1, h, w)
        features = self.hourglass(inp.to(self.mask.weight.dtype))
        mask = F.softmax(at_least_fp32(self.mask(features)), dim=1)
        out["mask"] = mask
        # dense motion: the K+1 sparse motions blended by the soft masks, sum_k M_k(z) T_k(z) (Sec. 3.1)
        deformation = (sparse_motion.permute(0, 1, 4, 2, 3) * mask.unsqueeze(2)).sum(dim=1)
        out["deformation"] = deformation.permute(0, 2, 3, 1)
        if self.occlusion is not None:
            out["occlusion_map"] = torch.sigmoid(at_least_fp32(self.occlusion(features)))
        return out
