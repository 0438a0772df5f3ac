"""Multi-scale patch discriminator (used only when a config trains with a GAN loss)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fomm.models.blocks import channels, scale_key
from fomm.models.geometry import kp2gaussian


class DiscriminatorBlock(nn.Module):
    """4x4 unpadded conv (optionally spectral-normalised), InstanceNorm, LeakyReLU 0.2, avg-pool."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        norm: bool = False,
        kernel_size: int = 4,
        pool: bool = False,
        sn: bool = False,
    ):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size)
        if sn:
            self.conv = nn.utils.spectral_norm(self.conv)
        self.norm = nn.InstanceNorm2d(out_features, affine=True) if norm else None
        self.pool = pool

    def forward(self, x):
        out = self.conv(x)
        if self.norm is not None:
            out = self.norm(out)
        out = F.leaky_relu(out, 0.2)
        if self.pool:
            out = F.avg_pool2d(out, (2, 2))
        return out


class Discriminator(nn.Module):
    """Returns ``(feature_maps, prediction_map)``; with ``use_kp`` the keypoint heatmaps are
    concatenated after the image channels."""

    def __init__(
        self,
        num_channels: int = 3,
        block_expansion: int = 64,
        num_blocks: int = 4,
        max_features: int = 512,
        sn: bool = False,
        use_kp: bool = False,
        num_kp: int = 10,
        kp_variance: float = 0.01,
        **unused,
    ):
        super().__init__()
        self.down_blocks = nn.ModuleList(
            DiscriminatorBlock(
                num_channels + num_kp * use_kp if i == 0 else channels(block_expansion, max_features, i),
                channels(block_expansion, max_features, i + 1),
                norm=(i != 0),
                kernel_size=4,
                pool=(i != num_blocks - 1),
                sn=sn,
            )
            for i in range(num_blocks)
        )
        last = channels(block_expansion, max_features, num_blocks)
        self.conv = nn.Conv2d(last, 1, kernel_size=1)
        if sn:
            self.conv = nn.utils.spectral_norm(self.conv)
        self.use_kp = use_kp
        self.kp_variance = kp_variance

    def forward(self, x, kp=None):
        out = x
        if self.use_kp:
            out = torch.cat([out, kp2gaussian(kp["value"], x.shape[2:], self.kp_variance)], dim=1)
        feature_maps = []
        for block in self.down_blocks:
            out = block(out)
            feature_maps.append(out)
        return feature_maps, self.conv(out)


class MultiScaleDiscriminator(nn.Module):
    """One discriminator per pyramid scale; input is an :class:`~fomm.models.blocks.ImagePyramid`
    output, result ``{'feature_maps_<s>': [...], 'prediction_map_<s>': (B, 1, h, w)}``."""

    def __init__(self, scales=(), **kwargs):
        super().__init__()
        self.scales = scales
        self.discs = nn.ModuleDict({scale_key(s): Discriminator(**kwargs) for s in scales})

    def forward(self, x: dict, kp=None) -> dict:
        out = {}
        for key, disc in self.discs.items():
            scale = key.replace("-", ".")
            feature_maps, prediction_map = disc(x["prediction_" + scale], kp)
            out["feature_maps_" + scale] = feature_maps
            out["prediction_map_" + scale] = prediction_map
        return out
