"""``fomm synth``: generate a procedural video dataset with exact ground truth."""

from __future__ import annotations

import argparse
import time
import warnings

from fomm.cli_args import add_command
from fomm.errors import FommError, plural


class _Default(int):
    """An int default that can be told apart from the same number given on the command line."""


#: ``--cross-pairs`` when not given (lowered to what ``--test`` allows).
DEFAULT_CROSS_PAIRS = _Default(20)


def register(subparsers) -> None:
    from . import CATEGORIES

    p = add_command(
        subparsers,
        "synth",
        description="Generate a procedural video dataset in the original FOMM folder layout: "
        "<out>/train and <out>/test hold one folder of PNG frames (or one .mp4) per video plus a "
        ".npz of ground truth (keypoints, pose and identity parameters); <out>/cross_identity holds "
        "exact renderings of one test identity performing another test video's motion, listed in "
        "cross_identity/pairs.csv; <out>/pairs.csv lists the same (source, driving) test pairs. "
        "The same arguments always produce identical files.",
        epilog="examples:\n"
        "  fomm synth --category puppet --out data/puppet64 --size 64 --train 200 --test 20 --frames 48 --seed 0\n"
        "  fomm synth --category face --out data/face64-test --train 0 --test 40 --seed 1   # held-out split\n"
        "  fomm synth --category face --preview face.png     # a grid of sample frames with keypoints, no dataset",
    )
    p.add_argument(
        "--category",
        required=True,
        choices=CATEGORIES,
        help="puppet: articulated bodies (Tai-Chi/MGif-like); face: cartoon talking heads (VoxCeleb-like)",
    )
    p.add_argument(
        "--out",
        default=None,
        help="dataset folder to create (must not exist or be empty; missing parent folders are created); optional with --preview",
    )
    p.add_argument(
        "--preview",
        default=None,
        metavar="PNG",
        help="also write one PNG grid of sample frames (the first 4 training videos, 6 frames each, enlarged) "
        "with the ground-truth keypoints drawn",
    )
    p.add_argument("--size", type=int, default=64, help="frame width and height in pixels")
    p.add_argument("--train", type=int, default=200, help="number of training videos")
    p.add_argument("--test", type=int, default=20, help="number of test videos")
    p.add_argument("--frames", type=int, default=48, help="frames per video")
    p.add_argument("--seed", type=int, default=0, help="dataset seed (non-negative)")
    p.add_argument(
        "--cross-pairs",
        type=int,
        default=DEFAULT_CROSS_PAIRS,
        help="number of cross-identity ground-truth videos (pairs of distinct test identities); when not "
        "given, lowered to what --test allows if that is fewer (with a warning)",
    )
    p.add_argument(
        "--clips-per-identity", type=int, default=1, help="videos per identity (same appearance, different motion)"
    )
    p.add_argument(
        "--format",
        choices=("png", "mp4"),
        default="png",
        help="png: a folder of lossless frames per video; mp4: one H.264 file per video",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="processes rendering videos in parallel (0: one per available core); "
        "the files are identical whatever the number",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --out folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from . import write_dataset
    from .dataset import default_workers

    if args.out is None and args.preview is None:
        raise FommError("fomm synth needs --out DIR (a dataset) or --preview FILE.png (a sample grid), or both")
    if args.preview is not None:
        from .preview import write_preview

        path = write_preview(args.preview, args.category, size=args.size, seed=args.seed, num_frames=args.frames)
        print(f"wrote a preview of {args.category} videos (seed {args.seed}) to {path}")
        if args.out is None:
            return 0
    workers = default_workers() if args.workers == 0 else args.workers
    if isinstance(args.cross_pairs, _Default):
        args.cross_pairs = _default_cross_pairs(args.test, args.clips_per_identity)
    started = time.perf_counter()
    root = write_dataset(
        args.out,
        args.category,
        num_train=args.train,
        num_test=args.test,
        num_frames=args.frames,
        size=args.size,
        seed=args.seed,
        num_cross_pairs=args.cross_pairs,
        format=args.format,
        workers=workers,
        progress=not args.quiet,
        clips_per_identity=args.clips_per_identity,
        overwrite=args.overwrite,
    )
    elapsed = time.perf_counter() - started
    total = args.train + args.test + args.cross_pairs
    print(
        f"wrote {total} {args.category} videos ({args.train} train, {args.test} test, {args.cross_pairs} "
        f"cross-identity) of {args.frames} frames at {args.size}x{args.size} to {root} in {elapsed:.1f}s "
        f"with {plural(workers, 'worker')}"
    )
    return 0


def _default_cross_pairs(num_test: int, clips_per_identity: int) -> int:
    """The default number of cross-identity pairs, lowered (with one warning line) to what the test
    split allows: only an explicit ``--cross-pairs`` that cannot be met is an error."""
    from .dataset import max_cross_pairs

    possible = max_cross_pairs(num_test, clips_per_identity)
    if possible >= DEFAULT_CROSS_PAIRS:
        return DEFAULT_CROSS_PAIRS
    if num_test > 0:
        warnings.warn(
            f"--test {num_test} allows only {possible} cross-identity pairs, so {possible} are written "
            f"instead of the default {DEFAULT_CROSS_PAIRS}; pass --cross-pairs N to choose, or raise --test",
            stacklevel=2,
        )
    return possible
