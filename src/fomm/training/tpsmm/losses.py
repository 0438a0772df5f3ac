"""The TPSMM training objective (Sec. 3.5 of Zhao and Zhang, CVPR 2022; the original's
``GeneratorFullModel``):

- the multi-scale perceptual loss: VGG-19 feature L1 between the generated and the driving frame's
  image pyramids (weights ``loss_weights.perceptual`` per VGG slice, summed over ``scales``);
- equivariance: the keypoints of a driving frame warped by a random TPS, mapped back by it, equal
  the driving frame's keypoints (L1, ``equivariance_value``);
- the warp loss: the source's warped, masked encoder maps equal the driving frame's masked encoder
  maps (L1 summed over the scales, ``warp_loss``; only the flow gets its gradient);
- the background loss from epoch ``bg_start``: the background affines source -> driving and
  driving -> source compose to the identity (``bg``);
- our addition ``pixel`` (default 0): a multi-scale pixel L1, for training without ImageNet VGG-19.

Before ``dropout_epoch`` the contribution maps are trained with dropout (Eq. 7-8), its
probability rising linearly from ``dropout_startp`` by ``dropout_maxp`` per ``dropout_inc_epoch``
epochs, capped at ``dropout_maxp``.

Under bf16 autocast (``--precision bf16``/``auto``, applied by the trainer) the keypoint detector,
background predictor, inpainting network and VGG-19 convolutions run in bf16, while the keypoints
(the ResNet head), the TPS solve, the sampling grids, the dense motion network, the random warps
and the background affines stay fp32 (:func:`fomm.training.speed.no_autocast`), as FOMM's objective keeps its geometry fp32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fomm.config.limits import perceptual_depth
from fomm.models.blocks import ImagePyramid
from fomm.models.tpsmm.tps import RandomTPS
from fomm.training.speed import no_autocast

COMPILED = ("kp_detector", "inpainting_network")  # the parts --compile compiles


def dropout_probability(epoch: int, train_params) -> float | None:
    """The contribution-map dropout probability at ``epoch`` (None: no dropout any more)."""
    tp = train_params
    if epoch >= tp.dropout_epoch:
        return None
    return min(epoch / tp.dropout_inc_epoch * tp.dropout_maxp + tp.dropout_startp, tp.dropout_maxp)


class TpsmmObjective(nn.Module):
    """``objective(batch, epoch)`` with ``batch = {'source', 'driving'}`` (B, 3, H, W) returns the
    weighted loss terms and the generated outputs."""

    def __init__(self, model, train_params, vgg: nn.Module | None, generator: torch.Generator | None = None):
        super().__init__()
        self.model = model
        self.tp = train_params
        self.weights = train_params.loss_weights
        self.pyramid = ImagePyramid(train_params.scales, model.config.model_params.common_params.num_channels)
        self.vgg = vgg
        self.generator = generator  # the random TPS warps' own RNG (exact resume)
        self.parts = {name: getattr(model, name) for name in COMPILED}  # what forward calls (maybe compiled)

    def compile_parts(self, compile_fn=None) -> None:
        """``--compile``: call the keypoint detector and the inpainting network compiled (the same
        parameters). The dense motion network, called through several of its methods, stays eager."""
        compile_fn = compile_fn or torch.compile
        self.parts = {name: compile_fn(getattr(self.model, name)) for name in COMPILED}

    def forward(self, x: dict, epoch: int) -> tuple[dict, dict]:
        m = self.model
        detect = self.parts["kp_detector"]
        kp_source, kp_driving = detect(x["source"]), detect(x["driving"])
        use_bg = m.bg_predictor is not None and epoch >= self.tp.bg_start
        bg_param = m.bg_predictor(x["source"], x["driving"]) if use_bg else None
        dense = self.dense_motion(x["source"], kp_source, kp_driving, bg_param, dropout_probability(epoch, self.tp))
        generated = self.parts["inpainting_network"](x["source"], dense)
        generated.update({"kp_source": kp_source, "kp_driving": kp_driving})
        losses = self.reconstruction(x["driving"], generated["prediction"])
        if self.weights.equivariance_value:
            value = self.equivariance(x["driving"], kp_driving, generated)
            losses["equivariance_value"] = self.weights.equivariance_value * value
        if self.weights.warp_loss:
            losses["warp_loss"] = self.weights.warp_loss * self.warp(x["driving"], generated)
        if use_bg and self.weights.bg:
            reverse = m.bg_predictor(x["driving"], x["source"])
            eye = torch.eye(3, dtype=reverse.dtype, device=reverse.device)
            with no_autocast(reverse.device.type):
                losses["bg"] = self.weights.bg * torch.abs(eye - torch.matmul(bg_param, reverse)).mean()
        return losses, generated

    def dense_motion(self, source, kp_source: dict, kp_driving: dict, bg_param, p: float | None) -> dict:
        """The dense motion network's outputs (dropout with probability ``p``, none when None), the
        same as calling it, in fp32 even under bf16 autocast: its sampling grids (the TPS solve and
        warps, matrix products autocast would round) and its hourglass, whose bf16 error in the
        contribution maps the TPS grids amplify (measured for fast inference, which keeps it fp32
        too; it runs at ``scale_factor`` resolution, a few % of a step)."""
        dense = self.model.dense_motion_network
        with no_autocast(source.device.type):
            small = dense.down(source) if dense.scale_factor != 1 else source
            bg = None if bg_param is None else bg_param.float()
            kp_d, kp_s = ({"fg_kp": kp["fg_kp"].float()} for kp in (kp_driving, kp_source))
            grids = dense.transformations(kp_d["fg_kp"], kp_s["fg_kp"], tuple(small.shape[2:]), bg)
            return dense.from_transformations(small.float(), kp_d, kp_s, grids, p is not None, p or 0.0)

    def reconstruction(self, driving: torch.Tensor, prediction: torch.Tensor) -> dict:
        """The perceptual (and pixel) terms over the image pyramid."""
        real, fake = self.pyramid(driving), self.pyramid(prediction)
        losses = {}
        depth = perceptual_depth(self.weights.perceptual)  # the deeper slices are not needed
        if self.vgg is not None and depth:
            total = 0
            for key in real:
                x_vgg, y_vgg = self.vgg(fake[key], depth=depth), self.vgg(real[key], depth=depth)
                for w, a, b in zip(self.weights.perceptual, x_vgg, y_vgg):
                    total = total + w * torch.abs(a - b.detach()).mean()
            losses["perceptual"] = total
        if self.weights.pixel:
            pixel = sum(torch.abs(fake[k] - real[k].detach()).mean() for k in real) / len(real)
            losses["pixel"] = self.weights.pixel * pixel
        return losses

    def equivariance(self, driving: torch.Tensor, kp_driving: dict, generated: dict | None = None) -> torch.Tensor:
        """L1 between the keypoints and those of a randomly TPS-warped frame, mapped back; the warped
        frame and its keypoints go into ``generated`` (``transformed_frame``, ``transformed_kp``)."""
        tp = self.tp.transform_params
        warp = RandomTPS(driving.shape[0], tp.sigma_affine, tp.sigma_tps, tp.points_tps, generator=self.generator)
        with no_autocast(driving.device.type):
            grid = warp.grid(driving)
            warped_frame = F.grid_sample(driving, grid, padding_mode="reflection", align_corners=True)
        kp_warped = self.parts["kp_detector"](warped_frame)["fg_kp"]
        if generated is not None:
            generated.update(transformed_frame=warped_frame.detach(), transformed_kp={"fg_kp": kp_warped.detach()})
        with no_autocast(driving.device.type):
            return torch.abs(kp_driving["fg_kp"].float() - warp.warp_coordinates(kp_warped.float())).mean()

    def warp(self, driving: torch.Tensor, generated: dict) -> torch.Tensor:
        """L1 between the driving frame's masked encoder maps and the source's warped ones."""
        targets = self.model.inpainting_network.driving_encoding(driving, generated["occlusion_map"])
        warped = generated["warped_encoder_maps"]
        return sum(torch.abs(t - w).mean() for t, w in zip(targets, reversed(warped)))


def random_scale(kp: torch.Tensor, scale: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """The AVD stage's augmentation: keypoints (B, N, 2) scaled per axis by U(1 - s, 1 + s)."""
    factors = torch.rand(kp.shape[0], 1, 2, generator=generator).to(kp) * (2 * scale) + (1 - scale)
    return kp * factors
