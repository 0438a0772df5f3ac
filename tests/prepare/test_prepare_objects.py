"""``--category object`` (the moving region), ``--crop full`` and ``--format png``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from prepare_videos import puppet_in_frame, still_shot

from face_clips import write_video  # noqa: I001 - tests/face_clips.py
from fomm.cli import main
from fomm.data import video_io

ARGS = ["--min-frames", "16", "--min-size", "32", "--size", "64", "--workers", "1", "--no-progress"]


def run(raw, data, *extra) -> dict:
    assert main(["prepare", str(raw), "--out", str(data), *ARGS, *extra]) == 0
    return json.loads((data / "prepare.json").read_text())


@pytest.mark.slow
def test_object_follows_the_moving_puppet(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    frames, boxes = puppet_in_frame(40)
    write_video(raw / "puppet.mp4", frames)
    write_video(raw / "still.mp4", still_shot(20, 240, 320, cx=160, cy=110, scale=0.5, seed=1))
    manifest = run(raw, tmp_path / "data", "--category", "object")
    (clip,) = manifest["clips"]
    assert (clip["name"], clip["start"], clip["end"]) == ("puppet#0", 0, 40)
    x0, y0, x1, y1 = clip["box"]
    union = (*boxes[:, :2].min(axis=0), *boxes[:, 2:].max(axis=0))  # 40, 72, 236, 168
    assert x1 - x0 == y1 - y0
    assert x0 <= union[0] and y0 <= union[1] and x1 >= union[2] and y1 >= union[3]  # all of its motion
    assert abs((x0 + x1) / 2 - (union[0] + union[2]) / 2) < 0.05 * (x1 - x0)  # centred on it
    assert x1 - x0 < 1.35 * (union[2] - union[0])  # with a margin, not the whole frame by default
    assert [(d["source"], d["reason"]) for d in manifest["dropped"]] == [("still.mp4", "no-subject")]


@pytest.mark.slow
def test_full_crop_keeps_each_shot_whole_as_png_folders(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    first, _ = puppet_in_frame(20, seed=0, travel=0.3)
    second, _ = puppet_in_frame(20, seed=5, travel=0.3)
    second = [np.ascontiguousarray(255 - f[::-1, ::-1]) for f in second]  # another scene: a cut at 20
    write_video(raw / "two shots.mp4", first + second)
    data = tmp_path / "data"
    manifest = run(raw, data, "--crop", "full", "--format", "png", "--test-fraction", "0")
    assert [(c["name"], c["start"], c["end"], c["box"]) for c in manifest["clips"]] == [
        ("two_shots#0", 0, 20, [40, 0, 280, 240]),
        ("two_shots#1", 20, 40, [40, 0, 280, 240]),
    ]
    folder = data / "train" / "two_shots#1"
    assert len(video_io.list_frame_files(folder)) == 20
    frames, _fps = video_io.read_frames(folder)
    assert frames.shape == (20, 64, 64, 3)
