"""Evaluation landmark detectors: training, the shipped weights, loading."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fomm.cli import main
from fomm.data.synthetic import generate_video, keypoint_names
from fomm.errors import FommError
from fomm.evaluation.landmarks import (
    ASSET_DIR,
    FORMAT,
    LandmarkNet,
    augment,
    load_landmark_detector,
    shipped_detectors,
    train_landmark_detector,
)
from fomm.evaluation.metrics import akd

# Bounds on the shipped detectors' AKD at 64x64, with margin over what was measured: held-out test
# split (JSON test_akd_px) puppet 1.35 px, face 0.65 px; the 8 fresh identities below (seed 4242)
# puppet 1.76 px (one raises both hands over the head: 5.6 px), face 0.64 px.
SHIPPED_AKD_BOUND_PX = {"puppet": 2.5, "face": 1.0}


@pytest.fixture(scope="session")
def tiny_data(synthetic_dataset):
    return synthetic_dataset("face", num_train=6, num_test=2, num_frames=4, size=64, seed=5, num_cross_pairs=0)


@pytest.mark.slow
def test_training_reduces_loss_and_writes_files(tiny_data, tmp_path):
    out = tmp_path / "face-64.pt"
    record = train_landmark_detector(tiny_data, out, steps=40, seed=0, batch_size=8, progress=False)
    losses = record["losses"]
    assert len(losses) == 10
    assert np.mean(losses[-2:]) < 0.8 * np.mean(losses[:2])
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["category"] == "face" and meta["num_keypoints"] == len(keypoint_names("face"))
    assert np.isfinite(meta["test_akd_px"]) and meta["training"]["steps"] == 40
    data = torch.load(out, weights_only=True)
    assert data["format"] == FORMAT
    det = load_landmark_detector(path=out)
    assert det.category == "face" and det.meta["losses"] == losses


def test_training_is_deterministic(tiny_data, tmp_path):
    a = train_landmark_detector(tiny_data, tmp_path / "a.pt", steps=3, seed=7, batch_size=4, progress=False)
    b = train_landmark_detector(tiny_data, tmp_path / "b.pt", steps=3, seed=7, batch_size=4, progress=False)
    assert a["losses"] == b["losses"]
    sa = torch.load(tmp_path / "a.pt", weights_only=True)["state_dict"]
    sb = torch.load(tmp_path / "b.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_cli_train_landmarks(tiny_data, tmp_path, capsys):
    out = tmp_path / "cli.pt"
    assert (
        main(
            [
                "train-landmarks",
                "--data",
                str(tiny_data),
                "--out",
                str(out),
                "--steps",
                "2",
                "--batch-size",
                "2",
                "--no-progress",
            ]
        )
        == 0
    )
    assert out.is_file() and "test AKD" in capsys.readouterr().out
    assert main(["train-landmarks", "--data", str(tmp_path / "none"), "--out", str(out), "--steps", "2"]) == 2
    assert main(["train-landmarks", "--data", str(tiny_data), "--out", str(tmp_path / "x.pth"), "--steps", "2"]) == 2


def test_augment_moves_keypoints_with_the_image():
    gen = torch.Generator().manual_seed(0)
    kp = torch.rand(16, 1, 2) * 30 + 17
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    blob = torch.exp(-((xx - kp[:, 0, 0, None, None]) ** 2 + (yy - kp[:, 0, 1, None, None]) ** 2) / 8.0)
    img = blob[:, None].repeat(1, 3, 1, 1)
    out, new_kp = augment(img, kp, gen, max_blur=0.0)
    # undo the colour jitter's offset: the blob is the peak; its centroid is where the keypoint went
    w = (out[:, 0] - out[:, 0].amin(dim=(1, 2), keepdim=True)) ** 4
    cx = (w * xx).sum((1, 2)) / w.sum((1, 2))
    cy = (w * yy).sum((1, 2)) / w.sum((1, 2))
    err = torch.sqrt((cx - new_kp[:, 0, 0]) ** 2 + (cy - new_kp[:, 0, 1]) ** 2)
    assert float(err.mean()) < 0.35


@pytest.mark.parametrize("category", ["puppet", "face"])
def test_shipped_detector_is_accurate(category):
    path = shipped_detectors()[(category, 64)]
    assert path.stat().st_size < 2_000_000
    state = torch.load(path, weights_only=True)
    assert state["format"] == FORMAT and state["keypoint_names"] == keypoint_names(category)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["test_akd_px"] < SHIPPED_AKD_BOUND_PX[category]
    det = load_landmark_detector(category, 64)
    # fresh identities and motions (another seed than the training data)
    errors = []
    for index in range(8):
        video = generate_video(category, "test", index, seed=4242, num_frames=3, size=64)
        errors.append(akd(det(video["frames"]), video["keypoints_px"]))
    assert np.mean(errors) < SHIPPED_AKD_BOUND_PX[category]
    # frames of another size: resized for the network, keypoints mapped back to that size
    big = generate_video(category, "test", 0, seed=4242, num_frames=3, size=128)
    assert akd(det(big["frames"]), big["keypoints_px"]) < 2 * SHIPPED_AKD_BOUND_PX[category]


def test_load_errors(tmp_path):
    with pytest.raises(FommError, match="no shipped landmark detector"):
        load_landmark_detector("robot", 64)
    with pytest.raises(FommError, match="not found"):
        load_landmark_detector(path=tmp_path / "none.pt")
    bad = tmp_path / "bad.pt"
    torch.save({"something": torch.zeros(1)}, bad)
    with pytest.raises(FommError, match="not a fomm landmark detector"):
        load_landmark_detector(path=bad)
    assert ASSET_DIR.name == "landmarks"


def test_network_output_is_in_pixels():
    torch.manual_seed(0)
    net = LandmarkNet(3, width=4).eval()
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.zero_()
        kp = net(torch.rand(2, 3, 64, 64))
    # flat heatmaps: the soft-argmax is the image centre, (S - 1) / 2 in pixel-centre coordinates
    assert torch.allclose(kp, torch.full_like(kp, 31.5), atol=1e-4)
