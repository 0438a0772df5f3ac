"""``fomm evaluate`` / :func:`fomm.evaluation.evaluate.evaluate` on tiny procedural data."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sys
import types

import numpy as np
import pytest
import torch

import fomm
from fomm.cli import main
from fomm.data.video_io import read_frames
from fomm.errors import FommError
from fomm.evaluation.evaluate import METHODS, evaluate, write_report
from fomm.evaluation.metrics import l1
from fomm.testing import random_checkpoint

NUM_TEST, NUM_FRAMES, NUM_PAIRS, MAX_VIDEOS = 3, 6, 3, 2


@pytest.fixture(scope="session")
def tiny(tmp_path_factory, tiny_checkpoint, synthetic_dataset):
    base = tmp_path_factory.mktemp("evaluate")
    data = synthetic_dataset(
        "puppet", num_train=0, num_test=NUM_TEST, num_frames=NUM_FRAMES, size=64, seed=3, num_cross_pairs=NUM_PAIRS
    )
    return base, data, tiny_checkpoint


def evaluate_cli(ckpt, data, out, *extra) -> int:
    """``fomm evaluate`` (no progress bar): its exit status."""
    return main(
        ["evaluate", "--checkpoint", str(ckpt), "--data", str(data), "--out", str(out), "--no-progress", *extra]
    )


@pytest.fixture(scope="session")
def cli_report(tiny):
    base, data, ckpt = tiny
    out = base / "report" / "report.json"
    assert evaluate_cli(ckpt, data, out, "--max-videos", str(MAX_VIDEOS), "--batch-size", "8") == 0
    return json.loads(out.read_text()), out


def _numbers(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _numbers(v)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield obj


@pytest.mark.slow
def test_cli_report_structure(cli_report):
    report, out = cli_report
    assert report["tasks"] == ["reconstruction", "cross_identity"]
    for task in ("reconstruction", "cross_identity"):
        assert set(report[task]) == set(METHODS)
        for method in METHODS:
            metrics = report[task][method]
            for key in ("l1", "psnr", "ssim", "akd"):
                assert key in metrics
            for key in ("l1", "psnr", "ssim"):
                assert math.isfinite(metrics[key])
            assert 0 <= metrics["l1"] <= 1 and -1 <= metrics["ssim"] <= 1
        assert task in report["landmark_detector_akd"]
    assert report["dataset"]["kind"] == "procedural" and report["dataset"]["category"] == "puppet"
    assert all(math.isfinite(x) for x in _numbers(report))
    md = out.with_suffix(".md")
    text = md.read_text()
    assert "| model |" in text and "| static |" in text and "| global_affine |" in text
    assert "Cross-identity" in text and "Reconstruction" in text


def test_akd_per_keypoint_names_the_parts_and_averages_to_the_akd(cli_report, tiny):
    """Procedural data: the AKD of each named ground-truth keypoint, per method; their mean is the
    table's AKD (every keypoint found in every frame), and the Markdown lists them by name."""
    report, out = cli_report
    _, data, _ = tiny
    names = json.loads((data / "dataset.json").read_text())["keypoint_names"]
    for task in ("reconstruction", "cross_identity"):
        table = report["akd_per_keypoint"][task]
        assert table["names"] == names and set(table) == {"names", *METHODS}
        for method in METHODS:
            assert len(table[method]) == len(names) and min(table[method]) >= 0
            assert np.mean(table[method]) == pytest.approx(report[task][method]["akd"], rel=1e-9)
    text = out.with_suffix(".md").read_text()
    assert "AKD per keypoint (px), reconstruction:" in text and "| l_hand_tip |" in text


def test_max_videos_respected(cli_report):
    report, _ = cli_report
    for task in ("reconstruction", "cross_identity"):
        assert report["counts"][task]["videos"] == MAX_VIDEOS
        assert report["counts"][task]["frames"] == MAX_VIDEOS * (NUM_FRAMES - 1)  # frame 0 is the source
        assert report[task]["model"]["num_videos"] == MAX_VIDEOS
        assert len(report["per_video"][task]) == MAX_VIDEOS


def test_source_frame_is_left_out_of_every_metric(cli_report, tiny):
    """Procedural data: frame 0 (the source) is not scored, so the static baseline's L1 is the mean
    over the other frames (no free perfect frame) and its PSNR stays finite and modest."""
    report, _ = cli_report
    _, data, _ = tiny
    assert report["protocol"]["source_frame"] == "excluded"
    for rec in report["per_video"]["reconstruction"]:
        frames, _ = read_frames(data / "test" / rec["name"], dtype="float32")
        others = [l1(frames[0], frames[t]) for t in range(1, len(frames))]
        assert rec["num_frames"] == len(frames) - 1
        assert rec["static"]["l1"] == pytest.approx(np.mean(others), abs=1e-6)
        assert rec["static"]["psnr"] < 60 and rec["global_affine"]["l1"] > 0
    for rec in report["per_video"]["cross_identity"]:
        assert rec["num_frames"] == NUM_FRAMES - 1 and rec["static"]["psnr"] < 60


