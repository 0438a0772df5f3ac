"""Following one face through a video: shot cuts, a face track per segment, and its smoothing.

:func:`track_faces` reads the frames once and returns the face measurements of each *segment*:

* **Shot cuts** (:class:`ShotCutDetector`) start a new segment. A frame is a cut when, compared
  with the previous frame, its colour histogram (hue x saturation x value) changed by a
  Bhattacharyya distance above 0.1 *and* its grey 32x32 thumbnail changed by a mean absolute
  difference above 20 grey levels and above twice the median change of the last 10 frames.
  (Measured on a photo sliding over a background by 2 to 7 px per frame: histogram 0.05-0.07,
  thumbnail 6-22 per frame; a cut to another photo: 0.17-0.24 and 50.) A pan changes the
  thumbnail but not the histogram; a flash can pass for a cut.
* **Tracking**: once a face is found (a whole-frame detection, every ``detect_every`` frames while
  no face is followed), it is found again on every frame near where it was (``detect_near``). A
  frame where that fails is *missing*; the smoother bridges it. After ``max_lost`` missing frames
  in a row the face is *lost*: when it, or another face, is found again, a new segment starts
  there. Another face seen while the followed one is missing but not yet lost is kept as a
  candidate: it takes over (its segment starting on the frame it was first seen) when the
  followed face turns out lost, or at the end of the video if the followed face never came back.
* **Smoothing** (:func:`smooth_track`): a constant-velocity Kalman filter run forwards and then
  backwards (a Rauch-Tung-Striebel smoother) on the face centre and size of each segment. With
  ``smoothing = S`` frames the process noise is ``1 / S**4`` of the measurement noise, which
  damps motion faster than a period of about ``2 * pi * S`` frames and keeps slower motion
  (no lag: the backward pass removes it). The size is smoothed over ``2 * S`` (zooms are slow, and
  size jitter shows most). ``S = 0`` keeps the measurements as they are.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from fomm.data.image_ops import resize_frame, to_rgb_uint8
from fomm.errors import FommError
from fomm.faces.detect import Face

DETECT_EVERY = 5  # frames between whole-frame detections while no face is followed
MAX_LOST = 25  # missing frames in a row after which the face is lost
SMOOTHING = 4.0  # smoother time scale, frames
CUT_HIST = 0.1  # a cut changes the colour histogram by more than this (Bhattacharyya distance) ...
CUT_MAD = 20.0  # ... and the grey thumbnail by more than this (mean absolute difference, 0-255) ...
CUT_RATIO = 2.0  # ... and by more than this many times its median over the last 10 frames
CONFIRM = 2  # detections a candidate face needs before it can take over
GATE = 0.5  # a measurement within this many face sizes of the last one is the same face


class ShotCutDetector:
    """Finds hard cuts between consecutive frames (see the module docstring for the test)."""

    def __init__(self, hist: float = CUT_HIST, mad: float = CUT_MAD, ratio: float = CUT_RATIO):
        self.hist, self.mad, self.ratio = float(hist), float(mad), float(ratio)
        self.previous: tuple[np.ndarray, np.ndarray] | None = None
        self.recent: collections.deque = collections.deque(maxlen=10)

    @staticmethod
    def describe(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(colour histogram, grey 32x32 thumbnail)`` of a frame."""
        thumb = resize_frame(to_rgb_uint8(frame), (64, 64))
        hsv = cv2.cvtColor(thumb, cv2.COLOR_RGB2HSV)
        hist = cv2.calcHist([hsv], [0, 1, 2], None, [12, 4, 4], [0, 180, 0, 256, 0, 256])
        grey = resize_frame(cv2.cvtColor(thumb, cv2.COLOR_RGB2GRAY), (32, 32)).astype(np.float32)
        return cv2.normalize(hist, None).flatten(), grey

    def distances(self, frame: np.ndarray) -> tuple[float, float]:
        """``(histogram distance, thumbnail mean absolute difference)`` to the previous frame given."""
        cur = self.describe(frame)
        prev, self.previous = self.previous, cur
        if prev is None:
            return 0.0, 0.0
        hist = float(cv2.compareHist(prev[0], cur[0], cv2.HISTCMP_BHATTACHARYYA))
        return hist, float(np.abs(prev[1] - cur[1]).mean())

    def is_cut(self, frame: np.ndarray) -> bool:
        """Whether ``frame`` starts a new shot (call once per frame, in order)."""
        hist, mad = self.distances(frame)
        typical = float(np.median(self.recent)) if self.recent else 0.0
        cut = hist > self.hist and mad > max(self.mad, self.ratio * typical)
        self.recent.clear() if cut else self.recent.append(mad)
        return cut


