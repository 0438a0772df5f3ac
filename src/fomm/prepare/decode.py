"""Reading raw videos for ``fomm prepare``: any file PyAV (FFmpeg) decodes, frame by frame.

:mod:`fomm.data.video_io` reads the formats fomm writes and names by extension; a folder of raw
recordings holds anything FFmpeg reads (``.3gp``, ``.mts``, ``.flv``, ...), so this module opens
every file with PyAV and lets FFmpeg decide. Two things matter here beyond ``video_io``:

* the analysis pass wants *small* frames: swscale converts straight from YUV to a reduced RGB
  size, several times cheaper than converting a 720p or 1080p frame and shrinking it after;
* a broken file is not an error but a result: :class:`Reader` records how many frames decoded
  and why decoding stopped, so the caller keeps the decodable part and says so.

Rotation stored by phones (a display matrix) is applied, so a portrait recording gives
portrait frames.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from fomm.data.video_io.containers import frame_to_ndarray

try:  # accurate rounding: the mean colour of a frame does not drift by a grey level
    _FLAGS = av.video.reformatter.Interpolation.BILINEAR | av.video.reformatter.Interpolation.ACCURATE_RND
except AttributeError:  # pragma: no cover - depends on the PyAV version
    _FLAGS = None


VIDEO_SUFFIXES = frozenset(".mp4 .m4v .mov .avi .webm .mkv .gif .3gp .mts .m2ts .ts .flv .wmv .mpg .mpeg .ogv".split())


class NotAVideo(Exception):
    """The file is not a video FFmpeg can read (``reason`` is ``not-a-video`` or ``undecodable``)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class VideoHeader:
    """What the container says: frame rate, frame count (``None`` when unknown), displayed size
    ``(H, W)`` after rotation, rotation in quarter turns, and whether it has audio."""

    fps: float
    num_frames: int | None
    hw: tuple[int, int]
    quarter_turns: int
    has_audio: bool


def _why(exc: BaseException) -> str:
    return str(getattr(exc, "strerror", None) or exc).strip().rstrip(".")


def _open(path: Path):
    try:
        if path.stat().st_size == 0:
            raise NotAVideo("undecodable", "an empty file")
        return av.open(str(path), mode="r", metadata_errors="ignore")
    except NotAVideo:
        raise
    except (av.FFmpegError, OSError, ValueError) as exc:
        # a video's extension: a broken video (e.g. a recording cut off before its index was written)
        reason = "undecodable" if path.suffix.lower() in VIDEO_SUFFIXES else "not-a-video"
        raise NotAVideo(reason, f"FFmpeg cannot read it ({_why(exc)})") from None


def _fps(stream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        with contextlib.suppress(ZeroDivisionError, TypeError, ValueError):
            value = float(rate) if rate is not None else 0.0
            if 0.0 < value < 1000.0:
                return value
    return 25.0


def _is_image(format_name: str) -> bool:
    """FFmpeg opens still images too (``image2``, ``png_pipe``, ...): one frame, not a video."""
    return any(name == "image2" or name.endswith("_pipe") for name in format_name.split(","))


def _quarter_turns(frame) -> int:
    try:
        rotation = frame.rotation or 0
    except Exception:  # side data PyAV cannot parse: the frame as stored
        rotation = 0
    return int(round(rotation / 90.0)) % 4


class Reader:
    """One pass over the frames of ``path``. After (or during) :meth:`frames`, ``count`` is the
    number of frames yielded and ``error`` the reason decoding stopped early (``None`` when the
    stream ended normally). ``header`` is read on construction; :class:`NotAVideo` when the file
    has no video stream or not one decodable frame."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.count = 0
        self.error: str | None = None
        self.header = self._read_header()

    def _read_header(self) -> VideoHeader:
        container = _open(self.path)
        try:
            if not container.streams.video:
                raise NotAVideo("not-a-video", "no video stream")
            stream = container.streams.video[0]
            if _is_image(container.format.name):
                raise NotAVideo("not-a-video", "an image, not a video")
            try:
                first = next(container.decode(stream))
            except (StopIteration, av.FFmpegError) as exc:
                why = _why(exc) if isinstance(exc, av.FFmpegError) else "no frames"
                raise NotAVideo("undecodable", f"no frame decodes ({why})") from None
            turns = _quarter_turns(first)
            h, w = first.height, first.width
            hw = (w, h) if turns % 2 else (h, w)
            return VideoHeader(_fps(stream), stream.frames or None, hw, turns, bool(container.streams.audio))
        finally:
            container.close()

    def frames(self, hw: tuple[int, int] | None = None, stop: int | None = None) -> Iterator[np.ndarray]:
        """RGB uint8 frames converted straight to ``hw = (H, W)`` (the displayed orientation;
        default the displayed size: every frame has it, even where the stream changes size);
        stops before frame ``stop`` when given."""
        self.count, self.error = 0, None
        turns = self.header.quarter_turns
        hw = self.header.hw if hw is None else hw
        size = (hw[0], hw[1]) if turns % 2 else (hw[1], hw[0])  # (width, height) as stored
        container = _open(self.path)
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            decoder = container.decode(stream)
            while stop is None or self.count < stop:
                try:
                    frame = next(decoder)
                except StopIteration:
                    break
                except av.FFmpegError as exc:
                    self.error = _why(exc)
                    break
                yield self._rgb(frame, size, turns)
                self.count += 1
        finally:
            container.close()

    @staticmethod
    def _rgb(frame, size, turns: int) -> np.ndarray:
        arr = frame_to_ndarray(frame, format="rgb24", width=size[0], height=size[1], interpolation=_FLAGS)
        if turns:
            arr = np.ascontiguousarray(np.rot90(arr, turns))
        return arr


def analysis_hw(hw: tuple[int, int], short_side: int) -> tuple[int, int]:
    """The frame size ``(H, W)`` whose shorter side is at most ``short_side`` (even, aspect kept)."""
    h, w = hw
    scale = min(1.0, short_side / min(h, w))
    if scale >= 1.0:
        return h, w
    return max(2, int(round(h * scale / 2)) * 2), max(2, int(round(w * scale / 2)) * 2)
