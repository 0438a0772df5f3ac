"""Cropping files: a photo to a square face crop, a video to a face-following crop (streaming)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from fomm.atomic import atomic_path, same_file
from fomm.errors import FommError
from fomm.faces.plan import SCALE, Box, CropPlan, CropSegment, check_size, crop_image, progress_bar

SEGMENT_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".gif")


def check_input(src: Path) -> None:
    if not src.exists():
        raise FommError(f"{src} not found; check the path of the video or image to crop")


def _copy_file(src: Path, out: Path) -> None:
    with atomic_path(out) as tmp:
        shutil.copyfile(src, tmp)


def crop_image_file(
    src: str | os.PathLike,
    out: str | os.PathLike,
    size: int = 256,
    *,
    scale: float = SCALE,
    shift_up: float | None = None,
    tracker: str = "auto",
) -> Box | None:
    """Crop the face of image ``src`` into ``out`` (``size`` x ``size``), atomically.

    Returns the crop box in ``src`` pixels, or ``None`` when no face was found, in which case
    ``out`` receives the input unchanged (a byte copy when the extensions match).
    """
    from fomm.data import video_io

    src, out = Path(src), Path(out)
    check_input(src)
    size = check_size(size)
    image = video_io.read_image(src)
    cropped, box = crop_image(image, size, scale=scale, shift_up=shift_up, tracker=tracker, name=src.name)
    if box is None:
        if not same_file(src, out):
            if src.suffix.lower() == out.suffix.lower():
                _copy_file(src, out)
            else:
                video_io.write_image(out, image)
        return None
    video_io.write_image(out, cropped)  # atomic
    return box


def crop_video_file(
    src: str | os.PathLike,
    out: str | os.PathLike,
    size: int = 256,
    *,
    progress: bool = True,
    split_dir: str | os.PathLike | None = None,
    **crop_options,
) -> CropPlan:
    """Crop the face of video ``src`` into ``out``: ``size`` x ``size`` frames, the source's frame
    count, fps and audio, written atomically. Two streaming passes (plan, then crop).

    ``crop_options`` as :meth:`CropPlan.from_video` (``scale``, ``smoothing``, ``boxes_json``,
    ``tracker``, ...). With ``split_dir`` each segment is also written to its own file there,
    ``<out stem>_<k>_<first>-<last><out suffix or .mp4>`` (without audio). Returns the plan
    (``plan.segments``, ``plan.boxes``, ``plan.tracker``); with no face found (``not plan.found``)
    ``out`` receives the input unchanged (a byte copy when both are files with the same
    extension, else re-encoded frames).
    """
    from fomm.data import video_io

    src, out = Path(src), Path(out)
    check_input(src)
    size = check_size(size)
    info = video_io.probe(src)
    boxes_json = crop_options.pop("boxes_json", None)  # written once the video is
    plan = CropPlan.from_video(src, size, progress=progress, **crop_options)
    audio = src if info.has_audio else None
    if not plan.found:
        if src.is_file() and src.suffix.lower() == out.suffix.lower():
            if not same_file(src, out):
                _copy_file(src, out)
        elif not same_file(src, out):
            video_io.write_video(out, video_io.iter_frames(src), info.fps, audio_from=audio)
    else:
        frames: Iterable = video_io.iter_frames(src)
        if progress:
            frames = progress_bar(frames, src, f"cropping {src.name}")
        _write_crops(plan, frames, out, info.fps, audio, split_dir)
    if boxes_json is not None:
        plan.write_json(boxes_json)
    return plan


def _write_crops(plan: CropPlan, frames: Iterable, out: Path, fps: float, audio, split_dir) -> None:
    from fomm.data import video_io

    split = Path(split_dir) if split_dir is not None else None
    seg_suffix = out.suffix if out.suffix.lower() in SEGMENT_SUFFIXES else ".mp4"
    seg_starts = {s.start: k for k, s in enumerate(plan.segments)}
    # VideoWriter writes atomically: an error anywhere below leaves no partial output.
    with contextlib.ExitStack() as stack:
        writer = stack.enter_context(video_io.VideoWriter(out, fps, audio_from=audio))
        seg_stack = stack.enter_context(contextlib.ExitStack())
        seg_writer = None
        for index, frame in enumerate(frames):
            cropped = plan.apply(index, frame)
            writer.write(cropped)
            if split is None:
                continue
            if index in seg_starts:
                seg_stack.close()  # finishes the previous segment's file
                k = seg_starts[index]
                seg: CropSegment = plan.segments[k]
                name = f"{out.stem}_{k:03d}_{seg.start}-{seg.end - 1}{seg_suffix}"
                seg_writer = seg_stack.enter_context(video_io.VideoWriter(split / name, fps))
            seg_writer.write(cropped)