@pytest.mark.slow
def test_global_affine_beats_static_on_keypoints(synthetic_dataset, tiny):
    """The oracle global affine moves the subject with the ground-truth motion, so the landmark
    detector finds its keypoints closer to the truth than on the static source. Faces: head motion
    is nearly affine. (Puppets: only on average -- a full affine fit of articulated limbs can squash
    the body to a fraction of its width, which the detector then misreads -- and never in L1,
    since the affine also moves the textured, static background.) 16 frames: enough motion to
    stand out of the detector's own error."""
    _, _, ckpt = tiny
    data = synthetic_dataset("face", num_train=0, num_test=2, num_frames=16, size=64, seed=3, num_cross_pairs=2)
    report = evaluate(ckpt, data, batch_size=16, progress=False)
    assert report["landmark_detector"]["weights"] == "face-64.pt"
    for task in ("reconstruction", "cross_identity"):
        static, affine = report[task]["static"]["akd"], report[task]["global_affine"]["akd"]
        assert affine < 0.6 * static
        assert report["landmark_detector_akd"][task] < 0.6 * static
        assert report[task]["model"]["akd"] > 0


def test_api_reconstruction_only_with_save(tiny, tmp_path):
    _, data, ckpt = tiny
    report = evaluate(
        ckpt,
        data,
        max_videos=1,
        tasks=("reconstruction",),
        batch_size=4,
        progress=False,
        save_dir=tmp_path / "saved",
        save_format="png",
    )
    assert report["tasks"] == ["reconstruction"] and "cross_identity" not in report
    saved = sorted((tmp_path / "saved" / "reconstruction").iterdir())
    assert len(saved) == 1 and saved[0].suffix == ".png"
    strip, _ = read_frames(saved[0], as_strip=False)
    assert strip.shape[1:] == (64, 64 * NUM_FRAMES, 3)
    json_path, md_path = write_report(report, tmp_path / "r.json")
    assert json.loads(json_path.read_text())["counts"]["reconstruction"]["videos"] == 1
    assert md_path.is_file()


def test_real_data_layout_and_hooks(tiny, tmp_path):
    """Without dataset.json: reconstruction only, AKD/AED through the optional hooks."""
    _, data, ckpt = tiny
    real = tmp_path / "real"
    (real / "test").mkdir(parents=True)
    name = sorted(p for p in (data / "test").iterdir() if p.is_dir())[0].name
    shutil.copytree(data / "test" / name, real / "test" / "clip")

    plain = evaluate(ckpt, real, progress=False)
    assert plain["tasks"] == ["reconstruction"] and plain["protocol"]["source_frame"] == "included"
    assert plain["counts"]["reconstruction"]["frames"] == NUM_FRAMES  # the original protocol on real videos
    assert any("cross_identity skipped" in n and "dataset.json" in n for n in plain["notes"])
    assert plain["reconstruction"]["model"]["akd"] is None
    assert "global_affine" not in plain["reconstruction"]
    assert any("keypoint_fn" in n for n in plain["notes"]) and any("embedding_fn" in n for n in plain["notes"])

    def keypoint_fn(frames):  # brightest pixel of each frame
        flat = frames.sum(-1).reshape(len(frames), -1).argmax(1)
        ys, xs = np.unravel_index(flat, frames.shape[1:3])
        return np.stack([np.stack([xs, ys], -1), np.stack([xs, ys], -1) + 1.0], 1).astype(float)

    def embedding_fn(frames):
        return frames.mean(axis=(1, 2))

    hooked = evaluate(ckpt, real, progress=False, keypoint_fn=keypoint_fn, embedding_fn=embedding_fn)
    for method in ("model", "static", "global_affine"):
        assert math.isfinite(hooked["reconstruction"][method]["akd"])
        assert math.isfinite(hooked["reconstruction"][method]["aed"])
        # the paper's cmp.py AKD: mean |dx|, |dy|, at most the Euclidean mean and at least half of it
        akd, akd_l1 = hooked["reconstruction"][method]["akd"], hooked["reconstruction"][method]["akd_l1"]
        assert akd / 2 <= akd_l1 <= akd


def test_bad_inputs(tiny, tmp_path, capsys, monkeypatch):
    _, data, ckpt = tiny
    out = str(tmp_path / "r.json")
    assert evaluate_cli(ckpt, tmp_path / "nope", out) == 2
    assert "not found" in capsys.readouterr().err

    empty = tmp_path / "empty"
    (empty / "test").mkdir(parents=True)
    (empty / "train").mkdir()
    with pytest.raises(FommError, match="no videos"):
        evaluate(ckpt, empty, progress=False)

    assert evaluate_cli(tmp_path / "missing.pt", data, out) == 2
    err = capsys.readouterr().err
    assert "checkpoint" in err and "not found" in err and len(err.strip().splitlines()) == 1

    assert evaluate_cli(ckpt, data, tmp_path / "r.txt") == 2
    assert ".json" in capsys.readouterr().err
    with pytest.raises(FommError, match="unknown task"):
        evaluate(ckpt, data, tasks=("animation",), progress=False)

    # no checkpoint: the bundled model of the dataset's category, here absent
    fake = types.ModuleType("fomm.bundled")
    fake.bundled_categories = lambda: ["face"]
    fake.bundled_checkpoint_path = lambda category: tmp_path / f"no-{category}.pt"
    monkeypatch.setitem(sys.modules, "fomm.bundled", fake)
    monkeypatch.setattr(fomm, "bundled", fake, raising=False)
    monkeypatch.setattr(sys.modules["fomm.evaluation.evaluate"], "bundled", fake)  # imported at its top
    with pytest.raises(FommError, match=r"no bundled model for the dataset's category 'puppet' \(bundled: face\)"):
        evaluate(None, data, progress=False)
    assert not (tmp_path / "r.json").exists()


