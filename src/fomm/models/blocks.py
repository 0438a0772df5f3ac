"""Shared building blocks: the hourglass and its up/down blocks, residual blocks, anti-aliased
downsampling and the image pyramid. Submodule names match the original checkpoints."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def channels(block_expansion: int, max_features: int, level: int) -> int:
    """Width at a given depth: ``min(max_features, block_expansion * 2**level)``."""
    return min(max_features, block_expansion * (2**level))


class ResBlock2d(nn.Module):
    """Pre-activation residual block: (norm, ReLU, conv) twice, plus the identity.

    ``norm``: the normalisation class of every block here: BatchNorm (FOMM) or an affine
    InstanceNorm (TPSMM); both store ``norm.weight`` / ``norm.bias``."""

    def __init__(self, in_features: int, kernel_size=3, padding=1, norm=nn.BatchNorm2d):
        super().__init__()
        self.conv1 = nn.Conv2d(in_features, in_features, kernel_size, padding=padding)
        self.conv2 = nn.Conv2d(in_features, in_features, kernel_size, padding=padding)
        self.norm1 = norm(in_features, affine=True)
        self.norm2 = norm(in_features, affine=True)

    def forward(self, x):
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return out + x


class UpBlock2d(nn.Module):
    """Nearest x2 upsampling, then conv, norm, ReLU."""

    def __init__(self, in_features: int, out_features: int, kernel_size=3, padding=1, norm=nn.BatchNorm2d):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size, padding=padding)
        self.norm = norm(out_features, affine=True)

    def forward(self, x):
        out = F.interpolate(x, scale_factor=2)
        return F.relu(self.norm(self.conv(out)))


class DownBlock2d(nn.Module):
    """Conv, norm, ReLU, then 2x2 average pooling."""

    def __init__(self, in_features: int, out_features: int, kernel_size=3, padding=1, norm=nn.BatchNorm2d):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size, padding=padding)
        self.norm = norm(out_features, affine=True)

    def forward(self, x):
        return F.avg_pool2d(F.relu(self.norm(self.conv(x))), kernel_size=2)


class SameBlock2d(nn.Module):
    """Conv, norm, ReLU at the same resolution."""

    def __init__(self, in_features: int, out_features: int, kernel_size=3, padding=1, norm=nn.BatchNorm2d):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size, padding=padding)
        self.norm = norm(out_features, affine=True)

    def forward(self, x):
        return F.relu(self.norm(self.conv(x)))


class Encoder(nn.Module):
    """Hourglass encoder: returns the input and every down block's output (the skips)."""

    def __init__(
        self, block_expansion: int, in_features: int, num_blocks: int = 3, max_features: int = 256, norm=nn.BatchNorm2d
    ):
        super().__init__()
        self.down_blocks = nn.ModuleList(
            DownBlock2d(
                in_features if i == 0 else channels(block_expansion, max_features, i),
                channels(block_expansion, max_features, i + 1),
                norm=norm,
            )
            for i in range(num_blocks)
        )

    def forward(self, x) -> list[torch.Tensor]:
        skips = [x]
        for down in self.down_blocks:
            skips.append(down(skips[-1]))
        return skips


class Decoder(nn.Module):
    """Hourglass decoder: upsample and concatenate the matching skip, deepest first."""

    def __init__(
        self, block_expansion: int, in_features: int, num_blocks: int = 3, max_features: int = 256, norm=nn.BatchNorm2d
    ):
        super().__init__()
        blocks = []
        for i in reversed(range(num_blocks)):
            in_filters = (1 if i == num_blocks - 1 else 2) * channels(block_expansion, max_features, i + 1)
            blocks.append(UpBlock2d(in_filters, channels(block_expansion, max_features, i), norm=norm))
        self.up_blocks = nn.ModuleList(blocks)
        self.out_filters = block_expansion + in_features
        # channels of each level's output (deepest first), the last one being ``out_filters``
        self.level_filters = [2 * channels(block_expansion, max_features, i) for i in reversed(range(1, num_blocks))]
        self.level_filters.append(self.out_filters)

    def forward(self, skips: list[torch.Tensor]) -> torch.Tensor:
        return self.levels(skips)[-1]

    def levels(self, skips: list[torch.Tensor]) -> list[torch.Tensor]:
        """Every level's output (an up block's output with its skip), deepest first."""
        out, outs = skips[-1], []
        for up, skip in zip(self.up_blocks, reversed(skips[:-1])):
            out = torch.cat([up(out), skip], dim=1)
            outs.append(out)
        return outs


