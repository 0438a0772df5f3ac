"""Checkpoints: the original ``.pth.tar`` format, DataParallel (``module.``) state dicts and our own.

All loading goes through ``torch.load(weights_only=True)``: a checkpoint is never allowed to
unpickle arbitrary Python objects.

Formats read:
- original: ``{'generator', 'kp_detector', 'discriminator'?, 'optimizer_*'?, 'epoch'?}``, each a
  state dict (keys may carry a ``module.`` prefix from ``DataParallel``);
- ours: the same keys plus ``'fomm_format': 1`` and ``'config'`` (the YAML schema as a dict), so
  no config is needed to load it, and training state (step, schedulers, RNG) for ``--resume``.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from fomm.config import Config, load_preset, preset_names, resolve_config
from fomm.errors import FommError
from fomm.models.anti_alias import fit_anti_alias
from fomm.models.first_order_model import FirstOrderModel

FORMAT_VERSION = 1
INFERENCE_PARTS = ("kp_detector", "generator")
ORIGINAL_KEYS = (
    "generator",
    "discriminator",
    "kp_detector",
    "optimizer_generator",
    "optimizer_discriminator",
    "optimizer_kp_detector",
    "epoch",
)


def resolve_device(device: str | torch.device = "cpu") -> torch.device:
    """``'auto'`` picks CUDA, then MPS, then CPU; other names are checked to exist."""
    name = str(device)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise FommError("device 'cuda' was asked for but PyTorch sees no CUDA GPU; use --device cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise FommError("device 'mps' was asked for but it is not available here; use --device cpu or auto")
    try:
        return torch.device(name)
    except RuntimeError:
        raise FommError(f"unknown device '{name}'; use cpu, cuda, mps or auto") from None


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint file safely (``weights_only``) into a dict on the CPU.

    A file that is no PyTorch checkpoint at all (an image, a video, a text or HTML file, another
    archive, an empty file) is named as such before anything is unpickled."""
    path = _checkpoint_file(path)
    return _unpickle(path, sniff_checkpoint(path), path)


def read_checkpoint_sha256(path: str | Path) -> tuple[dict[str, Any], str]:
    """:func:`read_checkpoint` and the file's sha256 (hex), from ONE read of the file."""
    path = _checkpoint_file(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _unreadable(path, exc) from None
    data = _unpickle(io.BytesIO(raw), sniff_checkpoint(path, raw), path)
    return data, hashlib.sha256(raw).hexdigest()


def _unreadable(path: Path, exc: OSError) -> FommError:
    """The one-line error for a checkpoint file the OS will not let us read."""
    return FommError(f"cannot read checkpoint {path} ({exc.strerror or exc}); check its permissions")


def _checkpoint_file(path: str | Path) -> Path:
    """The checkpoint file ``path`` names (a published name: its downloaded file), or one clear error."""
    path = Path(path)
    if not path.exists():  # a published name ('vox') means its file in the download cache
        from fomm.hub.registry import resolve_checkpoint

        path = Path(resolve_checkpoint(path))
    if path.is_dir():
        best = next((p for p in (path / "best.pt", path / "checkpoints" / "best.pt") if p.is_file()), None)
        hint = f"; pass {best}" if best else "; pass the checkpoint file inside it"
        raise FommError(f"checkpoint {path} is a folder, not a checkpoint file{hint}")
    if not path.is_file():
        raise FommError(f"checkpoint not found: {path}; check the path (e.g. vox-cpk.pth.tar)")
    return path


def _unpickle(source: Path | io.BytesIO, kind: str, path: Path) -> dict[str, Any]:
    """``torch.load(source, weights_only=True)`` of a file sniffed as ``kind``; errors name ``path``."""
    if kind == "empty":
        raise FommError(f"checkpoint {path} is an empty file (0 bytes); download or copy it again")
    if kind == "pickle":
        raise FommError(
            f"{path} is a plain Python pickle, not a PyTorch checkpoint; fomm refuses to unpickle it; "
            f"save the state dicts with torch.save"
        )
    if kind != "torch":
        raise FommError(f"{path} is not a PyTorch checkpoint ({kind}); {_fix_for(kind)}")
    try:
        data = torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower() or "weights_only" in str(exc):
            raise FommError(
                f"checkpoint {path} holds Python objects besides tensors and plain values, which "
                f"fomm refuses to unpickle; re-save its state dicts with torch.save"
            ) from None
        raise FommError(f"checkpoint {path} is corrupt ({exc}); download or copy it again") from None
    except Exception as exc:  # the unpickler raises many kinds on damaged bytes  # noqa: BLE001
        reason = str(exc).splitlines()[0].split(". ")[0] if str(exc) else type(exc).__name__
        reason = reason if len(reason) <= 100 else reason[:97] + "..."
        raise FommError(f"checkpoint {path} is truncated or corrupt ({reason}); download or copy it again") from None
    if not isinstance(data, dict):
        raise FommError(
            f"checkpoint {path} is not a FOMM checkpoint (it holds a {type(data).__name__}, "
            f"not a dict with 'generator' and 'kp_detector')"
        )
    return data


# (magic bytes, offset, what the file looks like); checked in order
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", 0, "a PNG image"),
    (b"\xff\xd8\xff", 0, "a JPEG image"),
    (b"GIF8", 0, "a GIF image"),
    (b"WEBP", 8, "a WebP image"),
    (b"II*\x00", 0, "a TIFF image"),
    (b"MM\x00*", 0, "a TIFF image"),
    (b"ftyp", 4, "an MP4/MOV video"),
    (b"\x1a\x45\xdf\xa3", 0, "a Matroska/WebM video"),
    (b"AVI ", 8, "an AVI video"),
    (b"WAVE", 8, "a WAV audio file"),
    (b"%PDF", 0, "a PDF document"),
    (b"\x1f\x8b", 0, "a gzip archive"),
    (b"BZh", 0, "a bzip2 archive"),
    (b"\xfd7zXZ\x00", 0, "an xz archive"),
    (b"7z\xbc\xaf\x27\x1c", 0, "a 7-Zip archive"),
    (b"Rar!", 0, "a RAR archive"),
    (b"ustar", 257, "a tar archive"),
    (b"\x89HDF\r\n\x1a\n", 0, "an HDF5 file (Keras/TensorFlow weights?)"),
    (b"\x93NUMPY", 0, "a NumPy .npy array"),
)
# what torch.save's legacy (pre-1.6, e.g. the original vox-cpk.pth.tar) format pickles first
_LEGACY_TORCH_MAGIC = b"\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19"


