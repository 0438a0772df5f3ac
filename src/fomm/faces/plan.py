"""Crop boxes: a square around a face for a photo, and one smooth box per frame for a video.

A crop box is a square whose side is ``scale`` times the face size (``scale=1.8``: the whole head
and the top of the shoulders), centred ``shift_up`` face sizes above the face centre (each
tracker has its own default, see :mod:`fomm.faces.detect`), moved inside the frame where it
sticks out and shrunk to the frame's shorter side where it is larger.
"""

from __future__ import annotations

import contextlib
import json
import numbers
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fomm.data.image_ops import resize_frame, to_rgb_uint8
from fomm.errors import FommError
from fomm.faces import detect as _detect
from fomm.faces import track as _track

Box = tuple  # (x0, y0, x1, y1): pixel columns x0..x1-1 and rows y0..y1-1
SCALE = 1.8  # crop side / face size


def _square_at(cx: float, cy: float, side: float, frame_hw: Sequence[int]) -> Box:
    h, w = int(frame_hw[0]), int(frame_hw[1])
    side = max(1, min(int(round(side)), h, w))
    x0 = min(max(int(round(cx - side / 2)), 0), w - side)
    y0 = min(max(int(round(cy - side / 2)), 0), h - side)
    return (x0, y0, x0 + side, y0 + side)


def square_box(
    face_box: Sequence[float], frame_hw: Sequence[int], scale: float = SCALE, shift_up: float = _detect.HAAR_SHIFT_UP
) -> Box:
    """The square crop around ``face_box`` ``(x0, y0, x1, y1)``: side ``scale`` x face size (its
    larger side), centre moved up by ``shift_up`` face sizes, kept inside the ``(H, W)`` frame."""
    face = _detect.Face.from_box(face_box)
    return crop_box(face, frame_hw, scale, shift_up)


def crop_box(face: _detect.Face, frame_hw: Sequence[int], scale: float, shift_up: float) -> Box:
    """The square crop box of a :class:`~fomm.faces.detect.Face` (see the module docstring)."""
    return _square_at(face.cx, face.cy - shift_up * face.size, scale * face.size, frame_hw)


def progress_bar(frames: Iterable, path, desc: str) -> Iterable:
    """``frames`` of the video ``path`` wrapped in a tqdm bar (total from the video's header when
    it has one); used while planning a crop and while writing it (:mod:`fomm.faces.files`)."""
    from tqdm import tqdm

    total = None
    with contextlib.suppress(Exception):
        from fomm.data import video_io

        total = video_io.probe(path).num_frames
    return tqdm(frames, total=total, desc=desc, unit="frame", leave=False)


def check_size(size: int) -> int:
    if int(size) != size or size < 1:
        raise FommError(f"crop size must be a positive whole number of pixels, got {size}; use e.g. --size 256")
    return int(size)


def check_options(scale: float, smoothing: float, detect_every: int = 1, max_lost: int = 0) -> None:
    """FommError for crop options out of range (names as on the command line)."""
    if not (isinstance(scale, numbers.Real) and 0.5 <= scale <= 10):
        raise FommError(f"--crop-scale must be a number in [0.5, 10], got {scale!r}; use e.g. --crop-scale {SCALE}")
    if not (isinstance(smoothing, numbers.Real) and 0 <= smoothing <= 1000):
        raise FommError(
            f"--crop-smoothing must be a number of frames >= 0, got {smoothing!r}; "
            f"use e.g. --crop-smoothing {_track.SMOOTHING:g} (0 follows every detection)"
        )
    if int(detect_every) != detect_every or detect_every < 1:
        raise FommError(f"--detect-every must be a whole number >= 1, got {detect_every}; use e.g. --detect-every 5")
    if int(max_lost) != max_lost or max_lost < 0:
        raise FommError(f"--max-lost must be a whole number >= 0, got {max_lost}; use e.g. --max-lost 25")


