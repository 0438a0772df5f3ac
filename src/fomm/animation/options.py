"""Every option of ``fomm animate`` in one checked, frozen object: :class:`AnimateOptions`.

The command line (:meth:`AnimateOptions.from_args`), the web app, live mode and the Python API
(``AnimateOptions(...)``, ``options.replace(...)``, or keyword arguments of
:func:`fomm.animate_video`) all build it; it is checked once, when it is built, and a mistake is
one :class:`fomm.errors.FommError` line naming the fix. The choices each option allows are the
constants below (and :data:`fomm.models.precision.PRECISIONS`); the command lines list them from
here. Light: importing this module does not import torch.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from fomm.data.image_ops import FIT_MODES
from fomm.errors import FommError
from fomm.models.precision import BACKENDS, PRECISIONS, check_precision

__all__ = [
    "BACKENDS",
    "BEST_FRAME_METHODS",
    "DEVICES",
    "DRIVING_FITS",
    "LAYOUTS",
    "PANEL_SIZE",
    "PRECISIONS",
    "AnimateOptions",
    "Progress",
    "check_best_frame",
]

LAYOUTS = ("result", "side-by-side")
DEVICES = ("auto", "cpu", "cuda", "mps")  # the command line's choices; the API also takes e.g. "cuda:1"
DRIVING_FITS = FIT_MODES
#: ``best_frame='auto'``: face landmarks (``fomm[faces]``, on a source with a face) or the model's keypoints.
BEST_FRAME_METHODS = ("auto", "landmarks", "keypoints")
#: Side-by-side panels are enlarged to at least this height, so that a 64-pixel model's result
#: and the panel labels can be seen.
PANEL_SIZE = 256

#: ``progress``: ``True`` (tqdm bars), ``False``, or ``callback(done, total_or_None, desc)``.
Progress = bool | Callable[[int, int | None, str], None]

# The command line's name of each crop option (for "used only with --crop").
_CROP_FLAGS = {
    "scale": "--crop-scale",
    "smoothing": "--crop-smoothing",
    "tracker": "--tracker",
    "boxes_json": "--boxes-json",
}
# argparse destinations whose name differs from the field they fill.
_ARG_NAMES = {"adapt_scale": "adapt_movement_scale"}


@dataclass(frozen=True)
class AnimateOptions:
    """What ``fomm animate`` does with a source and a driving video (all but the files and the model).

    Motion: ``relative`` (the driving motion since its first frame, applied to the source's
    keypoints; False: absolute), ``adapt_movement_scale`` (scale it by the keypoint hull ratio),
    ``avd`` (a TPSMM checkpoint's animation via disentanglement, its ``avd`` mode; ``relative`` is
    then ignored),
    ``best_frame`` (``None``: the first frame; ``'auto'``; or a frame index) to measure relative
    motion from, chosen for ``'auto'`` by ``best_frame_method`` (``'landmarks'``: face landmark
    alignment as the original's ``--find_best_frame``, needs ``fomm[faces]``; ``'keypoints'``;
    ``'auto'``: landmarks when installed and the source has a face), ``driving_fit``: a non-square
    driving video is centre-cropped (``'crop'``), letterboxed (``'pad'``) or squashed (``'stretch'``).

    Face crop: ``crop`` both inputs around the face (an error where none is found) with
    ``crop_options`` (keys of :meth:`fomm.faces.CropPlan.from_video`: ``scale``, ``smoothing``,
    ``tracker``, ``boxes_json``, ...); ``paste_back`` the animated crop into the full photo (with
    ``crop`` only; on by default), ``color_match`` its colours to the photo.

    What to write: ``layout`` ``'result'`` or ``'side-by-side'`` (source | driving | result panels,
    ``labels``, each at least ``panel_size`` pixels high); ``show_keypoints`` on every panel;
    ``save_frames``: also every output frame as PNG into this folder; ``audio``: the driving
    audio into .mp4/.mov/.mkv results; ``fps``: the frame rate of a driving *array* (default 25).

    Running: ``device`` (``'cpu'``, ``'cuda'``, ``'mps'`` or ``'auto'``; the command line's default
    is ``auto``), ``backend`` (``'torch'`` or ``'onnxruntime'``), ``precision`` (``'exact'`` or
    ``'fast'``, :mod:`fomm.models.precision`), ``batch_size`` (default: 4 on a CPU, 16 on a GPU),
    ``compile`` (``torch.compile``), ``progress`` (tqdm bars, none, or ``progress(done, total, desc)``).

    >>> options = AnimateOptions(crop=True, layout="side-by-side")
    >>> options.replace(precision="fast").precision
    'fast'
    """

    # motion
    relative: bool = True
    adapt_movement_scale: bool = True
    avd: bool = False
    best_frame: int | str | None = None
    best_frame_method: str = "auto"
    driving_fit: str = "crop"
    # face crop
    crop: bool = False
    crop_options: Mapping[str, object] = field(default_factory=dict)
    paste_back: bool = True
    color_match: bool = False
    # what to write
    layout: str = "result"
    show_keypoints: bool = False
    labels: bool = True
    panel_size: int = PANEL_SIZE
    save_frames: str | os.PathLike | None = None
    audio: bool = True
    fps: float | None = None
    # running
    device: str = "cpu"
    backend: str = "torch"
    precision: str = "exact"
    batch_size: int | None = None
    compile: bool = False
    progress: Progress = True

    def __post_init__(self) -> None:
        # Normalise what older calls pass (paste_back=None: "on with crop"; crop_options=None).
        _set(self, "paste_back", True if self.paste_back is None else bool(self.paste_back))
        _set(self, "crop_options", dict(self.crop_options or {}))
        _set(self, "best_frame", check_best_frame(self.best_frame))
        _check_choice(self.layout, LAYOUTS, "layout", "--layout")
        check_precision(self.precision)
        _check_choice(self.backend, BACKENDS, "backend", "--backend")
        _check_choice(self.driving_fit, DRIVING_FITS, "driving fit", "--driving-fit")
        _check_choice(self.best_frame_method, BEST_FRAME_METHODS, "best-frame method", "--best-frame-method")
        if self.best_frame_method != "auto" and self.best_frame != "auto":
            raise FommError(
                f"--best-frame-method {self.best_frame_method} is used only with --best-frame auto; "
                "add it or drop the method"
            )
        if self.batch_size is not None:
            _set(self, "batch_size", _whole(self.batch_size, "batch size", "use e.g. --batch-size 8"))
        _set(self, "panel_size", _whole(self.panel_size, "panel size", "use e.g. --panel-size 256"))
        if self.fps is not None and not (isinstance(self.fps, (int, float)) and self.fps > 0):
            raise FommError(f"fps must be a number > 0 (got {self.fps!r}); use e.g. fps=25")
        if not (isinstance(self.progress, bool) or callable(self.progress)):
            raise FommError(f"progress must be True, False or a callable (got {self.progress!r})")
        self._check_crop()

    def _check_crop(self) -> None:
        if not self.crop:
            flags = [_CROP_FLAGS.get(k, f"crop option '{k}'") for k in self.crop_options]
            flags += ["--color-match"] if self.color_match else []
            if flags:
                raise FommError(f"{', '.join(flags)}: used only with --crop; add --crop or drop them")
            return
        if self.color_match and not self.paste_back:
            raise FommError("--color-match needs the crop pasted back; drop --no-paste-back or --color-match")
        from fomm.faces.plan import plan_options  # OpenCV: only when cropping

        plan_options(self.crop_options)  # unknown names (TypeError) and values out of range (FommError)

    @property
    def pastes_back(self) -> bool:
        """Whether the animated crop goes back into the full photo (``crop`` and ``paste_back``)."""
        return self.crop and self.paste_back

    def replace(self, **changes) -> AnimateOptions:
        """A copy with ``changes`` (checked again); unknown names are a TypeError naming the closest."""
        _check_names(changes)
        return dataclasses.replace(self, **changes)

    @classmethod
    def build(cls, options: AnimateOptions | None = None, **changes) -> AnimateOptions:
        """``options`` (or the defaults) with ``changes``: how :func:`fomm.animate_video` reads its
        keyword arguments."""
        if options is not None and not isinstance(options, AnimateOptions):
            raise TypeError(f"options must be an AnimateOptions, not {type(options).__name__}")
        return (options or cls()).replace(**changes) if changes else (options or cls())

    @classmethod
    def from_args(cls, args, **changes) -> AnimateOptions:
        """The options of parsed arguments (``argparse.Namespace``): each field from the argument of
        its name (``--adapt-scale`` fills ``adapt_movement_scale``; ``--crop-scale``,
        ``--crop-smoothing``, ``--tracker`` and ``--boxes-json`` fill ``crop_options``); fields
        without an argument keep their default; ``changes`` win over both."""
        values = {_ARG_NAMES.get(k, k): v for k, v in vars(args).items()}
        names = {f.name for f in dataclasses.fields(cls)} - {"crop_options"}
        kwargs = {k: v for k, v in values.items() if k in names}
        crop_options = _crop_options_from_args(args)
        if crop_options is not None:
            kwargs["crop_options"] = crop_options
        kwargs.update(changes)
        _check_names(kwargs)
        return cls(**kwargs)


def _crop_options_from_args(args) -> dict | None:
    """The ``--crop-*`` arguments as ``crop_options`` (None when the parser has none): all of them
    with ``--crop``; without it only those changed from their defaults (so that the error names them)."""
    keys = {"crop_scale": "scale", "crop_smoothing": "smoothing", "tracker": "tracker", "boxes_json": "boxes_json"}
    if not any(hasattr(args, k) for k in keys):
        return None
    given = {option: getattr(args, arg) for arg, option in keys.items() if hasattr(args, arg)}
    if getattr(args, "crop", False):
        return given
    from fomm.faces.plan import SCALE  # OpenCV: the parser that has these options imported it already
    from fomm.faces.track import SMOOTHING

    defaults = {"scale": SCALE, "smoothing": SMOOTHING, "tracker": "auto", "boxes_json": None}
    return {k: v for k, v in given.items() if v != defaults[k]}


def check_best_frame(best_frame):
    """``None``, ``'auto'`` or a frame index >= 0 (a numeric string is accepted)."""
    if best_frame is None or best_frame == "auto":
        return best_frame
    if isinstance(best_frame, str):
        try:
            best_frame = int(best_frame)
        except ValueError:
            raise FommError(
                f"best frame '{best_frame}' is not 'auto' or a frame number; "
                f"use --best-frame auto or e.g. --best-frame 0"
            ) from None
    if isinstance(best_frame, bool) or not isinstance(best_frame, (int, np.integer)) or best_frame < 0:
        raise FommError(
            f"best frame {best_frame!r} is not 'auto' or a frame number >= 0; "
            f"use --best-frame auto or e.g. --best-frame 0"
        )
    return int(best_frame)


def _check_choice(value, choices, what: str, flag: str) -> None:
    if value not in choices:
        raise FommError(f"unknown {what} '{value}'; use one of {', '.join(choices)} ({flag})")


def _check_names(changes: Mapping) -> None:
    names = [f.name for f in dataclasses.fields(AnimateOptions)]
    for name in changes:
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; options are {', '.join(names)}"
            raise TypeError(f"unknown animation option {name!r}{hint}")


def _whole(value, what: str, hint: str) -> int:
    """``value`` as an int when it is a whole number >= 1 (8 or 8.0), else a FommError."""
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not (number and np.isfinite(value) and value == int(value) and value >= 1):
        raise FommError(f"{what} must be a whole number >= 1 (got {value!r}); {hint}")
    return int(value)


def _set(options: AnimateOptions, name: str, value) -> None:
    object.__setattr__(options, name, value)  # a frozen dataclass normalising its own fields
