"""Training losses of the First Order Motion Model, with the original's semantics.

``GeneratorFullModel(kp_extractor, generator, discriminator, train_params)(x)`` returns
``(loss_values, generated)`` for a batch ``x = {'source', 'driving'}`` (float32 NCHW in [0, 1]):

* ``perceptual``: for each scale s of ``train_params.scales``, the anti-aliased pyramid level of the
  prediction and of the driving frame go through VGG19; the loss is
  ``sum_s sum_i w_i * mean|f_i(pred_s) - f_i(real_s)|`` (real features carry no gradient);
* ``pixel`` (our addition, when ``loss_weights.pixel != 0``): ``w * mean_s mean|pred_s - real_s|``
  over the same pyramid levels, a direct signal for training without ImageNet VGG weights;
* ``pixel_motion`` (our addition, when ``loss_weights.pixel_motion != 0``): the same L1 weighted by
  where the driving frame moved away from the source, ``m_s = mean_c|real_s - source_s|``:
  ``w * mean_s sum(m_s * mean_c|pred_s - real_s|) / sum(m_s)``, so that thin moving parts (limbs)
  weigh as much as the rest of the frame;
* ``gen_gan`` (when ``generator_gan != 0``): least squares, ``w * mean((1 - D(pred))^2)`` per
  discriminator scale, and ``feature_matching``: ``w_i * mean|D_i(real) - D_i(pred)|`` per
  discriminator layer i; the discriminator sees the driving keypoints, detached, when it uses them;
* ``equivariance_value`` and ``equivariance_jacobian``: the driving frame is warped by a random
  affine + thin-plate-spline :class:`Transform`; with ``T`` that warp, ``kp_t`` the keypoints of the
  warped frame and ``J_T`` the warp's Jacobian (by autograd),
  ``w * mean|kp_driving - T(kp_t)|`` and ``w * mean|I - J_driving^-1 (J_T(kp_t) J_t)|``, both times
  the warm-up factor of :func:`fomm.training.recipe.equivariance_factor` (1 unless configured);
* ``kp_separation`` (our addition, when ``loss_weights.kp_separation != 0``): ``w * mean over
  keypoint pairs of exp(-d^2 / (2 sigma^2))`` on the source and driving keypoints
  (:func:`fomm.training.recipe.separation_loss`), which pushes keypoints apart;
* ``kp_motion`` (our addition, when ``loss_weights.kp_motion != 0``): ``w * mean over source and
  driving keypoints of sum_p m_p * min_k |g_p - kp_k|^2``, with ``m`` where the driving frame differs
  from the source, normalised to sum 1 (:func:`fomm.training.recipe.motion_coverage_loss`): every
  moving pixel pulls its nearest keypoint, so keypoints go onto the parts that move.

``DiscriminatorFullModel(...)(x, generated)`` returns ``{'disc_gan': w * mean((1 - D(real))^2 +
D(pred.detach())^2)}`` summed over scales.

Call order matters for spectral-norm discriminators (each train-mode call does one power
iteration): the generator loss calls D on the prediction, then on the real frame; so does the
discriminator loss, as the original.

Reproducing a stored run: pass ``transform=Transform.from_params(theta, control_params, ...)`` to
``GeneratorFullModel.forward`` (or set ``transform_override``) to bypass the random draw.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fomm.config import TrainParams
from fomm.errors import FommError
from fomm.models.blocks import ImagePyramid
from fomm.models.geometry import affine_grid, make_coordinate_grid, tps_warp_points
from fomm.training.recipe import (
    equivariance_factor,
    motion_coverage_loss,
    motion_map,
    separation_loss,
    spread_weight,
)
from fomm.training.speed import no_autocast
from fomm.training.vgg import build_vgg19


def _plain(section) -> dict:
    """A config section (dataclass or mapping) as a plain dict in the YAML schema."""
    if hasattr(section, "to_dict"):
        return section.to_dict()
    return dict(section)


def _unwrap(module: nn.Module) -> nn.Module:
    """The module inside DDP / torch.compile wrappers."""
    inner = module
    for _ in range(4):
        for attr in ("module", "_orig_mod"):
            wrapped = getattr(inner, attr, None)
            if isinstance(wrapped, nn.Module):
                inner = wrapped
                break
        else:
            return inner
    return inner


def detach_kp(kp: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value.detach() for key, value in kp.items()}


class Transform:
    """Random affine + thin-plate-spline warp of the plane (the equivariance transform).

    ``theta`` (B, 2, 3) = eye(2, 3) + N(0, sigma_affine); control points on a
    ``points_tps x points_tps`` coordinate grid; ``control_params`` (B, 1, P) = N(0, sigma_tps).
    Noise is drawn on the CPU (from ``generator`` or torch's global generator) in float32, so a
    seed gives the same warp on any device.
    """

    def __init__(
        self,
        bs: int,
        sigma_affine: float,
        sigma_tps: float | None = None,
        points_tps: int | None = None,
        generator: torch.Generator | None = None,
        device=None,
        **unused: Any,
    ):
        noise = torch.normal(mean=0.0, std=float(sigma_affine) * torch.ones([bs, 2, 3]), generator=generator)
        self.theta = (noise + torch.eye(2, 3).view(1, 2, 3)).to(device)
        self.bs = bs
        self.tps = sigma_tps is not None and points_tps is not None
        if self.tps:
            self.control_points = make_coordinate_grid((points_tps, points_tps), device=device).view(-1, 2)
            self.control_params = torch.normal(
                mean=0.0, std=float(sigma_tps) * torch.ones([bs, 1, points_tps**2]), generator=generator
            ).to(device)

    @classmethod
    def from_params(
        cls, theta: torch.Tensor, control_params: torch.Tensor | None = None, control_points: torch.Tensor | None = None
    ) -> Transform:
        """A transform with given parameters (e.g. saved by another implementation)."""
        t = cls.__new__(cls)
        t.theta = theta.float()
        t.bs = theta.shape[0]
        t.tps = control_params is not None
        if t.tps:
            t.control_params = control_params.float().reshape(t.bs, 1, -1)
            if control_points is None:
                n = int(round(t.control_params.shape[-1] ** 0.5))
                control_points = make_coordinate_grid((n, n), device=theta.device)
            t.control_points = control_points.float().reshape(-1, 2)
        return t

    def to(self, device) -> Transform:
        self.theta = self.theta.to(device)
        if self.tps:
            self.control_points = self.control_points.to(device)
            self.control_params = self.control_params.to(device)
        return self

    def warp_coordinates(self, coordinates: torch.Tensor) -> torch.Tensor:
        """Warp points ``(B or 1, N, 2)``; returns ``(B, N, 2)``."""
        if self.tps:
            return tps_warp_points(coordinates, self.theta, self.control_points, self.control_params)
        return affine_grid(self.theta.to(coordinates.dtype), coordinates)

    def transform_frame(self, frame: torch.Tensor) -> torch.Tensor:
        """Backward-warp a batch ``(B, C, H, W)`` with reflection padding, as the original."""
        h, w = frame.shape[2:]
        grid = make_coordinate_grid((h, w), frame.dtype, frame.device).view(1, h * w, 2)
        grid = self.warp_coordinates(grid).view(self.bs, h, w, 2)
        return F.grid_sample(frame, grid.to(frame.dtype), padding_mode="reflection", align_corners=False)

    def jacobian(self, coordinates: torch.Tensor) -> torch.Tensor:
        """``d warp / d coordinates`` at each point, ``(B, N, 2, 2)``, by autograd (differentiable)."""
        with torch.enable_grad():
            coords = coordinates if coordinates.requires_grad else coordinates.detach().requires_grad_(True)
            new = self.warp_coordinates(coords)
            grad_x = torch.autograd.grad(new[..., 0].sum(), coords, create_graph=True)[0]
            grad_y = torch.autograd.grad(new[..., 1].sum(), coords, create_graph=True)[0]
        return torch.stack([grad_x, grad_y], dim=-2)


class GeneratorFullModel(nn.Module):
    """Keypoint detector + generator (+ discriminator) with the generator-side losses.

    ``vgg``: a :class:`fomm.training.vgg.Vgg19`; built (ImageNet file or random substitute) when
    the perceptual weights are not all zero and none is given. ``transform_generator``: the
    ``torch.Generator`` the equivariance warp is drawn from (global RNG when None).
    """

    def __init__(
        self,
        kp_extractor: nn.Module,
        generator: nn.Module,
        discriminator: nn.Module | None,
        train_params: TrainParams | Mapping,
        vgg: nn.Module | None = None,
        transform_generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.kp_extractor = kp_extractor
        self.generator = generator
        self.discriminator = discriminator
        self.train_params = _plain(train_params)
        self.scales = list(self.train_params["scales"])
        self.loss_weights = _plain(self.train_params["loss_weights"])
        # the YAML dict omits default values: resolve them once here, not every step
        self.kp_separation_sigma = self.train_params.get("kp_separation_sigma", TrainParams().kp_separation_sigma)
        self.kp_motion_size = self.train_params.get("kp_motion_size", TrainParams().kp_motion_size)
        num_channels = getattr(_unwrap(generator), "num_channels", 3)
        self.pyramid = ImagePyramid(self.scales, num_channels)
        self.disc_scales = list(_unwrap(discriminator).scales) if discriminator is not None else []
        if self.loss_weights.get("generator_gan", 0) != 0 and discriminator is None:
            raise FommError("generator_gan is not 0 but there is no discriminator; build the model with one")
        self.vgg = None
        self.vgg_status: dict = {}
        if sum(self.loss_weights.get("perceptual", [])) != 0:
            if vgg is None:
                vgg, self.vgg_status = build_vgg19(config_value=self.train_params.get("vgg19_weights"))
            self.vgg = vgg
        self.transform_generator = transform_generator
        self.transform_override: Transform | None = None
        self.step = 0
        self.set_step(0)

    def set_step(self, step: int) -> None:
        """Tell the step-dependent recipe options (``kp_spread_init`` / ``kp_spread_steps`` and the
        equivariance warm-up) which training step comes next; the trainer calls it before each step."""
        self.step = int(step)
        kp = _unwrap(self.kp_extractor)
        if hasattr(kp, "spread_weight"):
            kp.spread_weight = spread_weight(self.train_params, self.step)

    def make_transform(self, driving: torch.Tensor) -> Transform:
        tp = _plain(self.train_params["transform_params"])
        return Transform(driving.shape[0], generator=self.transform_generator, device=driving.device, **tp)

    def forward(self, x: Mapping[str, torch.Tensor], transform: Transform | None = None):
        """The generator-side losses for a batch ``x = {'source', 'driving'}``, each ``(B, C, H, W)``.

        Returns ``(loss_values, generated)``: a dict of scalar losses (only the terms with non-zero
        weight, in the order below) and the generator's outputs plus ``kp_source`` / ``kp_driving``
        (and ``transformed_frame`` / ``transformed_kp`` when an equivariance term is on).
        """
        kp_source, kp_driving = self.keypoints(x["source"], x["driving"])
        generated = self.generate(x["source"], kp_source, kp_driving)
        pyramide_real = self.pyramid(x["driving"])
        pyramide_generated = self.pyramid(generated["prediction"])
        pyramide_source = self.pyramid(x["source"]) if self.loss_weights.get("pixel_motion", 0) != 0 else None

        loss_values: dict[str, torch.Tensor] = {}
        loss_values.update(self.reconstruction_losses(pyramide_generated, pyramide_real, pyramide_source))
        loss_values.update(self.adversarial_losses(pyramide_generated, pyramide_real, kp_driving))
        loss_values.update(self.separation_losses(kp_source, kp_driving))
        loss_values.update(self.motion_losses(x["source"], x["driving"], kp_source, kp_driving))
        loss_values.update(self.equivariance_losses(x["driving"], kp_driving, generated, transform))
        return loss_values, generated

    def keypoints(self, source: torch.Tensor, driving: torch.Tensor) -> tuple[dict, dict]:
        """Keypoints of the source and of the driving frame (in that order, as the original).

        Each is ``{'value': (B, K, 2), 'jacobian': (B, K, 2, 2) when estimated}``.
        """
        return self.kp_extractor(source), self.kp_extractor(driving)

    def generate(self, source: torch.Tensor, kp_source: dict, kp_driving: dict) -> dict:
        """The source ``(B, C, H, W)`` animated by the keypoint motion; ``generated['prediction']``
        is ``(B, C, H, W)``; the keypoints are added under ``kp_source`` / ``kp_driving``."""
        generated = self.generator(source, kp_source=kp_source, kp_driving=kp_driving)
        generated.update({"kp_source": kp_source, "kp_driving": kp_driving})
        return generated

    def reconstruction_losses(
        self, pyramide_generated: dict, pyramide_real: dict, pyramide_source: dict | None = None
    ) -> dict[str, torch.Tensor]:
        """``perceptual``, ``pixel`` and ``pixel_motion`` on the pyramids ``{'prediction_<s>': (B, C, H*s,
        W*s)}``; ``pixel_motion`` needs the source's pyramid."""
        values: dict[str, torch.Tensor] = {}
        if self.vgg is not None:
            values["perceptual"] = self.perceptual_loss(pyramide_generated, pyramide_real)
        if self.loss_weights.get("pixel", 0) != 0:
            values["pixel"] = self.pixel_loss(pyramide_generated, pyramide_real)
        if self.loss_weights.get("pixel_motion", 0) != 0:
            if pyramide_source is None:
                raise FommError("loss_weights.pixel_motion is on but no source pyramid was given")
            values["pixel_motion"] = self.pixel_motion_loss(pyramide_generated, pyramide_real, pyramide_source)
        return values

    def perceptual_loss(self, pyramide_generated: dict, pyramide_real: dict) -> torch.Tensor:
        """``sum_s sum_i w_i * mean|vgg_i(pred_s) - vgg_i(real_s)|``; the real features carry no gradient."""
        weights = self.loss_weights["perceptual"]
        value_total = 0
        depth = max(i + 1 for i, w in enumerate(weights) if w)  # deeper layers are not needed
        for scale in self.scales:
            key = "prediction_" + str(scale)
            x_vgg = self.vgg(pyramide_generated[key], depth=depth)
            with torch.no_grad():
                y_vgg = self.vgg(pyramide_real[key], depth=depth)
            for i, weight in enumerate(weights):
                if weight == 0:
                    continue
                value = torch.abs(x_vgg[i] - y_vgg[i].detach()).mean()
                value_total = value_total + weight * value
        return value_total

    def pixel_loss(self, pyramide_generated: dict, pyramide_real: dict) -> torch.Tensor:
        """``w * mean_s mean|pred_s - real_s|`` over the pyramid levels."""
        value = sum(
            torch.abs(pyramide_generated[f"prediction_{s}"] - pyramide_real[f"prediction_{s}"]).mean()
            for s in self.scales
        ) / len(self.scales)
        return self.loss_weights["pixel"] * value

    def pixel_motion_loss(self, pyramide_generated: dict, pyramide_real: dict, pyramide_source: dict) -> torch.Tensor:
        """``w * mean_s sum(m_s * mean_c|pred_s - real_s|) / sum(m_s)`` with the motion weight
        ``m_s = mean_c|real_s - source_s|`` ``(B, 1, H*s, W*s)`` (no gradient); 0 where nothing moved."""
        value = 0
        for s in self.scales:
            key = f"prediction_{s}"
            weight = torch.abs(pyramide_real[key] - pyramide_source[key]).mean(dim=1, keepdim=True).detach()
            error = torch.abs(pyramide_generated[key] - pyramide_real[key]).mean(dim=1, keepdim=True)
            value = value + (weight * error).sum() / weight.sum().clamp_min(1e-8)
        return self.loss_weights["pixel_motion"] * value / len(self.scales)

    def adversarial_losses(self, pyramide_generated: dict, pyramide_real: dict, kp_driving: dict) -> dict:
        """``gen_gan`` and ``feature_matching`` (when ``generator_gan != 0``).

        The discriminator sees the prediction first, then the real frame (the spectral-norm power
        iterations run in that order), with the driving keypoints detached.
        """
        if self.loss_weights.get("generator_gan", 0) == 0:
            return {}
        kp_d = detach_kp(kp_driving)
        maps_generated = self.discriminator(pyramide_generated, kp=kp_d)
        maps_real = self.discriminator(pyramide_real, kp=kp_d)
        values = {"gen_gan": self.gen_gan_loss(maps_generated)}
        if sum(self.loss_weights.get("feature_matching", [])) != 0:
            values["feature_matching"] = self.feature_matching_loss(maps_generated, maps_real)
        return values

    def gen_gan_loss(self, maps_generated: dict) -> torch.Tensor:
        """Least squares: ``sum over discriminator scales of w * mean((1 - D(pred))^2)``."""
        value_total = 0
        for scale in self.disc_scales:
            value = ((1 - maps_generated[f"prediction_map_{scale}"]) ** 2).mean()
            value_total = value_total + self.loss_weights["generator_gan"] * value
        return value_total

    def feature_matching_loss(self, maps_generated: dict, maps_real: dict) -> torch.Tensor:
        """``sum over scales and layers i of w_i * mean|D_i(real) - D_i(pred)|``."""
        weights = self.loss_weights["feature_matching"]
        value_total = 0
        for scale in self.disc_scales:
            key = f"feature_maps_{scale}"
            for i, (a, b) in enumerate(zip(maps_real[key], maps_generated[key])):
                if weights[i] == 0:
                    continue
                value = torch.abs(a - b).mean()
                value_total = value_total + weights[i] * value
        return value_total

    def separation_losses(self, kp_source: dict, kp_driving: dict) -> dict[str, torch.Tensor]:
        """``kp_separation`` (when on): the mean of the source's and the driving's pair penalties."""
        if self.loss_weights.get("kp_separation", 0) == 0:
            return {}
        sigma = self.kp_separation_sigma
        value = (separation_loss(kp_source["value"], sigma) + separation_loss(kp_driving["value"], sigma)) / 2
        return {"kp_separation": self.loss_weights["kp_separation"] * value}

    def motion_losses(self, source, driving, kp_source: dict, kp_driving: dict) -> dict[str, torch.Tensor]:
        """``kp_motion`` (when on): the motion coverage prior of the source's and the driving's
        keypoints ``(B, K, 2)`` for the pixels that differ between ``source`` and ``driving``."""
        if self.loss_weights.get("kp_motion", 0) == 0:
            return {}
        motion = motion_map(source, driving, self.kp_motion_size)
        value = (
            motion_coverage_loss(kp_source["value"], motion) + motion_coverage_loss(kp_driving["value"], motion)
        ) / 2
        return {"kp_motion": self.loss_weights["kp_motion"] * value}

    def equivariance_losses(
        self, driving: torch.Tensor, kp_driving: dict, generated: dict, transform: Transform | None
    ) -> dict[str, torch.Tensor]:
        """``equivariance_value`` / ``equivariance_jacobian`` (the terms that are on).

        ``driving`` ``(B, C, H, W)`` is warped by ``transform`` (else ``transform_override``, else a
        fresh random draw); the warped frame and its keypoints are added to ``generated``. Both terms
        are computed in float32 (autocast off) and scaled by the warm-up factor.
        """
        lw = self.loss_weights
        if (lw.get("equivariance_value", 0) + lw.get("equivariance_jacobian", 0)) == 0:
            return {}
        transform = transform or self.transform_override or self.make_transform(driving)
        transform = transform.to(driving.device)
        transformed_frame = transform.transform_frame(driving)
        transformed_kp = self.kp_extractor(transformed_frame)
        generated["transformed_frame"] = transformed_frame
        generated["transformed_kp"] = transformed_kp

        factor = equivariance_factor(self.train_params, self.step)
        values: dict[str, torch.Tensor] = {}
        with no_autocast(driving.device.type):
            if lw.get("equivariance_value", 0) != 0:
                value = equivariance_value(kp_driving, transformed_kp, transform)
                values["equivariance_value"] = factor * lw["equivariance_value"] * value
            if lw.get("equivariance_jacobian", 0) != 0:
                value = equivariance_jacobian(kp_driving, transformed_kp, transform)
                values["equivariance_jacobian"] = factor * lw["equivariance_jacobian"] * value
        return values


def equivariance_value(kp_driving: Mapping, transformed_kp: Mapping, transform: Transform) -> torch.Tensor:
    """``mean|kp_driving - T(kp_t)|`` with keypoint values ``(B, K, 2)``, in float32."""
    kp_value = kp_driving["value"].float()
    t_value = transformed_kp["value"].float()
    return torch.abs(kp_value - transform.warp_coordinates(t_value)).mean()


def equivariance_jacobian(kp_driving: Mapping, transformed_kp: Mapping, transform: Transform) -> torch.Tensor:
    """``mean|I - J_driving^-1 (J_T(kp_t) J_t)|`` with Jacobians ``(B, K, 2, 2)``, in float32."""
    if "jacobian" not in kp_driving:
        raise FommError(
            "equivariance_jacobian is not 0 but the model estimates no Jacobians; set "
            "loss_weights.equivariance_jacobian: 0 or estimate_jacobian: true"
        )
    t_value = transformed_kp["value"].float()
    jacobian_transformed = torch.matmul(transform.jacobian(t_value), transformed_kp["jacobian"].float())
    normed_driving = torch.inverse(kp_driving["jacobian"].float())
    value = torch.matmul(normed_driving, jacobian_transformed)
    eye = torch.eye(2, dtype=value.dtype, device=value.device).view(1, 1, 2, 2)
    return torch.abs(eye - value).mean()


class DiscriminatorFullModel(nn.Module):
    """The discriminator's least-squares loss on the real driving frame and the detached prediction."""

    def __init__(
        self,
        kp_extractor: nn.Module | None,
        generator: nn.Module | None,
        discriminator: nn.Module,
        train_params: TrainParams | Mapping,
    ):
        super().__init__()
        self.discriminator = discriminator
        self.train_params = _plain(train_params)
        self.scales = list(_unwrap(discriminator).scales)
        num_channels = getattr(_unwrap(generator), "num_channels", 3) if generator is not None else 3
        self.pyramid = ImagePyramid(self.scales, num_channels)
        self.loss_weights = _plain(self.train_params["loss_weights"])

    def forward(self, x: Mapping[str, torch.Tensor], generated: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        pyramide_real = self.pyramid(x["driving"])
        pyramide_generated = self.pyramid(generated["prediction"].detach())
        kp_driving = detach_kp(generated["kp_driving"])
        maps_generated = self.discriminator(pyramide_generated, kp=kp_driving)
        maps_real = self.discriminator(pyramide_real, kp=kp_driving)
        value_total = 0
        for scale in self.scales:
            key = f"prediction_map_{scale}"
            value = (1 - maps_real[key]) ** 2 + maps_generated[key] ** 2
            value_total = value_total + self.loss_weights["discriminator_gan"] * value.mean()
        return {"disc_gan": value_total}
