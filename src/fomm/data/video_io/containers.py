"""Reading video containers with PyAV: opening, truncation checks, frames, probing."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import Interpolation

from fomm.data.video_io.paths import DEFAULT_FPS, VideoInfo
from fomm.errors import FommError, plural


def av_reason(exc: BaseException) -> str:
    reason = getattr(exc, "strerror", None) or str(exc)
    return str(reason).strip().rstrip(".")


def open_container(path: Path):
    with contextlib.suppress(OSError):
        if path.stat().st_size == 0:
            raise FommError(f"{path} is an empty file; re-export or re-download it")
    try:
        return av.open(str(path), mode="r", metadata_errors="ignore")
    except av.FFmpegError as exc:
        raise FommError(
            f"cannot read {path} as a video ({av_reason(exc)}): it is corrupt, truncated or not "
            "a video; re-export or re-download it"
        ) from None


def _video_stream(container, path: Path):
    if container.streams.video:
        return container.streams.video[0]
    if _shorter_than_header(path):
        raise _truncated(path, "it ends before its header says; no readable video stream")
    if container.streams.audio:
        raise FommError(f"{path} has no video stream, only audio; pass a file that contains video")
    if not container.streams and not _is_mp4(path):  # a complete MP4 may hold no streams
        raise _truncated(path, "no readable stream")
    raise FommError(f"{path} has no video stream; pass a file that contains video")


def _is_mp4(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(8)[4:8] == b"ftyp"
    except OSError:
        return False


def _truncated(path: Path, why: str) -> FommError:
    return FommError(f"{path} is truncated or corrupt ({why}); re-export or re-download it")


def _shorter_than_header(path: Path) -> bool:
    """Whether an MP4/MOV file ends inside one of its top-level boxes, or before its ``moov``
    box (the index without which nothing decodes): the file is shorter than its header says."""
    try:
        size = path.stat().st_size
        if not _is_mp4(path):
            return False
        with open(path, "rb") as fh:
            offset, seen_moov = 0, False
            while offset + 8 <= size:
                fh.seek(offset)
                head = fh.read(16)
                box, kind = int.from_bytes(head[:4], "big"), head[4:8]
                if box == 1 and len(head) == 16:  # 64-bit size follows the type
                    box = int.from_bytes(head[8:16], "big")
                elif box == 0:  # the box runs to the end of the file
                    box = size - offset
                if box < 8 or offset + box > size:
                    return True
                seen_moov |= kind == b"moov"
                offset += box
            return offset != size or not seen_moov
    except OSError:
        return False


def _stream_fps(stream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        try:
            value = float(rate) if rate is not None else 0.0
        except (ZeroDivisionError, TypeError, ValueError):
            value = 0.0
        if 0.0 < value < 10000.0:
            return value
    return DEFAULT_FPS


# swscale's default YUV->RGB path rounds down (about -1.3 levels on average, MAD ~2 on smooth
# content); accurate rounding with full chroma interpolation is unbiased (MAD ~0.3) and still cheap.
# (Older PyAV without these flags: its default conversion.)
try:
    DECODE_FLAGS = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
    ENCODE_FLAGS = Interpolation.BICUBIC | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INP
except AttributeError:  # pragma: no cover - depends on the PyAV version
    DECODE_FLAGS = ENCODE_FLAGS = None


def swscale(frame, **kwargs):
    """``frame.reformat(**kwargs)`` in one swscale thread, as every frame conversion in fomm is.

    PyAV 17+ scales with a pool of one thread per core by default: that pool hung in a forked
    DataLoader worker (PyAV 18.1.1, FFmpeg 8), and fomm converts in several processes at once
    (loader and ``fomm prepare`` workers), where a pool per process only oversubscribes the cores.
    """
    try:
        return frame.reformat(threads=1, **kwargs)
    except TypeError:  # pragma: no cover - PyAV < 17: no threads argument, one thread anyway
        return frame.reformat(**kwargs)


def frame_to_ndarray(frame, **kwargs) -> np.ndarray:
    """``frame.to_ndarray(**kwargs)`` in one swscale thread (see :func:`swscale`)."""
    try:
        return frame.to_ndarray(threads=1, **kwargs)
    except TypeError:  # pragma: no cover - PyAV < 17: no threads argument, one thread anyway
        return frame.to_ndarray(**kwargs)


def _frame_to_rgb(frame) -> np.ndarray:
    arr = frame_to_ndarray(frame, format="rgb24", interpolation=DECODE_FLAGS)
    try:
        rotation = frame.rotation or 0
    except Exception:  # side data that PyAV cannot parse: show the frame as stored
        rotation = 0
    k = int(round(rotation / 90.0)) % 4
    if k:
        arr = np.ascontiguousarray(np.rot90(arr, k))
    return arr


def iter_container(path: Path) -> Iterator[np.ndarray]:
    container = open_container(path)
    try:
        stream = _video_stream(container, path)
        stream.thread_type = "AUTO"  # frame and slice threads
        expected = stream.frames or None
        decoder = container.decode(stream)
        count = 0
        error: BaseException | None = None
        while True:
            try:
                frame = next(decoder)
            except StopIteration:
                break
            except av.FFmpegError as exc:
                error = exc
                break
            count += 1
            yield _frame_to_rgb(frame)
        if count == 0:
            why = f": {av_reason(error)}" if error is not None else ""
            raise _truncated(path, f"no decodable video frames{why}")
        # A little slack: edit lists and decoder delay may legitimately drop a frame or two.
        if error is not None or (expected is not None and count < expected - 2):
            read = f"{count} of {plural(expected, 'frame')}" if expected else plural(count, "frame")
            why = f" ({av_reason(error)})" if error is not None else ""
            warnings.warn(
                f"{path}: read {read}, the rest did not decode{why}; the file seems "
                "truncated or corrupt, re-export or re-download it to use all frames",
                UserWarning,
                stacklevel=3,
            )
    finally:
        container.close()


def probe_container(path: Path) -> VideoInfo:
    container = open_container(path)
    try:
        stream = _video_stream(container, path)
        fps = _stream_fps(stream)
        num_frames = stream.frames or None
        has_audio = len(container.streams.audio) > 0
        try:  # decode one frame: validates the file and gives the displayed size
            first = next(container.decode(stream))
        except StopIteration:
            if num_frames or _shorter_than_header(path):  # the header promised frames
                raise _truncated(path, "no decodable video frames") from None
            raise FommError(f"{path} contains no video frames; pass a video with at least one frame") from None
        except av.FFmpegError as exc:
            raise _truncated(path, f"cannot decode its first frame: {av_reason(exc)}") from None
        height, width = _frame_to_rgb(first).shape[:2]
    finally:
        container.close()
    return VideoInfo(path=path, fps=fps, num_frames=num_frames, width=width, height=height, has_audio=has_audio)
