"""Face detectors for cropping: OpenCV's Haar cascade (core install) and dlib landmarks (``fomm[faces]``).

Both are wrapped as a *tracker* with the same two methods, used by :mod:`fomm.faces.track`:

* ``detect(frame) -> list[Face]``: every face in the whole frame, main face first;
* ``detect_near(frame, face) -> Face | None``: the face near a known one, found again in a window
  about 2.4 face sizes wide around it, rescaled so that the face is about 110 px for dlib and
  64 px for the Haar cascade (cheap: a few milliseconds, so it runs on every frame of a video).

A :class:`Face` is the measurement the crop follows: a centre and a size in pixels. For the Haar
tracker it is the detector's box (centre, larger side); for the landmark tracker it is the extent
of the 68 dlib landmarks (brows to chin, jaw to jaw), which moves with the face far more steadily
than a detector box. Each tracker has its own ``shift_up``: how many face sizes the crop centre
sits above the face centre, chosen so that both frame a head alike (checked on a real photo).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from fomm.data.image_ops import resize_frame, to_rgb_uint8
from fomm.errors import FommError

CASCADES = ("haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt2.xml")
DETECT_SIZE = 320  # shorter side of the image the Haar detector sees
MIN_FACE = 0.08  # smallest Haar face, as a fraction of that shorter side
HAAR_SHIFT_UP = 0.1  # Haar boxes: crop centre this many face sizes above the box centre
LANDMARK_SHIFT_UP = 0.25  # landmark extent (brows to chin): the head's centre is higher
WINDOW = 2.4  # local re-detection window side, in face sizes
WINDOW_FACE = 110  # the face's size in pixels inside the rescaled window (dlib HOG: >= 80)
HAAR_WINDOW_FACE = 64  # the same for the Haar cascade (24 px base window; fewer pixels, faster)
TRACKERS = ("auto", "landmarks", "haar")

_local = threading.local()


@dataclass(frozen=True)
class Face:
    """One face measurement: centre ``(cx, cy)`` and ``size`` in pixels, detector ``score``."""

    cx: float
    cy: float
    size: float
    score: float = 1.0

    @property
    def box(self) -> tuple[float, float, float, float]:
        """The square ``(x0, y0, x1, y1)`` of side ``size`` centred on the face."""
        h = self.size / 2
        return (self.cx - h, self.cy - h, self.cx + h, self.cy + h)

    @classmethod
    def from_box(cls, box: Sequence[float], score: float = 1.0) -> Face:
        x0, y0, x1, y1 = (float(v) for v in box[:4])
        return cls((x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0), float(score))

    def near(self, other: Face, gate: float = 0.5) -> bool:
        """Whether ``other`` is the same face moved a little: centres within ``gate`` face sizes
        and sizes within a factor 1.5."""
        dist = np.hypot(other.cx - self.cx, other.cy - self.cy)
        return dist <= gate * self.size and 1 / 1.5 <= other.size / max(self.size, 1e-9) <= 1.5


# --------------------------------------------------------------------------------------------
# OpenCV Haar cascade
# --------------------------------------------------------------------------------------------
def _classifier(name: str) -> cv2.CascadeClassifier:
    """The cascade ``name``, loaded once per thread (OpenCV classifiers are not thread-safe)."""
    cache = getattr(_local, "cascades", None)
    if cache is None:
        cache = _local.cascades = {}
    clf = cache.get(name)
    if clf is None:
        clf = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, name))
        if clf.empty():
            raise FommError(
                f"OpenCV's face detector {name} could not be loaded; "
                "reinstall opencv-python-headless (pip install --force-reinstall opencv-python-headless)"
            )
        cache[name] = clf
    return clf


def gray_uint8(image) -> np.ndarray:
    """A uint8 grey ``(H, W)`` copy of an RGB or grey image (conversions by ``image_ops``)."""
    a = np.asarray(image)
    if a.ndim == 2 and a.dtype == np.uint8:
        return a
    if a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 1):
        return to_rgb_uint8(a.reshape(a.shape[:2]))[..., 0]
    return cv2.cvtColor(to_rgb_uint8(a), cv2.COLOR_RGB2GRAY)


def detect_faces(
    frame: np.ndarray,
    *,
    detect_size: int = DETECT_SIZE,
    min_face: float = MIN_FACE,
    max_face: float | None = None,
    min_neighbors: int = 5,
    cascades: Sequence[str] = CASCADES,
) -> list[tuple[int, int, int, int, float]]:
    """Frontal faces (Haar cascade) in an RGB or grey frame, as ``(x0, y0, x1, y1, score)``.

    The detector sees a grey copy whose shorter side is at most ``detect_size``, ignoring faces
    smaller than ``min_face`` of that side (and larger than ``max_face`` of it, when given). ``score`` is the cascade's confidence; faces are
    ordered by area times score (the main face first). The cascades are tried in order and the
    first that finds anything wins. Float images are taken to be in [0, 1].
    """
    gray = gray_uint8(frame)
    h, w = gray.shape
    if h < 2 or w < 2:
        return []
    scale = min(1.0, detect_size / min(h, w))
    small = gray
    if scale < 1.0:
        small = resize_frame(gray, (max(1, round(h * scale)), max(1, round(w * scale))))
        scale = small.shape[0] / h
    small = np.ascontiguousarray(small)
    min_side = max(20, int(round(min_face * min(small.shape))))
    max_side = int(round(max_face * min(small.shape))) if max_face else 0
    rects: Sequence = ()
    weights: Sequence = ()
    for name in cascades:
        rects, _levels, weights = _classifier(name).detectMultiScale3(
            small,
            scaleFactor=1.1,
            minNeighbors=min_neighbors,
            minSize=(min_side, min_side),
            maxSize=(max_side, max_side),
            outputRejectLevels=True,
        )
        if len(rects):
            break
    faces = []
    for (x, y, bw, bh), score in zip(np.asarray(rects).reshape(-1, 4), np.asarray(weights, float).reshape(-1)):
        x0, y0 = int(np.clip(round(x / scale), 0, w)), int(np.clip(round(y / scale), 0, h))
        x1, y1 = int(np.clip(round((x + bw) / scale), 0, w)), int(np.clip(round((y + bh) / scale), 0, h))
        if x1 > x0 and y1 > y0:
            faces.append((x0, y0, x1, y1, float(score)))
    faces.sort(key=_prominence, reverse=True)
    return faces


def _prominence(face: Sequence[float]) -> float:
    """Area times confidence: the main face is large and sure (weak false hits are often large)."""
    score = face[4] if len(face) > 4 else 1.0
    return (face[2] - face[0]) * (face[3] - face[1]) * max(score, 1e-3)


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1, ...)`` boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _window(frame: np.ndarray, face: Face, face_px: float = WINDOW_FACE) -> tuple[np.ndarray, float, float, float]:
    """The part of ``frame`` around ``face`` (``WINDOW`` face sizes), rescaled so that the face is
    ``face_px`` px. Returns ``(window, x offset, y offset, scale)``: a window pixel ``(u, v)`` is
    frame pixel ``(x offset + u / scale, y offset + v / scale)``."""
    h, w = frame.shape[:2]
    half = WINDOW * face.size / 2
    x0, y0 = int(max(0, np.floor(face.cx - half))), int(max(0, np.floor(face.cy - half)))
    x1, y1 = int(min(w, np.ceil(face.cx + half))), int(min(h, np.ceil(face.cy + half)))
    part = frame[y0:y1, x0:x1]
    scale = face_px / max(face.size, 1.0)
    size = (max(1, round(part.shape[0] * scale)), max(1, round(part.shape[1] * scale)))
    if part.size == 0:
        return part, float(x0), float(y0), scale
    return resize_frame(part, size), float(x0), float(y0), size[0] / part.shape[0]


def _nearest(face: Face, found: list[Face], gate: float) -> Face | None:
    close = [f for f in found if face.near(f, gate)]
    return min(close, key=lambda f: np.hypot(f.cx - face.cx, f.cy - face.cy)) if close else None


class HaarTracker:
    """Faces from OpenCV's Haar cascade (:func:`detect_faces`); ``Face`` = the detector box."""

    key = "haar"
    name = "OpenCV Haar cascade"
    shift_up = HAAR_SHIFT_UP

    def detect(self, frame: np.ndarray) -> list[Face]:
        return [Face.from_box(f, f[4]) for f in detect_faces(frame)]

    def detect_near(self, frame: np.ndarray, face: Face, gate: float = 0.5) -> Face | None:
        window, ox, oy, s = _window(gray_uint8(frame), face, HAAR_WINDOW_FACE)
        if min(window.shape[:2]) < 30:
            return None
        # the face is about WINDOW_FACE px here: look only for sizes near it
        found = detect_faces(window, detect_size=10**6, min_face=0.25, max_face=0.75)
        faces = [Face(ox + f.cx / s, oy + f.cy / s, f.size / s, f.score) for f in map(Face.from_box, found)]
        return _nearest(face, faces, gate)


