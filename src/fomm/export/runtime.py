"""ONNX Runtime backend: the exported graphs behind the :class:`~fomm.models.inference.InferenceModel`
interface (``keypoints``, ``encode_source``, ``animate``), so the animation engine runs them with
the same relative motion, Jacobians and movement scaling as the torch backend.

Given a torch model, the graphs are exported on the fly into a cache folder keyed by a hash of the
model's weights and config, the fomm version and the opset: ``$FOMM_HOME/onnx/<key>`` or, without
``FOMM_HOME``, ``platformdirs.user_cache_dir("fomm")/onnx/<key>``.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs
import torch

from fomm import __version__
from fomm.errors import FommError
from fomm.export.graphs import GRAPH_FILES, OPSET, export_onnx, read_manifest


def cache_root() -> Path:
    """Where on-the-fly exports are kept (``$FOMM_HOME/onnx`` or the user cache folder)."""
    home = os.environ.get("FOMM_HOME")
    if home:
        return Path(home).expanduser() / "onnx"
    return Path(platformdirs.user_cache_dir("fomm")) / "onnx"


def model_key(model, parts=("kp_detector", "generator"), tag: str = "") -> str:
    """sha256 of the model's inference weights (its ``parts``) and config, the fomm version and the
    opset (16 hex); ``tag`` tells model families apart."""
    digest = hashlib.sha256(f"fomm {__version__} opset {OPSET}{tag}\n".encode())
    digest.update(model.config.to_yaml().encode())
    for part in parts:
        for name, tensor in sorted(getattr(model, part).state_dict().items()):
            digest.update(f"{part}.{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def cached_export(model, progress: bool = False, key=None, export=None) -> Path:
    """The export folder of ``model`` in the cache, exporting it first when missing (``key`` and
    ``export``: the model family's, by default FOMM's :func:`model_key` and :func:`export_onnx`)."""
    folder = cache_root() / (key or model_key)(model)
    if not (folder / "manifest.json").is_file():
        if progress:
            print(f"exporting the model to ONNX (once; cached in {folder})", flush=True)
        (export or export_onnx)(model, folder, progress=progress)
    return folder


def providers() -> list[str]:
    """ONNX Runtime execution providers to use: CUDA first when available, then the CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


@dataclass
class OnnxSource:
    """An encoded source: keypoints (torch, fp32, batch 1) and the encoder's outputs (numpy)."""

    kp: dict[str, torch.Tensor]
    features: np.ndarray  # (1, F, h, w)
    small: np.ndarray  # (1, 3, h', w')


class OnnxSessions:
    """An export folder's graphs (``GRAPH_FILES``: name -> file) as ONNX Runtime sessions, with the
    attributes the animation engine reads of an inference model; the base of both families'
    backends."""

    backend = "onnxruntime"
    int8 = False
    calibrating = False
    GRAPH_FILES: dict[str, str] = GRAPH_FILES

    def __init__(self, folder: str | Path, precision: str = "exact", provider_names: list[str] | None = None):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise FommError("the onnxruntime backend needs ONNX Runtime: pip install 'fomm[onnx]'") from exc
        if precision == "fast":
            warnings.warn("precision 'fast' has no effect with the onnxruntime backend; running fp32", stacklevel=3)
        self.precision = "exact"
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        self.frame_shape = tuple(self.manifest["frame_shape"])
        options = ort.SessionOptions()
        options.log_severity_level = 3
        names = provider_names or providers()
        self.sessions = {
            name: ort.InferenceSession(str(self.folder / file), options, providers=names)
            for name, file in self.GRAPH_FILES.items()
        }
        self.device = torch.device("cpu")


class OnnxInferenceModel(OnnxSessions):
    """Runs an export folder (:func:`fomm.export.export_onnx`) with ONNX Runtime.

    >>> im = OnnxInferenceModel("vox-onnx/")            # or OnnxInferenceModel.from_model(model)
    >>> source = im.encode_source(source_hwc)
    >>> out = im.animate(source, kp_norm)               # {'prediction': (B, 3, H, W) tensor}
    """

    @classmethod
    def from_model(cls, model, precision: str = "exact", progress: bool = False) -> OnnxInferenceModel:
        """Export ``model`` into the cache (once) and load it."""
        return cls(cached_export(model, progress=progress), precision)

    def _run(self, graph: str, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        session = self.sessions[graph]
        wanted = {i.name for i in session.get_inputs()}
        outputs = session.run(None, {k: v for k, v in feed.items() if k in wanted})
        return {o.name: v for o, v in zip(session.get_outputs(), outputs)}

    @staticmethod
    def _nchw(frames_bhwc: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.asarray(frames_bhwc, dtype=np.float32).transpose(0, 3, 1, 2))

    def keypoints(self, frames_bhwc: np.ndarray) -> dict[str, torch.Tensor]:
        """Keypoints of ``(B, H, W, 3)`` model-sized frames: ``value (B, K, 2)``, ``jacobian``."""
        out = self._run("kp_detector", {"image": self._nchw(frames_bhwc)})
        return {k: torch.from_numpy(v) for k, v in out.items()}

    def encode_source(self, source_hwc: np.ndarray) -> OnnxSource:
        """Keypoints and encoder outputs of one ``(H, W, 3)`` source."""
        out = self._run("source_encoder", {"source": self._nchw(source_hwc[None])})
        return OnnxSource(self.keypoints(source_hwc[None]), out["features"], out["source_small"])

    def animate(self, source: OnnxSource, kp_driving: dict[str, torch.Tensor], outputs=("prediction",)) -> dict:
        """Animate ``source`` to normalised driving keypoints (values ``(B, K, 2)``); returns the
        requested outputs among ``prediction`` and ``occlusion_map`` as tensors ``(B, C, H, W)``."""
        feed = {"features": source.features, "source_small": source.small}
        for name, tensor in kp_driving.items():
            feed[f"kp_driving_{name}"] = np.ascontiguousarray(tensor.detach().cpu().numpy(), dtype=np.float32)
        for name, tensor in source.kp.items():
            feed[f"kp_source_{name}"] = np.ascontiguousarray(tensor.detach().cpu().numpy(), dtype=np.float32)
        out = self._run("generator", feed)
        return {k: torch.from_numpy(out[k]) for k in outputs if k in out}
