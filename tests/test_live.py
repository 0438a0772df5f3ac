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
from fomm.testing import random_checkpoint


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("live")
    checkpoint = random_checkpoint(root / "model.pt", "tiny-64", seed=0)
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

        def animate_batch(self, driving):
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