def sniff_checkpoint(path: str | Path, raw: bytes | None = None) -> str:
    """What a file holds, from its first bytes: ``'torch'`` (torch.save, zip or legacy format),
    ``'pickle'`` (a plain Python pickle), ``'empty'``, or ``'it looks like ...'`` (the kind of file).
    ``raw``: the file's bytes when already read (then the file is not opened again)."""
    path = Path(path)
    if raw is None:
        try:
            with open(path, "rb") as fh:
                head = fh.read(4096)
        except OSError as exc:
            raise _unreadable(path, exc) from None
    else:
        head = raw[:4096]
    if not head:
        return "empty"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return _sniff_zip(path if raw is None else io.BytesIO(raw))
    if head[:1] == b"\x80" and 2 <= head[1:2][0] <= 5:
        return "torch" if head[2:].startswith(_LEGACY_TORCH_MAGIC) else "pickle"
    for magic, offset, kind in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return f"it looks like {kind}"
    size = path.stat().st_size if raw is None else len(raw)
    if len(head) > 8 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < size:
        return "it looks like a safetensors file"
    return _sniff_text(head)


def _sniff_zip(path: Path | io.BytesIO) -> str:
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return "torch"  # a damaged zip: torch.load says how
    if any(n.endswith("data.pkl") for n in names):
        return "torch"
    if names and all(n.endswith(".npy") for n in names):
        return "it looks like a NumPy .npz archive"
    shown = ", ".join(names[:3]) if names else "nothing"
    return f"it looks like a ZIP archive of other files ({shown})"


def _sniff_text(head: bytes) -> str:
    if b"\x00" in head:
        return "its first bytes match no known format"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not a character cut at the end of the 4 KiB read
            return "its first bytes match no known format"
        text = head[: exc.start].decode("utf-8")
    text = text.lstrip().lower()
    if text.startswith(("<!doctype html", "<html")) or "<html" in text[:512]:
        return "it looks like an HTML page"
    if text.startswith("version https://git-lfs"):
        return "it looks like a Git LFS pointer"
    if re.search(r"^model_params:", text, re.MULTILINE):
        return "it looks like a FOMM YAML config"
    return "it looks like a text file"


def _fix_for(kind: str) -> str:
    """The fix to suggest for a file that is not a checkpoint."""
    if "HTML" in kind:
        return "a download that returned a web page instead of the file; download the checkpoint again"
    if "Git LFS" in kind:
        return "fetch the real file with git lfs pull"
    if "YAML config" in kind:
        return "pass it with --config and the .pth/.pth.tar file with --checkpoint"
    if "archive" in kind and "NumPy" not in kind:
        return "extract the .pth/.pth.tar checkpoint from it and pass that"
    return "pass a .pth/.pth.tar file saved with torch.save (e.g. vox-cpk.pth.tar)"


def strip_module_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove the ``module.`` prefix that ``DataParallel``/DDP adds to every key."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module.") :]: v for k, v in state.items()}
    return state


