"""Reading any source (video, GIF, frame folder, image or strip): probe, iterate, read all or some."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from fomm.data.image_ops import normalize_frame_shape, resize_frame, to_float01, to_rgb_uint8, warn_once
from fomm.data.video_io import containers, gif, images
from fomm.data.video_io.paths import DEFAULT_FPS, VideoInfo, list_frame_files, source_kind
from fomm.errors import FommError, plural


def _frame_files(folder: Path) -> list[Path]:
    """The frames of a folder video; at least one, else the one-line error."""
    files = list_frame_files(folder)
    if not files:
        raise FommError(
            f"folder {folder} contains no image frames; put the frames there as .png/.jpg files or pass a video file"
        )
    return files


def probe(
    path: str | os.PathLike,
    frame_shape: Sequence[int] | None = None,
    *,
    as_strip: bool | None = None,
) -> VideoInfo:
    """Describe a source (see the module doc) without decoding it all.

    ``frame_shape`` only matters for image strips (it sets the frame width, see the strip rule);
    the reported width/height are the frames' own size, before any resizing.
    """
    shape = normalize_frame_shape(frame_shape)
    p, kind = source_kind(path)
    if kind == "container":
        return containers.probe_container(p)
    if kind == "gif":
        return gif.probe_gif(p)
    if kind == "folder":
        files = _frame_files(p)
        w, h = images.image_size(files[0])
        return VideoInfo(path=p, fps=DEFAULT_FPS, num_frames=len(files), width=w, height=h, has_audio=False)
    w, h = images.image_size(p)
    count, frame_w = images.strip_layout(p, w, h, shape, as_strip)
    return VideoInfo(path=p, fps=DEFAULT_FPS, num_frames=count, width=frame_w, height=h, has_audio=False)


def _iter_raw(p: Path, kind: str, shape, as_strip) -> Iterator[np.ndarray]:
    """Frames at their own size (RGB uint8), before size normalisation."""
    if kind == "container":
        yield from containers.iter_container(p)
    elif kind == "gif":
        yield from gif.iter_gif(p)
    elif kind == "folder":
        files = _frame_files(p)
        for f in files:
            yield to_rgb_uint8(images.decode_image(f), f"frame {f}")
    else:
        img = to_rgb_uint8(images.decode_image(p), f"image {p}")
        count, frame_w = images.strip_layout(p, img.shape[1], img.shape[0], shape, as_strip)
        if count == 1:
            yield img
        else:
            for i in range(count):
                yield np.ascontiguousarray(img[:, i * frame_w : (i + 1) * frame_w])


def iter_frames(
    path: str | os.PathLike,
    frame_shape: Sequence[int] | None = None,
    *,
    as_strip: bool | None = None,
) -> Iterator[np.ndarray]:
    """Yield the frames of a source one at a time as uint8 ``(H, W, 3)`` RGB.

    Never holds the whole video in memory (except an image strip, which is one image).
    ``frame_shape=(H, W)`` (or ``(H, W, 3)``) resizes every frame (a plain resize that does not
    keep the aspect ratio: crop first to keep it). Without it, a frame whose size
    differs from the first one is resized to the first one's size (warned once).
    """
    shape = normalize_frame_shape(frame_shape)
    p, kind = source_kind(path)
    first: tuple[int, int] | None = None
    for frame in _iter_raw(p, kind, shape, as_strip):
        if shape is not None:
            frame = resize_frame(frame, shape)
        elif first is None:
            first = frame.shape[:2]
        elif frame.shape[:2] != first:
            warn_once(
                f"size-change:{p}",
                f"{p}: frames have different sizes ({frame.shape[1]}x{frame.shape[0]} after "
                f"{first[1]}x{first[0]}); they were resized to the first frame's size",
            )
            frame = resize_frame(frame, first)
        yield frame


def _parse_dtype(dtype) -> str:
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = repr(dtype)
    if name not in ("uint8", "float32"):
        raise FommError(f"dtype {dtype!r} is not supported; use 'uint8' or 'float32'")
    return name


def read_frames(
    path: str | os.PathLike,
    frame_shape: Sequence[int] | None = None,
    dtype="uint8",
    *,
    as_strip: bool | None = None,
) -> tuple[np.ndarray, float]:
    """Read all frames: ``(frames (T, H, W, 3), fps)``; uint8, or float32 in [0, 1]."""
    kind = _parse_dtype(dtype)
    shape = normalize_frame_shape(frame_shape)
    info = probe(path, shape, as_strip=as_strip)
    h, w = shape if shape is not None else (info.height, info.width)
    # Fill a preallocated array when the frame count is known (no list + stack copy).
    video = np.empty((info.num_frames or 0, h, w, 3), dtype=np.dtype(kind))
    extra = []
    count = 0
    for frame in iter_frames(path, shape, as_strip=as_strip):
        if frame.shape[:2] != (h, w):
            frame = resize_frame(frame, (h, w))
        if count < len(video):
            video[count] = to_float01(frame) if kind == "float32" else frame
        else:
            extra.append(to_float01(frame) if kind == "float32" else frame)
        count += 1
    if extra:
        video = np.concatenate([video, np.stack(extra)])
    elif count < len(video):
        video = video[:count].copy()
    return video, info.fps


def read_frames_at(
    path: str | os.PathLike,
    indices: Sequence[int],
    frame_shape: Sequence[int] | None = None,
    *,
    as_strip: bool | None = None,
) -> np.ndarray:
    """Read only the frames at ``indices`` (in that order, repeats allowed) as uint8 ``(K, H, W, 3)``.

    A frame folder decodes only those files; a video decodes up to the last index and stops.
    """
    shape = normalize_frame_shape(frame_shape)
    idx = [int(i) for i in indices]
    if not idx:
        raise FommError("no frame indices given; pass at least one index")
    if min(idx) < 0:
        raise FommError(f"frame index {min(idx)} is negative; pass indices counted from 0")
    p, kind = source_kind(path)
    if kind == "folder":
        files = list_frame_files(p)
        if max(idx) >= len(files):
            raise FommError(
                f"{p} has {plural(len(files), 'frame')}; frame index {max(idx)} is out of range, pass indices below {len(files)}"
            )
        frames = {i: to_rgb_uint8(images.decode_image(files[i]), f"frame {files[i]}") for i in set(idx)}
    else:
        wanted = set(idx)
        last = max(idx)
        frames = {}
        count = 0
        source = _iter_raw(p, kind, shape, as_strip)
        try:
            for i, frame in enumerate(source):
                count = i + 1
                if i in wanted:
                    frames[i] = frame
                if i >= last:
                    break
        finally:
            source.close()
        if last >= count:
            raise FommError(
                f"{p} has {plural(count, 'frame')}; frame index {last} is out of range, pass indices below {count}"
            )
    target = shape if shape is not None else frames[idx[0]].shape[:2]
    out = [resize_frame(frames[i], target) for i in idx]
    return np.stack(out)
