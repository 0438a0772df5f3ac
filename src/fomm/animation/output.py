"""What is written: the output path's kind, the frames of each layout (result or labelled
source | driving | result panels, keypoints drawn, the face pasted back) and the writers."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fomm.animation.driving import DrivingVideo, FrameSpool
from fomm.animation.engine import batched, prepare_frames
from fomm.animation.options import AnimateOptions
from fomm.data import video_io
from fomm.data.drawing import default_radius, draw_keypoints, labelled_row, side_by_side
from fomm.data.image_ops import kp_to_pixels, pixels_to_kp, resize_frame, to_numpy, to_uint8
from fomm.errors import FommError

PANEL_LABELS = ("source", "driving", "result")
CONTAINER_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")


# ----------------------------------------------------------------------------------------------
# Output paths
# ----------------------------------------------------------------------------------------------
def output_kind(out: Path) -> str:
    """'container', 'gif', 'strip' or 'folder', or a FommError for an unsupported path."""
    blocker = video_io.paths.file_in_the_way(out)
    if blocker is not None:  # said before anything is animated, not when the first frame is written
        raise FommError(f"cannot write the result to {out}: {blocker} is a file, not a folder; choose another path")
    raw = os.fspath(out)
    if raw.endswith(("/", os.sep)) or out.is_dir() or out.suffix == "":
        return "folder"
    suffix = out.suffix.lower()
    if suffix in CONTAINER_SUFFIXES:
        return "container"
    if suffix == ".gif":
        return "gif"
    if suffix == ".png":
        return "strip"
    raise FommError(
        f"cannot write the result to {out}: unsupported extension '{out.suffix}'; use .mp4 "
        f"(or .mov/.mkv), .gif, .png (a strip), or a folder path without extension for PNG frames"
    )


def check_save_frames(save_frames, out: Path, kind: str) -> Path | None:
    """``save_frames`` as a Path (None: not asked for), or a FommError when it cannot be a folder."""
    if save_frames is None:
        return None
    save_frames = Path(save_frames)
    if save_frames.exists() and not save_frames.is_dir():
        raise FommError(f"--save-frames {save_frames} exists and is not a folder; choose a folder path")
    if kind == "folder" and save_frames.resolve() == out.resolve():
        raise FommError("--save-frames is the same folder as --out; drop --save-frames or choose another folder")
    return save_frames


def output_notes(kind: str, driving: DrivingVideo, audio: bool) -> None:
    if kind == "gif" and audio and driving.has_audio:
        warnings.warn("the driving video's audio is dropped: GIF has no audio (write .mp4 to keep it)", stacklevel=3)


# ----------------------------------------------------------------------------------------------
# Frames
# ----------------------------------------------------------------------------------------------
@dataclass
class Panels:
    """What side-by-side frames and paste-back need besides the animated batch."""

    source_panel: np.ndarray | None = None
    paster: object | None = None  # fomm.faces.paste_back.PasteBack


def keypoints_in_photo(keypoints, box, photo_hw) -> np.ndarray:
    """Keypoints ``(..., 2)`` in [-1, 1] on the face crop at ``box`` ``(x0, y0, x1, y1)``, as
    [-1, 1] keypoints on the ``(H, W)`` photo the crop was pasted back into."""
    x0, y0, x1, y1 = box
    pixels = kp_to_pixels(np.asarray(to_numpy(keypoints), np.float64), (y1 - y0, x1 - x0)) + (x0, y0)
    return pixels_to_kp(pixels, photo_hw)


def _draw_in_photo(images: np.ndarray, keypoints, box) -> np.ndarray:
    """Keypoints of the crop drawn on the photos it was pasted into, sized for the face."""
    kp = keypoints_in_photo(keypoints, box, images.shape[-3:-1])
    return draw_keypoints(images, kp, radius=default_radius((box[3] - box[1], box[2] - box[0])))


def source_panel(engine, image: np.ndarray, o: AnimateOptions, photo=None, box=None) -> np.ndarray:
    """The source panel: the model's input (enlarged), or the full ``photo`` when the face is
    pasted back into it; with the source keypoints when ``show_keypoints``."""
    kp = engine.kp_source["value"][0]
    if photo is not None:
        panel = to_uint8(photo)
        return _draw_in_photo(panel, kp, box) if o.show_keypoints else panel
    panel = to_uint8(prepare_frames(image, engine.model.frame_shape, "source image", ndim=3))
    if o.show_keypoints:
        panel = draw_keypoints(enlarge(panel, o.panel_size), kp)
    return panel


def enlarge(image: np.ndarray, height: int) -> np.ndarray:
    """``image`` resized (aspect kept) to ``height`` pixels high when it is lower."""
    h, w = image.shape[:2]
    if h >= height:
        return image
    return resize_frame(image, (height, max(1, int(round(w * height / h)))))


def compose(batch: dict, drivers, o: AnimateOptions, panels: Panels) -> list[np.ndarray]:
    """The output frames of one animated batch (uint8)."""
    side = o.layout == "side-by-side"
    results = to_uint8(batch["prediction"])
    if panels.paster is not None:
        results = np.stack([panels.paster(r) for r in results])
        if o.show_keypoints:
            results = _draw_in_photo(results, batch["kp_norm"]["value"], panels.paster.box)
    elif o.show_keypoints:
        results = np.stack([enlarge(r, o.panel_size if side else 0) for r in results])
        results = draw_keypoints(results, batch["kp_norm"]["value"])
    if not side:
        return list(results)
    drivers = to_uint8(np.stack(drivers))
    if o.show_keypoints:
        drivers = draw_keypoints(np.stack([enlarge(d, o.panel_size) for d in drivers]), batch["kp_driving"]["value"])
    rows = []
    for d, r in zip(drivers, results):
        row = [panels.source_panel, d, r]
        if o.labels:
            rows.append(labelled_row(row, PANEL_LABELS, min_height=o.panel_size))
        else:
            rows.append(side_by_side([enlarge(p, o.panel_size) for p in row]))
    return rows


def animate_cached(engine, kp_batches: list[dict]) -> Iterator[dict]:
    """``engine.run``'s batches, from cached driving keypoints (the generator only)."""
    for kp_driving in kp_batches:
        with torch.inference_mode():
            kp_norm = engine.normalized_keypoints(kp_driving)
            out = engine.inference.animate(engine.source, kp_norm, ("prediction",))
            prediction = out["prediction"].permute(0, 2, 3, 1).float().cpu().numpy()
        yield {"prediction": prediction, "kp_driving": kp_driving, "kp_norm": kp_norm}


