"""Background motion predictor (Sec. 3.1): a ResNet-18 on the source and driving frames stacked
along the channels regresses one affine transformation of the background."""

from __future__ import annotations

import torch
from torch import nn

from fomm.models.tpsmm.resnet import ResNet18


class BGMotionPredictor(nn.Module):
    """``bg_predictor(source, driving)`` (B, C, H, W) each -> (B, 3, 3) affine matrices whose third
    row is ``[0, 0, 1]``; it starts as the identity (``fc`` zero weights, identity bias)."""

    def __init__(self, num_channels: int = 3, width: int = 64):
        super().__init__()
        self.bg_encoder = ResNet18(6, in_channels=2 * num_channels, width=width)
        self.bg_encoder.fc.weight.data.zero_()
        self.bg_encoder.fc.bias.data.copy_(torch.tensor([1.0, 0, 0, 0, 1, 0]))

    def forward(self, source_image: torch.Tensor, driving_image: torch.Tensor) -> torch.Tensor:
        b = source_image.shape[0]
        affine = self.bg_encoder(torch.cat([source_image, driving_image], dim=1)).view(b, 2, 3)
        last_row = torch.tensor([0.0, 0, 1], dtype=affine.dtype, device=affine.device).expand(b, 1, 3)
        return torch.cat([affine, last_row], dim=1)
