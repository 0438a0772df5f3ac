"""ONNX export of a Thin-Plate Spline Motion Model: four graphs, the TPS solve kept outside them,
and the ONNX Runtime backend animating as the torch one in the three modes."""

from __future__ import annotations

import json

import numpy as np
import pytest

import fomm
from fomm.cli import main
from fomm.testing import random_tpsmm_model

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


@pytest.mark.slow
def test_onnxruntime_matches_torch_in_every_mode(tmp_path, monkeypatch):
    monkeypatch.setenv("FOMM_HOME", str(tmp_path))
    model = random_tpsmm_model()
    rng = np.random.default_rng(0)
    source = rng.random((64, 64, 3), dtype=np.float32)
    driving = rng.random((3, 64, 64, 3), dtype=np.float32)
    for options in (dict(relative=False), dict(relative=True), dict(avd=True)):
        torch_frames = fomm.animate(model, source, driving, **options)
        onnx_frames = fomm.animate(model, source, driving, backend="onnxruntime", **options)
        np.testing.assert_allclose(onnx_frames, torch_frames, atol=5e-4)  # AVD's BatchNorm1d: 1.2e-4
    (folder,) = (tmp_path / "onnx").iterdir()  # exported once, reused by the later calls
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["kind"] == "tpsmm" and manifest["encoder_maps"] == 4
    inputs = [i["name"] for i in manifest["graphs"]["generator"]["inputs"]]
    assert inputs[:3] == ["kp_driving", "tps_theta", "tps_weights"]  # the solve is outside the graph


@pytest.mark.slow
def test_fomm_export_writes_the_tpsmm_graphs(tmp_path, capsys):
    import torch

    from fomm.models.tpsmm.checkpoint import tpsmm_checkpoint_dict

    torch.save(tpsmm_checkpoint_dict(random_tpsmm_model()), tmp_path / "tiny.pth.tar")
    assert main(["export", str(tmp_path / "tiny.pth.tar"), "--format", "onnx", "--out", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "avd.onnx",
        "generator.onnx",
        "kp_detector.onnx",
        "manifest.json",
        "source_encoder.onnx",
    ]
