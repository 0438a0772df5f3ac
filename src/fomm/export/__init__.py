"""Deployment: the model as three ONNX graphs, and an ONNX Runtime backend for the animation engine.

The split is the animation engine's (:class:`fomm.models.inference.InferenceModel`):

- ``kp_detector.onnx``: ``image (B, 3, H, W)`` -> ``value (B, K, 2)``, ``jacobian (B, K, 2, 2)``;
- ``source_encoder.onnx`` (once per source): ``source (B, 3, H, W)`` -> ``features``, ``source_small``;
- ``generator.onnx`` (per frame): normalised driving keypoints ``(B, ...)``, source keypoints and the
  encoded source (batch 1, broadcast over the driving batch) -> ``prediction (B, 3, H, W)`` and,
  when the model estimates one, ``occlusion_map``.

Relative motion, Jacobian normalisation and movement scaling stay outside the graphs
(:func:`fomm.animation.engine.normalize_kp`), shared with the torch backend. ``manifest.json`` beside the
graphs records the preset, frame size, names and shapes of every input and output, the fomm
version and the opset.
"""

from pathlib import Path

from fomm.export import graphs, tpsmm
from fomm.export.graphs import OPSET


def export_onnx(model, out_dir: str | Path, check: bool = True, progress: bool = False) -> dict:
    """Write a model's ONNX graphs and ``manifest.json`` into ``out_dir``; returns the manifest.
    A FOMM gives three graphs (:func:`fomm.export.graphs.export_onnx`), a Thin-Plate Spline Motion
    Model its own four (:func:`fomm.export.tpsmm.export_tpsmm_onnx`)."""
    if getattr(model, "kind", "fomm") == "tpsmm":
        return tpsmm.export_tpsmm_onnx(model, out_dir, check=check, progress=progress)
    return graphs.export_onnx(model, out_dir, check=check, progress=progress)


__all__ = ["OPSET", "export_onnx"]
