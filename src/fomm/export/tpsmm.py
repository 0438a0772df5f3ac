"""ONNX export and ONNX Runtime backend of a Thin-Plate Spline Motion Model (fomm.models.tpsmm).

Four graphs: ``kp_detector`` (image -> ``fg_kp``), ``source_encoder`` (the source -> its
dense-motion-size copy and the inpainting encoder's maps), ``avd`` (source and driving keypoints ->
``fg_kp``) and ``generator`` (keypoints, TPS parameters and the encoded source -> ``prediction``,
``occlusion_map``).

The TPS kernel system of Eq. 2 needs a linear solve (an 8 x 8 inverse per transformation), which
ONNX has no operator for. It is solved outside the graphs, in torch, between ``kp_detector`` and
``generator``, exactly as the relative-motion step is: the generator graph takes the solved
``tps_theta`` (B, K, 2, 3) and ``tps_weights`` (B, K, 5, 2) as inputs and builds the sampling grids
itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fomm.errors import FommError
from fomm.export.graphs import KeypointGraph, export_graph, write_export_folder
from fomm.export.runtime import OnnxSessions, cached_export, model_key
from fomm.models.tpsmm.tps import tps_parameters

GRAPH_FILES = {
    "kp_detector": "kp_detector.onnx",
    "source_encoder": "source_encoder.onnx",
    "avd": "avd.onnx",
    "generator": "generator.onnx",
}


class SourceEncoderGraph(nn.Module):
    """``source (1, 3, H, W)`` -> ``source_small`` and the encoder maps ``enc_0`` (finest) ..."""

    def __init__(self, model):
        super().__init__()
        self.dense, self.inpainting = model.dense_motion_network, model.inpainting_network

    def forward(self, source):
        small = self.dense.down(source) if self.dense.scale_factor != 1 else source
        return (small, *self.inpainting.encode(source))


class AvdGraph(nn.Module):
    """``kp_source``, ``kp_driving`` (B, 5K, 2) -> ``fg_kp`` (B, 5K, 2): TPSMM's avd mode."""

    def __init__(self, avd_network: nn.Module):
        super().__init__()
        self.avd_network = avd_network

    def forward(self, kp_source, kp_driving):
        return self.avd_network({"fg_kp": kp_source}, {"fg_kp": kp_driving})["fg_kp"]


class GeneratorGraph(nn.Module):
    """Per frame: driving keypoints, TPS parameters (batch B), source keypoints and the encoded
    source (batch 1, broadcast) -> ``prediction (B, 3, H, W)``, ``occlusion_map`` (the finest)."""

    def __init__(self, model):
        super().__init__()
        self.dense, self.inpainting = model.dense_motion_network, model.inpainting_network

    def forward(self, kp_driving, tps_theta, tps_weights, kp_source, source, source_small, encoder_maps: list):
        b = kp_driving.shape[0]
        small = source_small.expand(b, -1, -1, -1)
        grids = self.dense.transformations_from_parameters(kp_driving, tps_theta, tps_weights, small.shape[2:])
        kp_d, kp_s = {"fg_kp": kp_driving}, {"fg_kp": kp_source.expand(b, -1, -1)}
        motion = self.dense.from_transformations(small, kp_d, kp_s, grids, False, 0.0)
        maps = [m.expand(b, -1, -1, -1) for m in encoder_maps]
        out = self.inpainting.decode(maps, source.expand(b, -1, -1, -1), motion)
        return out["prediction"], out["occlusion_map"][-1]


def tpsmm_model_key(model) -> str:
    """sha256 of the weights and config, the fomm version and the opset (16 hex)."""
    return model_key(model, ("kp_detector", "dense_motion_network", "inpainting_network", "avd_network"), " tpsmm")


def _write_graphs(model, folder: Path, done=lambda: None) -> int:
    """Export the four graphs; returns the number of encoder maps."""
    h, w = model.frame_shape
    images = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        kp = model.kp_detector(images)["fg_kp"]
        encoded = SourceEncoderGraph(model)(images[:1])
        theta, weights = tps_parameters(kp.view(2, -1, 5, 2), kp[:1].expand(2, -1, -1).reshape(2, -1, 5, 2))
    export_graph(
        KeypointGraph(model.kp_detector, ("fg_kp",)),
        (images,),
        folder / GRAPH_FILES["kp_detector"],
        ["image"],
        ["fg_kp"],
        ["image"],
    )
    done()
    maps = [f"enc_{i}" for i in range(len(encoded) - 1)]
    export_graph(
        SourceEncoderGraph(model),
        (images[:1].clone(),),
        folder / GRAPH_FILES["source_encoder"],
        ["source"],
        ["source_small", *maps],
        [],
    )
    done()
    names = ["kp_source", "kp_driving"]
    export_graph(AvdGraph(model.avd_network), (kp, kp.flip(0)), folder / GRAPH_FILES["avd"], names, ["fg_kp"], names)
    done()
    names = ["kp_driving", "tps_theta", "tps_weights", "kp_source", "source", "source_small", *maps]
    args = (kp, theta, weights, kp[:1].clone(), images[:1].clone(), encoded[0], list(encoded[1:]))
    export_graph(
        GeneratorGraph(model),
        args,
        folder / GRAPH_FILES["generator"],
        names,
        ["prediction", "occlusion_map"],
        names[:3],
        structure=[None] * 6 + [len(maps)],  # the encoder maps are one list argument
    )
    done()
    return len(maps)