def model_states(data: dict[str, Any], path: str | Path = "checkpoint") -> dict[str, dict]:
    """The module state dicts of a checkpoint dict, keyed by part name."""
    missing = [p for p in INFERENCE_PARTS if not isinstance(data.get(p), dict)]
    if missing:
        raise FommError(
            f"{path} has no {' or '.join(missing)} state dict (top-level keys: "
            f"{', '.join(map(str, list(data)[:8]))}); it is not a FOMM checkpoint"
        )
    parts = {p: strip_module_prefix(data[p]) for p in INFERENCE_PARTS}
    if isinstance(data.get("discriminator"), dict):
        parts["discriminator"] = strip_module_prefix(data["discriminator"])
    return parts


def expected_shapes(config: Config, part: str) -> dict[str, tuple]:
    """State-dict key -> shape of a model part built from ``config``, without allocating weights."""
    return expected_part_shapes(config, (part,))[part]


def expected_part_shapes(config: Config, parts: tuple[str, ...]) -> dict[str, dict[str, tuple]]:
    """:func:`expected_shapes` of several parts from ONE (weightless, ``meta``) model build."""
    with torch.device("meta"):
        model = FirstOrderModel(config, with_discriminator="discriminator" in parts)
    return {part: {k: tuple(v.shape) for k, v in getattr(model, part).state_dict().items()} for part in parts}


def compare_state(expected: dict[str, tuple], state: dict[str, torch.Tensor]) -> dict[str, list]:
    """Keys missing from ``state``, unexpected in it, and present with another shape."""
    return {
        "missing": [k for k in expected if k not in state],
        "unexpected": [k for k in state if k not in expected],
        "shape": [k for k in expected if k in state and tuple(state[k].shape) != expected[k]],
    }


def _mismatch_count(diff: dict[str, list]) -> int:
    return sum(len(v) for v in diff.values())


def describe_mismatch(diff: dict[str, list], state: dict, expected: dict) -> str:
    parts = []
    for label, keys in (("missing", diff["missing"]), ("unexpected", diff["unexpected"])):
        if keys:
            parts.append(f"{len(keys)} {label} keys (e.g. {', '.join(keys[:3])})")
    if diff["shape"]:
        k = diff["shape"][0]
        parts.append(
            f"{len(diff['shape'])} keys of another shape (e.g. {k}: checkpoint "
            f"{tuple(state[k].shape)} vs config {expected[k]})"
        )
    return "; ".join(parts)


def match_presets(states: dict[str, dict], configs: dict[str, Config] | None = None) -> list[tuple[int, int, str]]:
    """Rank presets by how well their generator and kp detector fit the state dicts.

    Returns ``(mismatches in G+KP, mismatches in the discriminator, name)`` sorted best first.
    ``configs``: the presets by name, already loaded (default: :func:`preset_configs`).
    """
    configs = preset_configs() if configs is None else configs
    with_disc = "discriminator" in states
    parts = INFERENCE_PARTS + (("discriminator",) if with_disc else ())
    ranked = []
    for name, cfg in configs.items():
        shapes = expected_part_shapes(cfg, parts)
        gk = sum(_mismatch_count(compare_state(shapes[p], states[p])) for p in INFERENCE_PARTS)
        disc = _mismatch_count(compare_state(shapes["discriminator"], states["discriminator"])) if with_disc else 0
        ranked.append((gk, disc, name))
    return sorted(ranked)


def preset_configs() -> dict[str, Config]:
    """Every bundled preset, loaded once, by name."""
    return {name: load_preset(name) for name in preset_names()}


