"""fomm: the First Order Motion Model for image animation (Siarohin et al., NeurIPS 2019).

>>> import fomm
>>> model = fomm.load_model("vox-cpk.pth.tar", config="vox-256")
>>> frames = fomm.animate(model, source_image, driving_frames)   # (T, H, W, 3) float32 in [0, 1]
>>> fomm.animate_video("photo.jpg", "driving.mp4", checkpoint="vox-cpk.pth.tar", out="result.mp4")
>>> fomm.animate_video("photo.jpg", "driving.mp4", checkpoint="vox", out="b.mp4", options=fomm.AnimateOptions(crop=True))

Names are imported lazily, so ``import fomm`` (and worker processes that only need the data
tools) does not pay for importing torch until a model is used.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "AnimationEngine": "fomm.animation.engine",
    "animate": "fomm.animation.engine",
    "normalize_kp": "fomm.animation.engine",
    "animate_video": "fomm.animation.pipeline",
    "AnimateOptions": "fomm.animation.options",
    "Config": "fomm.config",
    "load_preset": "fomm.config",
    "preset_names": "fomm.config",
    "FommError": "fomm.errors",
    "load_model": "fomm.models.checkpoint",
    "save_checkpoint": "fomm.models.checkpoint",
    "FirstOrderModel": "fomm.models.first_order_model",
    "train": "fomm.training.trainer",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fomm' has no attribute {name!r}")


def __dir__():
    return __all__
