"""``fomm animate``: animate a source photo with the motion of a driving video, file to file.

:func:`animate_video` is the Python entry point; the command line wraps it. The driving video is
streamed (decode -> batch -> animate -> encode), never held in memory, so long videos need no
more memory than short ones. The result keeps the driving video's frame count and frame rate and,
for .mp4/.mov/.mkv outputs, its audio. Outputs (and ``--save-frames`` folders) are written
atomically: an error or Ctrl-C leaves nothing behind.

Passes over the driving video: one to animate; plus one to plan the crop (``--crop``) and, with
``--best-frame``, one to find the frame (``auto``) and one (partial) to read it.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import sys
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from fomm.cli import positive_int, summary
from fomm.errors import FommError

LAYOUTS = ("result", "side-by-side")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("exact", "fast")
_CONTAINER_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")
_OUTPUT_SUFFIXES = _CONTAINER_SUFFIXES + (".gif", ".png")


# ----------------------------------------------------------------------------------------------
# Argument checks
# ----------------------------------------------------------------------------------------------
def _output_kind(out: Path) -> str:
    """'container', 'gif', 'strip' or 'folder', or a FommError for an unsupported path."""
    raw = os.fspath(out)
    if raw.endswith(("/", os.sep)) or out.is_dir() or out.suffix == "":
        return "folder"
    suffix = out.suffix.lower()
    if suffix in _CONTAINER_SUFFIXES:
        return "container"
    if suffix == ".gif":
        return "gif"
    if suffix == ".png":
        return "strip"
    raise FommError(
        f"cannot write the result to {out}: unsupported extension '{out.suffix}'; use .mp4 "
        f"(or .mov/.mkv), .gif, or a folder path without extension for PNG frames"
    )


def _check_best_frame(best_frame):
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


def _check_input(path, what: str, hint: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise FommError(f"{what} {p} not found; {hint}")
    return p


def _same_path(a: Path, b: Path) -> bool:
    with contextlib.suppress(OSError):
        return b.exists() and os.path.samefile(a, b)
    return False


# ----------------------------------------------------------------------------------------------
# Frames
# ----------------------------------------------------------------------------------------------
def _closing_islice(frames: Iterator, index: int):
    """Frame ``index`` of ``frames`` (decoding stops there), and how many frames were seen."""
    count = 0
    try:
        for count, frame in enumerate(frames, start=1):
            if count - 1 == index:
                return frame, count
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()
    return None, count


def _resized(frames: Iterable[np.ndarray], shape: tuple[int, int]) -> Iterator[np.ndarray]:
    from fomm.data.video_io import resize_frame

    for frame in frames:
        yield resize_frame(frame, shape)


class _Tee:
    """Passes frames through, keeping those not yet animated (at most one batch) for the panels."""

    def __init__(self, frames: Iterable[np.ndarray], keep: bool):
        self.frames = frames
        self.keep = keep
        self.pending: collections.deque = collections.deque()

    def __iter__(self) -> Iterator[np.ndarray]:
        for frame in self.frames:
            if self.keep:
                self.pending.append(frame)
            yield frame

    def take(self, n: int) -> list[np.ndarray]:
        return [self.pending.popleft() for _ in range(n)]


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
    relative: bool = True,
    adapt_movement_scale: bool = True,
    best_frame=None,
    crop: bool = False,
    layout: str = "result",
    show_keypoints: bool = False,
    save_frames=None,
    audio: bool = True,
    device: str = "cpu",
    batch_size: int | None = None,
    precision: str = "exact",
    progress: bool = True,
    compile: bool = False,
) -> dict:
    """Animate the image ``source`` with the video ``driving`` and write the result to ``out``.

    ``source``: an image path (or an ``(H, W, 3)`` array); ``driving``: a video, GIF or frame
    folder; both of any size (resized to the model's frame size). The model comes from
    ``checkpoint`` (+ ``config``: a preset name or YAML, needed only when the checkpoint does not
    say) on ``device``, or is passed as ``model``. ``out``: .mp4/.mov/.mkv (H.264, with the
    driving audio unless ``audio=False``), .gif, .png (a strip) or a folder path for PNG frames.

    ``relative``/``adapt_movement_scale``: the original's relative motion and movement scaling.
    ``best_frame``: ``'auto'`` or a driving frame index to measure relative motion from (the
    original's backward+forward animation from that frame). ``crop``: crop both inputs around the
    face (an error where none is found). ``layout='side-by-side'``: source | driving | result
    panels; ``show_keypoints`` draws source, driving and transferred keypoints on them.
    ``save_frames``: also write every output frame as PNG into this folder.

    Returns ``{'out', 'frames', 'fps', 'seconds', 'frames_per_second', 'best_frame', 'size',
    'audio', 'save_frames'}`` (``size`` is the output frames' ``(width, height)``).
    """
    from fomm.animation import AnimationEngine, best_frame_index, prepare_frames
    from fomm.data import video_io
    from fomm.drawing import draw_keypoints, side_by_side, to_uint8

    # -- arguments (cheap checks first: fail before loading anything) ------------------------------
    if out is None:
        raise FommError("no output path given; pass --out result.mp4 (or .gif, or a folder for PNG frames)")
    if layout not in LAYOUTS:
        raise FommError(f"unknown layout '{layout}'; use one of {', '.join(LAYOUTS)}")
    if precision not in PRECISIONS:
        raise FommError(f"unknown precision '{precision}'; use one of {', '.join(PRECISIONS)}")
    if batch_size is not None and (isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1):
        raise FommError(f"batch size must be a whole number >= 1 (got {batch_size}); use e.g. --batch-size 8")
    best_frame = _check_best_frame(best_frame)
    out = Path(out)
    out_kind = _output_kind(out)
    source_path = None
    if isinstance(source, (str, os.PathLike)):
        source_path = _check_input(source, "source image", "check the path of the photo to animate")
        if source_path.is_dir() or video_io.is_video_path(source_path):
            raise FommError(
                f"source {source_path} is a video or folder, not an image; pass one photo "
                f"(.png/.jpg), e.g. a frame exported from the video"
            )
    driving = _check_input(driving, "driving video", "check the path of the video whose motion to copy")
    if model is None:
        if checkpoint is None:
            raise FommError("no model given; pass --checkpoint (e.g. vox-cpk.pth.tar)")
        _check_input(checkpoint, "checkpoint", "check the path (e.g. vox-cpk.pth.tar)")
    for name, path in (("source image", source_path), ("driving video", driving)):
        if path is not None and _same_path(path, out):
            raise FommError(f"--out {out} is the {name}; choose another output path")
    if save_frames is not None:
        save_frames = Path(save_frames)
        if save_frames.exists() and not save_frames.is_dir():
            raise FommError(f"--save-frames {save_frames} exists and is not a folder; choose a folder path")
        if out_kind == "folder" and save_frames.resolve() == out.resolve():
            raise FommError("--save-frames is the same folder as --out; drop --save-frames or choose another folder")

    info = video_io.probe(driving)  # a video without frames, a corrupt file: a FommError here

    # -- model and source ------------------------------------------------------------------------
    if model is None:
        from fomm.models.checkpoint import load_model, resolve_device

        model = load_model(checkpoint, config=config, device=resolve_device(device))
    frame_shape = tuple(int(s) for s in model.frame_shape)
    crop_size = max(frame_shape)
    if source_path is not None:
        source_img = video_io.read_image(source_path)
        source_name = f"source image {source_path}"
    else:
        source_img = np.asarray(source)
        source_name = "the source image"
    if crop:
        from fomm.crop import CropPlan, crop_image

        source_img, _box = crop_image(source_img, crop_size, required=True, name=source_name)

    # -- driving stream --------------------------------------------------------------------------
    total = info.num_frames
    plan = None
    if crop:
        plan = CropPlan.from_video(driving, crop_size, progress=progress)
        if not plan.found:
            raise FommError(f"no face found in driving video {driving}; pass an already cropped video or drop --crop")
        total = plan.num_frames

    def driving_frames() -> Iterator[np.ndarray]:
        if plan is None:
            return video_io.iter_frames(driving, frame_shape)
        frames = plan.crop_frames(video_io.iter_frames(driving))
        return frames if (crop_size, crop_size) == frame_shape else _resized(frames, frame_shape)

    engine = AnimationEngine(
        model,
        relative=relative,
        adapt_movement_scale=adapt_movement_scale,
        batch_size=None if batch_size is None else int(batch_size),
        precision=precision,
        compile=compile,
    )
    engine.set_source(source_img)

    # -- best frame ------------------------------------------------------------------------------
    if best_frame is not None and not relative:
        warnings.warn(
            "--best-frame has no effect with absolute motion (--no-relative); it is ignored", UserWarning, stacklevel=2
        )
        best_frame = None
    if best_frame is not None:
        if best_frame == "auto":
            frames: Iterable = driving_frames()
            if progress:
                from tqdm import tqdm

                frames = tqdm(frames, total=total, desc="finding the best frame", unit="frame", leave=False)
            best_frame = best_frame_index(engine, frames)
        frame, count = _closing_islice(driving_frames(), best_frame)
        if frame is None:
            raise FommError(
                f"best frame {best_frame} is outside the driving video ({count} frames: "
                f"0..{count - 1}); pass --best-frame auto or a smaller index"
            )
        initial = prepare_frames(frame[None], frame_shape, "driving video", ndim=4)
        engine.set_initial(engine.keypoints(initial))

    # -- animate, streaming ----------------------------------------------------------------------
    side = layout == "side-by-side"
    source_panel = None
    if side:
        source_panel = to_uint8(prepare_frames(source_img, frame_shape, "source image", ndim=3))
        if show_keypoints:
            source_panel = draw_keypoints(source_panel, engine.kp_source["value"][0])
    audio_from = driving if (audio and info.has_audio and out_kind == "container") else None
    tee = _Tee(driving_frames(), keep=side)
    count = 0
    size = None
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        # Writers are atomic: an exception (or Ctrl-C) below removes their temporary output.
        frames_writer = None
        if save_frames is not None:
            frames_writer = stack.enter_context(video_io.VideoWriter(os.fspath(save_frames) + os.sep, info.fps))
        writer = stack.enter_context(video_io.VideoWriter(out, info.fps, audio_from=audio_from))
        bar = None
        if progress:
            from tqdm import tqdm

            bar = stack.enter_context(
                tqdm(total=total, desc=f"animating {driving.name}", unit="frame", dynamic_ncols=True)
            )
        for batch in engine.run(tee, outputs=("prediction",)):
            results = to_uint8(batch["prediction"])
            n = len(results)
            if show_keypoints:
                results = draw_keypoints(results, batch["kp_norm"]["value"])
            if side:
                drivers = np.stack(tee.take(n))
                if show_keypoints:
                    drivers = draw_keypoints(drivers, batch["kp_driving"]["value"])
                results = [side_by_side([source_panel, d, r]) for d, r in zip(drivers, results)]
            for frame in results:
                writer.write(frame)
                if frames_writer is not None:
                    frames_writer.write(frame)
            count += n
            size = (results[0].shape[1], results[0].shape[0])
            if bar is not None:
                bar.update(n)
        if count == 0:
            raise FommError(f"driving video {driving} has no frames; pass a video with at least one frame")
    seconds = time.perf_counter() - start
    return {
        "out": out,
        "frames": count,
        "fps": float(info.fps),
        "seconds": seconds,
        "frames_per_second": count / seconds if seconds > 0 else float("inf"),
        "best_frame": best_frame,
        "size": size,
        "audio": audio_from is not None,
        "save_frames": save_frames,
    }


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------
def _best_frame_arg(text: str):
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not 'auto' or a frame number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"frame number {value} is negative; frames are counted from 0")
    return value


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "animate",
        help=summary("animate"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Animate the --source photo with the motion of the --driving video. Both may have\n"
        "any size (they are resized to the model's frame size; --crop crops them around the\n"
        "face first). The result keeps the driving video's frame count, frame rate and audio\n"
        "and is written atomically; long videos are streamed, not loaded into memory.",
        epilog="examples:\n"
        "  fomm animate --source photo.jpg --driving video.mp4 --checkpoint vox-cpk.pth.tar --out result.mp4\n"
        "  fomm animate --source photo.jpg --driving talk.mp4 --checkpoint vox-cpk.pth.tar --crop \\\n"
        "      --best-frame auto --layout side-by-side --show-keypoints --out compare.mp4\n"
        "  fomm animate --source doll.png --driving dance.gif --checkpoint taichi-cpk.pth.tar \\\n"
        "      --config taichi-256 --out frames/",
    )
    io = parser.add_argument_group("inputs and output")
    io.add_argument("--source", required=True, metavar="IMAGE", help="the photo to animate")
    io.add_argument(
        "--driving",
        required=True,
        metavar="VIDEO",
        help="the video whose motion is copied (.mp4/.mov/.gif or a folder of frames)",
    )
    io.add_argument("--checkpoint", required=True, metavar="PATH", help="model checkpoint (e.g. vox-cpk.pth.tar)")
    io.add_argument(
        "--config",
        metavar="NAME_OR_YAML",
        help="model config: a preset (e.g. vox-256) or a YAML file; needed only when the "
        "checkpoint fits no bundled preset",
    )
    io.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="result: .mp4 (H.264 with the driving audio), .gif, or a folder path for PNG frames",
    )
    motion = parser.add_argument_group("motion")
    motion.add_argument(
        "--relative",
        dest="relative",
        action="store_true",
        default=True,
        help="apply the driving motion relative to its initial frame (default)",
    )
    motion.add_argument(
        "--no-relative",
        "--absolute",
        dest="relative",
        action="store_false",
        help="use the driving keypoints as they are (absolute motion)",
    )
    motion.add_argument(
        "--no-adapt-scale",
        dest="adapt_scale",
        action="store_false",
        default=True,
        help="do not scale the motion by the source/driving keypoint hull ratio",
    )
    motion.add_argument(
        "--best-frame",
        type=_best_frame_arg,
        metavar="auto|N",
        help="measure the motion from the driving frame that best matches the source's pose "
        "(auto) or from frame N, instead of the first frame",
    )
    motion.add_argument(
        "--crop",
        action="store_true",
        help="crop the source and the driving video around the face first (error if none is found)",
    )
    visual = parser.add_argument_group("what to write")
    visual.add_argument(
        "--layout",
        choices=LAYOUTS,
        default="result",
        help="result: the animated frames; side-by-side: source | driving | result (default: result)",
    )
    visual.add_argument(
        "--show-keypoints", action="store_true", help="draw keypoints: source, driving and transferred (on the result)"
    )
    visual.add_argument("--save-frames", metavar="DIR", help="also write every output frame as a PNG into DIR")
    visual.add_argument(
        "--no-audio",
        dest="audio",
        action="store_false",
        default=True,
        help="do not copy the driving video's audio into the result",
    )
    run_group = parser.add_argument_group("running")
    run_group.add_argument(
        "--device",
        choices=DEVICES,
        default="auto",
        help="where to run the model (default: auto: CUDA, then MPS, then CPU)",
    )
    run_group.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        metavar="N",
        help="frames animated at once (default: 4 on a CPU, 16 on a GPU)",
    )
    run_group.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="exact",
        help="exact: float32 (default); fast: bf16/fp16 on GPUs and CPUs with bf16 units, "
        "int8 convolutions on other x86 CPUs (PSNR ~56 dB vs exact on vox-256)",
    )
    run_group.add_argument("--compile", action="store_true", help="torch.compile the networks (slow start)")
    run_group.add_argument("--no-progress", dest="progress", action="store_false", default=True, help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    result = animate_video(
        args.source,
        args.driving,
        checkpoint=args.checkpoint,
        out=args.out,
        config=args.config,
        relative=args.relative,
        adapt_movement_scale=args.adapt_scale,
        best_frame=args.best_frame,
        crop=args.crop,
        layout=args.layout,
        show_keypoints=args.show_keypoints,
        save_frames=args.save_frames,
        audio=args.audio,
        device=args.device,
        batch_size=args.batch_size,
        precision=args.precision,
        progress=args.progress,
        compile=args.compile,
    )
    w, h = result["size"]
    extra = f", motion from frame {result['best_frame']}" if result["best_frame"] is not None else ""
    extra += ", with audio" if result["audio"] else ""
    print(
        f"wrote {result['out']} ({result['frames']} frames, {w}x{h}, {result['fps']:g} fps{extra}; "
        f"{result['frames_per_second']:.1f} frames/s)"
    )
    if result["save_frames"] is not None:
        print(f"wrote {result['frames']} PNG frames to {result['save_frames']}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    from fomm.cli import main

    sys.exit(main(["animate", *sys.argv[1:]]))
