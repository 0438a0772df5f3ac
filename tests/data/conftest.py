"""Fixtures for the data tests: tiny synthetic videos made on the fly."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from fomm.data.image_ops import reset_warn_once


@pytest.fixture(autouse=True)
def _fresh_warn_once():
    """One-time warnings are per process; let every test see its own."""
    reset_warn_once()
    yield
    reset_warn_once()


def smooth_clip(num_frames: int = 10, height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """Smooth, moving colour gradients: float32 (T, H, W, 3) in [0, 1] (easy on lossy codecs)."""
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, size=3)
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    frames = []
    for t in range(num_frames):
        channels = [
            0.5 + 0.35 * np.sin(2 * np.pi * (xx / (4.0 * width) + yy / (5.0 * height)) + phase[c] + 0.2 * t)
            for c in range(3)
        ]
        frames.append(np.stack(channels, axis=-1))
    return np.clip(np.stack(frames), 0, 1).astype(np.float32)


def flat_clip(num_frames: int, height: int = 32, width: int = 32, step: int = 20) -> np.ndarray:
    """uint8 frames of one gray level each, ``step * t + 10``: the level tells the frame index."""
    return np.stack([np.full((height, width, 3), step * t + 10, np.uint8) for t in range(num_frames)])


def frame_index_of(frame_chw_or_hwc: np.ndarray, step: int = 20) -> int:
    level = float(np.mean(frame_chw_or_hwc))
    if level <= 1.0 + 1e-6:  # float in [0, 1]
        level *= 255.0
    return int(round((level - 10) / step))


def make_av_video(
    path: Path,
    num_frames: int = 25,
    fps: int = 25,
    size: tuple[int, int] = (32, 32),
    audio_codec: str | None = "aac",
    audio_seconds: float | None = None,
    tone_hz: float = 440.0,
    rotation: int | None = None,
    video: bool = True,
    faststart: bool = False,
) -> Path:
    """Write a test video with PyAV directly (optionally with a sine audio track)."""
    rate = 44100
    h, w = size
    options = {"movflags": "+faststart"} if faststart else {}
    out = av.open(str(path), "w", container_options=options)
    vs = None
    if video:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        if rotation is not None:
            vs.set_display_rotation(rotation)
    as_ = None
    if audio_codec is not None:
        as_ = out.add_stream(audio_codec, rate=rate)
        as_.codec_context.layout = "mono"
        seconds = audio_seconds if audio_seconds is not None else num_frames / fps
        t = np.arange(int(seconds * rate)) / rate
        signal = (0.5 * np.sin(2 * np.pi * tone_hz * t)).astype(np.float32)
        fmt = as_.codec_context.format.name
        for start in range(0, len(signal), 1024):
            chunk = signal[start : start + 1024]
            data = (chunk * 32767).astype(np.int16)[None] if fmt == "s16" else chunk[None]
            frame = av.AudioFrame.from_ndarray(data, format=fmt, layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            for packet in as_.encode(frame):
                out.mux(packet)
        for packet in as_.encode(None):
            out.mux(packet)
    if vs is not None:
        yy, xx = np.mgrid[:h, :w]
        for i in range(num_frames):
            img = np.zeros((h, w, 3), np.uint8)
            img[..., 0] = (xx * 255 // max(1, w - 1)).astype(np.uint8)  # left dark, right bright
            img[..., 1] = (yy * 255 // max(1, h - 1)).astype(np.uint8)  # top dark, bottom bright
            img[..., 2] = (i * 7) % 256
            for packet in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in vs.encode(None):
            out.mux(packet)
    if num_frames == 0 and audio_codec is None:
        out.start_encoding()  # write the header of a video without frames
    out.close()
    return path


@pytest.fixture
def clips():
    """Namespace of the helpers above."""

    class _Helpers:
        smooth = staticmethod(smooth_clip)
        flat = staticmethod(flat_clip)
        index_of = staticmethod(frame_index_of)
        av_video = staticmethod(make_av_video)

    return _Helpers
