"""Training losses of the First Order Motion Model, with the original's semantics.

``GeneratorFullModel(kp_extractor, generator, discriminator, train_params)(x)`` returns
``(loss_values, generated)`` for a batch ``x = {'source', 'driving'}`` (float32 NCHW in [0, 1]):

* ``perceptual``: for each scale s of ``train_params.scales``, the anti-aliased pyramid level of the
  prediction and of the driving frame go through VGG19; the loss is
  ``sum_s sum_i w_i * mean|f_i(pred_s) - f_i(real_s)|`` (real features carry no gradient);
* ``pixel`` (our addition, when ``loss_weights.pixel != 0``): ``w * mean_s mean|pred_s - real_s|``
  over the same pyramid levels, a direct signal for training without ImageNet VGG weights;
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
  (:func:`fomm.training.recipe.separation_loss`), which pushes keypoints apart.

``DiscriminatorFullModel(...)(x, generated)`` returns ``{'disc_gan': w * mean((1 - D(real))^2 +
D(pred.detach())^2)}`` summed over scales.

Call order matters for spectral-norm discriminators (each train-mode call does one power
iteration): the generator loss calls D on the prediction, then on the real frame; so does the
discriminator loss, as the original.

Reproducing a stored run: pass ``transform=Transform.from_params(theta, control_params, ...)`` to
``GeneratorFullModel.forward`` (or set ``transform_override``) to bypass the random draw.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fomm.config import TrainParams
from fomm.errors import FommError
from fomm.models.blocks import ImagePyramid
from fomm.models.geometry import make_coordinate_grid, tps_warp_points
from fomm.training.recipe import equivariance_factor, separation_loss, spread_weight


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


def _no_autocast(device_type: str):
    try:
        return torch.autocast(device_type=device_type, enabled=False)
    except RuntimeError:  # pragma: no cover - device type without autocast
        return contextlib.nullcontext()


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
        theta = self.theta.to(coordinates.dtype)
        out = torch.matmul(theta[:, None, :, :2], coordinates.unsqueeze(-1)).squeeze(-1)
        return out + theta[:, None, :, 2]

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
        num_channels = getattr(_unwrap(generator), "num_channels", 3)
        self.pyramid = ImagePyramid(self.scales, num_channels)
        self.disc_scales = list(_unwrap(discriminator).scales) if discriminator is not None else []
        if self.loss_weights.get("generator_gan", 0) != 0 and discriminator is None:
            raise FommError("generator_gan is not 0 but there is no discriminator; build the model with one")
        self.vgg = None
        self.vgg_status: dict = {}
        if sum(self.loss_weights.get("perceptual", [])) != 0:
            if vgg is None:
                from fomm.training.vgg import build_vgg19

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
        lw = self.loss_weights
        kp_source = self.kp_extractor(x["source"])
        kp_driving = self.kp_extractor(x["driving"])

        generated = self.generator(x["source"], kp_source=kp_source, kp_driving=kp_driving)
        generated.update({"kp_source": kp_source, "kp_driving": kp_driving})

        loss_values: dict[str, torch.Tensor] = {}
        pyramide_real = self.pyramid(x["driving"])
        pyramide_generated = self.pyramid(generated["prediction"])

        if self.vgg is not None:
            value_total = 0
            depth = max(i + 1 for i, w in enumerate(lw["perceptual"]) if w)  # deeper layers are not needed
            for scale in self.scales:
                key = "prediction_" + str(scale)
                x_vgg = self.vgg(pyramide_generated[key], depth=depth)
                with torch.no_grad():
                    y_vgg = self.vgg(pyramide_real[key], depth=depth)
                for i, weight in enumerate(lw["perceptual"]):
                    if weight == 0:
                        continue
                    value = torch.abs(x_vgg[i] - y_vgg[i].detach()).mean()
                    value_total = value_total + weight * value
            loss_values["perceptual"] = value_total

        if lw.get("pixel", 0) != 0:
            value = sum(
                torch.abs(pyramide_generated[f"prediction_{s}"] - pyramide_real[f"prediction_{s}"]).mean()
                for s in self.scales
            ) / len(self.scales)
            loss_values["pixel"] = lw["pixel"] * value

        if lw.get("generator_gan", 0) != 0:
            kp_d = detach_kp(kp_driving)
            maps_generated = self.discriminator(pyramide_generated, kp=kp_d)
            maps_real = self.discriminator(pyramide_real, kp=kp_d)
            value_total = 0
            for scale in self.disc_scales:
                value = ((1 - maps_generated[f"prediction_map_{scale}"]) ** 2).mean()
                value_total = value_total + lw["generator_gan"] * value
            loss_values["gen_gan"] = value_total

            if sum(lw.get("feature_matching", [])) != 0:
                value_total = 0
                for scale in self.disc_scales:
                    key = f"feature_maps_{scale}"
                    for i, (a, b) in enumerate(zip(maps_real[key], maps_generated[key])):
                        if lw["feature_matching"][i] == 0:
                            continue
                        value = torch.abs(a - b).mean()
                        value_total = value_total + lw["feature_matching"][i] * value
                loss_values["feature_matching"] = value_total

        if lw.get("kp_separation", 0) != 0:
            sigma = self.train_params.get("kp_separation_sigma", 0.1)
            value = (separation_loss(kp_source["value"], sigma) + separation_loss(kp_driving["value"], sigma)) / 2
            loss_values["kp_separation"] = lw["kp_separation"] * value

        if (lw.get("equivariance_value", 0) + lw.get("equivariance_jacobian", 0)) != 0:
            transform = transform or self.transform_override or self.make_transform(x["driving"])
            transform = transform.to(x["driving"].device)
            transformed_frame = transform.transform_frame(x["driving"])
            transformed_kp = self.kp_extractor(transformed_frame)
            generated["transformed_frame"] = transformed_frame
            generated["transformed_kp"] = transformed_kp

            factor = equivariance_factor(self.train_params, self.step)
            with _no_autocast(x["driving"].device.type):
                kp_value = kp_driving["value"].float()
                t_value = transformed_kp["value"].float()
                if lw.get("equivariance_value", 0) != 0:
                    value = torch.abs(kp_value - transform.warp_coordinates(t_value)).mean()
                    loss_values["equivariance_value"] = factor * lw["equivariance_value"] * value

                if lw.get("equivariance_jacobian", 0) != 0:
                    if "jacobian" not in kp_driving:
                        raise FommError(
                            "equivariance_jacobian is not 0 but the model estimates no Jacobians; set "
                            "loss_weights.equivariance_jacobian: 0 or estimate_jacobian: true"
                        )
                    jacobian_transformed = torch.matmul(transform.jacobian(t_value), transformed_kp["jacobian"].float())
                    normed_driving = torch.inverse(kp_driving["jacobian"].float())
                    value = torch.matmul(normed_driving, jacobian_transformed)
                    eye = torch.eye(2, dtype=value.dtype, device=value.device).view(1, 1, 2, 2)
                    value = torch.abs(eye - value).mean()
                    loss_values["equivariance_jacobian"] = factor * lw["equivariance_jacobian"] * value

        return loss_values, generated


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


def perceptual_min_size(perceptual_weights) -> int:
    """Smallest pyramid level (pixels) the VGG19 layers with non-zero weight accept."""
    used = [i for i, w in enumerate(perceptual_weights) if w]
    return 2 ** max(used) if used else 1
