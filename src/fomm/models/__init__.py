"""The networks of the First Order Motion Model, named after the paper, and the one way in to
their weights (:func:`fomm.models.checkpoint.load_model`).

Names are imported lazily (as in :mod:`fomm`), so that the light modules of this package
(:mod:`fomm.models.precision`, the checkpoint names in :mod:`fomm.models.registry`, file sniffing
in :mod:`fomm.models.sniff`) can be imported by command lines without importing torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "DenseMotionNetwork": "fomm.models.dense_motion",
    "Discriminator": "fomm.models.discriminator",
    "MultiScaleDiscriminator": "fomm.models.discriminator",
    "FirstOrderModel": "fomm.models.first_order_model",
    "build_discriminator": "fomm.models.first_order_model",
    "build_generator": "fomm.models.first_order_model",
    "build_kp_detector": "fomm.models.first_order_model",
    "OcclusionAwareGenerator": "fomm.models.generator",
    "SourceState": "fomm.models.generator",
    "KPDetector": "fomm.models.keypoint_detector",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fomm.models' has no attribute {name!r}")


def __dir__():
    return __all__
