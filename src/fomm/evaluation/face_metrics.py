"""AKD and AED on real faces with the models of ``pip install 'fomm[faces]'`` (dlib, offline).

:class:`FaceMetricFns` gives the ``keypoint_fn`` / ``embedding_fn`` hooks of
:func:`fomm.evaluation.evaluate.evaluate`: per frame, the 68 iBUG landmarks in pixels of the frame
(AKD) and the 128-d identity embedding of dlib's face recognition network (AED; two photos of one
person are usually closer than 0.6). A frame in which no face is found gives NaN rows, which the
metrics skip and count as misses. Small frames (the 64 px bundled models) are enlarged to
:data:`MIN_SIDE` pixels for the detector and the landmarks are mapped back.
"""

from __future__ import annotations

import hashlib

import numpy as np

from fomm.data.image_ops import resize_frame, to_rgb_uint8
from fomm.faces.landmarks import NUM_LANDMARKS, FaceModels, require_faces

MIN_SIDE = 256  # frames are enlarged to at least this before detection
EMBEDDING_SIZE = 128


class FaceMetricFns:
    """``keypoints(frames) -> (T, 68, 2)`` and ``embeddings(frames) -> (T, 128)`` for float frames
    ``(T, H, W, 3)`` on [0, 1] (or uint8); NaN rows where no face is found. Each frame is detected
    once (boxes are cached by content), so both hooks on one clip cost one detection per frame."""

    __name__ = "dlib 68-point landmarks / dlib face embedding"

    def __init__(self, models: FaceModels | None = None, min_side: int = MIN_SIDE):
        require_faces("AKD and AED on faces")
        self.models = models or FaceModels.shared()
        self.min_side = int(min_side)
        self._boxes: dict[bytes, tuple | None] = {}

    def _prepared(self, frame: np.ndarray) -> tuple[np.ndarray, float, tuple | None]:
        """``(uint8 frame enlarged for the detector, scale, main face box or None)``."""
        image = to_rgb_uint8(frame)
        h, w = image.shape[:2]
        scale = max(1.0, self.min_side / min(h, w))
        if scale > 1.0:
            image = resize_frame(image, (round(h * scale), round(w * scale)))
        key = hashlib.sha1(image.tobytes()).digest()
        if key not in self._boxes:
            if len(self._boxes) > 4096:
                self._boxes.clear()
            faces = self.models.detect_scored(image)
            self._boxes[key] = faces[0][:4] if faces else None
        return image, image.shape[0] / h, self._boxes[key]

    def keypoints(self, frames) -> np.ndarray:
        """68 landmarks per frame, ``(T, 68, 2)`` ``(x, y)`` pixels of the given frames."""
        out = np.full((len(frames), NUM_LANDMARKS, 2), np.nan)
        for t, frame in enumerate(frames):
            image, scale, box = self._prepared(frame)
            if box is not None:
                points = self.models.landmarks(image, box)
                out[t] = (points + 0.5) / scale - 0.5  # pixel centres of the enlarged copy -> the frame's
        return out

    def embeddings(self, frames) -> np.ndarray:
        """The identity embedding per frame, ``(T, 128)``."""
        out = np.full((len(frames), EMBEDDING_SIZE), np.nan)
        for t, frame in enumerate(frames):
            image, _, box = self._prepared(frame)
            if box is not None:
                out[t] = self.models.embedding(image, box)
        return out

    def finds_face(self, frame) -> bool:
        """True when a face is found in ``frame``."""
        return self._prepared(frame)[2] is not None
