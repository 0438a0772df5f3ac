"""Occlusion-aware generator (Sec. 3.2 of the paper): encode the source, warp its features with
the dense flow, multiply by the occlusion map, and decode the animated frame (inpainting what the
source cannot show)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from fomm.models.blocks import DownBlock2d, ResBlock2d, SameBlock2d, UpBlock2d, channels
from fomm.models.dense_motion import DenseMotionNetwork
from fomm.models.geometry import at_least_fp32, resize_grid, warp


@dataclass
class SourceState:
    """Everything about the source image that does not depend on the driving frame.

    Computed once per clip by :meth:`OcclusionAwareGenerator.encode_source` and reused for every
    driving frame (the animation engine batches over it).
    """

    image: torch.Tensor  # (B, C, H, W) source image
    features: torch.Tensor  # (B, F, H/2^d, W/2^d) encoder output
    small: torch.Tensor  # (B, C, h, w) source at the dense-motion resolution

    def expand(self, batch: int) -> SourceState:
        """Broadcast a batch-1 state to ``batch`` driving frames (views, no copies)."""
        if self.image.shape[0] == batch:
            return self
        return SourceState(*(t.expand(batch, *t.shape[1:]) for t in (self.image, self.features, self.small)))


class OcclusionAwareGenerator(nn.Module):
    """``generator(source_image, kp_driving=..., kp_source=...)`` returns a dict with ``prediction``
    (B, C, H, W), ``deformed`` (the source warped by the dense flow), ``deformation``, ``mask``,
    ``sparse_deformed`` and, when estimated, ``occlusion_map``."""

    def __init__(
        self,
        num_channels: int,
        num_kp: int,
        block_expansion: int,
        max_features: int,
        num_down_blocks: int,
        num_bottleneck_blocks: int,
        estimate_occlusion_map: bool = False,
        dense_motion_params: dict | None = None,
        estimate_jacobian: bool = False,
        align_corners: bool = False,
    ):
        super().__init__()
        if dense_motion_params is not None:
            self.dense_motion_network = DenseMotionNetwork(
                num_kp=num_kp,
                num_channels=num_channels,
                estimate_occlusion_map=estimate_occlusion_map,
                align_corners=align_corners,
                **dense_motion_params,
            )
        else:
            self.dense_motion_network = None
        self.first = SameBlock2d(num_channels, block_expansion, kernel_size=(7, 7), padding=(3, 3))
        self.down_blocks = nn.ModuleList(
            DownBlock2d(channels(block_expansion, max_features, i), channels(block_expansion, max_features, i + 1))
            for i in range(num_down_blocks)
        )
        self.up_blocks = nn.ModuleList(
            UpBlock2d(
                channels(block_expansion, max_features, num_down_blocks - i),
                channels(block_expansion, max_features, num_down_blocks - i - 1),
            )
            for i in range(num_down_blocks)
        )
        bottleneck_features = channels(block_expansion, max_features, num_down_blocks)
        self.bottleneck = nn.Sequential()
        for i in range(num_bottleneck_blocks):
            self.bottleneck.add_module(f"r{i}", ResBlock2d(bottleneck_features, kernel_size=(3, 3), padding=(1, 1)))
        self.final = nn.Conv2d(block_expansion, num_channels, kernel_size=(7, 7), padding=(3, 3))
        self.estimate_occlusion_map = estimate_occlusion_map
        self.num_channels = num_channels
        self.align_corners = align_corners

    @property
    def compute_dtype(self) -> torch.dtype:
        """The dtype the convolutions run in: their weights' (fp32, or bf16/fp16 once inference
        converted them, :func:`fomm.models.fused.to_low_precision`)."""
        return self.final.weight.dtype

    def encode_source(self, source_image: torch.Tensor) -> SourceState:
        """The source-only half of the generator. The features are kept fp32 (one cast per source):
        warping them samples with fp32 grids, whose coordinates bf16 would round by up to 1/256."""
        features = self.first(source_image.to(self.compute_dtype))
        for down in self.down_blocks:
            features = down(features)
        features = at_least_fp32(features)
        small = (
            self.dense_motion_network.downsample(source_image)
            if self.dense_motion_network is not None
            else source_image
        )
        return SourceState(source_image, features, small)

    def deform_input(self, inp: torch.Tensor, deformation: torch.Tensor) -> torch.Tensor:
        """Warp ``inp`` (B, C, H, W) with ``deformation`` (B, h, w, 2), resized to (H, W) first."""
        return warp(inp, resize_grid(deformation, inp.shape[2:]), self.align_corners)

    def animate(self, source: SourceState, kp_driving, kp_source) -> dict[str, torch.Tensor]:
        """The driving-dependent half: dense motion, warping, occlusion and decoding."""
        out = {}
        features = source.features
        if self.dense_motion_network is not None:
            motion = self.dense_motion_network(
                source.image, kp_driving=kp_driving, kp_source=kp_source, source_small=source.small
            )
            out["mask"] = motion["mask"]
            out["sparse_deformed"] = motion["sparse_deformed"]
            out["deformation"] = motion["deformation"]
            features = self.deform_input(features, motion["deformation"])
            if "occlusion_map" in motion:
                occlusion_map = motion["occlusion_map"]
                out["occlusion_map"] = occlusion_map
                if occlusion_map.shape[2:] != features.shape[2:]:
                    occlusion_map = F.interpolate(
                        occlusion_map, size=features.shape[2:], mode="bilinear", align_corners=False
                    )
                features = features * occlusion_map  # Sec. 3.2: xi' = O (.) f_w(xi, T)
            out["deformed"] = self.deform_input(source.image, motion["deformation"])
        out["prediction"] = self.decode(features)
        return out

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        """Bottleneck, up blocks and the final conv; returns the frame in [0, 1]."""
        out = self.bottleneck(features.to(self.compute_dtype))
        for up in self.up_blocks:
            out = up(out)
        return torch.sigmoid(at_least_fp32(self.final(out)))

    def forward(self, source_image, kp_driving, kp_source) -> dict[str, torch.Tensor]:
        return self.animate(self.encode_source(source_image), kp_driving=kp_driving, kp_source=kp_source)
