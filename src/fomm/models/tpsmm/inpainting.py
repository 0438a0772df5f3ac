"""TPSMM's inpainting network (Sec. 3.3): an encoder of the source whose feature maps are warped by
the optical flow and masked by the multi-resolution occlusion masks at every scale, then decoded
into the driving frame; occluded regions are inpainted, visible ones taken from the warped
source."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fomm.models.blocks import DownBlock2d, ResBlock2d, SameBlock2d, UpBlock2d, channels
from fomm.models.geometry import at_least_fp32
from fomm.models.tpsmm.dense_motion import instance_norm


def deform(features: torch.Tensor, deformation: torch.Tensor) -> torch.Tensor:
    """Sample ``features`` (B, C, H, W) along the flow (B, h, w, 2), resized (bilinear, corners
    aligned) to (H, W) first when needed."""
    h, w = features.shape[2:]
    if deformation.shape[1:3] != (h, w):
        flow = F.interpolate(deformation.permute(0, 3, 1, 2), size=(h, w), mode="bilinear", align_corners=True)
        deformation = flow.permute(0, 2, 3, 1)
    return F.grid_sample(features, deformation, align_corners=True)


class InpaintingNetwork(nn.Module):
    """``inpainting_network(source_image (B, C, H, W), dense_motion)`` returns ``prediction`` and
    ``deformed`` (B, C, H, W), the dense-motion outputs it used, and ``warped_encoder_maps`` (the
    warped, masked source features, coarsest first, for the warp loss)."""

    def __init__(
        self,
        num_channels: int,
        block_expansion: int,
        max_features: int,
        num_down_blocks: int,
        multi_mask: bool = True,
        **_,
    ):
        super().__init__()
        self.num_channels = num_channels
        self.num_down_blocks = num_down_blocks
        self.multi_mask = multi_mask
        self.first = SameBlock2d(num_channels, block_expansion, kernel_size=7, padding=3, norm=instance_norm)
        down, up, res = [], [], []
        for i in range(num_down_blocks):
            c_in, c_out = channels(block_expansion, max_features, i), channels(block_expansion, max_features, i + 1)
            down.append(DownBlock2d(c_in, c_out, norm=instance_norm))
            decoder_in = c_out if i == num_down_blocks - 1 else 2 * c_out  # the deepest level has no skip
            up.append(UpBlock2d(decoder_in, c_in, norm=instance_norm))
            res += [ResBlock2d(decoder_in, norm=instance_norm), ResBlock2d(decoder_in, norm=instance_norm)]
        self.down_blocks = nn.ModuleList(down)
        self.up_blocks = nn.ModuleList(up[::-1])
        self.resblock = nn.ModuleList(res[::-1])
        self.final = nn.Conv2d(block_expansion, num_channels, kernel_size=7, padding=3)

    @property
    def compute_dtype(self) -> torch.dtype:
        """The dtype the convolutions run in: their weights' (fp32, or bf16/fp16 once fast
        inference converted them, :func:`fomm.models.fused.to_low_precision`)."""
        return self.final.weight.dtype

    def encode(self, source_image: torch.Tensor) -> list[torch.Tensor]:
        """The source's feature maps, finest (full size) first: depends on the source only. They
        come back at least fp32 (one cast per source): they are warped with fp32 sampling grids."""
        maps = [self.first(source_image.to(self.compute_dtype))]
        for down in self.down_blocks:
            maps.append(down(maps[-1]))
        return [at_least_fp32(m) for m in maps]

    def forward(self, source_image: torch.Tensor, dense_motion: dict) -> dict:
        return self.decode(self.encode(source_image), source_image, dense_motion)

    def decode(self, encoder_maps: list[torch.Tensor], source_image: torch.Tensor, dense_motion: dict) -> dict:
        """:meth:`forward` from the source's :meth:`encode` maps."""
        deformation, masks = dense_motion["deformation"], dense_motion["occlusion_map"]
        out = self.occlude(deform(encoder_maps[-1], deformation), masks[0])
        warped = [self._warp_for_loss(encoder_maps[-1], out, deformation, masks[0])]
        for i in range(self.num_down_blocks):
            out = self.up_blocks[i](self.resblock[2 * i + 1](self.resblock[2 * i](out.to(self.compute_dtype))))
            skip = encoder_maps[-(i + 2)]
            mask = masks[i + 1 if self.multi_mask else 0]
            warped_skip = self.occlude(deform(skip, deformation), mask)
            warped.append(self._warp_for_loss(skip, warped_skip, deformation, mask))
            if i < self.num_down_blocks - 1:
                out = torch.cat([out, warped_skip.to(out.dtype)], dim=1)
        deformed_source = deform(source_image, deformation)
        last = masks[-1]
        if not self.multi_mask:
            last = F.interpolate(last, size=out.shape[2:], mode="bilinear", align_corners=True)
        # occluded regions come from the decoder, visible ones from the warped features / source
        # (the masks and the blend in fp32, the final conv in the weights' dtype, its sigmoid fp32)
        blended = (out * (1 - last) + warped_skip).to(self.compute_dtype)
        out = torch.sigmoid(at_least_fp32(self.final(blended)))
        prediction = out * (1 - last) + deformed_source * last
        return {
            "contribution_maps": dense_motion["contribution_maps"],
            "deformed_source": dense_motion["deformed_source"],
            "occlusion_map": masks,
            "deformed": deformed_source,
            "warped_encoder_maps": warped,
            "prediction": prediction,
        }

    def occlude(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``features * mask``; a single mask is resized to the features first."""
        if not self.multi_mask and mask.shape[2:] != features.shape[2:]:
            mask = F.interpolate(mask, size=features.shape[2:], mode="bilinear", align_corners=True)
        return features * mask

    def _warp_for_loss(self, features, warped, deformation, mask) -> torch.Tensor:
        """The warped map the warp loss compares: gradients reach the flow only (the features and
        the mask detached). Equal to ``warped`` in value, so it is reused when nothing trains."""
        if not torch.is_grad_enabled():
            return warped
        return self.occlude(deform(features.detach(), deformation), mask.detach())

    def driving_encoding(self, driving_image: torch.Tensor, masks: list[torch.Tensor]) -> list[torch.Tensor]:
        """The warp loss' targets: the driving frame's feature maps masked by the occlusion masks
        (finest first, all detached; the original's ``get_encode``)."""
        out = self.first(driving_image)
        maps = [self.occlude(out.detach(), masks[-1].detach())]
        for i, down in enumerate(self.down_blocks):
            out = down(out.detach())
            maps.append(self.occlude(out.detach(), masks[len(masks) - 2 - i].detach()).detach())
        return maps
