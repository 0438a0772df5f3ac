"""File to file: animate photos with the motion of a driving video and write the results.

:func:`animate_video` (also ``fomm.animate_video``) is the Python entry point; ``fomm animate``,
``fomm demo`` and ``fomm app`` call it with an :class:`~fomm.animation.options.AnimateOptions`.
The driving video is streamed (decode -> batch -> animate -> encode), never held in memory, so
long videos need no more memory than short ones. The result keeps the driving video's frame
count and frame rate and, for .mp4/.mov/.mkv outputs, its audio. Outputs (and ``save_frames``
folders) are written atomically: an error or Ctrl-C leaves nothing behind.

Inputs, as the rest of fomm reads them (:mod:`fomm.data.image_ops`): uint8 or float in [0, 1],
gray replicated, alpha composited over white; NaN/inf anywhere is an error naming how many and
where. A source far smaller than the model's input or far from square is warned about; a
driving video that is not square is centre-cropped (``driving_fit='crop'``), letterboxed
(``'pad'``) or squashed (``'stretch'``), and the choice is warned once.

Many sources (a list, a folder or a glob pattern) are all read, and with ``crop`` their faces
found, before the first is animated (a bad photo anywhere is one error and no result is
written); they share one model and one pass of driving keypoints: the driving video is decoded and its keypoints computed once, cached, and each
source only runs the generator; ``best_frame='auto'`` compares each source with those cached
keypoints, or, by face landmarks, with the driving video's face poses (found once, with one more
decode, for the first source that has a face). The driving panels
of ``layout='side-by-side'`` are spooled, at the model's size, to an unlinked temporary file
during that one decode and replayed from it for each source (memory: one frame; disk:
``T x H x W x 3`` bytes; if the file cannot be written, each source decodes the video again).

The steps live beside this file: :mod:`~fomm.animation.options` (what to do),
:mod:`~fomm.animation.sources` (photos), :mod:`~fomm.animation.driving` (the driving video),
:mod:`~fomm.animation.best_frame`, :mod:`~fomm.animation.output` (frames and writers) and
:mod:`~fomm.animation.results` (what comes back).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from fomm.animation import engine as animation_engine
from fomm.animation.best_frame import set_initial
from fomm.animation.driving import DrivingVideo, FrameSpool, crop_driving, driving_keypoints
from fomm.animation.options import AnimateOptions
from fomm.animation.output import Panels, check_save_frames, output_kind, output_notes, render, source_panel, write
from fomm.animation.progress import ProgressReporter
from fomm.animation.results import AnimateResult, ManyResult
from fomm.animation.sources import Checked, Source, check_input, check_sources, prepare_source, source_list
from fomm.atomic import same_file
from fomm.errors import FommError, plural
from fomm.faces.paste_back import PasteBack
from fomm.models.registry import missing_hint

__all__ = ["AnimateOptions", "AnimateResult", "ManyResult", "animate_video"]


# ----------------------------------------------------------------------------------------------
# Model and engine
# ----------------------------------------------------------------------------------------------
def _load_model(model, checkpoint, config, o: AnimateOptions):
    """The model given, or the one :func:`fomm.models.checkpoint.load_model` (the one way in to
    weights: names, file checks, formats, device) makes of ``checkpoint``."""
    if model is not None:
        return model
    from fomm.models.checkpoint import load_model

    return load_model(checkpoint, config=config, device=o.device, backend=o.backend)


# ----------------------------------------------------------------------------------------------
# One source
# ----------------------------------------------------------------------------------------------
@dataclass
class _Shared:
    """What the sources of one call share: the driving keypoints (many sources: one decode), the
    driving video's face poses (found for the first source that needs them) and the spool of
    side-by-side driving panels."""

    kp_batches: list | None = None
    poses: dict = field(default_factory=dict)
    spool: FrameSpool | None = None


def _animate_one(
    engine, source, src: Source, driving: DrivingVideo, out: Path, kind: str, o: AnimateOptions, save_frames, shared
) -> AnimateResult:
    """Animate one prepared source ``src`` (from ``source``) into ``out``."""
    engine.set_source(src.image)
    panels = Panels()
    if o.paste_back and src.box is not None:
        panels.paster = PasteBack(src.full, src.box, color_match=o.color_match)
    best, method = set_initial(engine, driving, o, src, shared.kp_batches, shared.poses)
    if o.layout == "side-by-side":
        pasted = panels.paster is not None
        panels.source_panel = source_panel(engine, src.image, o, src.full if pasted else None, src.box)
    audio_from = driving.path if (o.audio and driving.has_audio and kind == "container") else None
    output_notes(kind, driving, o.audio)
    start = time.perf_counter()
    desc = f"animating {Path(source).name if isinstance(source, (str, os.PathLike)) else driving.name}"
    with ProgressReporter(o.progress, driving.total, desc) as bar:
        frames = render(engine, driving, o, panels, shared.kp_batches, shared.spool)
        count, size = write(frames, out, driving.fps, audio_from, save_frames, bar)
    seconds = time.perf_counter() - start
    return AnimateResult(
        out=out,
        frames=count,
        fps=driving.fps,
        seconds=seconds,
        frames_per_second=count / seconds if seconds > 0 else float("inf"),
        best_frame=best,
        best_frame_method=method,
        size=size,
        audio=audio_from is not None,
        save_frames=save_frames,
        kind=kind,
        source=source if isinstance(source, (str, os.PathLike)) else src.name,
        crop_box=src.box,
        tracker=None if driving.plan is None else {"source": src.tracker, "driving": driving.plan.tracker},
        pasted_back=panels.paster is not None,
    )


# ----------------------------------------------------------------------------------------------
# Many sources
# ----------------------------------------------------------------------------------------------
def _many_outputs(sources: list, out: Path, save_frames: Path | None) -> list[tuple[Path, Path | None]]:
    if out.suffix and not out.is_dir():
        raise FommError(
            f"--out {out} is a file, but a list, folder or pattern of sources ({plural(len(sources), 'source')}) "
            "gives one video per source; pass a folder, e.g. --out results/"
        )
    names = [Path(s).stem if isinstance(s, (str, os.PathLike)) else f"source-{i:03d}" for i, s in enumerate(sources)]
    seen: dict[str, int] = {}
    for i, n in enumerate(names):
        if n in seen:
            raise FommError(
                f"sources {sources[seen[n]]} and {sources[i]} would both be written to {n}.mp4; rename one of them"
            )
        seen[n] = i
    return [(out / f"{n}.mp4", None if save_frames is None else save_frames / n) for n in names]


def _animate_many(
    engine, sources: list, checked: list[Checked], driving: DrivingVideo, out: Path, o: AnimateOptions, targets
) -> ManyResult:
    """Animate every source (each already read and checked: :func:`check_sources`) into its target."""
    out.mkdir(parents=True, exist_ok=True)
    # a decoded file's frames are spooled for the panels; an array's are in memory already
    spool = FrameSpool() if o.layout == "side-by-side" and driving.path is not None else None
    crop_size = max(driving.frame_shape)
    with contextlib.closing(spool) if spool is not None else contextlib.nullcontext():
        shared = _Shared(driving_keypoints(engine, driving, o.progress, spool), spool=spool)
        start = time.perf_counter()
        results = []
        for i, (source, (target, frames_dir)) in enumerate(zip(sources, targets)):
            src = prepare_source(source, i, o, driving.frame_shape, crop_size, checked[i])
            results.append(_animate_one(engine, source, src, driving, target, "container", o, frames_dir, shared))
    seconds = time.perf_counter() - start
    frames = sum(r.frames for r in results)
    return ManyResult(
        out=out,
        outputs=tuple(results),
        sources=len(results),
        frames=frames,
        fps=driving.fps,
        seconds=seconds,
        frames_per_second=frames / seconds if seconds > 0 else float("inf"),
    )


# ----------------------------------------------------------------------------------------------
# Python API
# ----------------------------------------------------------------------------------------------
def animate_video(
    source,
    driving,
    checkpoint=None,
    model=None,
    out=None,
    config=None,
    options: AnimateOptions | None = None,
    **overrides,
) -> AnimateResult | ManyResult:
    """Animate the image ``source`` with the video ``driving`` and write the result to ``out``.

    ``source``: an image path or an ``(H, W, C)`` array; or many: a list of them, a folder of
    images or a glob pattern (``out`` is then a folder, one ``<source stem>.mp4`` each; the model
    is loaded and the driving keypoints computed once). ``driving``: a video, GIF or frame
    folder, or a ``(T, H, W, C)`` array (frame rate: the ``fps`` option, default 25). Any size:
    frames are resized to the model's. The model comes from ``checkpoint`` (a file, a bundled or a
    published name, or with the onnxruntime backend an ONNX export folder; + ``config``: a preset name or YAML, needed only when the checkpoint does not say) on the
    ``device`` option, or is passed as ``model``. ``out``: .mp4/.mov/.mkv (H.264, with the driving
    audio unless ``audio=False``), .gif (no audio), .png (all frames side by side in one strip)
    or a folder path for PNG frames; missing folders are created.

    What to do: ``options`` (an :class:`~fomm.animation.options.AnimateOptions`; default: its
    defaults) with ``overrides``, any of its fields as keyword arguments (``layout="side-by-side"``,
    ``crop=True``, ``precision="fast"``, ...): they are checked once, before anything is read.

    Returns an :class:`~fomm.animation.results.AnimateResult` (``out``, ``frames``, ``fps``,
    ``seconds``, ``frames_per_second``, ``best_frame``, ``best_frame_method``, ``size`` as
    ``(width, height)``, ``audio``, ``save_frames``, ``kind``, ``source``, ``crop_box``,
    ``tracker``, ``pasted_back``), or for many sources a
    :class:`~fomm.animation.results.ManyResult` (``outputs``: one AnimateResult each). Both read
    like dicts too: ``result["frames"]``.
    """
    o = AnimateOptions.build(options, **overrides)
    if out is None:
        raise FommError("no output path given; pass --out result.mp4 (or .gif, or a folder for PNG frames)")
    sources = source_list(source)
    out = Path(out)
    kind = "folder" if sources is not None else output_kind(out)
    save = check_save_frames(o.save_frames, out, kind)
    targets = None if sources is None else _many_outputs(sources, out, save)  # before the slow steps
    if sources is None and isinstance(source, (str, os.PathLike)):
        source = check_input(source, "source image", "check the path of the photo to animate")
    if isinstance(driving, (str, os.PathLike)):
        driving = check_input(driving, "driving video", "check the path of the video whose motion to copy")
    for name, path in (("source image", source), ("driving video", driving)):
        if isinstance(path, Path) and same_file(path, out):
            raise FommError(f"--out {out} is the {name}; choose another output path")
    if model is None and checkpoint is None:
        raise FommError(f"no model given; {missing_hint()}")
    drv = DrivingVideo(driving, None, o.driving_fit, o.fps)  # probed before the (slow) model load
    model = _load_model(model, checkpoint, config, o)
    frame_shape = drv.frame_shape = tuple(int(s) for s in model.frame_shape)
    crop_size = max(frame_shape)
    if sources is None:
        src = prepare_source(source, None, o, frame_shape, crop_size)
    else:  # every source read (and its face found) before the first result is written
        checked = check_sources(sources, o, frame_shape, crop_size)
    if o.crop:
        crop_driving(drv, crop_size, o.crop_options, o.progress)
    drv.fit_note()
    engine = animation_engine.engine_for(model, o)
    if sources is not None:
        return _animate_many(engine, sources, checked, drv, out, o, targets)
    return _animate_one(engine, source, src, drv, out, kind, o, save, _Shared())