def test_an_onnx_export_folder_is_refused_in_evaluate_s_words(tiny, tmp_path, capsys):
    """evaluate has no --backend: the message says which commands run the folder and what to pass here."""
    _, data, _ = tiny
    export = tmp_path / "vox-onnx"
    export.mkdir()
    (export / "manifest.json").write_text("{}")
    assert evaluate_cli(export, data, tmp_path / "r.json") == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"fomm evaluate: error: {export} is an ONNX export folder, not a checkpoint file; it runs with "
        "--backend onnxruntime (fomm animate, live, app); here pass the .pth checkpoint it was exported from"
    )
    assert not (tmp_path / "r.json").exists()


def test_cli_prints_the_table_and_uses_the_bundled_model_of_the_category(tiny, tmp_path, capsys):
    """No --checkpoint: the bundled model of dataset.json's category; the tables (with their video
    and frame counts) are printed as well as written."""
    from fomm.bundled import bundled_categories

    _, data, _ = tiny
    if "puppet" not in bundled_categories():
        pytest.skip("no bundled puppet model in this installation")
    out = tmp_path / "r.json"
    args = ["evaluate", "--data", str(data), "--out", str(out), "--max-videos", "1", "--tasks", "reconstruction"]
    assert main(args + ["--no-progress"]) == 0
    text = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["checkpoint"].startswith("bundled puppet-64.pth")
    assert f"Reconstruction (1 video, {NUM_FRAMES - 1} frames scored; frame 0 (the source) excluded)" in text
    assert "model" in text and "static" in text and "global_affine" in text and f"wrote {out}" in text
    assert "(1 video, 5 frames scored; frame 0 (the source) excluded)" in out.with_suffix(".md").read_text()


@pytest.mark.parametrize("pairs", ["missing", "empty"])
def test_missing_and_empty_pairs_are_one_note(tiny, tmp_path, pairs):
    _, data, ckpt = tiny
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    pairs_csv = copy / "cross_identity" / "pairs.csv"
    if pairs == "missing":
        pairs_csv.unlink()
    else:
        pairs_csv.write_text("name,source_identity_video,driving_video\n")
    report = evaluate(ckpt, copy, max_videos=1, progress=False)
    assert report["tasks"] == ["reconstruction"]
    assert [n for n in report["notes"] if n.startswith("cross_identity skipped")]
    with pytest.raises(FommError, match="cross_identity cannot run"):
        evaluate(ckpt, copy, tasks="cross_identity", progress=False)


_OPENED: list | None = None  # paths opened while a test listens (the audit hook cannot be removed)


def _record_open(event: str, args: tuple) -> None:
    if _OPENED is not None and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        _OPENED.append(os.fsdecode(args[0]))


def test_the_bundled_checkpoint_is_read_once(tmp_path, monkeypatch):
    """No --checkpoint: one read of the bundled file gives both its sha256 (in the report) and
    the model; the model is the one read_checkpoint + load_model give."""
    global _OPENED
    from fomm.evaluation.evaluate import _resolve_model
    from fomm.models.checkpoint import load_model, read_checkpoint

    ckpt = random_checkpoint(tmp_path / "bundled.pt", "tiny-64", seed=4)
    fake = types.ModuleType("fomm.bundled")
    fake.bundled_categories = lambda: ["puppet"]
    fake.bundled_checkpoint_path = lambda category: ckpt
    monkeypatch.setitem(sys.modules, "fomm.bundled", fake)
    monkeypatch.setattr(fomm, "bundled", fake, raising=False)
    monkeypatch.setattr(sys.modules["fomm.evaluation.evaluate"], "bundled", fake)  # imported at its top
    sys.addaudithook(_record_open)
    _OPENED = []
    try:
        model, desc = _resolve_model(None, None, "cpu", "puppet")
        opened = [p for p in _OPENED if os.path.samefile(p, ckpt)] if _OPENED else []
    finally:
        _OPENED = None
    assert len(opened) == 1
    assert desc == f"bundled bundled.pt (sha256 {hashlib.sha256(ckpt.read_bytes()).hexdigest()[:12]}...)"
    reference = load_model(read_checkpoint(ckpt))
    assert model.config.name == reference.config.name
    for key, value in reference.generator.state_dict().items():
        assert torch.equal(model.generator.state_dict()[key], value)
