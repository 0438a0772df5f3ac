"""From tracks to clips: one square box per clip, the filters, and writing the crops.

A clip's box is made as the original datasets' were: the union of the subject's boxes over the
clip, enlarged by ``margin`` of its side on every side, made square (the larger side), moved inside
the frame where it sticks out and shrunk to the frame's shorter side where it is larger. Every
frame of the clip is cropped to that one box (the camera does not move inside a clip: the model
learns the subject's motion, not the crop's) and resized to ``size`` x ``size``. So that a subject
that wanders does not end up small in a large box, a track is cut into several clips wherever the
subject's box overlaps the clip's first box by less than :data:`MIN_IOU` (intersection over
union), as the original VoxCeleb preprocessing cut its face tubes.

Filters, in this order, each a ``reason`` in ``prepare.json``:

* ``too-short``: fewer than ``min_frames`` frames;
* ``too-small``: the subject (its median box side with the margin: the crop of a subject that
  stays still) is under ``min_size`` source pixels: its crop would be blown up;
* ``still``: nothing moves under the box (see :mod:`fomm.prepare.shots`).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fomm.data.image_ops import resize_frame
from fomm.errors import plural
from fomm.prepare.shots import STILL, ShotAnalysis
from fomm.prepare.track import Track

MIN_IOU = 0.25  # a clip ends where the subject's box overlaps its first box by less (the original's rule)
THUMB_HEIGHT = 180  # contact sheet thumbnails: source frames this high, with the box drawn


@dataclass(frozen=True)
class ClipPlan:
    """Frames ``start`` .. ``end - 1`` cropped to the square ``box`` ``(x0, y0, x1, y1)``."""

    start: int
    end: int
    box: tuple[int, int, int, int]


def clip_box(boxes: np.ndarray, margin: float, hw: Sequence[int]) -> tuple[int, int, int, int]:
    """The square crop of a clip: the union of ``boxes`` ``(N, 4)``, enlarged by ``margin`` of its
    larger side on each side, inside an ``(H, W)`` frame (see the module docstring)."""
    h, w = int(hw[0]), int(hw[1])
    x0, y0 = boxes[:, 0].min(), boxes[:, 1].min()
    x1, y1 = boxes[:, 2].max(), boxes[:, 3].max()
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    side = int(max(2, min(round(side), h, w)))
    left = int(min(max(round((x0 + x1 - side) / 2), 0), w - side))
    top = int(min(max(round((y0 + y1 - side) / 2), 0), h - side))
    return (left, top, left + side, top + side)


def subject_size(boxes: np.ndarray, margin: float) -> int:
    """The subject's size: the median over frames of its box's larger side, with the margin (the
    crop side if it did not move)."""
    sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    return int(round(float(np.median(sides)) * (1 + 2 * margin)))


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of box ``a`` ``(4,)`` with each of ``b`` ``(N, 4)``."""
    w = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return inter / np.maximum(union, 1e-9)


def split_drifting(track: Track, min_iou: float = MIN_IOU) -> list[Track]:
    """``track`` cut into clips wherever the subject's box overlaps the clip's first box by less
    than ``min_iou`` (intersection over union): a new clip starts there, with a new first box."""
    pieces, start = [], 0
    while start < len(track.boxes):
        apart = np.flatnonzero(_iou(track.boxes[start], track.boxes[start:]) < min_iou)
        end = start + int(apart[0]) if len(apart) else len(track.boxes)
        pieces.append(Track(track.start + start, track.start + end, track.boxes[start:end]))
        start = end
    return pieces