class LandmarkTracker:
    """Faces from dlib (``fomm[faces]``): HOG detection, then ``Face`` = the 68 landmarks' extent."""

    key = "landmarks"
    name = "dlib landmarks"
    shift_up = LANDMARK_SHIFT_UP

    def __init__(self):
        from fomm.faces.landmarks import FaceModels

        self.models = FaceModels.shared()
        self.last_landmarks: np.ndarray | None = None

    def _face(self, frame: np.ndarray, box: Sequence[float], score: float) -> Face:
        from fomm.faces.landmarks import landmark_extent

        points = self.models.landmarks(frame, box)
        self.last_landmarks = points
        return Face.from_box(landmark_extent(points), score)

    def detect(self, frame: np.ndarray) -> list[Face]:
        frame = to_rgb_uint8(frame)
        return [self._face(frame, f[:4], f[4]) for f in self.models.detect_scored(frame)]

    def detect_near(self, frame: np.ndarray, face: Face, gate: float = 0.5) -> Face | None:
        frame = to_rgb_uint8(frame)
        window, ox, oy, s = _window(frame, face)
        if min(window.shape[:2]) < 60:
            return None
        found = self.models.detect_scored(window, upsample=0, threshold=-0.3)
        boxes = [(ox + x0 / s, oy + y0 / s, ox + x1 / s, oy + y1 / s, sc) for x0, y0, x1, y1, sc in found]
        # the detector box is about the landmark extent: pick by the box, then measure landmarks
        best = _nearest(face, [Face.from_box(b, b[4]) for b in boxes], gate)
        if best is None:
            return None
        box = next(b for b in boxes if Face.from_box(b, b[4]) == best)
        got = self._face(frame, box[:4], box[4])
        return got if face.near(got, gate) else None