class Hourglass(nn.Module):
    """U-Net style encoder-decoder; output has ``block_expansion + in_features`` channels."""

    def __init__(
        self, block_expansion: int, in_features: int, num_blocks: int = 3, max_features: int = 256, norm=nn.BatchNorm2d
    ):
        super().__init__()
        self.encoder = Encoder(block_expansion, in_features, num_blocks, max_features, norm)
        self.decoder = Decoder(block_expansion, in_features, num_blocks, max_features, norm)
        self.out_filters = self.decoder.out_filters

    def forward(self, x):
        return self.decoder(self.encoder(x))


def anti_alias_sigma(scale: float) -> float:
    """The original's Gaussian sigma for downsampling by ``scale``: ``(1/scale - 1) / 2``."""
    return (1 / scale - 1) / 2


def anti_alias_kernel_size(sigma: float) -> int:
    """The original's kernel size for ``sigma``: ``2 * round(4 sigma) + 1`` (13 at 1.5, 29 at 3.5)."""
    return 2 * round(sigma * 4) + 1


def sigma_for_kernel_size(kernel_size: int) -> float:
    """The sigma whose kernel has ``kernel_size`` (odd): ``(k - 1) / 8`` (1.5 for 13, 3.5 for 29).

    Checkpoints store the kernel itself, so only its size has to follow from the sigma."""
    return (kernel_size - 1) / 8


class AntiAliasInterpolation2d(nn.Module):
    """Gaussian blur then stride-slice downsampling by ``scale`` (e.g. 0.25).

    sigma defaults to ``(1/scale - 1) / 2`` (the original); ``sigma`` overrides it, e.g. 1.5 at
    scale 0.125, which the community's 512 x 512 models hard-code (13 x 13 kernels instead of
    29 x 29). Kernel size 2 * round(4 sigma) + 1, zero padding. The kernel is a buffer named
    ``weight`` and is stored in checkpoints, as in the original.
    """

    def __init__(self, channels_: int, scale: float, sigma: float | None = None):
        super().__init__()
        sigma = anti_alias_sigma(scale) if sigma is None else sigma
        kernel_size = anti_alias_kernel_size(sigma)
        self.sigma = sigma
        self.ka = kernel_size // 2
        self.kb = self.ka - 1 if kernel_size % 2 == 0 else self.ka
        coords = torch.arange(kernel_size, dtype=torch.float32)
        mean = (kernel_size - 1) / 2
        g = torch.exp(-((coords - mean) ** 2) / (2 * sigma**2))
        kernel = g.view(-1, 1) * g.view(1, -1)
        kernel = kernel / torch.sum(kernel)
        self.register_buffer("weight", kernel.view(1, 1, kernel_size, kernel_size).repeat(channels_, 1, 1, 1))
        self.groups = channels_
        self.scale = scale
        self.int_inv_scale = int(1 / scale)

    def forward(self, x):
        """``(B, C, H, W) -> (B, C, H * scale, W * scale)``."""
        if self.scale == 1.0:
            return x
        if x.dtype != torch.float32 or torch.is_autocast_enabled(x.device.type):
            # Always blur in float32: oneDNN's bfloat16 depthwise convolution with a large kernel on a
            # channels-last CPU tensor is pathologically slow (the 29x29 kernel of scale 0.125 on one
            # 256x256 frame: minutes instead of 0.03 s), and the blur is cheap in float32.
            with torch.autocast(x.device.type, enabled=False):
                return self._blur(x.float(), self.weight.float()).to(x.dtype)
        return self._blur(x, self.weight)

    def _blur(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        # The original blurs every pixel, then keeps every (1/scale)-th: a strided convolution
        # computes only the kept ones, bit for bit the same sums (2-4x faster at 512 x 512).
        out = F.pad(x, (self.ka, self.kb, self.ka, self.kb))
        return F.conv2d(out, weight=weight, groups=self.groups, stride=self.int_inv_scale)


def scale_key(scale: float) -> str:
    """Module-dict key for a pyramid scale: ``0.5 -> '0-5'`` (the original naming)."""
    return str(scale).replace(".", "-")


class ImagePyramid(nn.Module):
    """Anti-aliased copies of an image at several scales: ``{'prediction_<scale>': (B, C, h, w)}``."""

    def __init__(self, scales, num_channels: int):
        super().__init__()
        self.downs = nn.ModuleDict({scale_key(s): AntiAliasInterpolation2d(num_channels, s) for s in scales})

    def forward(self, x) -> dict[str, torch.Tensor]:
        return {"prediction_" + key.replace("-", "."): down(x) for key, down in self.downs.items()}
