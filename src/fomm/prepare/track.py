"""Following the subject through the shots of a video: one :class:`Track` per continuous track.

Three kinds of subject (``--category`` / ``--crop``):

* **face** (:func:`face_tracks`): the face trackers of :mod:`fomm.faces` (dlib's 68 landmarks with
  ``fomm[faces]``, else OpenCV's Haar cascade) follow the face on every ``stride``-th frame (about
  :data:`TRACK_FPS` measurements a second: a face moves little in 1/15 s, and tracking is most of
  the time); a track ends at a shot cut or where the face is lost for more than ``max_lost``
  frames. Its measurements are smoothed (:func:`fomm.faces.track.smooth_track`, which also fills
  the frames between them) and each frame's subject box is the square of one face size centred
  on the head (the tracker's ``shift_up`` above the face centre). :func:`fit_to_shots` then cuts
  the tracks at the shot cuts found on every frame and lets them reach the frames next to their
  first and last measurement.
* **object** (:class:`MotionTracker`): any other category (bodies, animals, machines) is the
  region that moves. Each frame is compared with the frame two before it (grey, blurred, at
  :data:`MOTION_SIDE` px); pixels that changed by more than :data:`MOTION_LEVEL` grey levels,
  cleaned by a morphological opening, are the moving region and its box spans their 2nd to 98th
  percentiles (a few stray pixels do not stretch it). Runs of frames with motion in one shot, with
  gaps of up to ``max_lost`` frames, are the tracks (one that starts on a shot's third frame starts
  with the shot: the first two have nothing to compare with); each box coordinate is smoothed by a
  running median over :data:`SMOOTH_FRAMES` frames.
* **full** (:func:`full_tracks`): every shot whole, the centred square of the frame.

Boxes are ``(x0, y0, x1, y1)`` floats in the pixels of the frames the tracker saw; the caller
scales them to the source.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from fomm.faces.track import DETECT_EVERY, MAX_LOST, SMOOTHING, smooth_track, track_faces

TRACK_FPS = 15.0  # face measurements per second of video (at most one per frame)
MOTION_SIDE = 160  # object motion is measured at this shorter side (px)
MOTION_LEVEL = 12  # a pixel moved when it changed by more than this (grey levels, blurred)
MOTION_MIN = 0.002  # a frame has motion when at least this fraction of its pixels moved
SMOOTH_FRAMES = 7  # running median of the object's box, frames


@dataclass
class Track:
    """Frames ``start`` .. ``end - 1`` of one subject; ``boxes[i]`` is frame ``start + i``'s box."""

    start: int
    end: int
    boxes: np.ndarray  # (end - start, 4) float64

    def scaled(self, factor: float) -> Track:
        return Track(self.start, self.end, self.boxes * factor)


