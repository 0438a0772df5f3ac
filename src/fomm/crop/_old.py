"""Automatic face crops for images and videos, offline, with OpenCV's bundled Haar detector.

The model works on square frames in which the head fills most of the picture (the VoxCeleb
crops). The original project leaves the cropping to the user; here it is done for them:

* :func:`detect_faces` finds frontal faces with ``haarcascade_frontalface_default.xml`` (the
  ``alt2`` cascade is tried when the default one finds nothing). Detection runs on a grey copy
  whose shorter side is at most 320 pixels, ignoring faces smaller than 8% of that side; the boxes
  are mapped back to full resolution. The main face is the one with the largest area x confidence.
  Profile faces are not detected, and like any Haar detector it can fire on busy textures where
  there is no face (in a video a lone stray hit is ignored, see below).
* :func:`square_box` turns a face box into the crop: a square whose side is ``1 + margin`` times
  the face size (``margin=0.8``: 1.8x, so the whole head and the top of the shoulders are in),
  centred on the face and moved up by ``shift_up=0.1`` face sizes (the hair takes more room than
  the chin), then kept inside the frame: moved if it sticks out, shrunk if it is larger than the
  frame's shorter side.
* :func:`plan_video_crop` follows the main face through a video (detection every
  ``detect_every=5`` frames, faces associated by IoU) and splits the video into stable segments:
  a detection whose IoU with the current segment's running (median) face box is below
  ``iou_threshold=0.5`` opens a candidate segment, which becomes a new segment once ``confirm=2``
  detections in a row agree with it (a single stray detection is ignored). The cut is placed on
  the exact frame by re-running the detector on the few frames since the previous detection.
  Frames where no face is found continue the current segment. Each segment gets one square box:
  :func:`square_box` of the median face box, enlarged if needed to contain every (3-tap median
  smoothed) face box of the segment.
* :class:`CropPlan` applies a plan frame by frame, so a video is read twice (plan, then crop) and
  never held in memory. :func:`crop_video_file` and :func:`crop_image_file` do the whole job on
  files; where no face is found the input is written unchanged and the caller is told (an empty
  segment list, a ``None`` box). ``fomm crop`` is the command line.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import contextlib
import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fomm.atomic import atomic_path
from fomm.errors import FommError

Box = tuple  # (x0, y0, x1, y1): pixel columns x0..x1-1 and rows y0..y1-1

CASCADES = ("haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt2.xml")
DETECT_SIZE = 320  # shorter side of the image the detector sees
MIN_FACE = 0.08  # smallest face, as a fraction of that shorter side
MARGIN = 0.8  # crop side = (1 + MARGIN) * face size
SHIFT_UP = 0.1  # crop centre moved up by this many face sizes
DETECT_EVERY = 5  # frames between detections in a video
IOU_THRESHOLD = 0.5  # below this IoU with the segment's face box, the face has moved
CONFIRM = 2  # agreeing detections needed before a new segment starts
ASSOCIATE_IOU = 0.3  # a face overlapping the tracked one this much is the same face
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}

_local = threading.local()


# --------------------------------------------------------------------------------------------
# Detection and boxes
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


def _as_uint8(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise FommError(f"expected an image of shape (H, W, 3), got shape {image.shape}; pass one RGB frame")
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.dtype != np.uint8:
        scale = 255.0 if np.issubdtype(image.dtype, np.floating) and image.max(initial=0) <= 1.0 else 1.0
        image = np.clip(np.rint(image.astype(np.float32) * scale), 0, 255).astype(np.uint8)
    return image


def detect_faces(
    frame: np.ndarray,
    *,
    detect_size: int = DETECT_SIZE,
    min_face: float = MIN_FACE,
    min_neighbors: int = 5,
    cascades: Sequence[str] = CASCADES,
) -> list[tuple[int, int, int, int, float]]:
    """Frontal faces in an RGB (or grey) frame, as ``(x0, y0, x1, y1, score)``, main face first.

    ``score`` is the cascade's confidence (higher is surer; not comparable across cascades); faces
    are ordered by area times score, so a weak false hit does not win by size alone. The
    cascades are tried in order and the first that finds anything wins. Float images are taken to
    be in [0, 1].
    """
    image = _as_uint8(frame)
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    h, w = gray.shape
    if h < 2 or w < 2:
        return []
    scale = min(1.0, detect_size / min(h, w))
    small = gray
    if scale < 1.0:
        small = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        scale = small.shape[0] / h
    small = np.ascontiguousarray(small)
    min_side = max(20, int(round(min_face * min(small.shape))))
    rects: Sequence = ()
    weights: Sequence = ()
    for name in cascades:
        rects, _levels, weights = _classifier(name).detectMultiScale3(
            small,
            scaleFactor=1.1,
            minNeighbors=min_neighbors,
            minSize=(min_side, min_side),
            outputRejectLevels=True,
        )
        if len(rects):
            break
    faces = []
    for (x, y, bw, bh), score in zip(np.asarray(rects).reshape(-1, 4), np.asarray(weights, float).reshape(-1)):
        x0 = int(np.clip(round(x / scale), 0, w))
        y0 = int(np.clip(round(y / scale), 0, h))
        x1 = int(np.clip(round((x + bw) / scale), 0, w))
        y1 = int(np.clip(round((y + bh) / scale), 0, h))
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


def _square_at(cx: float, cy: float, side: float, frame_hw: Sequence[int]) -> Box:
    h, w = int(frame_hw[0]), int(frame_hw[1])
    side = max(1, min(int(round(side)), h, w))
    x0 = min(max(int(round(cx - side / 2)), 0), w - side)
    y0 = min(max(int(round(cy - side / 2)), 0), h - side)
    return (x0, y0, x0 + side, y0 + side)


def square_box(
    face_box: Sequence[float], frame_hw: Sequence[int], margin: float = MARGIN, shift_up: float = SHIFT_UP
) -> Box:
    """The square crop around ``face_box``: side ``(1 + margin) * face size``, centre moved up by
    ``shift_up`` face sizes, moved inside the ``(H, W)`` frame and shrunk if larger than it."""
    x0, y0, x1, y1 = (float(v) for v in face_box[:4])
    face = max(x1 - x0, y1 - y0)
    return _square_at((x0 + x1) / 2, (y0 + y1) / 2 - shift_up * face, face * (1 + margin), frame_hw)


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return np.ascontiguousarray(image)
    interp = cv2.INTER_AREA if min(h, w) > size else cv2.INTER_CUBIC
    return cv2.resize(np.ascontiguousarray(image), (size, size), interpolation=interp)


def _check_size(size: int) -> int:
    if int(size) != size or size < 1:
        raise FommError(f"crop size must be a positive whole number of pixels, got {size}; use e.g. --size 256")
    return int(size)


def _check_margin(margin: float) -> None:
    if not margin >= 0:
        raise FommError(f"margin must be >= 0, got {margin}; use e.g. --margin {MARGIN}")


def crop_image(
    image: np.ndarray,
    size: int = 256,
    *,
    margin: float = MARGIN,
    shift_up: float = SHIFT_UP,
    required: bool = False,
    name: str = "the image",
) -> tuple[np.ndarray, Box | None]:
    """Crop the largest face of ``image`` to a ``size`` x ``size`` uint8 image.

    Returns ``(cropped, box)``. Where no face is found: with ``required`` a :class:`FommError`
    naming ``name``; otherwise ``(image, None)`` with the image unchanged, for the caller to decide.
    """
    size = _check_size(size)
    _check_margin(margin)
    image = _as_uint8(image)
    faces = detect_faces(image)
    if not faces:
        if required:
            raise FommError(f"no face found in {name}; pass an already cropped image or drop --crop")
        return image, None
    box = square_box(faces[0], image.shape[:2], margin, shift_up)
    x0, y0, x1, y1 = box
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return _resize(image[y0:y1, x0:x1], size), box


# --------------------------------------------------------------------------------------------
# Video planning
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CropSegment:
    """Frames ``start`` .. ``end - 1`` are cropped with ``box`` = ``(x0, y0, x1, y1)``, a square.
    ``face`` is the segment's median face box."""

    start: int
    end: int
    box: Box
    face: Box | None = None

    def __str__(self) -> str:
        x0, y0, x1, y1 = self.box
        return f"frames {self.start}-{self.end - 1}: box x {x0}-{x1}, y {y0}-{y1} ({x1 - x0}x{y1 - y0} px)"