def crop_image(
    image: np.ndarray,
    size: int = 256,
    *,
    scale: float = SCALE,
    shift_up: float | None = None,
    tracker="auto",
    required: bool = False,
    name: str = "the image",
) -> tuple[np.ndarray, Box | None]:
    """Crop the main face of ``image`` to a ``size`` x ``size`` uint8 RGB image.

    ``tracker``: ``auto`` (dlib landmarks with ``fomm[faces]``, else, or where dlib sees no face,
    the Haar cascade), ``landmarks``, ``haar``, or a tracker from
    :func:`fomm.faces.detect.make_tracker` (its ``name`` then says which was used);
    ``shift_up`` defaults to the tracker's. Returns ``(cropped, box)``
    with ``box`` the crop square in ``image`` pixels (for :mod:`fomm.faces.paste_back`). Where no face is
    found: with ``required`` a :class:`FommError` naming ``name``; otherwise ``(image as RGB
    uint8, None)``, for the caller to decide.
    """
    size = check_size(size)
    check_options(scale, 0)
    image = to_rgb_uint8(image)
    tr = _detect.make_tracker(tracker, confirm=1)
    found = tr.detect(image)
    if not found:
        if required:
            raise FommError(f"no face found in {name}; pass an already cropped image or drop --crop")
        return image, None
    box = crop_box(found[0], image.shape[:2], scale, tr.shift_up if shift_up is None else shift_up)
    return crop_at(image, box, size), box


def crop_at(image: np.ndarray, box: Box, size: int) -> np.ndarray:
    """The ``size`` x ``size`` uint8 RGB crop of ``image`` at ``box`` (from :func:`crop_image`):
    the same crop again without finding the face again."""
    x0, y0, x1, y1 = box
    size = check_size(size)
    return resize_frame(to_rgb_uint8(image)[y0:y1, x0:x1], (size, size))


@dataclass(frozen=True)
class CropSegment:
    """Frames ``start`` .. ``end - 1``, one shot with one followed face. ``box`` is the square of
    the segment's median box centre and side (for display; each frame has its own box, see
    :meth:`CropPlan.box_at`) and
    ``face`` the median face box ``(x0, y0, x1, y1)``."""

    start: int
    end: int
    box: Box
    face: Box | None = None

    def __str__(self) -> str:
        x0, y0, x1, y1 = self.box
        return f"frames {self.start}-{self.end - 1}: box about x {x0}-{x1}, y {y0}-{y1} ({x1 - x0}x{y1 - y0} px)"


