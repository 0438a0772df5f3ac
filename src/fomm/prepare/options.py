"""The options of ``fomm prepare``, checked, and the fingerprint of those that change the clips."""

from __future__ import annotations

import hashlib
import json
import numbers
from dataclasses import asdict, dataclass

from fomm.cpu import usable_cores
from fomm.errors import FommError
from fomm.faces.detect import TRACKERS
from fomm.faces.track import MAX_LOST

CATEGORIES = ("face", "object")
CROPS = ("subject", "full")
FORMATS = ("mp4", "png")
# The face's box is one face size (brows to chin) on the head: 0.4 on each side frames the whole
# head and the top of the shoulders (1.8 face sizes, as fomm crop). An object's box is its whole
# moving extent: a little room around it, as the original datasets' 10 %.
DEFAULT_MARGIN = {"face": 0.4, "object": 0.1}
ANALYSIS_SIDE = 360  # the tracker sees frames shrunk to this shorter side (px)
VERSION = 1  # of the clip rules: a change here makes every video be prepared again


@dataclass
class PrepareOptions:
    """See ``fomm prepare --help``; ``margin=None`` takes the category's default."""

    category: str = "face"
    crop: str = "subject"
    size: int = 256
    margin: float | None = None
    format: str = "mp4"
    min_frames: int = 32
    min_size: int = 128
    test_fraction: float = 0.1
    seed: int = 0
    tracker: str = "auto"
    max_lost: int = MAX_LOST
    workers: int | None = None
    shard: tuple[int, int] = (0, 1)
    progress: bool = True

    def checked(self) -> PrepareOptions:
        """A copy with defaults filled in; FommError naming the option for a bad value."""
        _choice("--category", self.category, CATEGORIES)
        _choice("--crop", self.crop, CROPS)
        _choice("--format", self.format, FORMATS)
        _choice("--tracker", self.tracker, TRACKERS)
        _whole("--size", self.size, 8, "256")
        _whole("--min-frames", self.min_frames, 2, "32")
        _whole("--min-size", self.min_size, 1, "128")
        _whole("--max-lost", self.max_lost, 0, "25")
        margin = DEFAULT_MARGIN[self.category] if self.margin is None else self.margin
        if self.crop == "full":
            margin = 0.0
        if not (isinstance(margin, numbers.Real) and 0 <= margin <= 5):
            raise FommError(f"--margin must be a number in [0, 5], got {margin!r}; use e.g. --margin 0.1")
        if not (isinstance(self.test_fraction, numbers.Real) and 0 <= self.test_fraction < 1):
            raise FommError(
                f"--test-fraction must be in [0, 1), got {self.test_fraction!r}; use e.g. --test-fraction 0.1"
            )
        workers = usable_cores() if self.workers is None else self.workers
        _whole("--workers", workers, 1, "2")
        out = PrepareOptions(**{**asdict(self), "margin": float(margin), "workers": int(workers)})
        out.shard = tuple(self.shard)
        return out

    def clip_settings(self) -> dict:
        """The options that decide the clips of a video (not which split or shard it is in)."""
        keys = ("category", "crop", "size", "margin", "format", "min_frames", "min_size", "tracker", "max_lost")
        return {"version": VERSION, **{k: getattr(self, k) for k in keys}}

    def fingerprint(self) -> str:
        text = json.dumps(self.clip_settings(), sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:16]


def _choice(flag: str, value, choices) -> None:
    if value not in choices:
        raise FommError(f"{flag} must be one of {', '.join(choices)}, got {value!r}; use e.g. {flag} {choices[0]}")


def _whole(flag: str, value, low: int, example: str) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise FommError(f"{flag} must be a whole number >= {low}, got {value!r}; use e.g. {flag} {example}")
