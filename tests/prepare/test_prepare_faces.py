"""``fomm prepare`` on a folder of raw face videos made here: what a user's phone folder holds.

One run (module fixture) over: a 720p clip with a scene cut in the middle and audio, a portrait
.mov, a still, a face too small to use, a truncated file, a text file and a text file named .mp4.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from prepare_videos import FACE_SIZE, face_720p_with_cut, face_shot, still_shot

from face_clips import write_video  # noqa: I001 - tests/face_clips.py
from fomm.cli import main
from fomm.data import video_io

MIN_FRAMES = 16
# seed 1: talk.mp4 is the test source (2 clips), the portrait and the truncated file train (2 clips)
ARGS = ["--min-frames", str(MIN_FRAMES), "--size", "64", "--seed", "1", "--no-progress"]

# One prepare run of a 720p clip is the module's fixture: every test here pays for it.
pytestmark = pytest.mark.slow


def talk_faces(n: int = 42) -> np.ndarray:
    """The face of each frame of :func:`face_720p_with_cut` as ``(cx, cy, size)``."""
    rows = []
    for t in range(n):
        first = t < n // 2
        k, m = (t, n // 2) if first else (t - n // 2, n - n // 2)
        a = k / (m - 1)
        cx0, cy0, scale, dx = (420, 330, 1.6, 80) if first else (800, 380, 2.0, -60)
        rows.append((cx0 + dx * a, cy0 + 0.2 * dx * np.sin(np.pi * a), FACE_SIZE * scale))
    return np.asarray(rows)


def make_raw(raw: Path) -> Path:
    raw.mkdir(parents=True, exist_ok=True)
    # 24 fps: the face is measured on every 2nd frame; the cut falls on an odd frame (21)
    write_video(raw / "talk.mp4", face_720p_with_cut(42), 24, audio=True)
    (raw / "phone").mkdir()
    portrait = face_shot(24, 640, 360, cx=170, cy=300, scale=1.2, seed=4, dx=40)
    write_video(raw / "phone" / "portrait.mov", portrait, rotation=90)  # as a phone held upright stores it
    write_video(raw / "still.mp4", still_shot(24, 360, 480, cx=240, cy=170, scale=1.0, seed=2))
    write_video(raw / "small.mp4", face_shot(24, 360, 480, cx=200, cy=170, scale=0.6, seed=5, dx=20))
    frames = face_shot(40, 360, 480, cx=200, cy=180, scale=1.3, seed=6, dx=60)
    whole = write_video(raw / "cut.mp4", frames, faststart=True)  # its index first: the rest can be lost
    data = whole.read_bytes()
    whole.write_bytes(data[: int(len(data) * 0.7)])  # a download that stopped early
    (raw / "notes.txt").write_text("shot list\n")
    (raw / "readme.mp4").write_text("not a video at all\n")
    return raw


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("prepare")
    raw = make_raw(root / "raw")
    data = root / "data"
    assert main(["prepare", str(raw), "--out", str(data), "--workers", "1", *ARGS]) == 0
    return raw, data, json.loads((data / "prepare.json").read_text())


def by_source(manifest: dict, key: str) -> dict:
    out: dict = {}
    for entry in manifest[key]:
        out.setdefault(entry["source"], []).append(entry)
    return out


def test_one_clip_per_shot_with_the_face_centred(prepared):
    _raw, data, manifest = prepared
    clips = by_source(manifest, "clips")["talk.mp4"]
    assert [(c["name"], c["start"], c["end"]) for c in clips] == [("talk#0", 0, 21), ("talk#1", 21, 42)]
    faces = talk_faces()
    for clip in clips:
        x0, y0, x1, y1 = clip["box"]
        side = x1 - x0
        assert side == y1 - y0 and 0 <= x0 and x1 <= 1280 and 0 <= y0 and y1 <= 720
        face = faces[clip["start"] : clip["end"]]
        cx, cy, size = face.mean(axis=0)
        assert abs(cx - (x0 + x1) / 2) < 0.1 * side  # centred across
        assert 0 <= cy - (y0 + y1) / 2 < 0.2 * side  # the head's centre is above the face's
        assert 0.3 < size / side < 0.6  # the head fills the crop with room for the shoulders
        half = face[:, 2] / 2
        assert (face[:, 0] - half >= x0).all() and (face[:, 0] + half <= x1).all()  # the face never leaves it
        path = data / clip["split"] / f"{clip['name']}.mp4"
        info = video_io.probe(path)
        assert (info.width, info.height, info.num_frames) == (64, 64, 21)
        assert info.fps == pytest.approx(24)


def test_every_bad_file_has_its_reason(prepared):
    _raw, _data, manifest = prepared
    reasons = {d["source"]: d["reason"] for d in manifest["dropped"]}
    assert reasons == {
        "notes.txt": "not-a-video",
        "readme.mp4": "undecodable",
        "still.mp4": "still",
        "small.mp4": "too-small",
    }
    assert manifest["counts"]["dropped"] == {"not-a-video": 1, "still": 1, "too-small": 1, "undecodable": 1}


def test_portrait_and_truncated_videos_make_clips(prepared):
    _raw, _data, manifest = prepared
    clips = by_source(manifest, "clips")
    (portrait,) = clips["phone/portrait.mov"]
    assert portrait["name"] == "phone_portrait#0" and (portrait["start"], portrait["end"]) == (0, 24)
    x0, y0, x1, y1 = portrait["box"]  # in the displayed (portrait) frame, around the face
    assert x1 <= 360 and y1 <= 640 and x0 < 170 and 210 < x1 and y0 < 300 < y1  # the face: x 170-210
    (cut,) = clips["cut.mp4"]  # the part that decodes
    assert MIN_FRAMES <= cut["end"] < 40
    (warning,) = manifest["warnings"]
    assert warning["source"] == "cut.mp4" and "truncated" in warning["warning"]


def test_split_by_source(prepared):
    _raw, data, manifest = prepared
    splits = {}
    for clip in manifest["clips"]:
        splits.setdefault(clip["source"], set()).add(clip["split"])
        assert (data / clip["split"] / f"{clip['name']}.mp4").is_file()
    assert all(len(s) == 1 for s in splits.values())
    assert splits["talk.mp4"] == {"test"} and manifest["counts"]["train"] == 2
    on_disk = sorted(p.name for p in (data / "train").iterdir()) + sorted(p.name for p in (data / "test").iterdir())
    assert sorted(on_disk) == sorted(f"{c['name']}.mp4" for c in manifest["clips"])
    assert manifest["complete"] and manifest["counts"]["videos"] == 6
    assert (data / "prepare.png").is_file()


def test_rerun_skips_finished_videos(prepared, capsys):
    raw, data, manifest = prepared
    before = {p: p.stat().st_mtime_ns for p in data.rglob("*") if p.is_file()}
    assert main(["prepare", str(raw), "--out", str(data), "--workers", "1", *ARGS]) == 0
    assert "prepared 0 videos, skipped 6 already done" in capsys.readouterr().out
    after = {p: p.stat().st_mtime_ns for p in data.rglob("*") if p.is_file()}
    assert after == before
    assert json.loads((data / "prepare.json").read_text()) == manifest


def test_train_runs_on_the_result(prepared, tmp_path):
    _raw, data, _manifest = prepared
    run = tmp_path / "run"
    args = ["train", "--config", "tiny-64", "--data", str(data), "--out", str(run), "--max-steps", "2"]
    assert main([*args, "--quiet", "--no-tensorboard", "--vis-every", "0"]) == 0
    assert any((run / "checkpoints").glob("*.pt"))


def test_evaluate_runs_on_the_result_with_both_akds(prepared, tmp_path):
    from fomm.bundled import bundled_checkpoint_path
    from fomm.faces.landmarks import faces_available

    _raw, data, manifest = prepared
    report = tmp_path / "report.json"
    ckpt = str(bundled_checkpoint_path("face"))
    args = ["evaluate", "--checkpoint", ckpt, "--data", str(data), "--out", str(report), "--no-progress"]
    assert main(args) == 0
    table = json.loads(report.read_text())["reconstruction"]["model"]
    assert table["num_videos"] == sum(c["split"] == "test" for c in manifest["clips"])
    assert 0 < table["l1"] < 0.5
    if faces_available():
        assert table["akd"] > 0 and table["akd"] / 2 <= table["akd_l1"] <= table["akd"]
