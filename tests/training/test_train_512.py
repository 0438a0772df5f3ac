"""Training at 512 x 512: ``fomm prepare --size 512`` clips feed ``fomm train`` with a vox-512
config (small widths), from scratch and ``--init-from`` a 256 checkpoint, whose every tensor fits
but the anti-alias kernels (13 x 13 at scale 0.25, 29 x 29 at 0.125): those stay the config's."""

from __future__ import annotations

import json

import pytest

from fomm.cli import main
from fomm.data import video_io
from fomm.models.checkpoint import read_checkpoint
from fomm.testing import random_checkpoint, small_config


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Two 640 x 480 face videos cut by ``fomm prepare --size 512``."""
    face_clips = pytest.importorskip("face_clips")
    root = tmp_path_factory.mktemp("prepare-512")
    for i in range(2):
        video_io.write_video(root / "raw" / f"clip{i}.mp4", face_clips.moving_clip(12, seed=i, h=480, w=640)[0], 25)
    args = ["prepare", str(root / "raw"), "--out", str(root / "data"), "--size", "512", "--min-frames", "4"]
    assert main([*args, "--min-size", "64", "--test-fraction", "0", "--workers", "1", "--no-progress"]) == 0
    clips = sorted((root / "data" / "train").glob("*.mp4"))
    assert clips and all(video_io.probe(c).width == video_io.probe(c).height == 512 for c in clips)
    return root / "data"


def config_yaml(path):
    """vox-512 at small widths; the perceptual loss off and one scale, to keep a CPU step short."""
    cfg = small_config("vox-512")
    cfg.train_params.scales = [1]
    cfg.train_params.loss_weights.perceptual = [0, 0, 0, 0, 0]
    cfg.to_yaml(path)
    return path


@pytest.mark.slow
def test_train_512_from_scratch_and_from_a_256_checkpoint(prepared, tmp_path, capsys):
    config = config_yaml(tmp_path / "vox-512-small.yaml")
    common = ["train", "--config", str(config), "--data", str(prepared), "--max-steps", "1", "--batch-size", "1"]
    common += ["--no-tensorboard", "--quiet", "--vis-every", "0"]
    assert main([*common, "--out", str(tmp_path / "scratch")]) == 0
    scratch = read_checkpoint(tmp_path / "scratch" / "checkpoints" / "best.pt")
    assert scratch["kp_detector"]["down.weight"].shape == (3, 1, 29, 29)

    ckpt256 = random_checkpoint(tmp_path / "small-256.pth.tar", small_config("vox-256"), original_format=True)
    assert main([*common, "--out", str(tmp_path / "fine"), "--init-from", str(ckpt256)]) == 0
    run = json.loads((tmp_path / "fine" / "run.json").read_text())
    report = run["init_from"]
    assert report["kp_detector"]["kept_new"] == ["down.weight"]
    assert report["generator"]["kept_new"] == ["dense_motion_network.down.weight"]
    assert report["kp_detector"]["loaded"] == report["kp_detector"]["of"] - 1
    fine = read_checkpoint(tmp_path / "fine" / "checkpoints" / "best.pt")
    assert fine["kp_detector"]["down.weight"].shape == (3, 1, 29, 29)  # the config's kernel, not the 256 one