def load_model(
    checkpoint: str | Path | dict,
    config: Config | str | Path | dict | None = None,
    device: str | torch.device = "cpu",
    align_corners: bool | None = None,
    with_discriminator: bool = False,
    *,
    name: str | Path | None = None,
) -> FirstOrderModel:
    """Build a model and load a checkpoint into it, in eval mode.

    A Thin-Plate Spline Motion Model checkpoint (its layout: ``inpainting_network``,
    ``kp_detector``, ``dense_motion_network``) gives a :class:`fomm.models.tpsmm.TpsmmModel`
    (:func:`fomm.models.tpsmm.checkpoint.load_tpsmm_model`; ``config`` is then a TPSMM one).

    ``checkpoint``: a path (original ``.pth.tar`` or ours) or an already loaded dict.
    ``config``: a :class:`Config`, a YAML path, a preset name (``'vox-256'``) or None; with None,
    the config stored in our checkpoints is used, else the preset whose tensor shapes match.
    ``align_corners`` overrides the config's grid-sampling convention. ``name``: what messages
    call a checkpoint dict (e.g. the file it was read from; default ``'checkpoint'``).
    """
    path = checkpoint if not isinstance(checkpoint, dict) else (name or "checkpoint")
    data = checkpoint if isinstance(checkpoint, dict) else read_checkpoint(checkpoint)
    from fomm.models.tpsmm.checkpoint import is_tpsmm_checkpoint, load_tpsmm_model

    if is_tpsmm_checkpoint(data):  # a Thin-Plate Spline Motion Model (fomm.models.tpsmm)
        return load_tpsmm_model(data, config, device, path)
    states = model_states(data, path)
    if config is None and isinstance(data.get("config"), dict):
        cfg = Config.from_dict(data["config"], source=f"the config stored in {path}")
        cfg.name = data.get("config_name") or Path(str(path)).stem
    elif config is None:
        cfg = _preset_for(path, states)
    else:
        cfg = resolve_config(config).copy()
    if align_corners is not None:
        cfg.model_params.align_corners = bool(align_corners)
    cfg = fit_anti_alias(cfg, states)  # 29x29 or 13x13 kernels at 512: the checkpoint says which

    model = FirstOrderModel(cfg, with_discriminator=with_discriminator and "discriminator" in states)
    parts = INFERENCE_PARTS + (("discriminator",) if model.discriminator is not None else ())
    for part in parts:
        expected = {k: tuple(v.shape) for k, v in getattr(model, part).state_dict().items()}
        diff = compare_state(expected, states[part])
        if _mismatch_count(diff):
            closest = match_presets(states)[0][2]
            raise FommError(
                f"{path} does not fit config '{cfg.name or 'given'}' ({part}: "
                f"{describe_mismatch(diff, states[part], expected)}); closest preset: {closest}; "
                f"pass the matching --config"
            )
        getattr(model, part).load_state_dict(states[part])
    return model.to(resolve_device(device)).eval()


def _preset_for(path, states: dict[str, dict]) -> Config:
    """The one preset whose tensor shapes fit ``states`` (each preset is loaded once)."""
    configs = preset_configs()
    ranked = match_presets(states, configs)
    gk, _, name = ranked[0]
    if gk:
        detail = describe_mismatch(*_first_mismatch(configs[name], states))
        raise FommError(
            f"{path} fits no bundled preset (closest: {name}: {detail}); pass --config with "
            f"the YAML it was trained with"
        )
    _check_unambiguous(path, [configs[n] for g, _, n in ranked if g == 0])
    return configs[name]


def _inference_options(cfg: Config) -> dict:
    """The model options that change what the generator and keypoint detector compute."""
    options = cfg.to_dict()["model_params"]
    options.pop("discriminator_params", None)
    return options


def _check_unambiguous(path, configs: list[Config]) -> None:
    """Presets with the same tensor shapes may still compute different functions (e.g. two that
    differ only in the keypoint padding or ``align_corners``): then the shapes cannot choose."""
    first = _inference_options(configs[0])
    differ = [c.name for c in configs[1:] if _inference_options(c) != first]
    if differ:
        raise FommError(
            f"{path} carries no config and fits several presets that compute different functions "
            f"({', '.join([configs[0].name, *differ])}); pass --config with the one it was trained with"
        )


def _first_mismatch(cfg: Config, states: dict) -> tuple[dict, dict, dict]:
    shapes = expected_part_shapes(cfg, INFERENCE_PARTS)
    for part in INFERENCE_PARTS:
        diff = compare_state(shapes[part], states[part])
        if _mismatch_count(diff):
            return diff, states[part], shapes[part]
    return {"missing": [], "unexpected": [], "shape": []}, {}, {}


def checkpoint_dict(model: FirstOrderModel, **extra: Any) -> dict[str, Any]:
    """Our checkpoint format: model state dicts, the config, and any training state."""
    data: dict[str, Any] = {
        "fomm_format": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "config_name": model.config.name,
    }
    for part in ("generator", "kp_detector", "discriminator"):
        module = getattr(model, part, None)
        if module is not None:
            data[part] = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    data.update(extra)
    return data


def save_checkpoint(path: str | Path, model: FirstOrderModel, **extra: Any) -> Path:
    """Write our checkpoint format atomically (temp file, fsync, rename)."""
    return atomic_torch_save(checkpoint_dict(model, **extra), path)


def to_original_format(data: dict[str, Any]) -> dict[str, Any]:
    """Keep only what the original code reads: the module and optimizer state dicts and ``epoch``."""
    out = {k: data[k] for k in ORIGINAL_KEYS if k in data}
    out.setdefault("epoch", 0)
    return out


def export_original(src: str | Path, dst: str | Path) -> Path:
    """Convert one of our checkpoints to the original ``.pth.tar`` layout."""
    return atomic_torch_save(to_original_format(read_checkpoint(src)), dst)


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    import os

    from fomm.atomic import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)