def render(
    engine, driving: DrivingVideo, o: AnimateOptions, panels: Panels, kp_batches, spool: FrameSpool | None = None
) -> Iterator[list[np.ndarray]]:
    """Output frames, one list per batch, streaming; the driving panels come from ``spool`` when
    it holds them, else from a new decode."""
    side = o.layout == "side-by-side"
    if kp_batches is None:
        pending: list = []

        def tee() -> Iterator[np.ndarray]:
            for frame in driving.frames():
                if side:
                    pending.append(frame)
                yield frame

        for batch in engine.run(tee(), outputs=("prediction",)):
            n = len(batch["prediction"])
            drivers, pending[:n] = pending[:n], []
            yield compose(batch, drivers, o, panels)
        return
    if side:
        drivers = spool.replay() if spool is not None and spool.ok else driving.frames()
    chunks = batched(drivers, engine.batch_size) if side else None
    for batch in animate_cached(engine, kp_batches):
        yield compose(batch, next(chunks) if chunks is not None else None, o, panels)


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------
def write(frames: Iterator[list[np.ndarray]], out: Path, fps: float, audio_from, save_frames, bar) -> tuple:
    """Write every frame to ``out`` (and ``save_frames``); ``(count, (width, height))``."""
    count, size = 0, None
    with contextlib.ExitStack() as stack:
        # Writers are atomic: an exception (or Ctrl-C) below removes their temporary output.
        frames_writer = None
        if save_frames is not None:
            frames_writer = stack.enter_context(video_io.VideoWriter(os.fspath(save_frames) + os.sep, fps))
        writer = stack.enter_context(video_io.VideoWriter(out, fps, audio_from=audio_from))
        for batch in frames:
            for frame in batch:
                writer.write(frame)
                if frames_writer is not None:
                    frames_writer.write(frame)
            count += len(batch)
            size = (batch[0].shape[1], batch[0].shape[0])
            bar.update(len(batch))
        if count == 0:
            raise FommError("the driving video has no frames; pass a video with at least one frame")
    return count, size
