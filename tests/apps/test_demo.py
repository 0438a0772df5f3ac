"""``fomm demo`` and the bundled model work on a fresh install, with nothing downloaded."""

import json
from pathlib import Path

import numpy as np
import pytest

from fomm.bundled import bundled_checkpoint_path, demo_inputs
from fomm.cli import main
from fomm.data.video_io import probe, read_frames, read_image
from fomm.models.checkpoint import load_model


@pytest.mark.parametrize("category, preset", [(None, "face-64"), ("face", "face-64"), ("puppet", "puppet-64")])
def test_bundled_model_loads_without_a_config(category, preset):
    """Both bundled models ship; the face model is the default."""
    model = load_model(bundled_checkpoint_path(category))
    assert model.config.name == preset
    assert model.frame_shape == (64, 64)
    assert not model.training


@pytest.mark.slow
def test_demo_writes_a_side_by_side_video_and_a_sheet(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert str(tmp_path / "demo.mp4") in printed and "demo-sheet.png" in printed
    _, driving = demo_inputs()
    info, source_info = probe(tmp_path / "demo.mp4"), probe(driving)
    assert info.num_frames == source_info.num_frames and info.fps == source_info.fps
    band = 256 // 8  # the label band above the panels
    assert (info.width, info.height) == (3 * 256, 256 + band)  # panels enlarged to 256 px for display
    frames, _ = read_frames(tmp_path / "demo.mp4")
    result = frames[:, band:, 512:, :].astype(np.float32)
    assert result.std() > 5  # a real picture, not a flat frame
    assert np.abs(np.diff(result, axis=0)).mean() > 0.5  # and it moves
    labels = frames[:, :band].astype(np.float32)
    assert labels.max() > 200 and np.median(labels) < 60  # white text on a dark band
    sheet = read_image(tmp_path / "demo-sheet.png")
    assert sheet.shape[1] >= 2 * 3 * 256 and sheet.shape[0] >= 2 * (256 + band)  # 2 x 2 labelled frames
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo-sheet.png", "demo.mp4"]  # no temporaries left


def test_demo_category_falls_back_to_puppet_and_checks_names():
    from fomm.apps.demo import _inputs
    from fomm.bundled import bundled_categories

    expected = "face" if "face" in bundled_categories() else "puppet"
    category, checkpoint, source, driving = _inputs(None, None)
    assert category == expected and checkpoint.is_file() and source.is_file() and driving.is_file()
    assert _inputs("puppet", None)[1].name == "puppet-64.pth"
    with pytest.raises(SystemExit):
        main(["demo", "--category", "horse"])


@pytest.fixture(scope="module")
def tiny_puppet_set(synthetic_dataset):
    return synthetic_dataset("puppet", num_train=1, num_test=2, num_frames=12, size=64, seed=5, num_cross_pairs=2)


@pytest.mark.slow
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


def test_demo_checks_its_inputs_before_making_the_folder(tmp_path):
    from fomm.apps.demo import run_demo
    from fomm.errors import FommError

    with pytest.raises(FommError, match="unknown device 'tpu'"):
        run_demo(tmp_path / "a", device="tpu", progress=False)
    with pytest.raises(FommError, match="not found"):
        run_demo(tmp_path / "b", checkpoint=tmp_path / "nope.pth", progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("existing", [False, True])
def test_demo_failing_midway_leaves_nothing(tmp_path, monkeypatch, existing):
    import fomm.animation.pipeline
    from fomm.apps.demo import run_demo

    seen = []

    def failing(source, driving, save_frames, **kwargs):
        seen.append(save_frames.parent.name)
        save_frames.mkdir()
        (save_frames / "0000000.png").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(fomm.animation.pipeline, "animate_video", failing)
    out = tmp_path / "demo"
    if existing:
        out.mkdir()
        (out / "mine.txt").write_text("kept")
    with pytest.raises(KeyboardInterrupt):
        run_demo(out, progress=False)
    assert seen[0].startswith(".demo-frames.fomm-")  # fomm.atomic naming: a killed run's is swept later
    if existing:
        assert [p.name for p in out.iterdir()] == ["mine.txt"]
    else:
        assert not out.exists()


def test_demo_says_where_it_writes_and_git_ignores_it(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default: fomm-demo in the current folder, created if missing" in text
    ignored = (Path(__file__).parents[2] / ".gitignore").read_text().split()
    assert "/fomm-demo/" in ignored