def plan_clips(
    tracks: list[Track],
    hw: tuple[int, int],
    analysis: ShotAnalysis,
    analysis_scale: float,
    *,
    margin: float,
    min_frames: int,
    min_size: int,
) -> tuple[list[ClipPlan], list[dict]]:
    """Clips of the ``tracks`` (boxes in source pixels of an ``(H, W)`` source) and the dropped
    ones as ``{"reason", "detail", "start", "end"}``. ``analysis_scale``: analysis px per source px."""
    kept, dropped = [], []
    for track in (piece for t in tracks for piece in split_drifting(t)):
        box = clip_box(track.boxes, margin, hw)
        subject = subject_size(track.boxes, margin)
        n = track.end - track.start
        where = {"start": int(track.start), "end": int(track.end)}
        if n < min_frames:
            dropped.append(
                {"reason": "too-short", "detail": f"{plural(n, 'frame')} < --min-frames {min_frames}", **where}
            )
            continue
        if subject < min_size:
            dropped.append({"reason": "too-small", "detail": f"subject {subject} px < --min-size {min_size}", **where})
            continue
        small = tuple(v * analysis_scale for v in box)
        hw_small = (round(hw[0] * analysis_scale), round(hw[1] * analysis_scale))
        motion = analysis.motion(track.start, track.end, small, hw_small)
        if motion < STILL:
            dropped.append(
                {"reason": "still", "detail": f"nothing moves (change {motion:.2f} < {STILL} grey levels)", **where}
            )
            continue
        kept.append(ClipPlan(int(track.start), int(track.end), box))
    return kept, dropped


def decode_size(plans: list[ClipPlan], hw: Sequence[int], size: int) -> tuple[tuple[int, int], list[ClipPlan]]:
    """The frame size to decode for cropping and the plans' boxes at that size.

    Converting a decoded frame to RGB costs about as much as decoding it, per output pixel: when
    every clip's box is larger than ``size``, the frames are converted straight to the smaller
    size at which the largest of the needed scales (the smallest box) becomes ``size`` px, and
    the crops taken there."""
    h, w = int(hw[0]), int(hw[1])
    scale = min(1.0, max(size / (p.box[2] - p.box[0]) for p in plans))
    if scale > 0.9:  # not worth a second resampling
        return (h, w), plans
    dh, dw = max(2, int(round(h * scale / 2)) * 2), max(2, int(round(w * scale / 2)) * 2)
    sx, sy = dw / w, dh / h
    scaled = []
    for p in plans:
        x0, y0, x1, _y1 = p.box
        left, top = round(x0 * sx), round(y0 * sy)
        side = max(1, min(round((x1 - x0) * min(sx, sy)), dw - left, dh - top))  # still square
        scaled.append(ClipPlan(p.start, p.end, (left, top, left + side, top + side)))
    return (dh, dw), scaled


def crop(frame: np.ndarray, box: Sequence[int], size: int) -> np.ndarray:
    x0, y0, x1, y1 = box
    return np.ascontiguousarray(resize_frame(frame[y0:y1, x0:x1], (size, size)))


def thumbnail(frame: np.ndarray, box: Sequence[int]) -> np.ndarray:
    """``frame`` shrunk to :data:`THUMB_HEIGHT` px high with ``box`` drawn in green."""
    h, w = frame.shape[:2]
    k = THUMB_HEIGHT / h
    small = np.ascontiguousarray(resize_frame(frame, (THUMB_HEIGHT, max(1, round(w * k)))))
    x0, y0, x1, y1 = (int(round(v * k)) for v in box)
    cv2.rectangle(small, (x0, y0), (x1 - 1, y1 - 1), (40, 220, 60), 2)
    return small


def write_clips(
    frames, plans: list[ClipPlan], paths: list[Path], fps: float, size: int, thumbs: list[Path]
) -> list[str]:
    """Crop the frames of each plan from ``frames`` (the source read again, from frame 0) into its
    path (``.mp4`` or a folder of PNGs, atomically), and the clip's middle frame with its box into
    its thumbnail. Plans do not overlap and are in order. Returns each clip's digest: the SHA-1 of
    its cropped frames before encoding (x264's bytes may differ between processes; these do not)."""
    from fomm.data import video_io

    digests = [hashlib.sha1() for _ in plans]
    order = iter(zip(plans, paths, thumbs, digests))
    current = next(order, None)
    with contextlib.ExitStack() as stack:
        writer = None
        for index, frame in enumerate(frames):
            while current is not None and index >= current[0].end:
                stack.close()
                writer, current = None, next(order, None)
            if current is None:
                break
            plan, path, thumb, digest = current
            if index < plan.start:
                continue
            if writer is None:
                writer = stack.enter_context(video_io.VideoWriter(path, fps, preset="fast"))
            cropped = crop(frame, plan.box, size)
            digest.update(cropped.tobytes())
            writer.write(cropped)
            if index == (plan.start + plan.end) // 2:
                video_io.write_image(thumb, thumbnail(frame, plan.box))
    return [d.hexdigest() for d in digests]
