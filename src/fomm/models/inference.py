"""Inference-time rewrites of a trained model that compute the same function with less work.

- **BatchNorm folding**: in eval mode, ``BN(conv(x))`` is one conv with rescaled weights and bias.
  Applied to every conv -> BN pair (the same/down/up blocks, and ``conv1 -> norm2`` inside the
  residual blocks; ``norm1`` acts on the residual stream and stays).
- **Sub-pixel up-sampling**: a 3x3 conv after nearest x2 up-sampling equals four 2x2 convs on the
  low-resolution input, one per output phase, with summed taps: 4/9 of the multiply-adds.

- **Winograd convolution** (optional, ``winograd=True``): a 3x3 stride-1 conv computed with the
  Winograd F(4x4, 3x3) algorithm: 36 multiplies per 4x4 output tile and channel pair instead of 144,
  done as 36 batched matrix products (Lavin & Gray 2016). fp32 throughout, but the transforms
  round differently: about 1e-5 relative error per conv instead of 1e-7, which is why it is used
  by ``precision="fast"`` and not by ``exact``.

Results equal the original modules up to float rounding (a few 1e-7 relative; Winograd aside).
The rewritten copies are for inference only: they have no BatchNorm to train and different
state-dict keys.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from fomm.models.blocks import DownBlock2d, ResBlock2d, SameBlock2d, UpBlock2d


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
    rows ``i, i+1`` with ``w0 + w1, w2``; columns likewise.
    """

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        w = conv.weight.data  # (out, in, 3, 3)
        rows = [torch.stack([w[:, :, 0], w[:, :, 1] + w[:, :, 2]], 2),
                torch.stack([w[:, :, 0] + w[:, :, 1], w[:, :, 2]], 2)]  # each (out, in, 2, 3)
        kernels = []
        for a in range(2):
            r = rows[a]
            cols = [torch.stack([r[..., 0], r[..., 1] + r[..., 2]], -1),
                    torch.stack([r[..., 0] + r[..., 1], r[..., 2]], -1)]
            kernels.extend(cols)  # phase (a, 0), (a, 1): (out, in, 2, 2)
        self.weight = nn.Parameter(torch.cat(kernels, 0))  # (4*out, in, 2, 2)
        self.bias = nn.Parameter(conv.bias.data.repeat(4))
        self.out_channels = conv.out_channels

    def forward(self, x):
        b, _, h, w = x.shape
        c = self.out_channels
        # one padded input serves all phases: phase (a, b) reads rows i-1+a..i+a and cols j-1+b..j+b
        padded = F.pad(x, (1, 1, 1, 1))
        outs = []
        for a in range(2):
            for bb in range(2):
                k = 2 * a + bb
                outs.append(F.conv2d(padded[:, :, a:a + h + 1, bb:bb + w + 1],
                                     self.weight[k * c:(k + 1) * c], self.bias[k * c:(k + 1) * c]))
        out = torch.stack(outs, 2).view(b, c, 2, 2, h, w)          # (B, C, a, b, H, W)
        out = out.permute(0, 1, 4, 2, 5, 3).reshape(b, c, 2 * h, 2 * w)
        return F.relu(out)


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


# Winograd F(4x4, 3x3) matrices (interpolation points 0, +-1, +-2, inf): input transform B^T
# (6x6), filter transform G (6x3), output transform A^T (4x6); Y = A^T [(G g G^T) * (B^T d B)] A.
_WINO_BT = ((4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0),
            (0, -2, -1, 2, 1, 0), (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1))
_WINO_G = ((1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6),
           (1 / 24, 1 / 12, 1 / 6), (1 / 24, -1 / 12, 1 / 6), (0, 0, 1))
_WINO_AT = ((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1))


class WinogradConv3x3(nn.Module):
    """``conv(x)`` for a 3x3, stride-1, padding-1, ungrouped ``conv``, by Winograd F(4x4, 3x3).

    Input ``(B, C, H, W)`` is cut into overlapping 6x6 tiles (stride 4, ``T = ceil(H/4) *
    ceil(W/4)`` per image); each tile is transformed (``B^T d B``, a 36x36 matrix on the flattened
    tile), multiplied with the transformed filters ``U (36, O, C)`` as 36 matrix products
    ``(O, C) @ (C, B*T)``, and transformed back (``A^T m A``) to a 4x4 output tile.
    """

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        g = torch.tensor(_WINO_G, dtype=torch.float64)
        bt = torch.tensor(_WINO_BT, dtype=torch.float64)
        at = torch.tensor(_WINO_AT, dtype=torch.float64)
        w = conv.weight.data.double()                                    # (O, C, 3, 3)
        u = torch.einsum("ik,ockl,jl->ijoc", g, w, g)                    # (6, 6, O, C)
        dtype = conv.weight.dtype
        self.register_buffer("u", u.reshape(36, w.shape[0], w.shape[1]).to(dtype).contiguous())
        self.register_buffer("bt", torch.kron(bt, bt).to(dtype))        # (36, 36)
        self.register_buffer("at", torch.kron(at, at).to(dtype))        # (16, 36)
        bias = conv.bias.data if conv.bias is not None else torch.zeros(w.shape[0], dtype=dtype)
        self.register_buffer("bias", bias.clone())

    def forward(self, x):
        b, c, h, w = x.shape
        o = self.u.shape[1]
        th, tw = (h + 3) // 4, (w + 3) // 4
        padded = F.pad(x, (1, 4 * tw + 1 - w, 1, 4 * th + 1 - h))
        tiles = padded.unfold(2, 6, 4).unfold(3, 6, 4)                  # (B, C, th, tw, 6, 6)
        tiles = tiles.permute(4, 5, 1, 0, 2, 3).reshape(36, -1)         # (36, C*B*T)
        v = (self.bt @ tiles).view(36, c, b * th * tw)                  # (36, C, B*T)
        m = torch.bmm(self.u, v)                                        # (36, O, B*T)
        y = (self.at @ m.view(36, -1)).view(4, 4, o, b, th, tw)         # (4, 4, O, B, th, tw)
        y = y.permute(3, 2, 4, 0, 5, 1).reshape(b, o, 4 * th, 4 * tw)[:, :, :h, :w]
        return y + self.bias.view(1, -1, 1, 1)


def winograd_eligible(conv: nn.Module, min_channels: int = 64) -> bool:
    """Whether ``conv`` is a plain 3x3 same-size conv wide enough for Winograd to pay off."""
    return (isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3) and conv.stride == (1, 1)
            and conv.padding == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1
            and min(conv.in_channels, conv.out_channels) >= min_channels)


def _winograd(conv: nn.Module) -> nn.Module:
    return WinogradConv3x3(conv) if winograd_eligible(conv) else conv


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


def _use_winograd(module: nn.Module) -> None:
    for child in module.modules():
        if isinstance(child, FusedResBlock):
            child.conv1, child.conv2 = _winograd(child.conv1), _winograd(child.conv2)
        elif isinstance(child, FusedConvReLU):
            child.conv = _winograd(child.conv)


@torch.no_grad()
def optimize_for_inference(module: nn.Module, subpixel: bool = True, winograd: bool = False) -> nn.Module:
    """An eval-mode copy of ``module`` with BatchNorm folded and sub-pixel up-sampling; with
    ``winograd``, its wide 3x3 convs (residual and same/down blocks) also use Winograd F(4x4, 3x3)."""
    module = copy.deepcopy(module).eval()
    module = _rewrite(module, subpixel)
    if winograd:
        _use_winograd(module)
    for p in module.parameters():
        p.requires_grad_(False)
    return module