class _Track:
    def __init__(self, start: int, index: int, box: Sequence[float]):
        self.start = start
        self.frames = [index]
        self.boxes = [tuple(float(v) for v in box[:4])]

    def add(self, index: int, box: Sequence[float]) -> None:
        self.frames.append(index)
        self.boxes.append(tuple(float(v) for v in box[:4]))

    def running(self) -> tuple:
        return tuple(np.median(np.asarray(self.boxes), axis=0))


class _Planner:
    """Turns per-frame face detections into stable segments (see the module docstring)."""

    def __init__(self, iou_threshold: float, confirm: int):
        self.iou_threshold = iou_threshold
        self.confirm = max(1, int(confirm))
        self.closed: list[_Track] = []
        self.current: _Track | None = None
        self.pending: _Track | None = None
        self.last: tuple | None = None

    def _associate(self, faces: Sequence[Sequence[float]]) -> Sequence[float]:
        refs = [
            r
            for r in (self.last, self.current and self.current.running(), self.pending and self.pending.running())
            if r
        ]
        if refs:
            best = max(faces, key=lambda f: max(iou(f, r) for r in refs))
            if max(iou(best, r) for r in refs) >= ASSOCIATE_IOU:
                return best
        return max(faces, key=_prominence)

    def observe(
        self, index: int, faces: Sequence[Sequence[float]], refine: Callable[[Sequence[float]], int] | None = None
    ) -> None:
        """Record the faces found on frame ``index``; ``refine(box)`` gives the first frame on
        which the face is at ``box`` when the face has moved (default: ``index``)."""
        if not faces:
            return
        box = self._associate(faces)
        self.last = tuple(box[:4])
        if self.current is None:
            self.current = _Track(0, index, box)
            return
        if iou(box, self.current.running()) >= self.iou_threshold:
            self.current.add(index, box)
            self.pending = None  # the face came back: what moved was a stray detection
            return
        if self.pending is not None and iou(box, self.pending.running()) >= self.iou_threshold:
            self.pending.add(index, box)
        else:
            start = refine(box) if refine is not None else index
            self.pending = _Track(max(start, self.current.frames[-1] + 1), index, box)
        if len(self.pending.frames) >= self.confirm:
            self.closed.append(self.current)
            self.current, self.pending = self.pending, None

    def segments(self, num_frames: int, frame_hw: Sequence[int], margin: float, shift_up: float) -> list[CropSegment]:
        if self.current is None or num_frames <= 0:
            return []
        tracks = self.closed + [self.current]
        ends = [t.start for t in tracks[1:]] + [num_frames]
        return [
            _segment(t.start, end, t.boxes, frame_hw, margin, shift_up) for t, end in zip(tracks, ends) if end > t.start
        ]


