"""AKD and AED on real faces (fomm[faces]): scikit-image's astronaut photo moved in short clips."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from face_clips import moving_clip, needs_faces  # noqa: I001 - tests/face_clips.py
from fomm.cli import main
from fomm.evaluation.evaluate import evaluate
from fomm.evaluation.metrics import aed_from_embeddings, akd
from fomm.testing import write_frame_folder

SIZE, FRAMES = 64, 5


def face_clip(seed: int) -> np.ndarray:
    """``(FRAMES, 64, 64, 3)`` float frames: a 120 px window that drifts 4 px per frame over the
    moving face, shrunk to 64 px."""
    frames, centres = moving_clip(FRAMES, seed=seed)
    out = []
    for t, (frame, (cx, cy)) in enumerate(zip(frames, centres)):
        x0, y0 = int(cx - 60 + 4 * t), int(cy - 62)
        out.append(cv2.resize(frame[y0 : y0 + 120, x0 : x0 + 120], (SIZE, SIZE), interpolation=cv2.INTER_AREA))
    return np.stack(out).astype(np.float32) / 255.0


@pytest.fixture(scope="module")
def face_videos(tmp_path_factory, tiny_checkpoint):
    """Real-face data in the original layout (no dataset.json): test/<clip>.mp4."""
    root = tmp_path_factory.mktemp("faces") / "videos"
    (root / "test").mkdir(parents=True)
    for i in range(2):
        clip = (face_clip(i) * 255).round().astype(np.uint8)
        write_frame_folder(root / "test" / f"clip{i}", clip)  # lossless frames
    return root, tiny_checkpoint


@pytest.mark.slow
@needs_faces
def test_landmarks_and_embeddings_on_a_real_face():
    from fomm.evaluation.face_metrics import FaceMetricFns

    fns = FaceMetricFns()
    clip = face_clip(0)
    kp, emb = fns.keypoints(clip), fns.embeddings(clip)
    assert kp.shape == (FRAMES, 68, 2) and emb.shape == (FRAMES, 128)
    assert np.isfinite(kp).all() and np.isfinite(emb).all()  # a face on every frame
    assert akd(kp, fns.keypoints(clip.copy())) == 0 and aed_from_embeddings(emb, fns.embeddings(clip.copy())) == 0
    shifted = np.roll(clip, 3, axis=2)  # 3 px to the right
    assert akd(fns.keypoints(shifted), kp) == pytest.approx(3.0, abs=0.8)
    blank = np.full((2, SIZE, SIZE, 3), 0.5, np.float32)
    assert np.isnan(fns.keypoints(blank)).all() and np.isnan(fns.embeddings(blank)).all()


@pytest.mark.slow
@needs_faces
def test_evaluate_reports_akd_and_aed_on_face_videos(face_videos, capsys):
    """The original protocol (frame 0 included); the static baseline (the source face repeated)
    has finite AKD and AED; the detector's misses are reported for every method."""
    root, ckpt = face_videos
    out = root.parent / "faces.json"
    assert main(["evaluate", "--checkpoint", str(ckpt), "--data", str(root), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    table = report["reconstruction"]
    assert report["protocol"]["source_frame"] == "included" and report["counts"]["reconstruction"]["frames"] == 10
    static = table["static"]
    assert 0 < static["akd"] < 20 and 0 < static["aed"] < 0.6 and static["missed"] == 0
    assert table["global_affine"]["akd"] < static["akd"]  # the oracle follows the face
    assert {"akd", "aed", "missed"} <= set(table["model"])
    assert report["reference_missed"]["reconstruction"] == 0
    assert "dlib" in report["landmark_detector"]["faces"]
    assert "AKD (px)" in printed and "AED" in printed and "no keypoints (%)" in printed
    assert "frame 0 (the source) included" in printed


def test_without_the_extra_one_note_says_what_to_install(face_videos, monkeypatch):
    import fomm.faces.landmarks

    root, ckpt = face_videos
    monkeypatch.setattr(fomm.faces.landmarks, "faces_available", lambda: False)
    report = evaluate(ckpt, root, max_videos=1, progress=False)
    assert report["reconstruction"]["model"]["akd"] is None and "aed" not in report["reconstruction"]["model"]
    assert [n for n in report["notes"] if "pip install 'fomm[faces]'" in n]
    assert not math.isnan(report["reconstruction"]["model"]["l1"])
