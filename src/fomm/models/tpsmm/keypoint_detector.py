"""TPSMM's keypoint detector (Sec. 3.1): a ResNet-18 regresses K groups of 5 keypoints, the control
points of the K thin-plate spline transformations."""

from __future__ import annotations

import torch
from torch import nn

from fomm.models.tpsmm.resnet import ResNet18


class TpsKeypointDetector(nn.Module):
    """``kp_detector(image (B, C, H, W))`` returns ``{'fg_kp': (B, 5K, 2)}`` in [-1, 1]
    (x along the width); keypoints 5k..5k+4 belong to transformation k."""

    def __init__(self, num_tps: int, num_channels: int = 3, width: int = 64):
        super().__init__()
        self.num_tps = num_tps
        self.fg_encoder = ResNet18(num_tps * 5 * 2, in_channels=num_channels, width=width)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        fg_kp = torch.sigmoid(self.fg_encoder(image)) * 2 - 1
        return {"fg_kp": fg_kp.view(image.shape[0], self.num_tps * 5, 2)}
