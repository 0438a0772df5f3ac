"""What :func:`fomm.animate_video` returns: :class:`AnimateResult` (one output) and
:class:`ManyResult` (many sources). Typed, frozen, and readable like the dicts they replace
(``result["frames"]``, ``result.get("tracker")``, ``dict(result)``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["AnimateResult", "ManyResult"]


class _ReadsLikeADict(Mapping):
    """``result[name]``, ``name in result``, ``result.get(name)``, ``dict(result)`` over the fields."""

    def __getitem__(self, name: str):
        if name not in self._names():
            raise KeyError(name)
        return getattr(self, name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def _names(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self))


@dataclass(frozen=True, eq=False)
class AnimateResult(_ReadsLikeADict):
    """One written output.

    ``size``: the output frames' ``(width, height)``; ``kind``: ``'container'`` (.mp4/.mov/.mkv),
    ``'gif'``, ``'strip'`` (.png) or ``'folder'``; ``best_frame_method``: ``'landmarks'`` or
    ``'keypoints'`` when ``best_frame='auto'`` chose, else None; ``tracker``: with ``crop``,
    ``{'source': name, 'driving': name}`` of the face trackers used (e.g. ``'dlib landmarks'``,
    ``'OpenCV Haar cascade'``), else None; ``crop_box``: the source crop ``(x0, y0, x1, y1)``.
    """

    out: Path
    frames: int
    fps: float
    seconds: float
    frames_per_second: float
    best_frame: int | None
    best_frame_method: str | None
    size: tuple[int, int]
    audio: bool
    save_frames: Path | None
    kind: str
    source: object
    crop_box: tuple | None
    tracker: dict | None
    pasted_back: bool


@dataclass(frozen=True, eq=False)
class ManyResult(_ReadsLikeADict):
    """Many sources animated with one driving video: ``outputs`` holds one :class:`AnimateResult`
    each (in ``out``, a folder); ``frames`` and ``frames_per_second`` count all of them."""

    out: Path
    outputs: tuple[AnimateResult, ...]
    sources: int
    frames: int
    fps: float
    seconds: float
    frames_per_second: float