def export_tpsmm_onnx(model, out_dir: str | Path, check: bool = True, progress: bool = False) -> dict:
    """Write the four graphs and ``manifest.json`` into ``out_dir`` (whole or not at all, as
    :func:`fomm.export.export_onnx`); returns the manifest."""

    def fields(model, folder: Path, done) -> dict:
        return {
            "kind": "tpsmm",
            "num_tps": int(model.config.model_params.common_params.num_tps),
            "encoder_maps": _write_graphs(model, folder, done),
            "avd": bool(model.has_avd),
            "tps_solve": "outside the graphs (ONNX has no linear solve): feed tps_theta and tps_weights",
        }

    return write_export_folder(model, out_dir, GRAPH_FILES, fields, check=check, progress=progress)


@dataclass
class OnnxTpsmmSource:
    """An encoded source: keypoints (torch, batch 1) and the source graph's outputs (numpy)."""

    kp: dict[str, torch.Tensor]
    image: np.ndarray
    encoded: list[np.ndarray]  # source_small, enc_0, ...


class OnnxTpsmmInference(OnnxSessions):
    """The TPSMM graphs under the engine's interface (``keypoints`` / ``encode_source`` /
    ``animate`` / ``avd``); the TPS solve runs in torch between them."""

    GRAPH_FILES = GRAPH_FILES

    @classmethod
    def from_model(cls, model, precision: str = "exact", progress: bool = False) -> OnnxTpsmmInference:
        """Export ``model`` into the ONNX cache (once) and load it."""
        inference = cls(cached_export(model, progress, tpsmm_model_key, export_tpsmm_onnx), precision)
        inference.has_avd = model.has_avd
        return inference

    def _run(self, graph: str, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.sessions[graph].run(None, feed)

    @staticmethod
    def _np(x) -> np.ndarray:
        x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x
        return np.ascontiguousarray(x, dtype=np.float32)

    def keypoints(self, frames_bhwc: np.ndarray) -> dict[str, torch.Tensor]:
        image = self._np(np.asarray(frames_bhwc).transpose(0, 3, 1, 2))
        return {"value": torch.from_numpy(self._run("kp_detector", {"image": image})[0])}

    def encode_source(self, source_hwc: np.ndarray) -> OnnxTpsmmSource:
        image = self._np(source_hwc[None].transpose(0, 3, 1, 2))
        return OnnxTpsmmSource(self.keypoints(source_hwc[None]), image, self._run("source_encoder", {"source": image}))

    def animate(self, source: OnnxTpsmmSource, kp_driving: dict, outputs=("prediction",)) -> dict[str, torch.Tensor]:
        kd = kp_driving["value"].float()
        b = kd.shape[0]
        theta, weights = tps_parameters(kd.view(b, -1, 5, 2), source.kp["value"].expand(b, -1, -1).reshape(b, -1, 5, 2))
        feed = {"kp_driving": self._np(kd), "tps_theta": self._np(theta), "tps_weights": self._np(weights)}
        feed.update({"kp_source": self._np(source.kp["value"]), "source": source.image})
        feed["source_small"] = source.encoded[0]
        feed.update({f"enc_{i}": m for i, m in enumerate(source.encoded[1:])})
        prediction, occlusion = self._run("generator", feed)
        out = {"prediction": torch.from_numpy(prediction), "occlusion_map": torch.from_numpy(occlusion)}
        return {k: out[k] for k in outputs if k in out}

    def avd(self, kp_source: dict, kp_driving: dict) -> dict[str, torch.Tensor]:
        if not getattr(self, "has_avd", self.manifest.get("avd")):
            raise FommError(
                "this TPSMM checkpoint has no avd_network; animate without --avd, or train one with "
                "fomm train --stage avd"
            )
        b = kp_driving["value"].shape[0]
        feed = {
            "kp_source": self._np(kp_source["value"].expand(b, -1, -1)),
            "kp_driving": self._np(kp_driving["value"]),
        }
        return {"value": torch.from_numpy(self._run("avd", feed)[0])}
