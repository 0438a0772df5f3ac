"""``fomm crop``, and the ``--crop-*`` options that ``fomm animate --crop`` shares."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fomm.errors import FommError, plural
from fomm.faces import track as _track
from fomm.faces.detect import TRACKERS, make_tracker
from fomm.faces.files import check_input, crop_image_file, crop_video_file
from fomm.faces.plan import SCALE, check_options, check_size

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


def crop_argument_specs() -> list[tuple[tuple[str, ...], dict]]:
    """``--crop-scale``, ``--crop-smoothing``, ``--tracker`` and ``--boxes-json``, each as its
    names and ``add_argument`` keywords: ``fomm crop`` adds them all, the commands that animate
    pick theirs (:mod:`fomm.animation.arguments`)."""
    return [
        (
            ("--crop-scale",),
            dict(
                type=float,
                default=SCALE,
                metavar="S",
                help=f"crop side = S x face size (default: {SCALE}; larger shows more of the shoulders)",
            ),
        ),
        (
            ("--crop-smoothing",),
            dict(
                type=float,
                default=_track.SMOOTHING,
                metavar="F",
                help=f"time scale in frames of the box smoother (default: {_track.SMOOTHING:g}; "
                "0 follows every detection, larger is steadier)",
            ),
        ),
        (
            ("--tracker",),
            dict(
                choices=TRACKERS,
                default="auto",
                help="face tracker: dlib landmarks (needs pip install 'fomm[faces]') or OpenCV's Haar "
                "cascade; auto = landmarks when installed (default: auto)",
            ),
        ),
        (
            ("--boxes-json",),
            dict(metavar="PATH", help="write the per-frame crop boxes and the segments of the video as JSON"),
        ),
    ]


def add_crop_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--crop-scale``, ``--crop-smoothing``, ``--tracker`` and ``--boxes-json``; read them
    back with :func:`crop_options_from_args`."""
    for names, keywords in crop_argument_specs():
        parser.add_argument(*names, **keywords)


def crop_options_from_args(args: argparse.Namespace) -> dict:
    """The ``crop_options`` dict of :meth:`fomm.faces.CropPlan.from_video` for parsed arguments."""
    opts = {
        "scale": args.crop_scale,
        "smoothing": args.crop_smoothing,
        "tracker": args.tracker,
        "boxes_json": args.boxes_json,
    }
    check_options(opts["scale"], opts["smoothing"])
    return opts


def register(subparsers) -> argparse.ArgumentParser:
    from fomm.cli_args import add_command

    parser = add_command(
        subparsers,
        "crop",
        description="Find the face and crop a square around the whole head, resized to --size.\n"
        "In a video the face is followed frame by frame with one smooth box; a new\n"
        "segment starts only at a shot cut or where the face was lost for more than\n"
        "--max-lost frames. The output keeps the frame count, fps and audio. Where no\n"
        "face is found the input is written unchanged, with a warning. The tracker is\n"
        "dlib's 68 landmarks with pip install 'fomm[faces]', else OpenCV's Haar cascade.",
        epilog="examples:\n"
        "  fomm crop interview.mp4 --out driving.mp4\n"
        "  fomm crop --source photo.jpg --out source.png --size 256\n"
        "  fomm crop talk.mp4 --out talk_crop.mp4 --crop-scale 2 --crop-smoothing 8 --boxes-json boxes.json\n"
        "  fomm crop talk.mp4 --out talk_crop.mp4 --split segments/",
    )
    parser.add_argument("input", nargs="?", metavar="VIDEO_OR_IMAGE", help="video or image to crop")
    parser.add_argument("--source", metavar="PATH", help="the same as VIDEO_OR_IMAGE (e.g. a source photo)")
    parser.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="where to write the cropped video or image (missing folders are created)",
    )
    parser.add_argument("--size", type=int, default=256, help="output side in pixels (default: 256)")
    add_crop_arguments(parser)
    parser.add_argument(
        "--detect-every",
        type=int,
        default=_track.DETECT_EVERY,
        metavar="N",
        help=f"while no face is followed, look for one every N frames (default: {_track.DETECT_EVERY})",
    )
    parser.add_argument(
        "--max-lost",
        type=int,
        default=_track.MAX_LOST,
        metavar="N",
        help=f"frames without the face after which it counts as lost (default: {_track.MAX_LOST})",
    )
    parser.add_argument(
        "--split", metavar="DIR", dest="split_dir", help="also write each segment of a video to its own file in DIR"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def _inputs(args: argparse.Namespace) -> tuple[Path, Path]:
    if args.input and args.source and Path(args.input) != Path(args.source):
        raise FommError(f"two inputs given ({args.input} and --source {args.source}); give one")
    src = args.input or args.source
    if not src:
        raise FommError("no input given; name the video or image to crop, e.g. fomm crop video.mp4 --out crop.mp4")
    src = Path(src)
    check_input(src)
    check_size(args.size)
    return src, Path(args.out)


def run(args: argparse.Namespace) -> int:
    src, out = _inputs(args)
    opts = crop_options_from_args(args)
    check_options(opts["scale"], opts["smoothing"], args.detect_every, args.max_lost)
    image = src.is_file() and src.suffix.lower() in IMAGE_EXTENSIONS
    tracker = make_tracker(args.tracker, confirm=1 if image else 2)
    if image:
        if opts["boxes_json"]:
            raise FommError("--boxes-json is for videos; drop it when cropping an image")
        box = crop_image_file(src, out, args.size, scale=opts["scale"], tracker=tracker)
        print(f"tracker: {tracker.name}")
        if box is None:
            print(f"fomm crop: warning: no face found in {src}; wrote it unchanged to {out}", file=sys.stderr)
        else:
            x0, y0, x1, y1 = box
            print(f"wrote {out} ({args.size}x{args.size}, cropped from x {x0}-{x1}, y {y0}-{y1} of {src})")
        return 0
    opts["tracker"] = tracker
    plan = crop_video_file(
        src,
        out,
        args.size,
        progress=not args.no_progress,
        split_dir=args.split_dir,
        detect_every=args.detect_every,
        max_lost=args.max_lost,
        **opts,
    )
    print(f"tracker: {plan.tracker or tracker.name}")
    segments = plan.segments
    if not segments:
        print(f"fomm crop: warning: no face found in {src}; wrote it unchanged to {out}", file=sys.stderr)
    else:
        print(
            f"wrote {out} ({args.size}x{args.size}, {plural(plan.num_frames, 'frame')}, "
            f"{plural(len(segments), 'segment')})"
        )
        for seg in segments:
            print(f"  {seg}")
        if args.split_dir:
            print(f"wrote {plural(len(segments), 'segment file')} to {args.split_dir}")
    if opts["boxes_json"]:
        print(f"wrote {opts['boxes_json']} (per-frame boxes)")
    return 0
