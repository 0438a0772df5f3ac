"""``fomm animate``: the command line over :func:`fomm.animation.pipeline.animate_video`.

Only argument parsing and the summary lines live here; the file-to-file pipeline (streaming,
cropping, paste-back, many sources, atomic outputs) is :mod:`fomm.animation.pipeline`. The original FOMM's
flags (``--source_image``, ``--driving_video``, ``--result_video``, ``--cpu``,
``--find_best_frame``, ``--best_frame``, ``--relative``, ``--adapt_scale``, ``--audio``) are
accepted as aliases (see docs/animate.md for the table).
"""

from __future__ import annotations

import argparse

from fomm.animation.arguments import CROP, MOTION, OUTPUT, RUNNING, add_options
from fomm.animation.options import AnimateOptions
from fomm.animation.results import AnimateResult, ManyResult
from fomm.cli_args import add_model_arguments, summary
from fomm.errors import plural

__all__ = ["register", "run"]


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


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "animate",
        help=summary("animate"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_DESCRIPTION,
        epilog=_EPILOG,
    )
    _io_arguments(parser)
    for title, flags in (
        ("motion", MOTION),
        ("face crop (--crop)", CROP),
        ("what to write", OUTPUT),
        ("running", RUNNING),
    ):
        add_options(parser.add_argument_group(title), flags)
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
