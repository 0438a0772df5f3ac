"""fomm: the First Order Motion Model for image animation (Siarohin et al., NeurIPS 2019).

>>> import fomm
>>> model = fomm.load_model("vox-cpk.pth.tar", config="vox-256")
>>> frames = fomm.animate(model, source_image, driving_frames)   # (T, H, W, 3) float32 in [0, 1]
"""
from fomm.animation import AnimationEngine, animate, normalize_kp
from fomm.config import Config, load_preset, preset_names
from fomm.errors import FommError
from fomm.models.checkpoint import load_model, save_checkpoint
from fomm.models.first_order_model import FirstOrderModel

__version__ = "0.1.0"

__all__ = [
    "AnimationEngine", "Config", "FirstOrderModel", "FommError", "animate", "load_model", "load_preset",
    "normalize_kp", "preset_names", "save_checkpoint", "__version__",
]