# --------------------------------------------------------------------------------------------
# Smoothing
# --------------------------------------------------------------------------------------------
_F = np.array([[1.0, 1.0], [0.0, 1.0]])  # constant velocity: (position, velocity) one frame on


def _process_noise(q: float) -> np.ndarray:
    return q * np.array([[1 / 3, 1 / 2], [1 / 2, 1.0]])  # white acceleration over one frame


def _update(x: np.ndarray, p: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """The Kalman update of state ``x`` ``(2,)``, covariance ``p`` with a measurement ``z`` of the
    position (r = 1); NaN = no measurement, nothing changes."""
    if np.isnan(z):
        return x, p
    gain = p[:, 0] / (p[0, 0] + 1.0)
    return x + gain * (z - x[0]), p - np.outer(gain, p[0])


def _rts_1d(z: np.ndarray, q: float) -> np.ndarray:
    """Constant-velocity Kalman filter + RTS smoother of ``z`` ``(T,)`` (NaN = missing), r = 1."""
    t_len = len(z)
    qm = _process_noise(q)
    first = int(np.flatnonzero(~np.isnan(z))[0])
    x, p = np.array([z[first], 0.0]), np.diag([1.0, 1e4])
    xs_f, ps_f, xs_p, ps_p = (
        np.zeros((t_len, 2)),
        np.zeros((t_len, 2, 2)),
        np.zeros((t_len, 2)),
        np.zeros((t_len, 2, 2)),
    )
    for t in range(t_len):
        if t:
            x, p = _F @ x, _F @ p @ _F.T + qm
        xs_p[t], ps_p[t] = x, p
        x, p = _update(x, p, z[t])
        xs_f[t], ps_f[t] = x, p
    out = xs_f.copy()
    for t in range(t_len - 2, -1, -1):
        c = ps_f[t] @ _F.T @ np.linalg.inv(ps_p[t + 1])
        out[t] = xs_f[t] + c @ (out[t + 1] - xs_p[t + 1])
    return out[:, 0]


class CausalSmoother:
    """The forward (filter) pass of :func:`smooth_track`, one frame at a time: no look-ahead, for
    live video. ``update(row)`` takes this frame's ``(cx, cy, size)`` (or None / NaN when the face
    was not measured) and returns the smoothed ``(cx, cy, size)``, or None before the first
    measurement. Same noise model as :func:`smooth_track` (time scale ``smoothing`` frames for
    the centre, twice that for the size; 0 = the measurements as they are, the last one held
    while missing); working in units of the first measured face size. Without the backward pass
    the box trails a moving face by roughly ``smoothing / 2`` frames while it accelerates and
    catches up at constant speed."""

    def __init__(self, smoothing: float = SMOOTHING):
        self.smoothing = float(smoothing)
        self.state: list[tuple[np.ndarray, np.ndarray]] | None = None
        self.scale = 1.0
        self.last: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the track (a new face, or the old one lost)."""
        self.state, self.last = None, None

    def update(self, measured) -> np.ndarray | None:
        z = np.full(3, np.nan) if measured is None else np.asarray(measured, dtype=np.float64)
        if self.smoothing <= 0:
            self.last = self.last if np.isnan(z).any() else z
            return self.last
        first = self.state is None
        if first:
            if np.isnan(z).any():
                return None
            self.scale = max(float(z[2]), 1e-6)  # noise in face sizes, as smooth_track
            self.state = [(np.array([v / self.scale, 0.0]), np.diag([1.0, 1e4])) for v in z]
        out = np.empty(3)
        for d, s in enumerate((self.smoothing, self.smoothing, 2 * self.smoothing)):
            x, p = self.state[d]
            if not first:  # (as the filter of smooth_track: the first measurement is not predicted)
                x, p = _F @ x, _F @ p @ _F.T + _process_noise(1.0 / s**4)
            x, p = _update(x, p, z[d] / self.scale)
            self.state[d] = (x, p)
            out[d] = x[0] * self.scale
        self.last = out
        return out


def smooth_track(measured: np.ndarray, smoothing: float) -> np.ndarray:
    """Smooth a face track ``(T, 3)`` of ``(cx, cy, size)`` (rows of NaN = missing) -> ``(T, 3)``.

    Positions are smoothed with time scale ``smoothing`` frames and the size with twice that (see
    the module docstring). Missing rows between measurements are filled by the smoother (by
    linear interpolation with ``smoothing = 0``); rows before the first or after the last
    measurement hold its value. Needs at least one measured row.
    """
    m = np.asarray(measured, dtype=np.float64)
    have = np.flatnonzero(~np.isnan(m[:, 0]))
    if len(have) == 0:
        raise ValueError("smooth_track needs at least one measurement")
    out = np.empty_like(m)
    lo, hi = int(have[0]), int(have[-1]) + 1
    inner = m[lo:hi]
    if smoothing <= 0 or hi - lo < 3:
        t = np.arange(lo, hi)
        for d in range(3):
            out[lo:hi, d] = np.interp(t, have, m[have, d])
    else:
        scale = float(np.median(m[have, 2]))  # work in face sizes: the noise ratio is what matters
        for d, s in enumerate((smoothing, smoothing, 2 * smoothing)):
            out[lo:hi, d] = _rts_1d(inner[:, d] / scale, 1.0 / s**4) * scale
    out[:lo], out[hi:] = out[lo], out[hi - 1]
    return out


# --------------------------------------------------------------------------------------------
# Tracking
# --------------------------------------------------------------------------------------------
@dataclass
class Segment:
    """Frames from ``start`` (to the next segment's start) and the followed face's measurements."""

    start: int
    faces: dict[int, Face] = field(default_factory=dict)
    missing: int = 0  # missing frames in a row since the last measurement
    last: Face | None = None  # the latest measurement

    def add(self, measured: dict[int, Face]) -> None:
        """Record measurements ``{frame: face}``; the latest of them is the newest so far."""
        self.faces.update(measured)
        self.last = self.faces[max(measured)]
        self.missing = 0


@dataclass
class _Candidate:
    start: int
    faces: dict[int, Face]


class _Tracker:
    """The per-frame state machine of :func:`track_faces` (see the module docstring)."""

    def __init__(self, tracker, detect_every: int, max_lost: int):
        self.tracker = tracker
        self.detect_every = detect_every
        self.max_lost = max_lost
        self.segments: list[Segment] = [Segment(0)]
        self.candidate: _Candidate | None = None
        self.last_full = -(10**9)
        self.held: collections.deque = collections.deque(maxlen=max(0, detect_every - 1))

    @property
    def current(self) -> Segment:
        return self.segments[-1]

    def cut(self, index: int) -> None:
        self._close_candidate()
        self.segments.append(Segment(index))
        self.held.clear()
        self.last_full = -(10**9)

    def _close_candidate(self) -> None:
        cand = self.candidate
        self.candidate = None
        if cand is not None and len(cand.faces) >= CONFIRM and self.current.missing > 0:
            self.segments.append(Segment(cand.start))
            self.current.add(cand.faces)

    def _walk_back(self, face: Face) -> dict[int, Face]:
        """Measurements of ``face`` on the held frames before this detection, newest first."""
        found: dict[int, Face] = {}
        for j, frame in reversed(self.held):
            got = self.tracker.detect_near(frame, face)
            if got is None:
                break
            found[j], face = got, got
        return found

    def observe(self, index: int, frame: np.ndarray) -> None:
        seg = self.current
        if seg.last is not None:
            got = self.tracker.detect_near(frame, seg.last)
            if got is not None:
                self._measured(index, got)
                self.held.clear()
                return
            seg.missing += 1
        if index - self.last_full >= self.detect_every:
            self.last_full = index
            self._full(index, frame)
            self.held.clear()
        else:
            self.held.append((index, frame))

    def _measured(self, index: int, face: Face) -> None:
        seg = self.current
        if seg.faces and seg.missing > self.max_lost:  # lost and found again: a new segment
            self.segments.append(Segment(index))
            seg = self.current
        seg.add({index: face})
        self.candidate = None

    def _full(self, index: int, frame: np.ndarray) -> None:
        faces = self.tracker.detect(frame)
        seg = self.current
        if not faces:
            return
        if seg.last is not None:
            same = [f for f in faces if seg.last.near(f, 2 * GATE)]
            if same:
                self._measured(index, same[0])
                return
        face = faces[0]
        back = self._walk_back(face)
        if seg.last is None:  # the segment's first face (its frames before hold this box)
            seg.add({**back, index: face})
            return
        if self.candidate is not None and self.candidate.faces[max(self.candidate.faces)].near(face, 2 * GATE):
            self.candidate.faces[index] = face
        else:
            self.candidate = _Candidate(min(back, default=index), {**back, index: face})
        if seg.missing > self.max_lost:
            self._close_candidate()

    def finish(self) -> list[Segment]:
        self._close_candidate()
        return self.segments


def _merge_empty(segments: list[Segment]) -> list[Segment]:
    """Segments with no face join the segment before them (the first face segment starts at 0)."""
    kept = [s for s in segments if s.faces]
    if kept:
        kept[0].start = 0
    return kept


def track_faces(
    frames: Iterable[np.ndarray],
    tracker,
    *,
    detect_every: int = DETECT_EVERY,
    max_lost: int = MAX_LOST,
    detect_cuts: bool = True,
) -> tuple[list[Segment], tuple[int, int] | None, int]:
    """Read ``frames`` once; returns ``(segments, (H, W), number of frames)``.

    Each segment runs from its ``start`` to the next one's (the last to the end) and holds the
    followed face's measurements; an empty list means no face anywhere. ``detect_cuts=False``
    turns shot-cut detection off.
    """
    state = _Tracker(tracker, detect_every, max_lost)
    cuts = ShotCutDetector() if detect_cuts else None
    hw: tuple[int, int] | None = None
    n = 0
    for index, frame in enumerate(frames):
        n = index + 1
        shape = (int(frame.shape[0]), int(frame.shape[1]))
        if hw is None:
            hw = shape
        elif shape != hw:
            raise FommError(
                f"frame {index} is {shape[1]}x{shape[0]} but the video started at {hw[1]}x{hw[0]}; "
                "re-encode the video at one size"
            )
        if cuts is not None and cuts.is_cut(frame):
            state.cut(index)
        state.observe(index, frame)
    return _merge_empty(state.finish()), hw, n


def segments_from_detections(detections: Sequence, *, max_lost: int = MAX_LOST) -> list[Segment]:
    """Segments from per-frame detections (``None``/``[]``, a box or a list of boxes, main first),
    as :func:`track_faces` would make them with a detector that returned exactly these."""
    from fomm.faces.detect import CallableTracker

    table = [_boxes(d) for d in detections]
    state = _Tracker(CallableTracker(lambda index: table[index]), 1, max_lost)
    for index in range(len(table)):
        state.observe(index, index)  # the "frame" handed to the detector is its index
    return _merge_empty(state.finish())


def _boxes(entry) -> list:
    if entry is None:
        return []
    arr = np.asarray(entry, dtype=np.float64)
    if arr.size == 0:
        return []
    return [tuple(row) for row in (arr[None] if arr.ndim == 1 else arr)]
