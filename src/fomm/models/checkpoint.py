"""The one way in to weights: :func:`load_model` turns a checkpoint name or path into a model.

Every command and the Python API load weights here, and each step happens here only:

1. **name -> file** (:func:`~fomm.models.checkpoint_io.locate`): a path; a bundled model
   (``face-64``, no download); a published name (``vox``, from the download cache). The names
   are looked up in :mod:`fomm.models.registry`, beneath this module, so the model layer imports
   nothing above it (:mod:`fomm.hub` only downloads into that cache).
2. **the file**: an ONNX export folder (its ``manifest.json``) becomes an
   :class:`~fomm.models.exported.ExportedModel` for ``backend='onnxruntime'``; anything else is
   read with ``torch.load(weights_only=True)``, after its first bytes show it is a checkpoint.
3. **the format**: the first :class:`Family` in :data:`FAMILIES` whose ``recognise`` accepts the
   checkpoint dict builds the model (FOMM: the original ``.pth.tar``, ``module.``-prefixed
   DataParallel state dicts, and ours with the config inside). A new model family hooks in by
   appending its (recogniser, builder) pair.
4. **the config**: the one given (a preset name, a YAML file, a dict or a Config), else the one
   stored in the checkpoint, else the preset whose tensor shapes fit. Presets with identical
   networks (taichi and vox) cannot be told apart by shapes, so a stored config or a file name
   that points to another preset than the one given is said in one warning line. Where the
   fitting presets compute different functions (a 13 x 13 vox checkpoint: vox-256, or the
   community's vox-512), the file's registered sha256 or its name decides, else one error line.
5. **the device** (:func:`resolve_device`): ``auto``, ``cpu``, ``cuda``, ``mps``.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from fomm.config import Config, preset_names, resolve_config
from fomm.errors import FommError
from fomm.models.anti_alias import fit_anti_alias
from fomm.models.checkpoint_io import (  # noqa: F401 (the checkpoint API, re-exported)
    FORMAT_VERSION,
    INFERENCE_PARTS,
    ORIGINAL_KEYS,
    atomic_torch_save,
    checkpoint_dict,
    checkpoint_file,
    export_original,
    locate,
    model_states,
    read_checkpoint,
    read_checkpoint_sha256,
    save_checkpoint,
    strip_module_prefix,
    to_original_format,
)
from fomm.models.device import resolve_device
from fomm.models.exported import ExportedModel
from fomm.models.first_order_model import FirstOrderModel
from fomm.models.precision import BACKENDS
from fomm.models.registry import file_sha256, registry
from fomm.models.shapes import (  # noqa: F401 (re-exported)
    compare_state,
    describe_mismatch,
    expected_part_shapes,
    expected_shapes,
    inference_options,
    match_presets,
    mismatch_count,
    preset_configs,
    preset_for,
    same_function,
)
from fomm.models.sniff import sniff_checkpoint  # noqa: F401 (re-exported)
from fomm.models.tpsmm.checkpoint import is_tpsmm_checkpoint, load_tpsmm_model


# ------------------------------------------------------------------------------------------------
# Model families: how a checkpoint dict is recognised and built
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadRequest:
    """What a builder gets besides the checkpoint dict: the config asked for (None: decide from
    the checkpoint), what messages call the checkpoint, and the build options."""

    config: Config | str | Path | dict | None
    label: str
    align_corners: bool | None = None
    with_discriminator: bool = False


@dataclass(frozen=True)
class Family:
    """A model family: ``recognise(data)`` says whether a checkpoint dict is one of its own;
    ``build(data, request)`` returns the model with the weights loaded (on the CPU)."""

    name: str
    recognise: Callable[[dict], bool]
    build: Callable[[dict, LoadRequest], nn.Module]


def is_fomm(data: dict) -> bool:
    """A First Order Motion Model checkpoint: generator and keypoint-detector state dicts."""
    return all(isinstance(data.get(part), dict) for part in INFERENCE_PARTS)


def build_fomm(data: dict, request: LoadRequest) -> FirstOrderModel:
    """A :class:`FirstOrderModel` from the original, DataParallel or our checkpoint format."""
    label = request.label
    states = model_states(data, label)
    cfg = _fomm_config(data, states, request)
    if request.align_corners is not None:
        cfg.model_params.align_corners = bool(request.align_corners)
    cfg = fit_anti_alias(cfg, states)  # 29x29 or 13x13 kernels at 512: the checkpoint says which
    model = FirstOrderModel(cfg, with_discriminator=request.with_discriminator and "discriminator" in states)
    parts = INFERENCE_PARTS + (("discriminator",) if model.discriminator is not None else ())
    for part in parts:
        expected = {k: tuple(v.shape) for k, v in getattr(model, part).state_dict().items()}
        diff = compare_state(expected, states[part])
        if mismatch_count(diff):
            closest = match_presets(states)[0][2]
            raise FommError(
                f"{label} does not fit config '{cfg.name or 'given'}' ({part}: "
                f"{describe_mismatch(diff, states[part], expected)}); closest preset: {closest}; "
                f"pass the matching --config"
            )
        getattr(model, part).load_state_dict(states[part])
    if request.config is not None:  # said only of a checkpoint the given config fits
        _warn_if_other_preset(data, cfg, label)
    return model


def build_tpsmm(data: dict, request: LoadRequest) -> nn.Module:
    """A Thin-Plate Spline Motion Model (:mod:`fomm.models.tpsmm`; ``config`` is a TPSMM one)."""
    return load_tpsmm_model(data, request.config, "cpu", request.label)


# The families load_model knows, tried in order; the first that recognises a checkpoint builds it.
FAMILIES: list[Family] = [Family("fomm", is_fomm, build_fomm), Family("tpsmm", is_tpsmm_checkpoint, build_tpsmm)]


def _fomm_config(data: dict, states: dict, request: LoadRequest) -> Config:
    """The config to build with: given, stored in the checkpoint, or the preset the shapes fit."""
    label, stored = request.label, data.get("config")
    if request.config is None and isinstance(stored, dict):
        cfg = Config.from_dict(stored, source=f"the config stored in {label}")
        cfg.name = data.get("config_name") or Path(label).stem
        return cfg
    if request.config is None:
        return preset_for(label, states, prefer=preset_by_name(label), registered=lambda: registered_preset(label))
    return resolve_config(request.config).copy()


def preset_by_name(label: str) -> str | None:
    """The preset a checkpoint's file name points to: a registered checkpoint's file name (as
    published, e.g. ``first-order-model-checkpoint-94.pth.tar``, or in the cache, e.g.
    ``vox-512.pth.tar``), else the preset named in it (:func:`preset_in_name`)."""
    name = Path(str(label)).name
    for entry in registry().values():
        if entry.preset in preset_names() and name in (entry.file, entry.original):
            return entry.preset
    return preset_in_name(label)


def registered_preset(label: str) -> str | None:
    """The preset of the registered checkpoint (published, or in ``FOMM_MODELS``) whose sha256 is
    this file's, whatever the file is called now; None for a file not registered (or no file)."""
    path = Path(str(label))
    entries = [e for e in registry().values() if e.sha256 and e.preset in preset_names()]
    if not entries or not path.is_file():
        return None
    size = path.stat().st_size
    entries = [e for e in entries if e.size in (None, size)]
    if not entries:
        return None
    digest = file_sha256(path)
    return next((e.preset for e in entries if e.sha256 == digest), None)


