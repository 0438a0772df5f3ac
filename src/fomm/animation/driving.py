"""The driving video: its frames at the model's size (fitted or face-cropped), its keypoints
computed once for many sources, and a spool that replays its frames without decoding again."""

from __future__ import annotations

import dataclasses
import os
import tempfile
import warnings
from collections.abc import Iterable, Iterator

import numpy as np
import torch

from fomm.animation.engine import batched, prepare_frames
from fomm.animation.options import DRIVING_FITS, Progress
from fomm.animation.progress import ProgressReporter
from fomm.animation.sources import check_input
from fomm.data import video_io
from fomm.data.image_ops import check_finite, fit_aspect, resize_frame, to_rgb_float01, to_uint8
from fomm.errors import FommError, plural
from fomm.faces import CropPlan


class DrivingVideo:
    """The driving video (a file, or a ``(T, H, W, C)`` array) as frames at the model's size.

    :meth:`frames` decodes it again on each call (one pass). ``plan``: a
    :class:`fomm.faces.CropPlan` (square face crops); without one, frames are brought to the
    model's aspect ratio by ``fit`` (:func:`fomm.data.image_ops.fit_aspect`), then resized.
    """

    def __init__(self, driving, frame_shape=None, fit: str = "crop", fps: float | None = None):
        self.frame_shape = None if frame_shape is None else tuple(int(s) for s in frame_shape)
        self.fit, self.plan, self.array, self.path = fit, None, None, None
        if isinstance(driving, (str, os.PathLike)):
            self.path = check_input(driving, "driving video", "check the path of the video whose motion to copy")
            info = video_io.probe(self.path)  # a video without frames, a corrupt file: a FommError here
            self.fps, self.total, self.has_audio = float(info.fps), info.num_frames, info.has_audio
            self.size_hw = (info.height, info.width)
            self.name = self.path.name
        else:
            arr = np.asarray(driving.detach().cpu().numpy() if hasattr(driving, "detach") else driving)
            if arr.ndim == 4 and len(arr) == 0:
                raise FommError("driving video has no frames; pass a video with at least one frame")
            check_finite(arr, "driving video")
            self.array = to_rgb_float01(arr, "driving video", ndim=4)
            self.fps, self.total, self.has_audio = float(fps or 25.0), len(self.array), False
            self.size_hw = self.array.shape[1:3]
            self.name = "the driving frames"

    def set_plan(self, plan) -> None:
        self.plan = plan
        self.total = plan.num_frames

    def fit_note(self) -> None:
        """Warn once when the frames are not of the model's aspect ratio and say what is done."""
        h, w = self.size_hw
        fh, fw = self.frame_shape
        if self.plan is not None or abs(w * fh / (h * fw) - 1) < 0.01:
            return
        done = {
            "crop": "centre-cropped to the model's aspect ratio",
            "pad": "letterboxed (black bands) to the model's aspect ratio",
            "stretch": "squashed (aspect ratio not kept)",
        }[self.fit]
        other = ", ".join(m for m in DRIVING_FITS if m != self.fit)
        warnings.warn(
            f"driving video is {w}x{h}, not {'square' if fh == fw else f'{fw}x{fh}'}: {done}, then resized "
            f"to {fw}x{fh} (--driving-fit {other} to change)",
            UserWarning,
            stacklevel=3,
        )

    def raw_frames(self) -> Iterator[np.ndarray]:
        return iter(self.array) if self.array is not None else video_io.iter_frames(self.path)

    def frames(self, shape: tuple[int, int] | None = None) -> Iterator[np.ndarray]:
        """One pass over the frames, each ``frame_shape`` (or ``shape``, ``(H, W)``: the same
        crop at another size); uint8 from files, float from arrays."""
        shape = self.frame_shape if shape is None else (int(shape[0]), int(shape[1]))
        frames = self.raw_frames()
        if self.plan is not None:
            plan = self.plan if self.plan.size == max(shape) else dataclasses.replace(self.plan, size=max(shape))
            frames = plan.crop_frames(frames)
        else:
            frames = (fit_aspect(f, shape, self.fit) for f in frames)
        return (resize_frame(f, shape) for f in frames)

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` (decoding stops there), or a FommError naming the valid range."""
        frames, count = self.frames(), 0
        try:
            for count, frame in enumerate(frames, start=1):
                if count - 1 == index:
                    return frame
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()
        raise FommError(
            f"best frame {index} is outside the driving video ({plural(count, 'frame')}: 0..{count - 1}); "
            "pass --best-frame auto or a smaller index"
        )


def crop_driving(driving: DrivingVideo, crop_size: int, options: dict, progress: Progress) -> None:
    """Plan the face crop of every driving frame (one decode); a FommError where no face is found."""
    if driving.path is not None:
        plan = CropPlan.from_video(driving.path, crop_size, progress=progress is True, **options)
    else:
        plan = CropPlan.from_frames(to_uint8(driving.array), crop_size, **options)
    if not plan.found:
        raise FommError(f"no face found in driving video {driving.name}; pass an already cropped video or drop --crop")
    driving.set_plan(plan)


def driving_keypoints(engine, driving: DrivingVideo, progress: Progress, spool: FrameSpool | None = None) -> list[dict]:
    """The driving keypoints, one dict of tensors per batch of ``engine.batch_size`` frames (one
    decode of the video; reused for every source). ``spool``: also record the frames there."""
    batches = []
    stream = driving.frames() if spool is None else spool.record(driving.frames())
    with ProgressReporter(progress, driving.total, f"driving keypoints of {driving.name}", leave=False) as bar:
        with torch.inference_mode():
            for chunk in batched(stream, engine.batch_size):
                frames = prepare_frames(np.stack(chunk), driving.frame_shape, "driving video", ndim=4)
                batches.append(engine.keypoints(frames))
                bar.update(len(chunk))
    if not batches:
        raise FommError(f"driving video {driving.name} has no frames; pass a video with at least one frame")
    return batches


class FrameSpool:
    """Frames recorded once into an unlinked temporary file and replayed from it in order, as often
    as needed: one frame in memory at a time. If the file cannot be written (a full disk), the
    spool turns itself off (:attr:`ok` False) and the frames still flow through :meth:`record`."""

    def __init__(self) -> None:
        self.ok, self.count, self._spec = True, 0, None  # _spec: (shape, dtype, bytes) of every frame
        try:
            self._file = tempfile.TemporaryFile(prefix="fomm-frames-")
        except OSError:
            self.ok, self._file = False, None

    def record(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Pass ``frames`` (each ``(H, W, C)``, all of one shape and dtype) through, writing each."""
        for frame in frames:
            if self.ok:
                self._write(np.ascontiguousarray(frame))
            yield frame

    def _write(self, frame: np.ndarray) -> None:
        if self._spec is None:
            self._spec = (frame.shape, frame.dtype, frame.nbytes)
        if (frame.shape, frame.dtype) != self._spec[:2]:
            self.close()  # cannot happen for one DrivingVideo; decode again rather than replay wrongly
            return
        try:
            self._file.write(frame.tobytes())
            self.count += 1
        except OSError:
            self.close()

    def replay(self) -> Iterator[np.ndarray]:
        """The recorded frames, in order (each read at its own offset: replays may interleave)."""
        if not self.ok:
            raise RuntimeError("the frame spool is off; decode the frames again")
        shape, dtype, size = self._spec if self._spec else ((0,), np.uint8, 0)
        self._file.flush()
        for i in range(self.count):
            self._file.seek(i * size)
            yield np.frombuffer(self._file.read(size), dtype).reshape(shape)

    def close(self) -> None:
        """Delete the file (it has no name: closing frees its space) and turn the spool off."""
        self.ok = False
        if self._file is not None:
            self._file.close()
            self._file = None
