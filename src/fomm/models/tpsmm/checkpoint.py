"""Loading TPSMM checkpoints: the original repository's layout (``inpainting_network``,
``kp_detector``, ``dense_motion_network`` and, when present, ``avd_network`` and ``bg_predictor``,
plus optimizer states and ``epoch``), unchanged, and ours (the same plus ``tpsmm_format`` and the
config).

Without a config, the preset is chosen from the tensor shapes. The four published configs have the
same shapes and compute the same inference function; they differ in the frame size (TED: 384) and
in training options, so the file name decides among them (``ted``, ``taichi``, ``mgif``, else vox),
and a file without ``bg_predictor`` is taken as MGif's (the only published model without one).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from fomm.errors import FommError
from fomm.models.checkpoint_io import strip_module_prefix
from fomm.models.device import resolve_device
from fomm.models.tpsmm.config import (
    TpsmmConfig,
    is_tpsmm_config,
    load_tpsmm_preset,
    resolve_tpsmm_config,
    tpsmm_preset_names,
)
from fomm.models.tpsmm.model import INFERENCE_PARTS, PARTS, TpsmmModel
from fomm.models.tpsmm.resnet import resnet_width

FORMAT_VERSION = 1


def is_tpsmm_checkpoint(data: Any) -> bool:
    """Whether a checkpoint dict has TPSMM's layout (its three inference parts as state dicts)."""
    return isinstance(data, dict) and all(isinstance(data.get(p), dict) for p in INFERENCE_PARTS)


def tpsmm_states(data: dict) -> dict[str, dict[str, torch.Tensor]]:
    """The part state dicts present in a TPSMM checkpoint (``module.`` prefixes removed)."""
    return {p: strip_module_prefix(data[p]) for p in PARTS if isinstance(data.get(p), dict)}


def load_tpsmm_model(
    data: dict, config=None, device: str | torch.device = "cpu", path: str | Path = "checkpoint"
) -> TpsmmModel:
    """Build a :class:`TpsmmModel` for a TPSMM checkpoint dict and load it, in eval mode.

    ``config``: a TPSMM config (object, dict, ``tpsmm-*`` preset or YAML path) or None (the config
    stored in our checkpoints, else the preset matched by :func:`tpsmm_preset_for`). The ResNet
    width comes from the checkpoint. The AVD network is loaded when the checkpoint has one
    (``model.has_avd``); the background predictor likewise.
    """
    states = tpsmm_states(data)
    if config is None and isinstance(data.get("config"), dict):
        cfg = TpsmmConfig.from_dict(data["config"], source=f"the config stored in {path}")
        cfg.name = data.get("config_name") or Path(str(path)).stem
    elif config is None:
        cfg = tpsmm_preset_for(path, states)
    else:
        cfg = _tpsmm_config(config, path).copy()
    cfg.model_params.resnet_width = resnet_width(states["kp_detector"], "fg_encoder.")
    model = TpsmmModel(cfg, with_bg="bg_predictor" in states)
    for part, state in states.items():
        module = getattr(model, part)
        diff = _shape_diff(module, state)
        if diff:
            raise FommError(
                f"{path} does not fit TPSMM config '{cfg.name or 'given'}' ({part}: {diff}); pass the "
                f"--config it was trained with"
            )
        module.load_state_dict(state)
    model.has_avd = "avd_network" in states
    return model.to(resolve_device(device)).eval()


def _tpsmm_config(config, path) -> TpsmmConfig:
    """``config`` as a TPSMM config; a FOMM config given for a TPSMM checkpoint is one clear error."""
    if not is_tpsmm_config(config):
        raise FommError(
            f"{path} is a Thin-Plate Spline Motion Model checkpoint but config '{config}' is a FOMM "
            f"config; pass a TPSMM one ({', '.join(tpsmm_preset_names())}) or none"
        )
    return resolve_tpsmm_config(config)


def _shape_diff(module: torch.nn.Module, state: dict) -> str:
    """Missing, unexpected and reshaped keys of ``state`` for ``module`` ('' when it fits)."""
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shape = [k for k in expected if k in state and tuple(state[k].shape) != expected[k]]
    parts = [
        f"{len(v)} {label} keys (e.g. {', '.join(v[:2])})"
        for label, v in (("missing", missing), ("unexpected", unexpected))
        if v
    ]
    if shape:
        k = shape[0]
        parts.append(
            f"{len(shape)} keys of another shape (e.g. {k}: checkpoint {tuple(state[k].shape)} vs config {expected[k]})"
        )
    return "; ".join(parts)


def tpsmm_preset_for(path, states: dict) -> TpsmmConfig:
    """The published config whose shapes fit ``states``, chosen by the file name among equals."""
    width = resnet_width(states["kp_detector"], "fg_encoder.")
    fits = []
    for name in tpsmm_preset_names():
        cfg = load_tpsmm_preset(name)
        cfg.model_params.resnet_width = width
        with torch.device("meta"):
            model = TpsmmModel(cfg, with_bg=False)
        if not any(_shape_diff(getattr(model, p), states[p]) for p in INFERENCE_PARTS):
            fits.append(cfg)
    if not fits:
        raise FommError(
            f"{path} is a TPSMM checkpoint that fits no published config ({', '.join(tpsmm_preset_names())}); "
            f"pass --config with the YAML it was trained with"
        )
    words = set(re.split(r"[^a-z0-9]+", Path(str(path)).name.lower()))
    named = [c for c in fits if c.name.split("-")[1] in words]
    if named:
        return named[0]
    if "bg_predictor" not in states:
        return next((c for c in fits if c.name == "tpsmm-mgif-256"), fits[0])
    return next((c for c in fits if c.name == "tpsmm-vox-256"), fits[0])


def tpsmm_checkpoint_dict(model: TpsmmModel, **extra: Any) -> dict[str, Any]:
    """Our TPSMM checkpoint: the parts' state dicts (the original layout), the config and any
    training state; the original code reads it unchanged (it ignores the other keys)."""
    data: dict[str, Any] = {
        "tpsmm_format": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "config_name": model.config.name,
    }
    for part in PARTS:
        module = getattr(model, part, None)
        if module is not None and (part != "avd_network" or model.has_avd):  # an untrained AVD is left out
            data[part] = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    data.update(extra)
    return data