def _segment(start: int, end: int, boxes: list, frame_hw, margin: float, shift_up: float) -> CropSegment:
    b = np.asarray(boxes, dtype=np.float64)
    smooth = b.copy()
    if len(b) >= 3:  # 3-tap running median: one noisy detection does not widen the crop
        smooth[1:-1] = np.median(np.stack([b[:-2], b[1:-1], b[2:]]), axis=0)
    face = np.median(b, axis=0)
    x0, y0, x1, y1 = square_box(face, frame_hw, margin, shift_up)
    ux0, uy0 = smooth[:, 0].min(), smooth[:, 1].min()
    ux1, uy1 = smooth[:, 2].max(), smooth[:, 3].max()
    if ux0 < x0 or uy0 < y0 or ux1 > x1 or uy1 > y1:  # grow the square to hold every face box
        cx0, cy0, cx1, cy1 = min(x0, ux0), min(y0, uy0), max(x1, ux1), max(y1, uy1)
        x0, y0, x1, y1 = _square_at((cx0 + cx1) / 2, (cy0 + cy1) / 2, max(cx1 - cx0, cy1 - cy0), frame_hw)
    face_box = tuple(int(round(v)) for v in face)
    return CropSegment(int(start), int(end), (int(x0), int(y0), int(x1), int(y1)), face_box)


def _normalise_detection(entry) -> list:
    if entry is None:
        return []
    arr = np.asarray(entry, dtype=np.float64)
    if arr.size == 0:
        return []
    if arr.ndim == 1:
        arr = arr[None]
    return [tuple(row) for row in arr]