# ------------------------------------------------------------------------------------------------
# Presets with identical networks: say when the checkpoint points to another one
# ------------------------------------------------------------------------------------------------
def preset_in_name(label: str) -> str | None:
    """The preset a checkpoint's file name points to (``taichi-cpk.pth.tar`` -> ``taichi-256``;
    ``vox-adv-cpk`` -> ``vox-adv-256``; ``vox-512-cpk`` -> ``vox-512``), or None when it names none
    or several kinds."""
    stem = Path(str(label)).name.lower()
    words = set(re.split(r"[^a-z0-9]+", stem))
    found: dict[str, list[str]] = {}
    for name in preset_names():
        family, _, size = name.rpartition("-")  # 'vox-adv-256' -> 'vox-adv', '256'
        if family and set(family.split("-")) <= words:
            found.setdefault(family, []).append(name)
    # 'vox-adv' contains 'vox': keep the most specific family of each base name
    best = [fam for fam in found if not any(o != fam and o.startswith(fam + "-") for o in found)]
    if len(best) != 1:
        return None
    names = sorted(found[best[0]])  # of one kind at several sizes, the size named, else the smallest
    return next((n for n in names if n.rpartition("-")[2] in words), names[0])


def _warn_if_other_preset(data: dict, cfg: Config, label: str) -> None:
    """One warning line when the given config is not the one the checkpoint was trained with,
    by its stored config or by its file name (the tensor shapes may fit both)."""
    stored = data.get("config")
    if isinstance(stored, dict):
        stored_cfg = Config.from_dict(stored, source=f"the config stored in {label}")
        stored_name = data.get("config_name") or "its stored config"
        same = inference_options(stored_cfg) == inference_options(cfg)
        same = same and tuple(stored_cfg.frame_shape) == tuple(cfg.frame_shape)
        if not same or (cfg.name and stored_name != cfg.name):
            how = "the same model options" if same else "other model options"
            warnings.warn(
                f"{Path(label).name} was trained with config '{stored_name}' but --config "
                f"{cfg.name or 'given'} is used ({how}); drop --config to use the stored one",
                UserWarning,
                stacklevel=4,
            )
        return
    named = preset_by_name(label)
    if named is None or not cfg.name or named == cfg.name:
        return
    # vox-adv-256 is vox-256 for inference: said only for another kind of data or another function
    if named.split("-")[0] != cfg.name.split("-")[0] or not same_function(cfg, named):
        warnings.warn(
            f"{Path(label).name} looks like a {named} checkpoint (its file name) but --config {cfg.name} "
            f"is used; their tensor shapes may fit both, so pass --config {named} if it is one",
            UserWarning,
            stacklevel=4,
        )


