"""Shot cuts and motion, measured on the small analysis frames in the same pass as the tracking.

* **Cuts** come from :class:`fomm.faces.track.ShotCutDetector` (colour histogram and grey
  thumbnail both jump), the same test the face tracker applies, so face tracks and shots agree.
* **Motion**: each frame is shrunk to a grid of grey cells (:data:`GRID` cells along its shorter
  side, area averages) and the absolute change of every cell since the previous frame is kept,
  in 1/8 grey levels, as uint8 (up to 31.9 levels: enough to tell motion from none; a 720p hour
  of video at 30 fps: about 60 MB). A clip's motion is
  measured where it moves most: per frame, the mean change of the :data:`TOP` share of the cells
  under its box that changed most (a talking head moves in a few cells: mouth, eyes), and over
  the frames its 75th percentile (a clip that moves a quarter of the time moves). Measured on a
  720p face encoded at crf 20: still with sensor noise (sigma 2 grey levels) 0.7; only the mouth
  and eyes moving 10 (the mean over all the box's cells would be 0.2 for both).
  The first frame of a shot has no change (its "previous frame" is another shot).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import cv2
import numpy as np

from fomm.faces.track import ShotCutDetector

GRID = 18  # motion cells along the shorter side of the frame
LEVEL = 8.0  # stored change = grey levels x LEVEL (uint8)
STILL = 2.0  # a clip whose motion (see the module docstring) is below this many grey levels is still
TOP = 0.05  # motion: the share of the box's cells that changed most


class ShotAnalysis:
    """Cuts and the motion grid of a stream of frames; wrap the frames with :meth:`watch`."""

    def __init__(self):
        self.cuts: list[int] = []  # frames that start a new shot (0 excluded)
        self.changes: list[np.ndarray] = []  # per frame (gh, gw) uint8
        self.grid_hw: tuple[int, int] | None = None
        self._detector = ShotCutDetector()
        self._previous: np.ndarray | None = None

    def watch(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Yield ``frames`` unchanged, measuring each on the way."""
        for index, frame in enumerate(frames):
            self.observe(index, frame)
            yield frame

    def observe(self, index: int, frame: np.ndarray) -> None:
        if self.grid_hw is None:
            h, w = frame.shape[:2]
            k = GRID / min(h, w)
            self.grid_hw = (max(1, round(h * k)), max(1, round(w * k)))
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        cells = cv2.resize(grey, self.grid_hw[::-1], interpolation=cv2.INTER_AREA).astype(np.float32)
        cut = self._detector.is_cut(frame) and index > 0  # (never on the first frame)
        if cut:
            self.cuts.append(index)
        if self._previous is None or cut:
            change = np.zeros(self.grid_hw, np.uint8)
        else:
            change = np.clip(np.abs(cells - self._previous) * LEVEL, 0, 255).astype(np.uint8)
        self._previous = cells
        self.changes.append(change)

    def shots(self, num_frames: int) -> list[tuple[int, int]]:
        """``[(start, end)]`` of every shot (end exclusive)."""
        edges = [0, *self.cuts, num_frames]
        return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]

    def motion(self, start: int, end: int, box: Sequence[float], frame_hw: Sequence[int]) -> float:
        """The motion (grey levels, see the module docstring) of frames ``start + 1 .. end - 1``
        under ``box`` ``(x0, y0, x1, y1)`` in a frame of ``frame_hw`` pixels."""
        if end - start < 2 or self.grid_hw is None:
            return 0.0
        gh, gw = self.grid_hw
        sy, sx = gh / frame_hw[0], gw / frame_hw[1]
        x0, y0 = int(np.floor(box[0] * sx)), int(np.floor(box[1] * sy))
        x1, y1 = int(np.ceil(box[2] * sx)), int(np.ceil(box[3] * sy))
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(gw, max(x1, x0 + 1)), min(gh, max(y1, y0 + 1))
        window = np.stack(self.changes[start + 1 : end])[:, y0:y1, x0:x1].reshape(end - start - 1, -1)
        k = max(1, int(round(TOP * window.shape[1])))
        most = -np.sort(-window.astype(np.float32), axis=1)[:, :k].mean(axis=1)
        return float(np.percentile(most, 75) / LEVEL)