def _plan(
    frames: Iterable[np.ndarray] | None,
    detections: Sequence | None,
    frame_hw: Sequence[int] | None,
    *,
    margin: float,
    shift_up: float,
    detect_every: int,
    iou_threshold: float,
    confirm: int,
    detector: Callable[[np.ndarray], list] | None,
) -> tuple[list[CropSegment], tuple[int, int] | None, int]:
    if int(detect_every) != detect_every or detect_every < 1:
        raise FommError(f"--detect-every must be a whole number >= 1, got {detect_every}; use e.g. --detect-every 5")
    _check_margin(margin)
    detect_every = int(detect_every)
    planner = _Planner(iou_threshold, confirm)
    if detections is not None:
        if frame_hw is None:
            raise ValueError("plan_video_crop(detections=...) needs frame_hw=(H, W)")
        for index, entry in enumerate(detections):
            planner.observe(index, _normalise_detection(entry))
        n = len(detections)
        hw = (int(frame_hw[0]), int(frame_hw[1]))
        return planner.segments(n, hw, margin, shift_up), hw, n
    if frames is None:
        raise ValueError("plan_video_crop needs frames or detections")
    detect = detector or detect_faces
    buffer: collections.deque = collections.deque(maxlen=max(0, detect_every - 1))
    hw: tuple[int, int] | None = None
    n = 0
    for index, frame in enumerate(frames):
        n = index + 1
        if hw is None:
            hw = (int(frame.shape[0]), int(frame.shape[1]))
        elif (int(frame.shape[0]), int(frame.shape[1])) != hw:
            raise FommError(
                f"frame {index} is {frame.shape[1]}x{frame.shape[0]} but the video started at "
                f"{hw[1]}x{hw[0]}; re-encode the video at one size"
            )
        if index % detect_every:
            buffer.append((index, frame))
            continue
        held = list(buffer)
        buffer.clear()

        def refine(box, held=held, index=index):
            # Walk back over the frames skipped since the last detection: the face was already
            # at ``box`` on each of them that shows it there.
            start = index
            for j, f in reversed(held):
                faces = detect(f)
                if not faces or max(iou(box, g) for g in faces) < iou_threshold:
                    break
                start = j
            return start

        planner.observe(index, detect(frame), refine)
    return planner.segments(n, hw or (0, 0), margin, shift_up), hw, n


def plan_video_crop(
    frames: Iterable[np.ndarray] | None = None,
    *,
    detections: Sequence | None = None,
    frame_hw: Sequence[int] | None = None,
    margin: float = MARGIN,
    shift_up: float = SHIFT_UP,
    detect_every: int = DETECT_EVERY,
    iou_threshold: float = IOU_THRESHOLD,
    confirm: int = CONFIRM,
    detector: Callable[[np.ndarray], list] | None = None,
) -> list[CropSegment]:
    """Split a video into segments in which the face stays put, each with one square crop box.

    Pass either ``frames`` (any iterable of uint8 RGB frames, consumed once, streaming; the
    detector runs every ``detect_every`` frames) or ``detections`` (one entry per frame: ``None``
    or an empty list for no face, a box ``(x0, y0, x1, y1[, score])`` or a list of boxes) with
    ``frame_hw=(H, W)``. ``detector`` replaces :func:`detect_faces`. The segments cover every
    frame, in order; an empty list means no face was found anywhere.
    """
    segments, _hw, _n = _plan(
        frames,
        detections,
        frame_hw,
        margin=margin,
        shift_up=shift_up,
        detect_every=detect_every,
        iou_threshold=iou_threshold,
        confirm=confirm,
        detector=detector,
    )
    return segments


