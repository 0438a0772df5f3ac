"""Raw videos made by the tests: a real face (scikit-image's ``astronaut()``, public domain, NASA)
moving over a background, with scene cuts and audio; stills; small faces; broken files; and the
procedural puppet moving inside a larger frame.

The photo's face is at about x 177-272, y 66-161 of 512x512 (centre :data:`FACE_CENTRE`, about
:data:`FACE_SIZE` px from brows to chin).
"""

from __future__ import annotations

import cv2
import numpy as np

from face_clips import astronaut  # noqa: I001 - tests/face_clips.py
from fomm import testing

FACE_CENTRE = (225.0, 118.0)
FACE_SIZE = 95.0


def background(h: int, w: int, seed: int, low: int = 40, high: int = 180) -> np.ndarray:
    """Smooth coloured noise (a blurred random image) in ``low`` .. ``high``."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, h // 16), max(2, w // 16), 3)).astype(np.uint8)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return cv2.normalize(cv2.GaussianBlur(big, (0, 0), 6), None, low, high, cv2.NORM_MINMAX)


def place(photo: np.ndarray, bg: np.ndarray, cx: float, cy: float, scale: float, angle: float = 0.0) -> np.ndarray:
    """``photo`` scaled by ``scale`` and turned by ``angle`` degrees about its face, whose centre
    lands on ``(cx, cy)`` of a copy of ``bg``."""
    return testing.place(photo, bg, FACE_CENTRE, (cx, cy), scale, angle)


def face_shot(
    n: int, h: int, w: int, *, cx: float, cy: float, scale: float, seed: int, dx: float = 60, bg_range=(40, 180)
) -> list:
    """``n`` frames: the face glides ``dx`` px right and bobs, turning from -5 to +5 degrees."""
    photo, bg = astronaut(), background(h, w, seed, *bg_range)
    frames = []
    for t in range(n):
        a = t / max(n - 1, 1)
        frames.append(place(photo, bg, cx + dx * a, cy + 0.2 * dx * np.sin(np.pi * a), scale, -5 + 10 * a))
    return frames


def still_shot(n: int, h: int, w: int, *, cx: float, cy: float, scale: float, seed: int) -> list:
    frame = place(astronaut(), background(h, w, seed), cx, cy, scale)
    return [frame] * n


def face_720p_with_cut(n: int = 40) -> list:
    """1280x720: the face in one scene for ``n // 2`` frames, then a cut to another scene (another
    background, the face elsewhere and larger) for the rest."""
    first = face_shot(n // 2, 720, 1280, cx=420, cy=330, scale=1.6, seed=1, dx=80)
    second = face_shot(n - n // 2, 720, 1280, cx=800, cy=380, scale=2.0, seed=7, dx=-60, bg_range=(150, 250))
    return first + second


def puppet_in_frame(n: int = 40, h: int = 240, w: int = 320, side: int = 96, seed: int = 0, travel: float = 0.15):
    """The procedural puppet (``side`` px) walking right across a ``h`` x ``w`` grey frame (from
    x 0.125 w, ``travel`` w in all).
    Returns ``(frames, boxes)`` with each frame's puppet square ``(x0, y0, x1, y1)``."""
    from fomm.data.synthetic import generate_video

    video = generate_video("puppet", "train", 0, seed, n, side)["frames"]
    bg = background(h, w, 3, 90, 130)
    frames, boxes = [], []
    for t in range(n):
        x0 = int(round(w * (0.125 + travel * t / max(n - 1, 1))))
        y0 = (h - side) // 2
        frame = bg.copy()
        frame[y0 : y0 + side, x0 : x0 + side] = video[t]
        frames.append(frame)
        boxes.append((x0, y0, x0 + side, y0 + side))
    return frames, np.asarray(boxes, float)
