"""Issue #14 as a user meets it: a real face moving smoothly in a 1280x720, 25 fps clip with audio.

``fomm crop`` follows it with one segment, and ``fomm animate --crop`` (bundled puppet model: it
only drives the pipeline) pastes the animated face back into a 512x512 photo: the output has the
photo's size, is the photo bit for bit outside the crop box, keeps the audio and names the tracker.
Run with each tracker: dlib landmarks (when ``fomm[faces]`` is installed) and OpenCV's Haar cascade.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from face_clips import astronaut, background, place, write_video  # noqa: I001 - tests/face_clips.py
from fomm.animation import pipeline
from fomm.bundled import bundled_checkpoint_path
from fomm.cli import main
from fomm.data import video_io
from fomm.faces.landmarks import faces_available

W, H, FPS, N = 1280, 720, 25, 50
TRACKERS = [
    pytest.param(
        "landmarks", marks=pytest.mark.skipif(not faces_available(), reason="needs pip install 'fomm[faces]'")
    ),
    "haar",
]


def moving_720p(n: int = N) -> list[np.ndarray]:
    """``n`` frames ``(720, 1280, 3)``: the astronaut's face glides 300 px right and 60 px down and
    back up along a smooth path, growing from 1.0 to 1.15 of the photo's size and turning 8 degrees."""
    photo, bg = astronaut(), background(H, W, seed=3)
    frames = []
    for t in range(n):
        a = t / (n - 1)
        cx, cy = 480 + 300 * a, 340 + 60 * np.sin(np.pi * a)
        frames.append(place(photo, bg, cx, cy, 1.0 + 0.15 * a, -4 + 8 * a))
    return frames


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("720p") / "talk.mp4", moving_720p(), FPS, audio=True, crf=18, rate=44100)


def tracker_name(tracker: str) -> str:
    return {"landmarks": "dlib landmarks", "haar": "OpenCV Haar cascade"}[tracker]


@pytest.mark.slow
@pytest.mark.parametrize("tracker", TRACKERS)
def test_crop_follows_the_moving_face_with_one_segment(clip, tmp_path, capsys, tracker):
    out, boxes = tmp_path / "crop.mp4", tmp_path / "boxes.json"
    argv = ["crop", str(clip), "--out", str(out), "--boxes-json", str(boxes), "--tracker", tracker, "--no-progress"]
    assert main(argv) == 0
    plan = json.loads(boxes.read_text())
    assert plan["frame_size"] == [W, H] and plan["num_frames"] == N
    assert len(plan["segments"]) == 1, plan["segments"]
    assert plan["segments"][0]["start"] == 0 and plan["segments"][0]["end"] == N
    info = video_io.probe(out)
    assert (info.num_frames, info.width, info.height, info.has_audio) == (N, 256, 256, True)
    printed = capsys.readouterr().out
    assert f"tracker: {tracker_name(tracker)}" in printed and "1 segment)" in printed


@pytest.mark.slow
@pytest.mark.parametrize("tracker", TRACKERS)
def test_animate_crop_pastes_back_into_the_photo(clip, tmp_path, capsys, monkeypatch, tracker):
    photo = astronaut()  # 512x512: even, so the output keeps every row and column
    source = video_io.write_image(tmp_path / "portrait.png", photo)
    results = []

    def recording(*args, **kwargs):
        results.append(pipeline.animate_video.__wrapped__(*args, **kwargs))
        return results[-1]

    recording.__wrapped__ = pipeline.animate_video
    monkeypatch.setattr(pipeline, "animate_video", recording)
    out, frames_dir = tmp_path / "result.mp4", tmp_path / "frames"
    argv = ["animate", "--source", str(source), "--driving", str(clip), "--checkpoint",
            str(bundled_checkpoint_path("puppet")), "--out", str(out), "--crop", "--tracker", tracker,
            "--save-frames", str(frames_dir), "--device", "cpu", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    (result,) = results
    assert result["pasted_back"] and result["size"] == (512, 512) and result["audio"]
    info = video_io.probe(out)
    assert (info.num_frames, info.width, info.height, info.has_audio) == (N, 512, 512, True)
    assert info.fps == pytest.approx(FPS)
    frames, _ = video_io.read_frames(frames_dir)  # PNG: lossless
    x0, y0, x1, y1 = result["crop_box"]
    assert 0 <= x0 < x1 <= 512 and 0 <= y0 < y1 <= 512
    outside = np.ones((512, 512), bool)
    outside[y0:y1, x0:x1] = False
    assert outside.any()
    assert all(np.array_equal(frame[outside], photo[outside]) for frame in frames)
    name = tracker_name(tracker)
    assert f"tracker: {name} (driving video and source photo)" in capsys.readouterr().out
