"""An ONNX export folder (``fomm export --format onnx``) as a model to animate with.

:func:`fomm.models.checkpoint.load_model` recognises the folder by its ``manifest.json`` and
returns an :class:`ExportedModel`: what the animation engine needs to know of a model (its frame
size, its device) without the weights, which live in the graphs. The engine runs it with ONNX
Runtime (``--backend onnxruntime``, :mod:`fomm.export.runtime`); the torch backend cannot.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from fomm.errors import FommError

MANIFEST = "manifest.json"
FORMAT = "fomm-onnx"  # the manifest's "format"


def is_onnx_export(folder: str | Path) -> bool:
    """Whether ``folder`` holds a ``manifest.json`` (checked in full by :func:`read_manifest`)."""
    return (Path(folder) / MANIFEST).is_file()


def read_manifest(folder: str | Path) -> dict:
    """The manifest of an export folder (a :class:`FommError` when it is not one)."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise FommError(f"{folder} holds no {MANIFEST}; export one with: fomm export CKPT --format onnx --out DIR")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise FommError(f"{path} is not readable JSON ({exc}); export the folder again") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise FommError(f"{path} is not a fomm ONNX manifest; export the folder again with fomm export --format onnx")
    return manifest


@dataclass(frozen=True)
class ExportedModel:
    """The model of an ONNX export folder: its manifest, frame size and (CPU-side) device."""

    folder: Path
    manifest: dict = field(repr=False)
    backend = "onnxruntime"

    @classmethod
    def open(cls, folder: str | Path) -> ExportedModel:
        return cls(Path(folder), read_manifest(folder))

    @property
    def frame_shape(self) -> tuple[int, int]:
        return tuple(int(s) for s in self.manifest["frame_shape"][:2])

    @property
    def kind(self) -> str:
        """The model family exported (``fomm``, or ``tpsmm`` for a Thin-Plate Spline Motion Model)."""
        return str(self.manifest.get("kind", "fomm"))

    @property
    def has_avd(self) -> bool:
        """A TPSMM export with its AVD network (``fomm animate --avd``)."""
        return bool(self.manifest.get("avd"))

    @property
    def name(self) -> str:
        """The preset it was exported from (as the manifest records it)."""
        return str(self.manifest.get("preset") or self.folder.name)

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")  # keypoints and frames cross to ONNX Runtime as CPU arrays

    def eval(self) -> ExportedModel:
        return self
