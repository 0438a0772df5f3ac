"""Checkpoint files: which file a ``--checkpoint`` value names, reading it safely, writing ours.

All loading goes through ``torch.load(weights_only=True)``: a checkpoint is never allowed to
unpickle arbitrary Python objects, and a file that is no PyTorch checkpoint at all is named as
such from its first bytes (:mod:`fomm.models.sniff`) before anything is unpickled.

Formats read:
- original: ``{'generator', 'kp_detector', 'discriminator'?, 'optimizer_*'?, 'epoch'?}``, each a
  state dict (keys may carry a ``module.`` prefix from ``DataParallel``);
- ours: the same keys plus ``'fomm_format': 1`` and ``'config'`` (the YAML schema as a dict), so
  no config is needed to load it, and training state (step, schedulers, RNG) for ``--resume``.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import os
import pickle
from pathlib import Path
from typing import Any

import torch

from fomm.atomic import atomic_path
from fomm.errors import FommError
from fomm.models.exported import is_onnx_export
from fomm.models.registry import missing_hint, registry, resolve_checkpoint
from fomm.models.sniff import fix_for, sniff_checkpoint, unreadable

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


def locate(checkpoint: str | os.PathLike) -> Path:
    """The file a checkpoint value names: a path, or a name (bundled, or published and downloaded).

    An ONNX export folder (``fomm export --format onnx``) is returned as it is, for the caller to
    accept or refuse; any other folder, a missing file or an unknown name is one clear error."""
    path = Path(resolve_checkpoint(checkpoint))  # a name: its bundled or downloaded file
    if path.is_dir():
        if is_onnx_export(path):
            return path
        best = next((p for p in (path / "best.pt", path / "checkpoints" / "best.pt") if p.is_file()), None)
        hint = f"; pass {best}" if best else "; pass the checkpoint file inside it"
        raise FommError(f"checkpoint {path} is a folder, not a checkpoint file{hint}")
    if not path.is_file():
        raise FommError(f"checkpoint not found: {path}{_did_you_mean(path)}; {missing_hint()}")
    return path


def _did_you_mean(path: Path) -> str:
    """`` (did you mean 'vox'?)`` for a mistyped name, else nothing."""
    if len(path.parts) != 1:
        return ""
    close = difflib.get_close_matches(str(path), list(registry()), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def checkpoint_file(checkpoint: str | os.PathLike) -> Path:
    """:func:`locate`, refusing an ONNX export folder (for the commands that need the weights)."""
    path = locate(checkpoint)
    if path.is_dir():
        raise FommError(
            f"{path} is an ONNX export folder, not a checkpoint file; it runs with --backend onnxruntime "
            f"(fomm animate, live, app); here pass the .pth checkpoint it was exported from"
        )
    return path


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint (a file, or a name: see :func:`locate`) safely (``weights_only``) into a
    dict on the CPU.

    A file that is no PyTorch checkpoint at all (an image, a video, a text or HTML file, another
    archive, an empty file) is named as such before anything is unpickled."""
    path = checkpoint_file(path)
    return _unpickle(path, sniff_checkpoint(path), path)


def read_checkpoint_sha256(path: str | os.PathLike) -> tuple[dict[str, Any], str]:
    """:func:`read_checkpoint` and the file's sha256 (hex), from ONE read of the file."""
    path = checkpoint_file(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise unreadable(path, exc) from None
    data = _unpickle(io.BytesIO(raw), sniff_checkpoint(path, raw), path)
    return data, hashlib.sha256(raw).hexdigest()


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
        raise FommError(f"{path} is not a PyTorch checkpoint ({kind}); {fix_for(kind)}")
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


def checkpoint_dict(model, **extra: Any) -> dict[str, Any]:
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


def save_checkpoint(path: str | Path, model, **extra: Any) -> Path:
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
    """``torch.save`` into a temporary file, fsync, rename: the path never holds a partial file."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)