def face_tracks(frames: Iterable[np.ndarray], tracker, *, stride: int = 1, max_lost: int = MAX_LOST) -> list[Track]:
    """The face tracks of ``frames`` (read once, every one of them), measured on every
    ``stride``-th frame; the frames between measurements get the smoothed track's values."""
    sampled = (frame for index, frame in enumerate(frames) if index % stride == 0)
    lost = -(-max_lost // stride)  # in sampled frames
    segments, _hw, _n = track_faces(sampled, tracker, detect_every=DETECT_EVERY, max_lost=lost)
    shift_up = float(tracker.shift_up)
    tracks = []
    for seg in segments:
        first, last = min(seg.faces) * stride, max(seg.faces) * stride
        measured = np.full((last + 1 - first, 3), np.nan)
        for j, face in seg.faces.items():
            measured[j * stride - first] = (face.cx, face.cy, face.size)
        cx, cy, size = smooth_track(measured, SMOOTHING).T
        cy = cy - shift_up * size
        half = size / 2
        boxes = np.stack([cx - half, cy - half, cx + half, cy + half], axis=1)
        tracks.append(Track(first, last + 1, boxes))
    return tracks


def fit_to_shots(tracks: list[Track], shots: list[tuple[int, int]], reach: int) -> list[Track]:
    """Tracks split where a shot cut falls inside them, and stretched by up to ``reach`` frames at
    each end within their shot (the frames between sampled ones at a track's ends), holding the
    end boxes."""
    out = []
    for track in tracks:
        for a, b in shots:
            lo, hi = max(a, track.start), min(b, track.end)
            if lo >= hi:
                continue
            boxes = track.boxes[lo - track.start : hi - track.start]
            start, end = max(a, lo - reach), min(b, hi + reach)
            boxes = np.concatenate([np.repeat(boxes[:1], lo - start, 0), boxes, np.repeat(boxes[-1:], end - hi, 0)])
            out.append(Track(start, end, boxes))
    return out


class MotionTracker:
    """The box of the moving region of each frame (see the module docstring)."""

    def __init__(self):
        self.boxes: list[np.ndarray | None] = []
        self._history: list[np.ndarray] = []
        self._scale = 1.0

    def reset(self) -> None:
        """Forget the previous frames (call at a shot cut, before :meth:`observe`)."""
        self._history.clear()

    def observe(self, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        self._scale = min(1.0, MOTION_SIDE / min(h, w))
        size = (max(1, round(w * self._scale)), max(1, round(h * self._scale)))
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        grey = cv2.GaussianBlur(cv2.resize(grey, size, interpolation=cv2.INTER_AREA), (5, 5), 0)
        box = None
        if len(self._history) >= 2:
            box = self._moving_box(cv2.absdiff(grey, self._history[-2]))
        self._history = [*self._history[-1:], grey]
        self.boxes.append(box)

    def _moving_box(self, diff: np.ndarray) -> np.ndarray | None:
        mask = (diff > MOTION_LEVEL).astype(np.uint8)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        ys, xs = np.nonzero(mask)
        if len(xs) < MOTION_MIN * mask.size:
            return None
        x0, x1 = np.percentile(xs, (2, 98))
        y0, y1 = np.percentile(ys, (2, 98))
        return np.array([x0, y0, x1 + 1, y1 + 1]) / self._scale

    def tracks(self, shots: list[tuple[int, int]], *, max_lost: int = MAX_LOST) -> list[Track]:
        """Runs of frames with motion in each shot (gaps up to ``max_lost`` bridged), smoothed."""
        out = []
        for a, b in shots:
            have = [t for t in range(a, b) if self.boxes[t] is not None]
            runs: list[list[int]] = []
            for t in have:
                if runs and t - runs[-1][-1] <= max_lost + 1:
                    runs[-1].append(t)
                else:
                    runs.append([t])
            out.extend(self._track(run, a) for run in runs)
        return out

    def _track(self, run: list[int], shot_start: int) -> Track:
        # the first two frames of a shot have no frame to compare with: a run that starts there
        # starts with the shot (holding its first box)
        first = shot_start if run[0] - shot_start <= 2 else run[0]
        last = run[-1]
        t = np.arange(first, last + 1)
        known = np.stack([self.boxes[i] for i in run])
        boxes = np.stack([np.interp(t, run, known[:, d]) for d in range(4)], axis=1)
        half = SMOOTH_FRAMES // 2
        padded = np.pad(boxes, ((half, half), (0, 0)), mode="edge")
        windows = np.lib.stride_tricks.sliding_window_view(padded, SMOOTH_FRAMES, axis=0)
        return Track(first, last + 1, np.median(windows, axis=-1))


def stride_for(fps: float) -> int:
    """Measure every ``stride``-th frame: about :data:`TRACK_FPS` a second."""
    return max(1, int(round(fps / TRACK_FPS)))


def full_tracks(shots: list[tuple[int, int]], hw: tuple[int, int]) -> list[Track]:
    """One track per shot with the centred square of an ``(H, W)`` frame."""
    h, w = hw
    side = min(h, w)
    x0, y0 = (w - side) / 2, (h - side) / 2
    box = np.array([x0, y0, x0 + side, y0 + side], dtype=np.float64)
    return [Track(a, b, np.tile(box, (b - a, 1))) for a, b in shots]
