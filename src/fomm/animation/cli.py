"""``fomm animate``: the command line over :func:`fomm.animation.pipeline.animate_video`.

Only argument parsing and the summary lines live here; the file-to-file pipeline (streaming,
cropping, paste-back, many sources, atomic outputs) is :mod:`fomm.animation.pipeline`. The original FOMM's
flags (``--source_image``, ``--driving_video``, ``--result_video``, ``--cpu``,
``--find_best_frame``, ``--best_frame``, ``--relative``, ``--adapt_scale``, ``--audio``) are
accepted as aliases (see docs/animate.md for the table).
"""

from __future__ import annotations

import argparse

from fomm.animation.options import (
    BACKENDS,
    BEST_FRAME_METHODS,
    DEVICES,
    DRIVING_FITS,
    LAYOUTS,
    PANEL_SIZE,
    PRECISIONS,
    AnimateOptions,
)
from fomm.animation.results import AnimateResult, ManyResult
from fomm.cli_args import add_model_arguments, positive_int, summary
from fomm.errors import plural

__all__ = ["register", "run"]


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


_DESCRIPTION = (
    "Animate the --source photo with the motion of the --driving video. Both may have any size\n"
    "(resized to the model's frame size; a non-square driving video is centre-cropped, see\n"
    "--driving-fit; --crop crops both around the face and pastes the result back into the photo).\n"
    "--source may be a folder or a quoted glob: every photo is animated with the same driving\n"
    "video (model and driving keypoints computed once), one <photo name>.mp4 each in the --out\n"
    "folder. The result keeps the driving video's frame count, frame rate and audio and is\n"
    "written atomically; long videos are streamed, not loaded into memory. The original FOMM's\n"
    "flags (--source_image, --driving_video, --result_video, --cpu, --find_best_frame, ...) work too."
)
_EPILOG = (
    "examples:\n"
    "  fomm animate --source photo.jpg --driving video.mp4 --checkpoint vox-cpk.pth.tar --out result.mp4\n"
    "  fomm animate --source photo.jpg --driving talk.mp4 --checkpoint vox --crop --color-match \\\n"
    "      --best-frame auto --layout side-by-side --show-keypoints --out compare.mp4\n"
    "  fomm animate --source 'photos/*.jpg' --driving talk.mp4 --checkpoint vox --out results/\n"
    "  fomm animate --source_image doll.png --driving_video dance.gif --checkpoint taichi-cpk.pth.tar \\\n"
    "      --config taichi-256 --result_video frames/ --cpu --find_best_frame"
)


def _io_arguments(parser: argparse.ArgumentParser) -> None:
    io = parser.add_argument_group("inputs and output")
    io.add_argument(
        "--source",
        "--source_image",
        dest="source",
        required=True,
        metavar="IMAGE",
        help="the photo to animate; or a folder of photos, or a quoted glob such as 'photos/*.jpg'",
    )
    io.add_argument(
        "--driving",
        "--driving_video",
        dest="driving",
        required=True,
        metavar="VIDEO",
        help="the video whose motion is copied (.mp4/.mov/.gif or a folder of frames)",
    )
    add_model_arguments(io)
    io.add_argument(
        "--out",
        "--result_video",
        dest="out",
        required=True,
        metavar="PATH",
        help="result: .mp4 (H.264 with the driving audio), .gif (no audio), .png (one strip of all "
        "frames), or a folder path for PNG frames; a folder (one .mp4 per photo) with many sources; "
        "missing folders are created",
    )


def _motion_arguments(parser: argparse.ArgumentParser) -> None:
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
        "--avd",
        dest="avd",
        action="store_true",
        default=False,
        help="Thin-Plate Spline Motion Model checkpoints: animation via disentanglement (the AVD "
        "network gives the driving pose the source's shape; for other identities)",
    )
    motion.add_argument(
        "--mode",
        dest="mode",
        choices=("standard", "relative", "avd"),
        help="the TPSMM demo's flag: standard = --no-relative, relative = --relative, avd = --avd",
    )
    motion.add_argument(
        "--adapt-scale",
        "--adapt_scale",
        dest="adapt_scale",
        action="store_true",
        default=True,
        help="scale the motion by the source/driving keypoint hull ratio (default)",
    )
    motion.add_argument(
        "--no-adapt-scale",
        dest="adapt_scale",
        action="store_false",
        help="do not scale the motion by the source/driving keypoint hull ratio",
    )
    motion.add_argument(
        "--best-frame",
        "--best_frame",
        dest="best_frame",
        type=_best_frame_arg,
        metavar="auto|N",
        help="measure the motion from the driving frame that best matches the source's pose "
        "(auto) or from frame N, instead of the first frame",
    )
    motion.add_argument(
        "--find_best_frame",
        dest="best_frame",
        action="store_const",
        const="auto",
        help="the original's flag: the same as --best-frame auto",
    )
    motion.add_argument(
        "--best-frame-method",
        choices=BEST_FRAME_METHODS,
        default="auto",
        help="how --best-frame auto chooses: landmarks (face landmark alignment, as the original; "
        "needs pip install 'fomm[faces]'), keypoints (the model's keypoints, any category) or auto "
        "(landmarks when installed and the source has a face, else keypoints; default)",
    )
    motion.add_argument(
        "--driving-fit",
        choices=DRIVING_FITS,
        default="crop",
        help="a non-square driving video is centre-cropped (crop, default), letterboxed (pad) "
        "or squashed (stretch) to the model's square frames",
    )


