"""The Thin-Plate Spline Motion Model (Zhao and Zhang, CVPR 2022; MIT licence): K thin-plate
spline transformations of 5 keypoints each instead of FOMM's local affine ones, multi-resolution
occlusion masks, a background affine predictor and the AVD network, written in fomm's style and
loading the original checkpoints unchanged."""

from fomm.models.tpsmm.avd import AVDNetwork
from fomm.models.tpsmm.bg_motion import BGMotionPredictor
from fomm.models.tpsmm.config import TpsmmConfig, is_tpsmm_config, resolve_tpsmm_config
from fomm.models.tpsmm.dense_motion import DenseMotionNetwork
from fomm.models.tpsmm.inpainting import InpaintingNetwork
from fomm.models.tpsmm.keypoint_detector import TpsKeypointDetector
from fomm.models.tpsmm.model import TpsmmModel

__all__ = [
    "AVDNetwork",
    "BGMotionPredictor",
    "DenseMotionNetwork",
    "InpaintingNetwork",
    "TpsKeypointDetector",
    "TpsmmConfig",
    "TpsmmModel",
    "is_tpsmm_config",
    "resolve_tpsmm_config",
]
