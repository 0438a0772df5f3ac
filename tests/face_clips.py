"""Short clips of a real face made in the test: scikit-image's ``astronaut()`` photo (a test
dependency, public domain, NASA) moved, scaled and rotated over a background with cv2.warpAffine.

The photo's face is at about x 177-272, y 66-161 of 512x512. Also the clip writers the face tests
share: an H.264 clip, with an AAC tone track if asked.
"""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from fomm import testing
from fomm.faces.landmarks import faces_available

needs_faces = pytest.mark.skipif(
    not faces_available(), reason="needs the face models (dlib): pip install 'fomm[faces]'"
)
FACE_CENTRE = (225.0, 120.0)  # in the astronaut photo


def astronaut() -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    return data.astronaut()


def background(h: int = 240, w: int = 320, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    bg = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3)).astype(np.uint8), (0, 0), 4)
    return cv2.normalize(bg, None, 40, 180, cv2.NORM_MINMAX)


def place(photo: np.ndarray, bg: np.ndarray, cx: float, cy: float, scale: float, angle: float) -> np.ndarray:
    """``photo`` rotated by ``angle`` degrees and scaled about its face, whose centre lands on
    ``(cx, cy)`` of a copy of ``bg``."""
    return testing.place(photo, bg, FACE_CENTRE, (cx, cy), scale, angle)


def moving_clip(n: int = 40, photo: np.ndarray | None = None, seed: int = 0, h: int = 240, w: int = 320):
    """``n`` frames ``(h, w, 3)``: the face slides 80 px right and bobs 20 px, grows from 0.55 to
    0.65 of the photo's size and turns from -6 to +6 degrees. Returns ``(frames, centres)``."""
    photo = astronaut() if photo is None else photo
    bg = background(h, w, seed)
    frames, centres = [], []
    for t in range(n):
        a = t / max(n - 1, 1)
        cx, cy = w * 0.375 + 80 * a, h * 0.46 + 20 * np.sin(np.pi * a)
        frames.append(place(photo, bg, cx, cy, 0.55 + 0.1 * a, -6 + 12 * a))
        centres.append((cx, cy))
    return frames, np.asarray(centres)


def write_tone(out, n_frames: int, fps: int, rate: int = 44100) -> None:
    """Mux a mono 330 Hz AAC track as long as ``n_frames`` video frames into the open PyAV ``out``."""
    stream = out.add_stream("aac", rate=rate)
    stream.codec_context.layout = "mono"
    fmt = stream.codec_context.format.name
    tone = 0.3 * np.sin(2 * np.pi * 330 * np.arange(rate * n_frames // fps) / rate)
    for start in range(0, len(tone), 1024):
        chunk = tone[start : start + 1024].astype(np.float32)
        samples = (chunk * 32767).astype(np.int16)[None] if fmt == "s16" else chunk[None]
        frame = av.AudioFrame.from_ndarray(samples, format=fmt, layout="mono")
        frame.sample_rate, frame.pts = rate, start
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def write_video(
    path: Path,
    frames: list,
    fps: int = 12,
    *,
    audio: bool = False,
    rotation: int | None = None,
    faststart: bool = False,
    crf: int = 20,
    rate: int = 22050,
) -> Path:
    """An H.264 file of ``frames`` (any container PyAV writes by extension), optionally with a mono
    AAC tone as long as the video, a display rotation (degrees; ``frames`` are what is displayed:
    they are stored turned back, as a phone held upright stores landscape pixels) and the index at
    the start (``faststart``: a truncated copy still decodes up to where it stops). ``crf``: the
    H.264 quality (lower is closer to ``frames``); ``rate``: the tone's sample rate."""
    if rotation:
        frames = [np.ascontiguousarray(np.rot90(f, -(rotation // 90))) for f in frames]
    with av.open(str(path), "w", container_options={"movflags": "+faststart"} if faststart else {}) as out:
        video = out.add_stream("libx264", rate=fps)
        video.height, video.width = frames[0].shape[:2]
        video.pix_fmt, video.options = "yuv420p", {"preset": "ultrafast", "crf": str(crf)}
        if rotation is not None:
            video.set_display_rotation(rotation)
        if audio:
            write_tone(out, len(frames), fps, rate)
        for image in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
    return path