def _crop_arguments(parser: argparse.ArgumentParser) -> None:
    from fomm.faces import add_crop_arguments

    crop = parser.add_argument_group("face crop (--crop)")
    crop.add_argument(
        "--crop",
        action="store_true",
        help="crop the source and the driving video around the face first (error if none is found); "
        "the animated face is pasted back into the full photo",
    )
    crop.add_argument(
        "--no-paste-back",
        dest="paste_back",
        action="store_false",
        default=True,
        help="with --crop: write the animated crop only, not the full photo",
    )
    crop.add_argument(
        "--color-match",
        action="store_true",
        help="with --crop: match the animated face's colours to the photo around it (hides the seam)",
    )
    add_crop_arguments(crop)


def _output_arguments(parser: argparse.ArgumentParser) -> None:
    visual = parser.add_argument_group("what to write")
    visual.add_argument(
        "--layout",
        choices=LAYOUTS,
        default="result",
        help="result: the animated frames; side-by-side: labelled source | driving | result (default: result)",
    )
    visual.add_argument(
        "--show-keypoints", action="store_true", help="draw keypoints: source, driving and transferred (on the result)"
    )
    visual.add_argument(
        "--panel-size",
        type=positive_int,
        default=PANEL_SIZE,
        metavar="PX",
        help=f"side-by-side panels are enlarged to at least PX pixels high (default: {PANEL_SIZE})",
    )
    visual.add_argument("--no-labels", dest="labels", action="store_false", help="side-by-side panels without labels")
    visual.add_argument(
        "--save-frames", metavar="DIR", help="also write every output frame as a PNG into DIR (created if missing)"
    )
    visual.add_argument(
        "--audio",
        dest="audio",
        action="store_true",
        default=True,
        help="copy the driving video's audio into .mp4/.mov/.mkv results (default)",
    )
    visual.add_argument(
        "--no-audio", dest="audio", action="store_false", help="do not copy the driving video's audio into the result"
    )


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    run_group = parser.add_argument_group("running")
    run_group.add_argument(
        "--device",
        choices=DEVICES,
        default="auto",
        help="where to run the model (default: auto: CUDA, then MPS, then CPU)",
    )
    run_group.add_argument(
        "--cpu", dest="device", action="store_const", const="cpu", help="the original's flag: --device cpu"
    )
    run_group.add_argument(
        "--backend",
        choices=BACKENDS,
        default="torch",
        help="run the networks in torch (default) or in ONNX Runtime (exported on the fly, cached)",
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


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "animate",
        help=summary("animate"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_DESCRIPTION,
        epilog=_EPILOG,
    )
    _io_arguments(parser)
    _motion_arguments(parser)
    _crop_arguments(parser)
    _output_arguments(parser)
    _run_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def _report(result: AnimateResult) -> None:
    """The summary line(s) of one output."""
    w, h = result.size
    extra = f", motion from frame {result.best_frame}" if result.best_frame is not None else ""
    extra += ", with audio" if result.audio else ""
    extra += ", face pasted back into the photo" if result.pasted_back else ""
    what = f"{plural(result.frames, 'frame')}, {w}x{h}"
    if result.kind == "strip":
        what = f"one PNG strip of {plural(result.frames, 'frame')} side by side, {w}x{h} each"
    print(f"wrote {result.out} ({what}, {result.fps:g} fps{extra}; {result.frames_per_second:.1f} frames/s)")
    if result.save_frames is not None:
        print(f"wrote {plural(result.frames, 'PNG frame')} to {result.save_frames}")
    if result.best_frame_method is not None:
        how = {"landmarks": "face landmarks (dlib)", "keypoints": "the model's keypoints"}[result.best_frame_method]
        print(f"best frame: {result.best_frame}, chosen by {how}")
    if result.tracker:
        print(tracker_line(result.tracker))


def tracker_line(tracker: dict) -> str:
    """``tracker: dlib landmarks (driving video and source photo)``, or one name each."""
    driving, source = tracker.get("driving"), tracker.get("source")
    if driving == source or source is None:
        return f"tracker: {driving} (driving video{' and source photo' if source else ''})"
    return f"tracker: {driving} (driving video), {source} (source photo)"


def run(args: argparse.Namespace) -> int:
    from fomm.animation import pipeline  # torch: imported once the command runs, not for --help

    if args.mode is not None:  # the TPSMM demo's --mode
        args.relative, args.avd = args.mode == "relative", args.mode == "avd"
    options = AnimateOptions.from_args(args)
    result = pipeline.animate_video(
        args.source, args.driving, checkpoint=args.checkpoint, out=args.out, config=args.config, options=options
    )
    for one in result.outputs if isinstance(result, ManyResult) else [result]:
        _report(one)
    if isinstance(result, ManyResult):
        print(
            f"animated {plural(result.sources, 'photo')} with one driving video into {result.out} "
            f"({plural(result.frames, 'frame')}, {result.frames_per_second:.1f} frames/s; driving keypoints computed once)"
        )
    return 0