# ------------------------------------------------------------------------------------------------
# The one way in
# ------------------------------------------------------------------------------------------------
def load_model(
    checkpoint: str | Path | dict,
    config: Config | str | Path | dict | None = None,
    device: str | torch.device = "cpu",
    align_corners: bool | None = None,
    with_discriminator: bool = False,
    *,
    name: str | Path | None = None,
    backend: str = "torch",
) -> nn.Module | ExportedModel:
    """Build a model and load a checkpoint into it, in eval mode, on ``device``.

    A Thin-Plate Spline Motion Model checkpoint (its layout: ``inpainting_network``,
    ``kp_detector``, ``dense_motion_network``) gives a :class:`fomm.models.tpsmm.TpsmmModel`
    (``config`` is then a TPSMM one).

    ``checkpoint``: a file (original ``.pth.tar``, DataParallel or ours), a bundled model's name
    (``'face-64'``), a published name downloaded with ``fomm download`` (``'vox'``), an already
    loaded dict, or, with ``backend='onnxruntime'``, an ONNX export folder.
    ``config``: a :class:`Config`, a YAML path, a preset name (``'vox-256'``) or None; with None,
    the config stored in our checkpoints is used, else the preset whose tensor shapes match.
    ``device``: ``'cpu'``, ``'cuda'``, ``'mps'`` or ``'auto'``. ``align_corners`` overrides the
    config's grid-sampling convention. ``name``: what messages call a checkpoint dict (e.g. the
    file it was read from; default ``'checkpoint'``). ``backend``: what will run the model
    (``'torch'`` or ``'onnxruntime'``); only ONNX Runtime runs an export folder.
    """
    if backend not in BACKENDS:
        raise FommError(f"unknown backend '{backend}'; use one of {', '.join(BACKENDS)}")
    if isinstance(checkpoint, dict):
        data, label = checkpoint, os.fspath(name or "checkpoint")
    else:
        path = locate(checkpoint)
        if path.is_dir():
            return _load_export(path, config, backend)
        data, label = read_checkpoint(path), os.fspath(path)
    request = LoadRequest(config, label, align_corners, with_discriminator)
    model = _family_of(data, label).build(data, request)
    return model.to(resolve_device(device)).eval()


def _family_of(data: dict, label: str) -> Family:
    for family in FAMILIES:
        if family.recognise(data):
            return family
    keys = ", ".join(map(str, list(data)[:8]))
    raise FommError(
        f"{label} has no generator or kp_detector state dict (top-level keys: {keys}); it is not a "
        f"{' or '.join(f.name.upper() for f in FAMILIES)} checkpoint"
    )


def _load_export(folder: Path, config, backend: str) -> ExportedModel:
    """An ONNX export folder, for ONNX Runtime only; a given config must have its frame size."""
    if backend != "onnxruntime":
        raise FommError(
            f"{folder} is an ONNX export folder; run it with --backend onnxruntime, or pass the .pth "
            f"checkpoint it was exported from for the {backend} backend"
        )
    model = ExportedModel.open(folder)
    if config is not None:
        cfg = resolve_config(config)
        if tuple(cfg.frame_shape[:2]) != model.frame_shape:
            raise FommError(
                f"--config {cfg.name or config} is for {cfg.frame_shape[1]}x{cfg.frame_shape[0]} frames but the "
                f"ONNX export {folder} is {model.frame_shape[1]}x{model.frame_shape[0]}; drop --config"
            )
    return model
