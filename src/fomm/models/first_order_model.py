"""The whole model: keypoint detector, generator and (for training) discriminator, built from one
:class:`~fomm.config.Config`. The paper's motion module (Sec. 3.1: keypoints with Jacobians, Eq. 4
and 6 in the dense motion network) and occlusion-aware generator (Sec. 3.2)."""

from __future__ import annotations

import torch
from torch import nn

from fomm.config import Config, resolve_config
from fomm.models.discriminator import MultiScaleDiscriminator
from fomm.models.generator import OcclusionAwareGenerator
from fomm.models.keypoint_detector import KPDetector


def build_kp_detector(config: Config) -> KPDetector:
    mp = config.model_params
    kp = mp.kp_detector_params
    return KPDetector(
        block_expansion=kp.block_expansion,
        num_kp=mp.common_params.num_kp,
        num_channels=mp.common_params.num_channels,
        max_features=kp.max_features,
        num_blocks=kp.num_blocks,
        temperature=kp.temperature,
        estimate_jacobian=mp.common_params.estimate_jacobian,
        scale_factor=kp.scale_factor,
        single_jacobian_map=kp.single_jacobian_map,
        pad=kp.pad,
        anti_alias_sigma=kp.anti_alias_sigma,
    )


def build_generator(config: Config) -> OcclusionAwareGenerator:
    mp = config.model_params
    g = mp.generator_params
    dense = None
    if g.dense_motion_params is not None:
        d = g.dense_motion_params
        dense = dict(
            block_expansion=d.block_expansion,
            max_features=d.max_features,
            num_blocks=d.num_blocks,
            scale_factor=d.scale_factor,
            anti_alias_sigma=d.anti_alias_sigma,
        )
    return OcclusionAwareGenerator(
        num_channels=mp.common_params.num_channels,
        num_kp=mp.common_params.num_kp,
        block_expansion=g.block_expansion,
        max_features=g.max_features,
        num_down_blocks=g.num_down_blocks,
        num_bottleneck_blocks=g.num_bottleneck_blocks,
        estimate_occlusion_map=g.estimate_occlusion_map,
        dense_motion_params=dense,
        estimate_jacobian=mp.common_params.estimate_jacobian,
        align_corners=mp.align_corners,
    )


def build_discriminator(config: Config) -> MultiScaleDiscriminator:
    mp = config.model_params
    d = mp.discriminator_params
    return MultiScaleDiscriminator(
        scales=d.scales,
        block_expansion=d.block_expansion,
        max_features=d.max_features,
        num_blocks=d.num_blocks,
        sn=d.sn,
        use_kp=d.use_kp,
        num_kp=mp.common_params.num_kp,
        num_channels=mp.common_params.num_channels,
    )


class FirstOrderModel(nn.Module):
    """Container with ``.kp_detector``, ``.generator`` and optionally ``.discriminator``.

    The two inference modules keep the original call conventions:
    ``kp_detector(image)`` and ``generator(source_image, kp_driving=..., kp_source=...)``.
    """

    def __init__(self, config: Config | str | dict, with_discriminator: bool = True):
        """``config``: a :class:`~fomm.config.Config` (checked here, in place, by the schema check,
        so a bad value is a FommError rather than a torch error), a preset name, a YAML path or a dict."""
        super().__init__()
        config = resolve_config(config)
        self.config = config
        self.kp_detector = build_kp_detector(config)
        self.generator = build_generator(config)
        self.discriminator = build_discriminator(config) if with_discriminator else None

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    @property
    def frame_shape(self) -> tuple[int, int]:
        return self.config.frame_shape

    @property
    def has_jacobian(self) -> bool:
        return self.kp_detector.jacobian is not None

    def extra_repr(self) -> str:
        return f"config={self.config.name!r}"
