"""The sources: one photo or many (a list, a folder, a glob pattern), loaded and, with ``--crop``,
cropped around the face."""

from __future__ import annotations

import glob
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fomm.animation.options import AnimateOptions
from fomm.data import video_io
from fomm.data.image_ops import check_finite, to_rgb_float01
from fomm.errors import FommError
from fomm.faces import crop_image, make_tracker
from fomm.faces.plan import crop_at


def check_input(path, what: str, hint: str) -> Path:
    """``path`` as a Path when it exists, else a FommError ``<what> <path> not found; <hint>``."""
    p = Path(path)
    if not p.exists():
        raise FommError(f"{what} {p} not found; {hint}")
    return p


def source_list(source) -> list | None:
    """The sources when ``source`` names many (a list or tuple, a folder, a glob pattern that
    matches no file itself), else ``None`` (one image path or one array)."""
    if isinstance(source, (list, tuple)):
        if not source:
            raise FommError("the list of sources is empty; pass at least one image")
        return list(source)
    if not isinstance(source, (str, os.PathLike)):
        return None
    p = Path(source)
    if p.is_dir():
        files = video_io.list_frame_files(p)
        if not files:
            raise FommError(f"folder {p} holds no images (.png/.jpg); put the photos to animate there")
        return files
    if not p.exists() and glob.has_magic(os.fspath(source)):
        files = sorted(Path(f) for f in glob.glob(os.fspath(source)) if video_io.is_image_path(f))
        if not files:
            raise FommError(f"no image matches {source}; check the pattern (e.g. 'photos/*.jpg', quoted)")
        return files
    return None


def _source_name(source, index: int | None = None) -> str:
    if isinstance(source, (str, os.PathLike)):
        return f"source image {source}"
    return "the source image" if index is None else f"source image {index}"


def load_source(source, index: int | None = None) -> tuple[np.ndarray, str, Path | None]:
    """``(image, name, path)``: uint8 RGB from a file, float32 RGB in [0, 1] from an array."""
    name = _source_name(source, index)
    if not isinstance(source, (str, os.PathLike)):
        arr = np.asarray(source.detach().cpu().numpy() if hasattr(source, "detach") else source)
        check_finite(arr, name)
        return to_rgb_float01(arr, name, ndim=3), name, None
    path = check_input(source, "source image", "check the path of the photo to animate")
    if path.is_dir() or video_io.is_video_path(path):
        raise FommError(
            f"source {path} is a video, not an image; pass one photo (.png/.jpg), e.g. a frame exported from the video"
        )
    return video_io.read_image(path), name, path


def source_notes(shape_hw, frame_shape, name: str) -> None:
    """Warn (one line each) when the source is far smaller than the model input or far from square."""
    h, w = int(shape_hw[0]), int(shape_hw[1])
    fh, fw = frame_shape
    if min(h, w) * 4 < min(fh, fw):
        warnings.warn(
            f"{name} is {w}x{h}, far smaller than the model's {fw}x{fh} input: it was enlarged "
            f"{min(fh, fw) / min(h, w):.3g}x, expect a blurry result",
            UserWarning,
            stacklevel=3,
        )
    if max(h, w) > 2 * min(h, w):
        warnings.warn(
            f"{name} is {w}x{h} (aspect {max(h, w) / min(h, w):.3g}:1), far from square: it was squashed "
            f"to {fw}x{fh}; crop it to a square first (or use --crop on faces)",
            UserWarning,
            stacklevel=3,
        )


@dataclass
class Source:
    """One loaded source: ``image`` as the model gets it (the face crop with ``--crop``), the
    ``full`` photo, the crop ``box`` in it and the ``tracker`` that found the face (or None)."""

    image: np.ndarray
    name: str
    full: np.ndarray
    box: tuple | None = None
    tracker: str | None = None


@dataclass(frozen=True)
class Checked:
    """What :func:`check_sources` found in one source: with ``--crop``, the face ``box`` and the
    ``tracker`` that found it (so that animating the source finds no face again)."""

    box: tuple | None = None
    tracker: str | None = None


def check_sources(sources: list, o: AnimateOptions, frame_shape, crop_size: int) -> list[Checked]:
    """Read every source (the decoder's checks: file, pixel limit, corrupt data, finite values)
    and with ``--crop`` find its face, before any is animated: a bad photo late in a folder is one
    FommError and no result is written. The size notes are said here, once per source. The pixels
    are not kept (a folder of large photos need not fit in memory): each source is read again,
    by :func:`prepare_source` with its :class:`Checked`, when its turn comes."""
    checked = []
    for index, source in enumerate(sources):
        src = prepare_source(source, index, o, frame_shape, crop_size)
        checked.append(Checked(src.box, src.tracker))
    return checked


def prepare_source(source, index, o: AnimateOptions, frame_shape, crop_size: int, checked: Checked | None = None):
    """Load (and with ``--crop`` crop) one source; ``checked``: what :func:`check_sources` found
    in it (its notes were said then and its face box is reused)."""
    image, name, _path = load_source(source, index)
    if checked is not None:
        cropped = image if checked.box is None else crop_at(image, checked.box, crop_size)
        return Source(cropped, name, image, checked.box, checked.tracker)
    if not o.crop:
        source_notes(image.shape[:2], frame_shape, name)
        return Source(image, name, image)
    tracker = make_tracker(o.crop_options.get("tracker", "auto"), confirm=1)
    scale = {"scale": o.crop_options["scale"]} if "scale" in o.crop_options else {}
    cropped, box = crop_image(image, crop_size, required=True, name=name, tracker=tracker, **scale)
    return Source(cropped, name, image, box, tracker.name)
