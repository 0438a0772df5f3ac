"""``DATA/prepare.json`` and the contact sheet ``DATA/prepare.png``, merged from the per-video records.

Every run (every shard) ends by merging, under a file lock (``DATA/.prepare/merge.lock``), all the
records present for the videos of the raw folder, whoever wrote them. Shards that run at once on
several machines into one shared folder therefore leave a complete ``prepare.json`` behind the
last one to finish, whatever the order; ``complete`` says whether every video was there.

Nothing in the files depends on time, machine or worker count: the same folder and options give
the same bytes.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
from filelock import FileLock, Timeout

from fomm.atomic import atomic_write_bytes
from fomm.errors import FommError
from fomm.prepare.find import Source
from fomm.prepare.options import PrepareOptions
from fomm.prepare.video import STATE, finished, read_record, thumb_path

MANIFEST = "prepare.json"
SHEET = "prepare.png"
SHEET_CLIPS = 24  # at most this many sample clips on the contact sheet
LOCK_TIMEOUT_S = 600


def merge(out: Path, raw: Path, sources: list[Source], skipped: list[dict], splits: dict, opts: PrepareOptions) -> dict:
    """Write ``prepare.json`` (and the contact sheet) from the records present; returns its content."""
    (out / STATE).mkdir(parents=True, exist_ok=True)
    lock = out / STATE / "merge.lock"
    try:
        with FileLock(str(lock), timeout=LOCK_TIMEOUT_S):
            manifest = build(out, raw, sources, skipped, splits, opts)
            _write_if_changed(out / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode())
            write_sheet(out, manifest["clips"])
    except Timeout:
        raise FommError(
            f"{lock} stayed locked for {LOCK_TIMEOUT_S} s; if no other fomm prepare is merging into {out}, "
            "delete the lock file and run again (finished videos are skipped)"
        ) from None
    return manifest


def build(out: Path, raw: Path, sources: list[Source], skipped: list[dict], splits: dict, opts) -> dict:
    fingerprint = opts.fingerprint()
    clips, dropped, warnings, done = [], list(skipped), [], 0
    for src in sources:
        record = read_record(out, src.id)
        if not finished(record, out, fingerprint, splits[src.rel]):
            continue
        done += 1
        clips.extend(record["clips"])
        dropped.extend(record["dropped"])
        warnings.extend(record["warnings"])
    clips.sort(key=lambda c: (c["source"], c["start"]))
    dropped.sort(key=lambda d: (d["source"], d.get("start", -1)))
    counts = Counter(c["split"] for c in clips)
    return {
        "complete": done == len(sources),
        "raw_dir": raw.resolve().as_posix(),
        "options": opts.clip_settings() | {"test_fraction": opts.test_fraction, "seed": opts.seed},
        "counts": {
            "videos": len(sources),
            "videos_done": done,
            "not_videos": len(skipped),
            "clips": len(clips),
            "train": counts.get("train", 0),
            "test": counts.get("test", 0),
            "frames": sum(c["end"] - c["start"] for c in clips),
            "dropped": dict(sorted(Counter(d["reason"] for d in dropped).items())),
        },
        "clips": clips,
        "dropped": dropped,
        "warnings": warnings,
    }


def _write_if_changed(path: Path, data: bytes) -> None:
    """Write ``data`` atomically unless ``path`` holds it already (a rerun touches nothing)."""
    try:
        if path.read_bytes() == data:
            return
    except OSError:
        pass
    atomic_write_bytes(path, data)


def sample(clips: list[dict], k: int = SHEET_CLIPS) -> list[dict]:
    """Up to ``k`` clips spread evenly over the list (first clip of many sources, not many of one)."""
    if len(clips) <= k:
        return list(clips)
    step = len(clips) / k
    return [clips[int(i * step)] for i in range(k)]


def write_sheet(out: Path, clips: list[dict]) -> Path | None:
    """The contact sheet: each sample clip's middle frame with its box, labelled with its name."""
    from fomm.data import video_io
    from fomm.data.drawing import contact_sheet

    images, labels = [], []
    for clip in sample(clips):
        path = thumb_path(out, clip["name"])
        if path.exists():
            images.append(video_io.read_image(path))
            labels.append(clip["name"])
    if not images:
        return None
    sheet = contact_sheet(images, columns=min(4, len(images)), gap=4, labels=labels, cell_size=(180, 320))
    ok, png = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if ok:
        _write_if_changed(out / SHEET, png.tobytes())
    return out / SHEET
