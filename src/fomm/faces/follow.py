"""Following a face in a live stream: one smooth crop box per frame, from past frames only.

:class:`FaceFollower` is the causal counterpart of :class:`fomm.faces.plan.CropPlan` (which
reads the whole video first and smooths forwards and backwards): each frame is cropped as it
arrives, with the same trackers (:mod:`fomm.faces.detect`), the same box (:func:`crop_box`:
``scale`` x face size, moved up by the tracker's ``shift_up``) and the forward pass of the same
Kalman filter (:class:`fomm.faces.track.CausalSmoother`). While no face is followed, the whole
frame is searched every ``detect_every`` frames; once one is, it is found again near where it
was on every frame, a missing frame keeps the predicted box, and after ``max_lost`` missing frames
in a row the face is lost and the search starts again. Until the first face is found, frames are
centre-cropped (nothing to follow yet).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fomm.data.image_ops import fit_aspect, resize_frame, to_rgb_uint8
from fomm.faces import detect as _detect
from fomm.faces import track as _track
from fomm.faces.plan import SCALE, Box, check_options, crop_box

LIVE_MAX_LOST = 15  # about half a second at 30 fps, then search the whole frame again


class FaceFollower:
    """``follower(frame)`` -> the frame cropped around the followed face, ``size`` x ``size``.

    ``tracker``: ``auto``, ``landmarks``, ``haar`` or a tracker object (:func:`make_tracker`);
    ``box`` is the last frame's crop box (None while no face has been found) and ``found`` the
    number of frames on which the face was measured.
    """

    def __init__(
        self,
        size: int | Sequence[int],
        *,
        scale: float = SCALE,
        smoothing: float = _track.SMOOTHING,
        shift_up: float | None = None,
        tracker="auto",
        detect_every: int = _track.DETECT_EVERY,
        max_lost: int = LIVE_MAX_LOST,
    ):
        check_options(scale, smoothing, detect_every, max_lost)
        self.size = (int(size), int(size)) if np.isscalar(size) else (int(size[0]), int(size[1]))
        self.scale, self.detect_every, self.max_lost = float(scale), int(detect_every), int(max_lost)
        self.tracker = _detect.make_tracker(tracker)
        self.shift_up = shift_up  # None: the tracker's own
        self.smoother = _track.CausalSmoother(smoothing)
        self.face: _detect.Face | None = None  # the face followed (last measured), None while searching
        self.box: Box | None = None
        self.index, self.lost, self.found = 0, 0, 0

    @property
    def name(self) -> str:
        """The tracker used (e.g. ``dlib landmarks``)."""
        return self.tracker.name

    def _measure(self, frame: np.ndarray) -> _detect.Face | None:
        """This frame's face: near the followed one, or (every ``detect_every`` frames while
        searching) the main face of the whole frame."""
        if self.face is not None:
            return self.tracker.detect_near(frame, self.face, _track.GATE)
        if self.index % self.detect_every:
            return None
        found = self.tracker.detect(frame)
        return found[0] if found else None

    def update(self, frame: np.ndarray) -> Box | None:
        """Measure ``frame`` (RGB) and return its crop box (None until a face has been found)."""
        face = self._measure(frame)
        self.index += 1
        if face is None:
            self.lost += 1
            if self.face is not None and self.lost > self.max_lost:
                self.face = None  # lost: search the whole frame again; the box stays where it was
                self.smoother.reset()
            elif self.face is not None:
                row = self.smoother.update(None)  # the filter's prediction bridges the gap
                self.box = self._box(row, frame.shape[:2])
            return self.box
        if self.face is None:
            self.smoother.reset()  # a new face: its own track
        self.face, self.lost = face, 0
        self.found += 1
        row = self.smoother.update((face.cx, face.cy, face.size))
        self.box = self._box(row, frame.shape[:2])
        return self.box

    def _box(self, row: np.ndarray, frame_hw) -> Box:
        shift_up = self.tracker.shift_up if self.shift_up is None else self.shift_up
        return crop_box(_detect.Face(*row), frame_hw, self.scale, shift_up)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """``frame`` cropped to its box (centre-cropped before any face) and resized to ``size``."""
        frame = to_rgb_uint8(frame)
        box = self.update(frame)
        if box is None:
            part = fit_aspect(frame, self.size, "crop")
        else:
            x0, y0, x1, y1 = box
            part = frame[y0:y1, x0:x1]
        return np.ascontiguousarray(resize_frame(part, self.size))
