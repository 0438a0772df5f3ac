"""Preparing one video: analyse (shots, motion, the subject's tracks), plan the clips, write them.

Every file is made in the process's staging folder and moved into place when complete (see
:mod:`fomm.prepare.staging`). The result is a *record*, written last to
``DATA/.prepare/videos/<source id>.json``:
a video with a record is finished (its clips were written before it), one without is prepared
again from the start by the next run. Everything in a record depends only on the video and the
clip options, so any worker, shard or rerun writes the same record.

Two passes over the file: the first decodes small frames (:data:`~fomm.prepare.options.ANALYSIS_SIDE`)
for the tracker, the second decodes the frames at full size up to the last clip's end and crops them.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import av
import cv2
import numpy as np

from fomm.atomic import atomic_write_bytes
from fomm.errors import FommError, plural
from fomm.prepare import clips as _clips
from fomm.prepare import staging
from fomm.prepare.decode import NotAVideo, Reader, analysis_hw
from fomm.prepare.options import ANALYSIS_SIDE, PrepareOptions
from fomm.prepare.shots import ShotAnalysis
from fomm.prepare.track import MotionTracker, face_tracks, fit_to_shots, full_tracks, stride_for

STATE = ".prepare"  # DATA/.prepare: per-video records, thumbnails, the lock


def record_path(out: Path, source_id: str) -> Path:
    return out / STATE / "videos" / f"{source_id}.json"


def thumb_path(out: Path, name: str) -> Path:
    return out / STATE / "thumbs" / f"{name}.jpg"


def clip_path(out: Path, split: str, name: str, fmt: str) -> Path:
    return out / split / (f"{name}.mp4" if fmt == "mp4" else name)


def read_record(out: Path, source_id: str) -> dict | None:
    try:
        return json.loads(record_path(out, source_id).read_text())
    except (OSError, ValueError):
        return None


def finished(record: dict | None, out: Path, fingerprint: str, split: str) -> bool:
    """Whether ``record`` is a finished result for these options and this split (its clips exist)."""
    if not record or record.get("fingerprint") != fingerprint or record.get("split") != split:
        return False
    fmt = record.get("format", "mp4")
    return all(clip_path(out, c["split"], c["name"], fmt).exists() for c in record.get("clips", []))


def _analyse(reader: Reader, opts: PrepareOptions) -> tuple[list, ShotAnalysis, tuple[int, int], str]:
    """``(tracks in source pixels, shot analysis, analysis size, tracker name)``."""
    hw = reader.header.hw
    small = analysis_hw(hw, ANALYSIS_SIDE)
    analysis = ShotAnalysis()
    frames = analysis.watch(reader.frames(small))
    name = ""
    if opts.crop == "full":
        for _ in frames:
            pass
        tracks = full_tracks(analysis.shots(reader.count), small)
    elif opts.category == "face":
        from fomm.faces.detect import make_tracker

        tracker = make_tracker(opts.tracker, confirm=2)
        stride = stride_for(reader.header.fps)
        tracks = face_tracks(frames, tracker, stride=stride, max_lost=opts.max_lost)
        tracks = fit_to_shots(tracks, analysis.shots(reader.count), stride - 1)
        name = tracker.name
    else:
        motion = MotionTracker()
        for index, frame in enumerate(frames):
            if analysis.cuts and analysis.cuts[-1] == index:
                motion.reset()
            motion.observe(frame)
        tracks = motion.tracks(analysis.shots(reader.count), max_lost=opts.max_lost)
        name = "motion (frame differencing)"
    factor = np.array([hw[1] / small[1], hw[0] / small[0]] * 2)
    return [t.scaled(factor) for t in tracks], analysis, small, name


def _truncation(reader: Reader) -> str | None:
    expected = reader.header.num_frames
    if reader.error is None and (expected is None or reader.count >= expected - 2):
        return None
    counted = f"{reader.count} of {plural(expected, 'frame')}" if expected else plural(reader.count, "frame")
    why = f" ({reader.error})" if reader.error else ""
    return f"truncated or corrupt: {counted} decode{why}; the decodable part was used"


def prepare_video(job: dict) -> dict:
    """Prepare the video of ``job`` (``path``, ``rel``, ``id``, ``split``, ``out``, ``options``)
    and write its record; returns the record."""
    opts = PrepareOptions(**job["options"])
    out, rel = Path(job["out"]), job["rel"]
    record = {
        "source": rel,
        "id": job["id"],
        "split": job["split"],
        "fingerprint": opts.fingerprint(),
        "format": opts.format,
        "clips": [],
        "dropped": [],
        "warnings": [],
    }
    _remove_previous(out, job["id"])
    try:
        _prepare(Path(job["path"]), out, opts, record)
    except NotAVideo as exc:
        record["dropped"].append({"source": rel, "reason": exc.reason, "detail": exc.detail})
    except (FommError, av.FFmpegError, cv2.error) as exc:
        record["dropped"].append({"source": rel, "reason": "failed", "detail": str(exc).strip()})
    text = json.dumps(record, indent=1) + "\n"
    staged = staging.folder(out / STATE) / f"{job['id']}.json"
    atomic_write_bytes(staged, text.encode())
    staging.publish(staged, record_path(out, job["id"]))
    return record


def _prepare(path: Path, out: Path, opts: PrepareOptions, record: dict) -> None:
    reader = Reader(path)
    header = reader.header
    tracks, analysis, small, tracker = _analyse(reader, opts)
    n = reader.count
    record.update(fps=round(header.fps, 6), frames=n, frame_size=[header.hw[1], header.hw[0]], tracker=tracker)
    note = _truncation(reader)
    if note:
        record["warnings"].append({"source": record["source"], "warning": note})
    rel = record["source"]
    if not tracks:
        what = "no face found" if opts.category == "face" and opts.crop == "subject" else "nothing moves"
        record["dropped"].append({"source": rel, "reason": "no-subject", "detail": what})
        return
    plans, dropped = _clips.plan_clips(
        tracks,
        header.hw,
        analysis,
        small[0] / header.hw[0],
        margin=opts.margin,
        min_frames=opts.min_frames,
        min_size=opts.min_size,
    )
    record["dropped"].extend({"source": rel, **d} for d in dropped)
    if not plans:
        return
    names = [f"{record['id']}#{k}" for k in range(len(plans))]
    split = record["split"]
    paths = [clip_path(out, split, name, opts.format) for name in names]
    thumbs = [thumb_path(out, name) for name in names]
    stage = staging.folder(out / STATE)  # made there, moved into place when complete
    staged = [stage / p.name for p in paths], [stage / t.name for t in thumbs]
    hw, scaled = _clips.decode_size(plans, header.hw, opts.size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # odd sizes and the like: the clips are square and even
        frames = reader.frames(hw, stop=plans[-1].end)
        digests = _clips.write_clips(frames, scaled, staged[0], header.fps, opts.size, staged[1])
    for source, target in zip(staged[0] + staged[1], paths + thumbs):
        staging.publish(source, target)
    for name, plan, digest in zip(names, plans, digests):
        entry = {"name": name, "split": split, "source": rel, "start": plan.start, "end": plan.end}
        record["clips"].append({**entry, "box": list(plan.box), "sha1": digest})


def _remove_previous(out: Path, source_id: str) -> None:
    """Remove the clips of an earlier record of this source (other options or split): the new
    ones replace them."""
    old = read_record(out, source_id)
    if not old:
        return
    import shutil

    for clip in old.get("clips", []):
        path = clip_path(out, clip["split"], clip["name"], old.get("format", "mp4"))
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            os.unlink(path)
    os.unlink(record_path(out, source_id))
