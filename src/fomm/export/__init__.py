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

from fomm.export.graphs import OPSET, export_onnx

__all__ = ["OPSET", "export_onnx"]
