"""Inference-only rewrites of a trained network that compute the same function with less work,
and the one-time preparation of its weights for low precision.

- **BatchNorm folding**: in eval mode, ``BN(conv(x))`` is one conv with rescaled weights and bias.
  Applied to every conv -> BN pair (the same/down/up blocks, and ``conv1 -> norm2`` inside the
  residual blocks; ``norm1`` acts on the residual stream and stays).
- **Sub-pixel up-sampling**: a 3x3 conv after nearest x2 up-sampling equals four 2x2 convs on the
  low-resolution input, one per output phase, with summed taps: 4/9 of the multiply-adds.
- **Low-precision weights** (:func:`to_low_precision`): the weights of every conv and norm cast
  once to bf16 (or fp16) in channels-last memory, so that no cast runs per call. The networks take
  their compute dtype from their weights (``self.final.weight.dtype``...) and keep the geometry
  (keypoint and Jacobian algebra, soft-argmax, sampling grids, the anti-aliasing blur, the final
  sigmoid) in fp32.

Results of the first two equal the original modules up to float rounding (a few 1e-7 relative).
The rewritten copies are for inference only: they have no BatchNorm to train and different
state-dict keys. Used by :mod:`fomm.models.inference` and :mod:`fomm.models.quantized`.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from fomm.models.blocks import AntiAliasInterpolation2d, DownBlock2d, ResBlock2d, SameBlock2d, UpBlock2d


def fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A conv equal to ``bn(conv(x))`` for a BatchNorm in eval mode."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    fused = copy.deepcopy(conv)
    fused.weight.data = conv.weight.data * scale.view(-1, 1, 1, 1)
    bias = conv.bias.data if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
    return fused


class FusedConvReLU(nn.Module):
    """conv (with BN folded in), ReLU, then an optional 2x2 average pool."""

    def __init__(self, conv: nn.Conv2d, pool: bool = False):
        super().__init__()
        self.conv = conv
        self.pool = pool

    def forward(self, x):
        out = F.relu(self.conv(x))
        return F.avg_pool2d(out, 2) if self.pool else out


class SubPixelUpConvReLU(nn.Module):
    """``relu(bn(conv3x3(nearest_up2(x))))`` computed as four 2x2 convs at low resolution.

    For output row phase ``a`` (0: even rows, 1: odd rows) the three kernel rows collapse to two
    low-resolution taps: phase 0 reads rows ``i-1, i`` with weights ``w0, w1 + w2``; phase 1 reads
    rows ``i, i+1`` with ``w0 + w1, w2``; columns likewise. The four phases run as one conv with
    ``4 * out`` channels and padding 1 (output ``(H+1, W+1)``); phase ``(a, b)`` is its window at
    offset ``(a, b)``, and :func:`interleave_phases` puts them in place.
    """

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        w = conv.weight.data  # (out, in, 3, 3)
        rows = [
            torch.stack([w[:, :, 0], w[:, :, 1] + w[:, :, 2]], 2),
            torch.stack([w[:, :, 0] + w[:, :, 1], w[:, :, 2]], 2),
        ]  # each (out, in, 2, 3)
        kernels = []
        for a in range(2):
            r = rows[a]
            cols = [
                torch.stack([r[..., 0], r[..., 1] + r[..., 2]], -1),
                torch.stack([r[..., 0] + r[..., 1], r[..., 2]], -1),
            ]
            kernels.extend(cols)  # phase (a, 0), (a, 1): (out, in, 2, 2)
        self.weight = nn.Parameter(torch.cat(kernels, 0))  # (4*out, in, 2, 2)
        self.bias = nn.Parameter(conv.bias.data.repeat(4))
        self.out_channels = conv.out_channels

    def forward(self, x):
        phases = F.conv2d(x, self.weight, self.bias, padding=1)  # (B, 4C, H+1, W+1)
        return interleave_phases(phases, self.out_channels).relu_()


def interleave_phases(phases: torch.Tensor, channels: int) -> torch.Tensor:
    """``(B, 4C, H+1, W+1)`` -> ``(B, C, 2H, 2W)`` (channels-last memory): output pixel
    ``(2i+a, 2j+b)`` is phase ``k = 2a+b`` (channels ``kC .. kC+C-1``) at ``(i+a, j+b)``."""
    b, _, h1, w1 = phases.shape
    h, w, c = h1 - 1, w1 - 1, channels
    out = phases.new_empty(b, h, 2, w, 2, c)
    for k in range(4):
        a, bb = divmod(k, 2)
        out[:, :, a, :, bb, :] = phases[:, k * c : (k + 1) * c, a : a + h, bb : bb + w].permute(0, 2, 3, 1)
    return out.view(b, 2 * h, 2 * w, c).permute(0, 3, 1, 2)


class FusedResBlock(nn.Module):
    """Pre-activation residual block with ``norm2`` folded into ``conv1``."""

    def __init__(self, block: ResBlock2d):
        super().__init__()
        self.norm1 = block.norm1
        self.conv1 = fold_bn(block.conv1, block.norm2)
        self.conv2 = block.conv2

    def forward(self, x):
        out = F.relu(self.conv1(F.relu(self.norm1(x))))
        return self.conv2(out) + x


def _rewrite(module: nn.Module, subpixel: bool) -> nn.Module:
    if isinstance(module, SameBlock2d):
        return FusedConvReLU(fold_bn(module.conv, module.norm))
    if isinstance(module, DownBlock2d):
        return FusedConvReLU(fold_bn(module.conv, module.norm), pool=True)
    if isinstance(module, UpBlock2d):
        fused = fold_bn(module.conv, module.norm)
        if subpixel and fused.kernel_size == (3, 3) and fused.padding == (1, 1):
            return SubPixelUpConvReLU(fused)
        return nn.Sequential(nn.Upsample(scale_factor=2), FusedConvReLU(fused))
    if isinstance(module, ResBlock2d):
        return FusedResBlock(module)
    for name, child in module.named_children():
        setattr(module, name, _rewrite(child, subpixel))
    return module


@torch.no_grad()
def optimize_for_inference(module: nn.Module, subpixel: bool = True) -> nn.Module:
    """An eval-mode copy of ``module`` with BatchNorm folded and sub-pixel up-sampling."""
    module = copy.deepcopy(module).eval()
    module = _rewrite(module, subpixel)
    for p in module.parameters():
        p.requires_grad_(False)
    return module


@torch.no_grad()
def to_low_precision(
    module: nn.Module, dtype: torch.dtype, channels_last: bool = True, keep: tuple[type, ...] = ()
) -> nn.Module:
    """Cast, in place and once, the parameters and buffers of every layer of ``module`` to ``dtype``
    (4-D weights in channels-last memory when ``channels_last``), except the anti-aliasing blurs:
    their Gaussian kernels stay fp32, as does the blur itself (see
    :class:`~fomm.models.blocks.AntiAliasInterpolation2d`), and the layers of the types in ``keep``
    (e.g. InstanceNorm: fp32 affine parameters on a bf16 input give a bf16 output normalised in
    fp32). Convolutions then run in ``dtype`` with no per-call cast of their weights."""
    for layer in module.modules():
        if isinstance(layer, (AntiAliasInterpolation2d, *keep)):
            continue
        for name, tensor in [*layer.named_parameters(recurse=False), *layer.named_buffers(recurse=False)]:
            if tensor is None or not tensor.is_floating_point():
                continue
            new = tensor.to(dtype)
            if channels_last and new.dim() == 4:
                new = new.contiguous(memory_format=torch.channels_last)
            if isinstance(tensor, nn.Parameter):
                setattr(layer, name, nn.Parameter(new, requires_grad=False))
            else:
                setattr(layer, name, new)
    return module