class AutoTracker:
    """dlib landmarks, falling back to the Haar cascade for content dlib does not see as a face
    (drawings, cartoons): once the Haar cascade has found a face on ``confirm`` whole-frame
    detections where dlib found none, and dlib has found none so far, the Haar cascade is used
    from then on. ``name`` and ``shift_up`` are the chosen tracker's (landmarks until then)."""

    key = "auto"

    def __init__(self, confirm: int = 2):
        self.landmarks = LandmarkTracker()
        self.haar = HaarTracker()
        self.active: LandmarkTracker | HaarTracker | None = None
        self.confirm = int(confirm)
        self.haar_hits = 0

    @property
    def chosen(self):
        return self.active or self.landmarks

    @property
    def name(self) -> str:
        return self.chosen.name

    @property
    def shift_up(self) -> float:
        return self.chosen.shift_up

    def detect(self, frame: np.ndarray) -> list[Face]:
        if self.active is not None:
            return self.active.detect(frame)
        faces = self.landmarks.detect(frame)
        if faces:
            self.active = self.landmarks
            return faces
        faces = self.haar.detect(frame)
        self.haar_hits += bool(faces)
        if self.haar_hits >= self.confirm:
            self.active = self.haar
            return faces
        return []

    def detect_near(self, frame: np.ndarray, face: Face, gate: float = 0.5) -> Face | None:
        return self.chosen.detect_near(frame, face, gate)


class CallableTracker:
    """A tracker from a function ``frame -> list of (x0, y0, x1, y1[, score])`` boxes (tests,
    other detectors); ``detect_near`` runs it on the whole frame and keeps the nearest face."""

    key = "custom"
    shift_up = HAAR_SHIFT_UP

    def __init__(self, detector: Callable[[np.ndarray], list], name: str = "custom detector"):
        self.detector = detector
        self.name = name

    def detect(self, frame: np.ndarray) -> list[Face]:
        return [Face.from_box(b, b[4] if len(b) > 4 else 1.0) for b in self.detector(frame) or []]

    def detect_near(self, frame: np.ndarray, face: Face, gate: float = 0.5) -> Face | None:
        return _nearest(face, self.detect(frame), gate)


def check_tracker(kind):
    """FommError unless ``kind`` is one of :data:`TRACKERS` (tracker objects pass)."""
    if isinstance(kind, str) and kind not in TRACKERS:
        raise FommError(f"unknown tracker {kind!r}; use one of {', '.join(TRACKERS)} (e.g. --tracker auto)")
    return kind


def resolve_tracker(kind: str = "auto") -> str:
    """``"landmarks"`` or ``"haar"``: ``auto`` is landmarks when ``fomm[faces]`` is installed
    (which may still fall back to the Haar cascade, see :class:`AutoTracker`)."""
    from fomm.faces.landmarks import faces_available, require_faces

    check_tracker(kind)
    if kind == "landmarks":
        require_faces("--tracker landmarks")
    if kind == "auto":
        return "landmarks" if faces_available() else "haar"
    return kind


def make_tracker(kind="auto", detector: Callable | None = None, *, confirm: int = 2):
    """The tracker for ``kind``: ``landmarks``, ``haar``, or ``auto`` (an :class:`AutoTracker`
    with ``fomm[faces]``, else the Haar cascade); one around ``detector`` when given. A tracker
    object passed as ``kind`` is returned as it is (to read its ``name`` afterwards)."""
    if detector is not None:
        return CallableTracker(detector)
    if not isinstance(kind, str):
        return kind
    resolved = resolve_tracker(kind)
    if resolved == "haar":
        return HaarTracker()
    return AutoTracker(confirm) if kind == "auto" else LandmarkTracker()