@dataclass
class CropPlan:
    """How to crop each frame of one video to ``size`` x ``size``: ``boxes[i]`` is frame ``i``'s
    square crop box. With no segments (no face found) frames are only resized. Frames past the
    planned length use the last box. ``tracker`` names the detector that was used."""

    segments: list[CropSegment]
    frame_hw: tuple[int, int]
    size: int = 256
    num_frames: int = 0
    boxes: list[Box] = field(default_factory=list)
    tracker: str = ""
    options: dict = field(default_factory=dict)

    @property
    def found(self) -> bool:
        return bool(self.segments)

    @classmethod
    def from_frames(cls, frames: Iterable[np.ndarray], size: int = 256, **crop_options) -> CropPlan:
        """Plan from frames read once (streaming). Keyword arguments: see :func:`plan_video_crop`."""
        size = check_size(size)
        opts = plan_options(crop_options)
        tr = _detect.make_tracker(opts["tracker"], opts["detector"])
        segments, hw, n = _track.track_faces(
            frames, tr, detect_every=opts["detect_every"], max_lost=opts["max_lost"], detect_cuts=opts["detect_cuts"]
        )
        if n == 0:
            raise FommError("the video has no frames; pass a video with at least one frame")
        shift_up = tr.shift_up if opts["shift_up"] is None else opts["shift_up"]
        plan = _build(segments, hw, n, size, opts["scale"], shift_up, opts["smoothing"])
        plan.tracker = tr.name
        plan.options = {k: opts[k] for k in ("scale", "smoothing", "detect_every", "max_lost", "detect_cuts")}
        plan.options["shift_up"] = shift_up
        if opts["boxes_json"] is not None:
            plan.write_json(opts["boxes_json"])
        return plan

    @classmethod
    def from_video(
        cls, path: str | os.PathLike, size: int = 256, *, progress: bool = False, **crop_options
    ) -> CropPlan:
        """Plan by streaming the video file ``path`` once.

        ``crop_options`` (all optional; the pipeline passes the user's ``--crop-*`` options here):
        ``scale`` (crop side / face size, default 1.8), ``smoothing`` (smoother time scale in
        frames, default 4; 0 = raw detections), ``boxes_json`` (path: write the per-frame boxes
        and segments as JSON, see :meth:`to_json`), ``tracker`` (``auto`` | ``landmarks`` |
        ``haar``), and the finer ones of :func:`plan_video_crop`.
        """
        from fomm.data import video_io

        frames: Iterable = video_io.iter_frames(path)
        if progress:
            frames = progress_bar(frames, path, f"finding the face in {Path(path).name}")
        return cls.from_frames(frames, size, **crop_options)

    def box_at(self, index: int) -> Box | None:
        """Frame ``index``'s crop box ``(x0, y0, x1, y1)``; ``None`` when no face was found."""
        if not self.segments or not self.boxes:
            return None
        return self.boxes[min(max(index, 0), len(self.boxes) - 1)]

    def apply(self, index: int, frame: np.ndarray) -> np.ndarray:
        """Frame ``index`` cropped to its box and resized to ``size`` x ``size`` (RGB uint8)."""
        frame = to_rgb_uint8(frame)
        if tuple(frame.shape[:2]) != tuple(self.frame_hw):
            raise FommError(
                f"frame {index} is {frame.shape[1]}x{frame.shape[0]} but the crop was planned on "
                f"{self.frame_hw[1]}x{self.frame_hw[0]} frames; crop the frames the plan was made from"
            )
        box = self.box_at(index)
        if box is not None:
            x0, y0, x1, y1 = box
            frame = frame[y0:y1, x0:x1]
        return np.ascontiguousarray(resize_frame(frame, (self.size, self.size)))

    def crop_frames(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Crop a stream of the planned video's frames, lazily."""
        for index, frame in enumerate(frames):
            yield self.apply(index, frame)

    def to_json(self) -> dict:
        """``{"frame_size": [W, H], "num_frames", "size", "tracker", "options", "segments":
        [{"start", "end", "box"}], "boxes": [[x0, y0, x1, y1] per frame]}`` (end exclusive)."""
        return {
            "frame_size": [int(self.frame_hw[1]), int(self.frame_hw[0])],
            "num_frames": int(self.num_frames),
            "size": int(self.size),
            "tracker": self.tracker,
            "options": dict(self.options),
            "segments": [{"start": s.start, "end": s.end, "box": list(s.box)} for s in self.segments],
            "boxes": [list(b) for b in self.boxes],
        }

    def write_json(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_json` to ``path`` atomically."""
        from fomm.atomic import atomic_write_bytes

        data = self.to_json()
        lines = [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in data.items() if k not in ("segments", "boxes")]
        for key in ("segments", "boxes"):
            items = ",\n".join(f"    {json.dumps(item)}" for item in data[key])
            lines.append(f"  {json.dumps(key)}: [\n{items}\n  ]," if items else f"  {json.dumps(key)}: [],")
        text = "{\n" + "\n".join(lines)[:-1] + "\n}\n"  # one segment / box per line
        atomic_write_bytes(path, text.encode())


def _build(segments, hw, n, size, scale, shift_up, smoothing) -> CropPlan:
    if not segments:
        return CropPlan([], hw, size, n)
    boxes: list[Box] = []
    out: list[CropSegment] = []
    ends = [s.start for s in segments[1:]] + [n]
    for seg, end in zip(segments, ends):
        measured = np.full((end - seg.start, 3), np.nan)
        for t, f in seg.faces.items():
            if seg.start <= t < end:
                measured[t - seg.start] = (f.cx, f.cy, f.size)
        track = _track.smooth_track(measured, smoothing)
        seg_boxes = [crop_box(_detect.Face(*row), hw, scale, shift_up) for row in track]
        boxes.extend(seg_boxes)
        face = np.median(np.asarray([f.box for f in seg.faces.values()]), axis=0)
        b = np.asarray(seg_boxes, dtype=np.float64)
        centre, side = np.median((b[:, :2] + b[:, 2:]) / 2, axis=0), np.median(b[:, 2] - b[:, 0])
        out.append(CropSegment(seg.start, end, _square_at(centre[0], centre[1], side, hw), _int_box(face)))
    return CropPlan(out, hw, size, n, boxes)


def _int_box(box) -> Box:
    return tuple(int(round(float(v))) for v in box)


_PLAN_DEFAULTS = {
    "scale": SCALE,
    "smoothing": _track.SMOOTHING,
    "boxes_json": None,
    "tracker": "auto",
    "shift_up": None,
    "detect_every": _track.DETECT_EVERY,
    "max_lost": _track.MAX_LOST,
    "detect_cuts": True,
    "detector": None,
}


def plan_options(kwargs: dict) -> dict:
    """The crop options with defaults filled in; TypeError for unknown names, FommError for bad values."""
    unknown = set(kwargs) - set(_PLAN_DEFAULTS)
    if unknown:
        raise TypeError(f"unexpected crop option(s): {', '.join(sorted(unknown))}; known: {', '.join(_PLAN_DEFAULTS)}")
    opts = {k: kwargs.get(k, v) for k, v in _PLAN_DEFAULTS.items()}
    check_options(opts["scale"], opts["smoothing"], opts["detect_every"], opts["max_lost"])
    _detect.check_tracker(opts["tracker"])
    return opts


def plan_video_crop(
    frames: Iterable[np.ndarray] | None = None,
    *,
    detections: Sequence | None = None,
    frame_hw: Sequence[int] | None = None,
    scale: float = SCALE,
    smoothing: float = _track.SMOOTHING,
    tracker: str = "auto",
    shift_up: float | None = None,
    detect_every: int = _track.DETECT_EVERY,
    max_lost: int = _track.MAX_LOST,
    detect_cuts: bool = True,
    detector: Callable[[np.ndarray], list] | None = None,
) -> list[CropSegment]:
    """Split a video into segments (one per shot and followed face), each with smooth per-frame boxes.

    Pass either ``frames`` (any iterable of RGB frames, read once) or ``detections`` (one entry per
    frame: ``None``/``[]`` for no face, a box ``(x0, y0, x1, y1[, score])`` or a list of boxes,
    main face first) with ``frame_hw=(H, W)``. ``tracker`` as :func:`crop_image`; ``detector``
    (a function ``frame -> boxes``) replaces it. ``detect_every``: frames between whole-frame
    detections while no face is followed; ``max_lost``: missing frames after which the face is
    lost (a new segment starts where a face is found again); ``detect_cuts``: start a new
    segment at each shot cut. An empty list means no face anywhere. Use
    :class:`CropPlan` for the per-frame boxes.
    """
    if detections is None:
        if frames is None:
            raise ValueError("plan_video_crop needs frames or detections")
        return CropPlan.from_frames(
            frames,
            scale=scale,
            smoothing=smoothing,
            tracker=tracker,
            shift_up=shift_up,
            detect_every=detect_every,
            max_lost=max_lost,
            detect_cuts=detect_cuts,
            detector=detector,
        ).segments
    if frame_hw is None:
        raise ValueError("plan_video_crop(detections=...) needs frame_hw=(H, W)")
    check_options(scale, smoothing, detect_every, max_lost)
    segments = _track.segments_from_detections(detections, max_lost=max_lost)
    hw = (int(frame_hw[0]), int(frame_hw[1]))
    sh = _detect.HAAR_SHIFT_UP if shift_up is None else shift_up
    return _build(segments, hw, len(detections), 256, scale, sh, smoothing).segments


def crop_inputs(
    source_image: np.ndarray,
    driving: str | os.PathLike | Sequence[np.ndarray],
    size: int = 256,
    *,
    required: bool = True,
    progress: bool = False,
    **crop_options,
) -> tuple[np.ndarray, CropPlan]:
    """Crop inputs for animation: returns ``(cropped source, plan for the driving video)``.

    ``driving`` is a video path (planned by streaming it once; then crop it on the fly with
    ``plan.crop_frames(video_io.iter_frames(path))``) or a re-iterable sequence of frames. With
    ``required`` a missing face in either is a :class:`FommError`; otherwise that input is only
    resized. ``crop_options`` as :meth:`CropPlan.from_video`; ``scale``, ``shift_up`` and
    ``tracker`` also apply to the source.
    """
    size = check_size(size)
    opts = plan_options(crop_options)
    source, box = crop_image(
        source_image,
        size,
        scale=opts["scale"],
        shift_up=opts["shift_up"],
        tracker=opts["tracker"],
        required=required,
        name="the source image",
    )
    if box is None:
        source = resize_frame(source, (size, size))
    if isinstance(driving, (str, os.PathLike)):
        plan = CropPlan.from_video(driving, size, progress=progress, **crop_options)
        name = Path(driving).name
    else:
        if iter(driving) is driving:
            raise TypeError(
                "crop_inputs needs the driving video as a path or a sequence of frames "
                "(it is read twice: once to plan, once to crop), not a one-shot iterator"
            )
        plan = CropPlan.from_frames(driving, size, **crop_options)
        name = "the driving video"
    if required and not plan.found:
        raise FommError(f"no face found in {name}; pass an already cropped video or drop --crop")
    return source, plan
