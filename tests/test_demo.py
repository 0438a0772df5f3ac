"""``fomm demo`` and the bundled model work on a fresh install, with nothing downloaded."""

import json

import numpy as np
import pytest

from fomm.bundled import bundled_checkpoint_path, demo_inputs
from fomm.cli import main
from fomm.data.video_io import probe, read_frames, read_image
from fomm.models.checkpoint import load_model


def test_bundled_model_loads_without_a_config():
    model = load_model(bundled_checkpoint_path())
    assert model.config.name == "puppet-64"
    assert model.frame_shape == (64, 64)
    assert not model.training


def test_demo_writes_a_side_by_side_video_and_a_sheet(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert str(tmp_path / "demo.mp4") in printed and "demo-sheet.png" in printed
    _, driving = demo_inputs()
    info, source_info = probe(tmp_path / "demo.mp4"), probe(driving)
    assert info.num_frames == source_info.num_frames and info.fps == source_info.fps
    assert (info.width, info.height) == (3 * 64, 64)
    frames, _ = read_frames(tmp_path / "demo.mp4")
    result = frames[..., 128:, :].astype(np.float32)
    assert result.std() > 5  # a real picture, not a flat frame
    assert np.abs(np.diff(result, axis=0)).mean() > 0.5  # and it moves
    sheet = read_image(tmp_path / "demo-sheet.png")
    assert sheet.shape[1] >= 2 * 3 * 64
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


@pytest.fixture(scope="module")
def tiny_puppet_set(tmp_path_factory):
    from fomm.data.synthetic import write_dataset

    root = tmp_path_factory.mktemp("synth") / "puppet"
    write_dataset(
        root, "puppet", num_train=1, num_test=2, num_frames=12, size=64, seed=5, num_cross_pairs=2, progress=False
    )
    return root


def test_evaluate_with_the_bundled_model(tiny_puppet_set, tmp_path):
    out = tmp_path / "report.json"
    assert main(["evaluate", "--data", str(tiny_puppet_set), "--out", str(out), "--max-videos", "2"]) == 0
    report = json.loads(out.read_text())
    for task in ("reconstruction", "cross_identity"):
        assert set(report[task]) >= {"model", "static", "global_affine"}
        for metrics in report[task].values():
            assert {"l1", "psnr", "ssim", "akd"} <= set(metrics)
    assert out.with_suffix(".md").is_file()
    assert report["checkpoint"].startswith("bundled puppet-64.pth (sha256 ")  # no machine-specific path
    model_l1, static_l1 = report["reconstruction"]["model"]["l1"], report["reconstruction"]["static"]["l1"]
    assert model_l1 < static_l1
    cross = report["cross_identity"]
    assert cross["model"]["l1"] < min(cross["static"]["l1"], cross["global_affine"]["l1"])
