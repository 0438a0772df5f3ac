"""ResNet-18 (He et al., 2016), the backbone of TPSMM's keypoint detector and background motion
predictor, written here so that fomm does not depend on torchvision.

State-dict keys are torchvision's ``resnet18`` keys (``conv1``, ``bn1``, ``layer1.0.conv1``, ...,
``layer2.0.downsample.0``, ``fc``), so the published TPSMM checkpoints load unchanged. The base
width (64 in torchvision) and the input channels are parameters: checkpoints say which they use.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN pairs plus a shortcut (a 1x1 conv-BN where the stride or width changes)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


class ResNet18(nn.Module):
    """``(B, in_channels, H, W) -> (B, num_outputs)``: a 7x7/2 conv, a 3x3/2 max-pool, four stages
    of two :class:`BasicBlock` (widths ``width * (1, 2, 4, 8)``), global average pooling, ``fc``."""

    def __init__(self, num_outputs: int, in_channels: int = 3, width: int = 64):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        widths = [width, 2 * width, 4 * width, 8 * width]
        self.layer1 = self._stage(width, widths[0], stride=1)
        self.layer2 = self._stage(widths[0], widths[1], stride=2)
        self.layer3 = self._stage(widths[1], widths[2], stride=2)
        self.layer4 = self._stage(widths[2], widths[3], stride=2)
        self.fc = nn.Linear(widths[3], num_outputs)

    @staticmethod
    def _stage(in_planes: int, planes: int, stride: int) -> nn.Sequential:
        return nn.Sequential(BasicBlock(in_planes, planes, stride), BasicBlock(planes, planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.max_pool2d(out, kernel_size=3, stride=2, padding=1)
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        pooled = torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)
        # the head regresses coordinates (keypoints, the background affine): under bf16 autocast
        # (training's --precision) it stays fp32 so they are not rounded to bf16's 8 bits
        with torch.autocast(pooled.device.type, enabled=False):
            return self.fc(pooled.to(self.fc.weight.dtype))


def resnet_width(state: dict[str, torch.Tensor], prefix: str) -> int:
    """The base width of a stored ResNet-18 (``conv1``'s output channels; 64 when published)."""
    return int(state[prefix + "conv1.weight"].shape[0])
