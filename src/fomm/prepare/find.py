"""Finding the videos of a raw folder (or of a text file listing them) and naming them.

Every file under the folder (recursively, in sorted order, hidden files and folders skipped, and
the output folder skipped when it lies inside) is a candidate, except files whose extension says
they are something else (:data:`NOT_VIDEO`: images, text, subtitles, ...): those are reported as
``not-a-video`` at once. Whether a candidate is a video is then FFmpeg's to say, so any format PyAV
reads works whatever its extension. A text file (``.txt``, ``.lst``) given instead of a folder
lists one path per line (relative to the list's folder; blank lines and ``#`` comments skipped).

Each video gets a *source id* for its clip names ``<source id>#<n>``: its path relative to the
raw folder, without extension, with every run of characters other than letters, digits, ``-`` and
``_`` replaced by ``_`` (``phone/IMG 0001.MOV`` -> ``phone_IMG_0001``). Two paths that would get
the same id both get the first 8 hex digits of their path's SHA-1 appended.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from fomm.errors import FommError

NOT_VIDEO = frozenset(
    ".txt .md .json .csv .tsv .yaml .yml .xml .html .pdf .doc .docx .srt .vtt .ass .sub .nfo .log .py .sh .zip "
    ".tar .gz .7z .npz .npy .pt .pth .jpg .jpeg .png .bmp .tif .tiff .webp .heic .heif .dng .raw .cr2 "
    ".nef .psd .svg .wav .mp3 .aac .m4a .flac .ogg .opus .wma .ini .db .lock".split()
)
LIST_SUFFIXES = (".txt", ".lst")


@dataclass(frozen=True)
class Source:
    """One candidate video: ``path`` on disk, ``rel`` (POSIX path relative to the raw folder, as
    written in ``prepare.json``) and ``id`` (see the module docstring)."""

    path: Path
    rel: str
    id: str


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _walk(root: Path, skip: Path | None) -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not _hidden(d) and (skip is None or (here / d).resolve() != skip))
        found.extend(here / f for f in sorted(files) if not _hidden(f))
    return found


def _listed(list_file: Path) -> list[Path]:
    base = list_file.parent
    paths = []
    for line in list_file.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            p = Path(line).expanduser()
            paths.append(p if p.is_absolute() else base / p)
    return paths


def relative(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` as a POSIX string (absolute when outside it)."""
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def source_id(rel: str) -> str:
    stem = rel.rsplit(".", 1)[0] if "." in rel.rsplit("/", 1)[-1] else rel
    return re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_") or "video"


def find_sources(raw: str | os.PathLike, out: str | os.PathLike | None = None) -> tuple[list[Source], list[dict]]:
    """``(candidate videos, skipped)`` of a raw folder or list file; ``skipped`` entries are
    ``{"source", "reason": "not-a-video", "detail"}`` (also listed paths that do not exist)."""
    raw = Path(raw)
    if not raw.exists():
        raise FommError(f"{raw} does not exist; pass the folder of raw videos (or a .txt file listing them)")
    skip = Path(out).resolve() if out is not None else None
    if raw.is_dir():
        base, paths = raw, _walk(raw, skip)
    elif raw.suffix.lower() in LIST_SUFFIXES:
        base, paths = raw.parent, _listed(raw)
    else:
        raise FommError(f"{raw} is a file; pass the folder that holds the videos, or a .txt file listing them")
    sources, skipped, seen = [], [], set()
    for path in paths:
        rel = relative(path, base)
        if rel in seen:
            continue
        seen.add(rel)
        if not path.is_file():
            skipped.append({"source": rel, "reason": "not-a-video", "detail": "listed but not found"})
        elif path.suffix.lower() in NOT_VIDEO:
            skipped.append({"source": rel, "reason": "not-a-video", "detail": f"a {path.suffix.lower()} file"})
        else:
            sources.append(Source(path, rel, source_id(rel)))
    return _unique_ids(sources), skipped


def _unique_ids(sources: list[Source]) -> list[Source]:
    counts = Counter(s.id for s in sources)
    out = []
    for s in sources:
        if counts[s.id] > 1:
            s = Source(s.path, s.rel, f"{s.id}-{hashlib.sha1(s.rel.encode()).hexdigest()[:8]}")
        out.append(s)
    return sorted(out, key=lambda s: s.rel)
