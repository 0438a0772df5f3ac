"""fomm live, headless, with a small video file standing in for the camera."""

from __future__ import annotations

import re
import threading
import time

import numpy as np
import pytest

from fomm.apps.live import FrameReader, center_crop_resize
from fomm.cli import main
from fomm.data.video_io import VideoWriter, read_frames, write_image


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_checkpoint):
    root = tmp_path_factory.mktemp("live")
    checkpoint = tiny_checkpoint
    yy, xx = np.mgrid[0:48, 0:80] / 48.0
    frames = [
        (255 * np.stack([0.5 + 0.4 * np.sin(6 * xx + 0.4 * t), 0.5 + 0.4 * np.cos(5 * yy), 0.5 + 0 * xx], -1)).astype(
            np.uint8
        )
        for t in range(12)
    ]
    video = root / "camera.mp4"
    with VideoWriter(video, fps=25) as writer:
        for frame in frames:
            writer.write(frame)
    source = root / "source.png"
    write_image(source, center_crop_resize(frames[0], (64, 64)))
    return checkpoint, source, video


@pytest.mark.slow
def test_live_writes_every_frame_and_reports_latency(inputs, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    checkpoint, source, video = inputs
    out = tmp_path / "live.mp4"
    args = ["live", "--checkpoint", str(checkpoint), "--source", str(source), "--camera", str(video)]
    assert main([*args, "--out", str(out), "--no-realtime"]) == 0
    printed = capsys.readouterr().out
    match = re.search(r"(\d+) frames processed, (\d+) dropped; latency mean ([\d.]+) ms, p95 ([\d.]+) ms", printed)
    assert match, printed
    assert (int(match[1]), int(match[2])) == (12, 0)
    assert 0 < float(match[3]) <= float(match[4])
    stages = dict(re.findall(r"(capture|crop|keypoints|generator|output) ([\d.]+)", printed.split("stages")[1]))
    assert list(stages) == ["capture", "crop", "keypoints", "generator", "output"], printed
    assert sum(map(float, stages.values())) == pytest.approx(float(match[3]), abs=0.5)  # the stages add up
    frames = read_frames(out)[0]
    assert frames.shape == (12, 64, 64, 3)
    assert not list(tmp_path.glob(".*"))  # atomic: no temporary file left


def test_live_without_display_or_output_says_what_to_pass(inputs, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    checkpoint, source, video = inputs
    args = ["live", "--checkpoint", str(checkpoint), "--source", str(source), "--camera", str(video)]
    assert main(args) == 2
    assert "--out" in capsys.readouterr().err
    assert main([*args[:-1], "no-such-camera.mp4", "--out", "x.mp4"]) == 2
    assert "camera index" in capsys.readouterr().err


class FastCamera:
    """A capture that yields numbered frames as fast as it can."""

    def __init__(self, count):
        self.count, self.i = count, 0

    def read(self):
        if self.i >= self.count:
            return False, None
        self.i += 1
        return True, np.full((4, 4, 3), self.i, np.uint8)

    def release(self):
        pass


def test_realtime_reader_keeps_the_newest_frame():
    reader = FrameReader(FastCamera(50), realtime=True).start()
    seen = []
    while (item := reader.get()) is not None:
        seen.append(int(item[0][0, 0, 0]))
        time.sleep(0.01)  # a slow consumer
    reader.stop()
    assert seen == sorted(seen) and seen[-1] == 50  # in order, and the last frame always arrives
    assert reader.dropped == 50 - len(seen) > 0
    reader = FrameReader(FastCamera(20), realtime=False).start()
    got = []
    while (item := reader.get()) is not None:
        got.append(int(item[0][0, 0, 0]))
    assert got == list(range(1, 21)) and reader.dropped == 0
    assert not any(t.name == "fomm-live-reader" and t.is_alive() for t in threading.enumerate() if t is reader._thread)


def test_overlay_on_a_channels_first_prediction():
    """ONNX Runtime returns (B, 3, H, W) arrays: the HWC view must still take the overlay."""
    import torch

    from fomm.apps.live import run_live

    class Engine:
        class model:
            frame_shape = (64, 64)

        def keypoints(self, driving):
            return {"value": torch.zeros(1, 10, 2)}

        def animate_keypoints(self, kp):
            return {"prediction": torch.from_numpy(np.zeros((1, 3, 64, 64), np.float32))}

    class Sink:
        frames: list = []

        def write(self, frame):
            self.frames.append(frame.copy())

    sink = Sink()
    report = run_live(Engine(), FrameReader(FastCamera(5), realtime=False).start(), [sink])
    assert report.processed == 5 and len(report.latencies) == 5
    assert all(f.shape == (64, 64, 3) and f.dtype == np.uint8 for f in sink.frames)
    assert all(f.max() > 100 for f in sink.frames)  # the white fps / latency text on black


@pytest.fixture(scope="module")
def face_inputs(tmp_path_factory, inputs):
    """A camera clip of a face sliding 80 px (tests/face_clips.py) and a 250x250 photo of it."""
    import cv2

    face_clips = pytest.importorskip("face_clips")
    root = tmp_path_factory.mktemp("live-face")
    video = root / "face-camera.mp4"
    with VideoWriter(video, fps=25) as writer:
        for frame in face_clips.moving_clip(10)[0]:
            writer.write(frame)
    photo = cv2.resize(face_clips.astronaut(), (250, 250), interpolation=cv2.INTER_AREA)
    write_image(root / "photo.png", photo)
    return inputs[0], root / "photo.png", video


@pytest.mark.slow
def test_live_crop_follows_the_face_and_pastes_back(face_inputs, tmp_path, capsys, monkeypatch):
    from fomm.data.video_io import read_image
    from fomm.faces.plan import crop_image

    monkeypatch.delenv("DISPLAY", raising=False)
    checkpoint, photo, video = face_inputs
    args = ["live", "--checkpoint", str(checkpoint), "--source", str(photo), "--camera", str(video), "--no-realtime"]
    out = tmp_path / "pasted.mp4"
    assert main([*args, "--crop", "--tracker", "haar", "--no-overlay", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "face found on 10 of 10 frames (OpenCV Haar cascade)" in printed and "stages (mean ms): capture" in printed
    frames = read_frames(out)[0].astype(float)
    assert frames.shape == (10, 250, 250, 3)  # the photo's size: the face pasted back into it
    image = read_image(photo)[:250, :250].astype(float)
    x0, y0, x1, y1 = crop_image(read_image(photo), 64, tracker="haar")[1]
    inside = np.zeros((250, 250), bool)
    inside[y0:y1, x0:x1] = True
    difference = np.abs(frames - image).mean(axis=(0, 3))
    assert difference[~inside].mean() < 3  # the photo around the face (after H.264) ...
    assert difference[inside].mean() > 3 * difference[~inside].mean()  # ... and the animated face in it
    crop_only = tmp_path / "crop.mp4"
    assert main([*args, "--crop", "--tracker", "haar", "--no-paste-back", "--out", str(crop_only)]) == 0
    assert read_frames(crop_only)[0].shape == (10, 64, 64, 3)


def test_live_crop_errors_are_one_line(face_inputs, inputs, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    checkpoint, photo, video = face_inputs
    args = ["live", "--checkpoint", str(checkpoint), "--camera", str(video), "--out", "never.mp4"]
    assert main([*args, "--source", str(photo), "--color-match"]) == 2
    assert "--color-match: used only with --crop" in capsys.readouterr().err
    assert main([*args, "--source", str(inputs[1]), "--crop", "--tracker", "haar"]) == 2  # stripes, no face
    err = capsys.readouterr().err.strip()
    assert err.startswith("fomm live: error: no face found in the source photo") and "\n" not in err


@pytest.mark.parametrize("hw", [(64, 64), (32, 32), (48, 80), (200, 40), (256, 256), (720, 1280), (1080, 1920)])
def test_overlay_fits_inside_any_frame(hw):
    from fomm.apps.live import draw_overlay

    frame = draw_overlay(np.zeros((*hw, 3), np.uint8), 123.4, 1234.0)
    ys, xs = np.nonzero(frame.max(-1))
    assert len(ys) and ys.min() > 0 and xs.min() > 0  # drawn, and not cut at any edge ...
    assert ys.max() < hw[0] - 1 and xs.max() < hw[1] - 1
    assert ys.max() < max(0.12 * hw[0], 20)  # ... along the top
    if hw[0] >= 256:
        assert ys.max() - ys.min() >= 12  # readable where there is room


class ListCamera:
    """A capture over given RGB frames (handed out as OpenCV's BGR)."""

    def __init__(self, frames):
        self.frames = list(frames)

    def read(self):
        if not self.frames:
            return False, None
        return True, np.ascontiguousarray(self.frames.pop(0)[..., ::-1])

    def release(self):
        pass


def test_live_frames_are_the_batch_one_animation(inputs):
    """Live runs fomm animate's engine at batch 1: the same frames as fomm.animation.engine.animate."""
    from fomm.animation.engine import AnimationEngine, animate
    from fomm.apps.live import run_live
    from fomm.data.image_ops import to_uint8
    from fomm.data.video_io import read_image
    from fomm.models.checkpoint import load_model

    checkpoint, source, video = inputs
    model = load_model(checkpoint, device="cpu")
    camera = read_frames(video)[0][:6]
    engine = AnimationEngine(model, batch_size=1)
    engine.set_source(read_image(source))

    written = []
    sink = type("Sink", (), {"write": lambda self, frame: written.append(frame.copy())})()
    report = run_live(engine, FrameReader(ListCamera(camera), realtime=False).start(), [sink], overlay=False)
    expected = animate(model, read_image(source), [center_crop_resize(f, (64, 64)) for f in camera], batch_size=1)
    assert report.processed == 6 and np.array_equal(np.stack(written), to_uint8(expected))
