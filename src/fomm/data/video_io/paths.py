"""Source kinds, extensions and frame folders: what a path holds before anything is decoded."""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from fomm.errors import FommError

#: Frame rate reported for sources that have none (frame folders, images, strips).
DEFAULT_FPS = 25.0
#: Frame rate of a GIF whose frames have no delay.
GIF_DEFAULT_FPS = 10.0

CONTAINER_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".avi", ".webm", ".mkv"})
GIF_EXTENSIONS = frozenset({".gif"})
VIDEO_EXTENSIONS = CONTAINER_EXTENSIONS | GIF_EXTENSIONS
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})

SUPPORTED = "a video (.mp4 .mov .avi .webm .mkv), a .gif, an image (.png .jpg) or a folder of frames"


@dataclass
class VideoInfo:
    """What :func:`probe` learns about a source without decoding it all.

    ``num_frames`` is ``None`` when the container does not say (e.g. some .webm/.mkv files).
    ``width``/``height`` are those of the frames :func:`iter_frames` yields without resizing.
    """

    path: Path
    fps: float
    num_frames: int | None
    width: int
    height: int
    has_audio: bool


def is_video_path(path: str | os.PathLike) -> bool:
    """True for a video or GIF extension, or an existing folder (a folder of frames)."""
    p = Path(path)
    return p.suffix.lower() in VIDEO_EXTENSIONS or p.is_dir()


def is_image_path(path: str | os.PathLike) -> bool:
    """True for an image extension (.png .jpg .jpeg .bmp .webp .tif .tiff)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def file_in_the_way(path: str | os.PathLike) -> Path | None:
    """The file that stands where one of ``path``'s folders should be (``photo.png`` for
    ``photo.png/result.mp4``), or None: nothing can be written under it."""
    return next((parent for parent in Path(path).parents if parent.exists() and not parent.is_dir()), None)


def _natural_key(name: str):
    parts = re.split(r"(\d+)", name)
    return [int(p) if i % 2 else p.lower() for i, p in enumerate(parts)], name


def list_frame_files(folder: str | os.PathLike) -> list[Path]:
    """The image files of ``folder`` in natural order (hidden files and non-images ignored)."""
    folder = Path(folder)
    try:
        names = [
            e.name
            for e in os.scandir(folder)
            if not e.name.startswith(".") and Path(e.name).suffix.lower() in IMAGE_EXTENSIONS and e.is_file()
        ]
    except OSError as exc:
        raise FommError(
            f"cannot list frame folder {folder} ({exc.strerror}); check the path and its permissions"
        ) from None
    return [folder / n for n in sorted(names, key=_natural_key)]


def source_kind(path: str | os.PathLike) -> tuple[Path, str]:
    """Return ``(path, kind)`` with kind in 'folder', 'container', 'gif', 'image'."""
    p = Path(path)
    if not p.exists():
        raise FommError(f"{p} does not exist; check the path (expected {SUPPORTED})")
    if p.is_dir():
        return p, "folder"
    ext = p.suffix.lower()
    if ext in CONTAINER_EXTENSIONS:
        return p, "container"
    if ext in GIF_EXTENSIONS:
        return p, "gif"
    if ext in IMAGE_EXTENSIONS:
        return p, "image"
    raise FommError(f"{p} has an unsupported file type '{ext or '(none)'}'; pass {SUPPORTED}")


def _umask() -> int:
    """The process umask, read without changing it (Linux); 0o022 elsewhere."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def make_public(path: Path, folder: bool = False) -> None:
    """Give a temporary output the permissions a normally created file would have.

    ``tempfile`` creates files 0600 and folders 0700; outputs should follow the umask instead.
    """
    with contextlib.suppress(OSError):
        os.chmod(path, (0o777 if folder else 0o666) & ~_umask())