@dataclass
class CropPlan:
    """How to crop each frame of one video to ``size`` x ``size``.

    With no segments (no face found) frames are only resized, as if no crop had been asked for.
    Frames past the planned length use the last segment's box.
    """

    segments: list[CropSegment]
    frame_hw: tuple[int, int]
    size: int = 256
    num_frames: int = 0

    @property
    def found(self) -> bool:
        return bool(self.segments)

    @classmethod
    def from_frames(cls, frames: Iterable[np.ndarray], size: int = 256, **kwargs) -> CropPlan:
        """Plan from frames read once; keyword arguments as :func:`plan_video_crop`."""
        size = _check_size(size)
        segments, hw, n = _plan(frames, None, None, **_plan_kwargs(kwargs))
        if n == 0:
            raise FommError("the video has no frames; pass a video with at least one frame")
        return cls(segments, hw, size, n)

    @classmethod
    def from_video(cls, path: str | os.PathLike, size: int = 256, *, progress: bool = False, **kwargs) -> CropPlan:
        """Plan by streaming the video file ``path`` (one decoding pass)."""
        from fomm.data import video_io

        frames: Iterable = video_io.iter_frames(path)
        if progress:
            frames = _progress(frames, path, f"finding the face in {Path(path).name}")
        return cls.from_frames(frames, size, **kwargs)

    def box_at(self, index: int) -> Box | None:
        if not self.segments:
            return None
        k = bisect.bisect_right([s.start for s in self.segments], index) - 1
        return self.segments[max(k, 0)].box

    def apply(self, index: int, frame: np.ndarray) -> np.ndarray:
        """Frame ``index`` cropped to its segment's box and resized to ``size`` x ``size`` (uint8)."""
        frame = _as_uint8(frame)
        if frame.ndim == 2:
            frame = np.repeat(frame[..., None], 3, axis=2)
        if tuple(frame.shape[:2]) != tuple(self.frame_hw):
            raise FommError(
                f"frame {index} is {frame.shape[1]}x{frame.shape[0]} but the crop was planned on "
                f"{self.frame_hw[1]}x{self.frame_hw[0]} frames; crop the frames the plan was made from"
            )
        box = self.box_at(index)
        if box is not None:
            x0, y0, x1, y1 = box
            frame = frame[y0:y1, x0:x1]
        return _resize(frame, self.size)

    def crop_frames(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Crop a stream of the planned video's frames, lazily."""
        for index, frame in enumerate(frames):
            yield self.apply(index, frame)


def _plan_kwargs(kwargs: dict) -> dict:
    allowed = {
        "margin": MARGIN,
        "shift_up": SHIFT_UP,
        "detect_every": DETECT_EVERY,
        "iou_threshold": IOU_THRESHOLD,
        "confirm": CONFIRM,
        "detector": None,
    }
    unknown = set(kwargs) - set(allowed)
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    return {k: kwargs.get(k, v) for k, v in allowed.items()}


def crop_inputs(
    source_image: np.ndarray,
    driving: str | os.PathLike | Sequence[np.ndarray],
    size: int = 256,
    *,
    required: bool = True,
    progress: bool = False,
    **kwargs,
) -> tuple[np.ndarray, CropPlan]:
    """Crop inputs for animation: returns ``(cropped source, plan for the driving video)``.

    ``driving`` is a video path (planned by streaming it once; then crop it on the fly with
    ``plan.crop_frames(video_io.iter_frames(path))``) or a re-iterable sequence of frames (a list,
    an array). With ``required`` a missing face in either is a :class:`FommError`; otherwise that
    input is only resized. Keyword arguments as :func:`plan_video_crop`.
    """
    size = _check_size(size)
    margin = kwargs.get("margin", MARGIN)
    shift_up = kwargs.get("shift_up", SHIFT_UP)
    source, box = crop_image(
        source_image, size, margin=margin, shift_up=shift_up, required=required, name="the source image"
    )
    if box is None:
        source = _resize(source if source.ndim == 3 else np.repeat(source[..., None], 3, axis=2), size)
    if isinstance(driving, (str, os.PathLike)):
        plan = CropPlan.from_video(driving, size, progress=progress, **kwargs)
        name = Path(driving).name
    else:
        if iter(driving) is driving:
            raise TypeError(
                "crop_inputs needs the driving video as a path or a sequence of frames "
                "(it is read twice: once to plan, once to crop), not a one-shot iterator"
            )
        plan = CropPlan.from_frames(driving, size, **kwargs)
        name = "the driving video"
    if required and not plan.found:
        raise FommError(f"no face found in {name}; pass an already cropped video or drop --crop")
    return source, plan


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------
def _progress(frames: Iterable, path, desc: str) -> Iterable:
    from tqdm import tqdm

    total = None
    with contextlib.suppress(Exception):
        from fomm.data import video_io

        total = video_io.probe(path).num_frames
    return tqdm(frames, total=total, desc=desc, unit="frame", leave=False)


def _same_file(a: Path, b: Path) -> bool:
    with contextlib.suppress(OSError):
        return b.exists() and os.path.samefile(a, b)
    return False


def _check_input(src: Path) -> None:
    if not src.exists():
        raise FommError(f"{src} not found; check the path of the video or image to crop")


def _copy_file(src: Path, out: Path) -> None:
    with atomic_path(out) as tmp:
        shutil.copyfile(src, tmp)


def crop_image_file(
    src: str | os.PathLike,
    out: str | os.PathLike,
    size: int = 256,
    *,
    margin: float = MARGIN,
    shift_up: float = SHIFT_UP,
) -> Box | None:
    """Crop the face of image ``src`` into ``out`` (``size`` x ``size``), atomically.

    Returns the crop box in ``src`` pixels, or ``None`` when no face was found, in which case
    ``out`` receives the input unchanged (a byte copy when the extensions match).
    """
    from fomm.data import video_io

    src, out = Path(src), Path(out)
    _check_input(src)
    size = _check_size(size)
    _check_margin(margin)
    image = video_io.read_image(src)
    cropped, box = crop_image(image, size, margin=margin, shift_up=shift_up, name=src.name)
    if box is None:
        if not _same_file(src, out):
            if src.suffix.lower() == out.suffix.lower():
                _copy_file(src, out)
            else:
                video_io.write_image(out, image)
        return None
    video_io.write_image(out, cropped)  # atomic
    return box


def crop_video_file(
    src: str | os.PathLike,
    out: str | os.PathLike,
    size: int = 256,
    *,
    margin: float = MARGIN,
    shift_up: float = SHIFT_UP,
    detect_every: int = DETECT_EVERY,
    iou_threshold: float = IOU_THRESHOLD,
    confirm: int = CONFIRM,
    progress: bool = True,
    split_dir: str | os.PathLike | None = None,
) -> list[CropSegment]:
    """Crop the face of video ``src`` into ``out``: ``size`` x ``size`` frames, the source's frame
    count, fps and audio, written atomically. Two streaming passes (plan, then crop).

    ``src`` and ``out`` are anything :mod:`fomm.data.video_io` reads and writes (a video file, a
    GIF, a frame folder). Each segment (see :func:`plan_video_crop`) is cropped with its own box
    and the segments follow each other in ``out``. With ``split_dir`` each segment is also written
    to its own file there, ``<out stem>_<k>_<first>-<last><out suffix or .mp4>`` (without audio).
    Returns the segments; an empty list means no face was found and ``out`` received the input
    unchanged (a byte copy when both are files with the same extension, else re-encoded frames).
    """
    from fomm.data import video_io

    src, out = Path(src), Path(out)
    _check_input(src)
    size = _check_size(size)
    info = video_io.probe(src)
    plan = CropPlan.from_video(
        src,
        size,
        progress=progress,
        margin=margin,
        shift_up=shift_up,
        detect_every=detect_every,
        iou_threshold=iou_threshold,
        confirm=confirm,
    )
    audio = src if info.has_audio else None
    if not plan.found:
        if _same_file(src, out):
            return []
        if src.is_file() and src.suffix.lower() == out.suffix.lower():
            _copy_file(src, out)
        else:
            video_io.write_video(out, video_io.iter_frames(src), info.fps, audio_from=audio)
        return []

    frames: Iterable = video_io.iter_frames(src)
    if progress:
        frames = _progress(frames, src, f"cropping {src.name}")
    split = Path(split_dir) if split_dir is not None else None
    seg_suffix = out.suffix if out.suffix.lower() in (".mp4", ".m4v", ".mov", ".mkv", ".gif") else ".mp4"
    seg_starts = {s.start: k for k, s in enumerate(plan.segments)}
    # VideoWriter writes atomically: an error anywhere below leaves no partial output.
    with contextlib.ExitStack() as stack:
        writer = stack.enter_context(video_io.VideoWriter(out, info.fps, audio_from=audio))
        seg_stack = stack.enter_context(contextlib.ExitStack())
        seg_writer = None
        for index, frame in enumerate(frames):
            cropped = plan.apply(index, frame)
            writer.write(cropped)
            if split is not None:
                if index in seg_starts:
                    seg_stack.close()  # finishes the previous segment's file
                    k = seg_starts[index]
                    s = plan.segments[k]
                    name = f"{out.stem}_{k:03d}_{s.start}-{s.end - 1}{seg_suffix}"
                    seg_writer = seg_stack.enter_context(video_io.VideoWriter(split / name, info.fps))
                seg_writer.write(cropped)
    return plan.segments


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------
def register(subparsers) -> argparse.ArgumentParser:
    from fomm.cli import summary

    parser = subparsers.add_parser(
        "crop",
        help=summary("crop"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Find the face (OpenCV's Haar detector, offline) and crop a square around the\n"
        "whole head, resized to --size. A video is split into segments where the face\n"
        "stays put, each cropped with its own box; the output keeps the frame count,\n"
        "fps and audio. Where no face is found the input is written unchanged, with a\n"
        "warning.",
        epilog="examples:\n"
        "  fomm crop interview.mp4 --out driving.mp4\n"
        "  fomm crop --source photo.jpg --out source.png --size 256\n"
        "  fomm crop talk.mp4 --out talk_crop.mp4 --split segments/",
    )
    parser.add_argument("input", nargs="?", metavar="VIDEO_OR_IMAGE", help="video or image to crop")
    parser.add_argument("--source", metavar="PATH", help="the same as VIDEO_OR_IMAGE (e.g. a source photo)")
    parser.add_argument("--out", required=True, metavar="PATH", help="where to write the cropped video or image")
    parser.add_argument("--size", type=int, default=256, help="output side in pixels (default: 256)")
    parser.add_argument(
        "--margin", type=float, default=MARGIN, help=f"crop side = (1 + margin) x face size (default: {MARGIN})"
    )
    parser.add_argument(
        "--detect-every",
        type=int,
        default=DETECT_EVERY,
        metavar="N",
        help=f"run the face detector every N frames of a video (default: {DETECT_EVERY})",
    )
    parser.add_argument(
        "--iou-threshold",
        type=float,
        default=IOU_THRESHOLD,
        metavar="T",
        help="start a new segment when the face box overlaps the segment's by less than T "
        f"(IoU, default: {IOU_THRESHOLD})",
    )
    parser.add_argument(
        "--split", metavar="DIR", dest="split_dir", help="also write each segment of a video to its own file in DIR"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    if args.input and args.source and Path(args.input) != Path(args.source):
        raise FommError(f"two inputs given ({args.input} and --source {args.source}); give one")
    src = args.input or args.source
    if not src:
        raise FommError("no input given; name the video or image to crop, e.g. fomm crop video.mp4 --out crop.mp4")
    src, out = Path(src), Path(args.out)
    _check_input(src)
    _check_size(args.size)
    _check_margin(args.margin)
    if not 0 < args.iou_threshold <= 1:
        raise FommError(f"--iou-threshold must be in (0, 1], got {args.iou_threshold}; use e.g. --iou-threshold 0.5")
    if src.is_file() and src.suffix.lower() in IMAGE_EXTENSIONS:
        box = crop_image_file(src, out, args.size, margin=args.margin)
        if box is None:
            print(f"fomm crop: warning: no face found in {src}; wrote it unchanged to {out}", file=sys.stderr)
        else:
            x0, y0, x1, y1 = box
            print(f"wrote {out} ({args.size}x{args.size}, cropped from x {x0}-{x1}, y {y0}-{y1} of {src})")
        return 0
    segments = crop_video_file(
        src,
        out,
        args.size,
        margin=args.margin,
        detect_every=args.detect_every,
        iou_threshold=args.iou_threshold,
        progress=not args.no_progress,
        split_dir=args.split_dir,
    )
    if not segments:
        print(f"fomm crop: warning: no face found in {src}; wrote it unchanged to {out}", file=sys.stderr)
        return 0
    print(
        f"wrote {out} ({args.size}x{args.size}, {segments[-1].end} frames, "
        f"{len(segments)} segment{'s' if len(segments) != 1 else ''})"
    )
    for seg in segments:
        print(f"  {seg}")
    if args.split_dir:
        print(f"wrote {len(segments)} segment file(s) to {args.split_dir}")
    return 0
