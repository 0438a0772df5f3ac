"""Animation Via Disentanglement (Sec. 3.4): an identity encoder (source keypoints), a pose encoder
(driving keypoints) and a decoder that gives the driving pose in the source's shape, for animating
across identities without a source-like first driving frame."""

from __future__ import annotations

import torch
from torch import nn


def _mlp(sizes: list[int], inplace: bool) -> nn.Sequential:
    """Linear, BN, ReLU between consecutive sizes; the last Linear alone (the original's indices)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers += [nn.BatchNorm1d(b), nn.ReLU(inplace=inplace)]
    return nn.Sequential(*layers)


class AVDNetwork(nn.Module):
    """``avd_network(kp_source, kp_driving)``: ``{'fg_kp': (B, 5K, 2)}`` each -> ``{'fg_kp': (B, 5K, 2)}``."""

    def __init__(self, num_tps: int, id_bottle_size: int = 64, pose_bottle_size: int = 64):
        super().__init__()
        self.num_tps = num_tps
        size = 5 * 2 * num_tps
        self.id_encoder = _mlp([size, 256, 512, 1024, id_bottle_size], inplace=True)
        self.pose_encoder = _mlp([size, 256, 512, 1024, pose_bottle_size], inplace=True)
        self.decoder = _mlp([pose_bottle_size + id_bottle_size, 1024, 512, 256, size], inplace=False)

    def forward(self, kp_source: dict, kp_driving: dict) -> dict[str, torch.Tensor]:
        b = kp_source["fg_kp"].shape[0]
        pose = self.pose_encoder(kp_driving["fg_kp"].reshape(b, -1))
        identity = self.id_encoder(kp_source["fg_kp"].reshape(b, -1))
        out = self.decoder(torch.cat([pose, identity], dim=1))
        return {"fg_kp": out.view(b, self.num_tps * 5, 2)}
