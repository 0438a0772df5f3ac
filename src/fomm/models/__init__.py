"""The networks of the First Order Motion Model, named after the paper."""

from fomm.models.dense_motion import DenseMotionNetwork
from fomm.models.discriminator import Discriminator, MultiScaleDiscriminator
from fomm.models.first_order_model import FirstOrderModel, build_discriminator, build_generator, build_kp_detector
from fomm.models.generator import OcclusionAwareGenerator, SourceState
from fomm.models.keypoint_detector import KPDetector

__all__ = [
    "DenseMotionNetwork",
    "Discriminator",
    "FirstOrderModel",
    "KPDetector",
    "MultiScaleDiscriminator",
    "OcclusionAwareGenerator",
    "SourceState",
    "build_discriminator",
    "build_generator",
    "build_kp_detector",
]
