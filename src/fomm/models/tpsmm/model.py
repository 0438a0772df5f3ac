"""The whole Thin-Plate Spline Motion Model (Zhao and Zhang, CVPR 2022), built from one
:class:`~fomm.models.tpsmm.config.TpsmmConfig`: keypoint detector, dense motion network,
inpainting network, AVD network and (with ``bg`` or for reconstruction) the background motion
predictor, under the original checkpoint's part names."""

from __future__ import annotations

import torch
from torch import nn

from fomm.models.tpsmm.avd import AVDNetwork
from fomm.models.tpsmm.bg_motion import BGMotionPredictor
from fomm.models.tpsmm.config import TpsmmConfig, resolve_tpsmm_config
from fomm.models.tpsmm.dense_motion import DenseMotionNetwork
from fomm.models.tpsmm.inpainting import InpaintingNetwork
from fomm.models.tpsmm.keypoint_detector import TpsKeypointDetector

# the checkpoint's top-level keys of the parts, in the original's order
INFERENCE_PARTS = ("inpainting_network", "kp_detector", "dense_motion_network")
PARTS = INFERENCE_PARTS + ("avd_network", "bg_predictor")


class TpsmmModel(nn.Module):
    """Container with ``.kp_detector``, ``.dense_motion_network``, ``.inpainting_network``,
    ``.avd_network`` and ``.bg_predictor`` (None without a background model).

    The parts keep the original call conventions: ``kp_detector(image)`` gives ``{'fg_kp': (B, 5K,
    2)}``, ``dense_motion_network(source_image=..., kp_driving=..., kp_source=..., bg_param=...)``,
    ``inpainting_network(source_image, dense_motion)`` and ``avd_network(kp_source, kp_driving)``.
    ``has_avd`` says whether the AVD network holds trained weights (a checkpoint without
    ``avd_network`` leaves it untrained).
    """

    kind = "tpsmm"
    has_jacobian = False

    def __init__(self, config: TpsmmConfig | str | dict, with_bg: bool | None = None):
        super().__init__()
        config = resolve_tpsmm_config(config)
        self.config = config
        mp = config.model_params
        common = mp.common_params
        self.kp_detector = TpsKeypointDetector(common.num_tps, common.num_channels, mp.resnet_width)
        shared = dict(num_channels=common.num_channels, multi_mask=common.multi_mask)
        self.dense_motion_network = DenseMotionNetwork(
            **mp.dense_motion_params.as_kwargs(), num_tps=common.num_tps, bg=common.bg, **shared
        )
        self.inpainting_network = InpaintingNetwork(**mp.generator_params.as_kwargs(), **shared)
        a = mp.avd_network_params
        self.avd_network = AVDNetwork(common.num_tps, a.id_bottle_size, a.pose_bottle_size)
        with_bg = common.bg if with_bg is None else with_bg
        self.bg_predictor = BGMotionPredictor(common.num_channels, mp.resnet_width) if with_bg else None
        self.has_avd = False

    @property
    def device(self) -> torch.device:
        return next(self.inpainting_network.parameters()).device

    @property
    def frame_shape(self) -> tuple[int, int]:
        return self.config.frame_shape

    def animate_frame(self, source_image, kp_driving, kp_source, bg_param=None) -> dict:
        """One generator pass (dense motion, then inpainting), as the original's ``make_animation``."""
        dense_motion = self.dense_motion_network(
            source_image=source_image, kp_driving=kp_driving, kp_source=kp_source, bg_param=bg_param
        )
        return self.inpainting_network(source_image, dense_motion)

    def extra_repr(self) -> str:
        return f"config={self.config.name!r}"
