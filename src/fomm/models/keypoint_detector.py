"""Keypoint detector: an hourglass predicts K heatmaps; soft-argmax gives the keypoints and a
heatmap-weighted 2x2 Jacobian per keypoint models the motion around it as a local affine map
(the first-order terms of Eq. 4; trained by the equivariance constraints of Sec. 3.3, Eq. 7)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from fomm.models.blocks import AntiAliasInterpolation2d, Hourglass
from fomm.models.geometry import at_least_fp32, heatmap_to_keypoints, make_coordinate_grid

GOLDEN_ANGLE = math.pi * (3 - math.sqrt(5))


def spread_centers(num_kp: int, radius: float = 0.5) -> torch.Tensor:
    """``(K, 2)`` points spread evenly over a disc of ``radius`` (normalised coordinates, a Vogel
    sunflower spiral): where :func:`spread_logit_bias` starts the keypoints."""
    k = torch.arange(num_kp, dtype=torch.float64)
    r = radius * torch.sqrt((k + 0.5) / num_kp)
    theta = k * GOLDEN_ANGLE
    return torch.stack([r * torch.cos(theta), r * torch.sin(theta)], dim=1).float()


def spread_logit_bias(num_kp: int, h: int, w: int, sigma: float = 0.15, radius: float = 0.5) -> torch.Tensor:
    """``(K, h, w)`` bias ``-|x - c_k|^2 / (2 sigma^2)`` on the heatmap logits (after the
    temperature): with weight w it pulls keypoint k's soft-argmax towards its own centre c_k of
    :func:`spread_centers`, so training starts with the keypoints spread over the frame."""
    grid = make_coordinate_grid((h, w), torch.float32)  # (h, w, 2), x first
    centers = spread_centers(num_kp, radius)
    d2 = ((grid.view(1, h, w, 2) - centers.view(num_kp, 1, 1, 2)) ** 2).sum(-1)
    return -d2 / (2 * sigma**2)


class KPDetector(nn.Module):
    """``kp_detector(image (B, C, H, W))`` returns ``{'value': (B, K, 2), 'jacobian': (B, K, 2, 2)}``.

    The heatmap grid spans the valid 7x7-conv output (``H * scale_factor - 6`` cells when
    ``pad == 0``), not the image: that is the original convention and checkpoints depend on it.

    ``spread_weight`` (a plain attribute, 0 unless training sets it, never saved) adds that multiple
    of :func:`spread_logit_bias` to the tempered logits (the ``kp_spread_init`` training option).
    """

    def __init__(
        self,
        block_expansion: int,
        num_kp: int,
        num_channels: int,
        max_features: int,
        num_blocks: int,
        temperature: float,
        estimate_jacobian: bool = False,
        scale_factor: float = 1,
        single_jacobian_map: bool = False,
        pad: int = 0,
        anti_alias_sigma: float | None = None,
    ):
        super().__init__()
        self.predictor = Hourglass(
            block_expansion, in_features=num_channels, max_features=max_features, num_blocks=num_blocks
        )
        self.kp = nn.Conv2d(self.predictor.out_filters, num_kp, kernel_size=(7, 7), padding=pad)
        if estimate_jacobian:
            self.num_jacobian_maps = 1 if single_jacobian_map else num_kp
            self.jacobian = nn.Conv2d(
                self.predictor.out_filters, 4 * self.num_jacobian_maps, kernel_size=(7, 7), padding=pad
            )
            self.jacobian.weight.data.zero_()
            self.jacobian.bias.data.copy_(torch.tensor([1, 0, 0, 1] * self.num_jacobian_maps, dtype=torch.float))
        else:
            self.jacobian = None
        self.num_kp = num_kp
        self.temperature = temperature
        self.scale_factor = scale_factor
        self.spread_weight = 0.0
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor, anti_alias_sigma)

    def heatmap_logits(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw heatmap logits ``(B, K, h, w)`` and the hourglass feature map."""
        if self.scale_factor != 1:
            image = self.down(image)
        feature_map = self.predictor(image.to(self.kp.weight.dtype))  # the weights' dtype (fp32 unless converted)
        return at_least_fp32(self.kp(feature_map)), feature_map

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        logits, feature_map = self.heatmap_logits(image)
        bs, num_kp, h, w = logits.shape
        logits = logits / self.temperature
        if self.spread_weight:
            bias = spread_logit_bias(num_kp, h, w).to(logits.device, logits.dtype)
            logits = logits + self.spread_weight * bias
        heatmap = F.softmax(logits.view(bs, num_kp, -1), dim=2).view(bs, num_kp, h, w)
        out = {"value": heatmap_to_keypoints(heatmap)}
        if self.jacobian is not None:
            jacobian_map = at_least_fp32(self.jacobian(feature_map)).reshape(bs, self.num_jacobian_maps, 4, h, w)
            jacobian = (heatmap.unsqueeze(2) * jacobian_map).view(bs, num_kp, 4, -1).sum(dim=-1)
            out["jacobian"] = jacobian.view(bs, num_kp, 2, 2)
        return out
