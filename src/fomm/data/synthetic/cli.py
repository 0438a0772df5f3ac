"""``fomm synth``: generate a procedural video dataset with exact ground truth."""

from __future__ import annotations

import argparse
import time


def register(subparsers) -> None:
    from fomm.cli import summary

    from . import CATEGORIES

    p = subparsers.add_parser(
        "synth",
        help=summary("synth"),
        description="Generate a procedural video dataset in the original FOMM folder layout: "
        "<out>/train and <out>/test hold one folder of PNG frames (or one .mp4) per video plus a "
        ".npz of ground truth (keypoints, pose and identity parameters); <out>/cross_identity holds "
        "exact renderings of one test identity performing another test video's motion, listed in "
        "cross_identity/pairs.csv; <out>/pairs.csv lists the same (source, driving) test pairs. "
        "The same arguments always produce identical files.",
        epilog="Example: fomm synth --category puppet --out data/puppet64 --size 64 --train 200 --test 20 "
        "--frames 48 --seed 0 --cross-pairs 20 --workers 2",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--category",
        required=True,
        choices=CATEGORIES,
        help="puppet: articulated bodies (Tai-Chi/MGif-like); face: cartoon talking heads (VoxCeleb-like)",
    )
    p.add_argument("--out", required=True, help="dataset folder to create (must not exist or be empty)")
    p.add_argument("--size", type=int, default=64, help="frame width and height in pixels")
    p.add_argument("--train", type=int, default=200, help="number of training videos")
    p.add_argument("--test", type=int, default=20, help="number of test videos")
    p.add_argument("--frames", type=int, default=48, help="frames per video")
    p.add_argument("--seed", type=int, default=0, help="dataset seed (non-negative)")
    p.add_argument(
        "--cross-pairs",
        type=int,
        default=20,
        help="number of cross-identity ground-truth videos (pairs of distinct test identities)",
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
    p.add_argument("--workers", type=int, default=1, help="processes rendering videos in parallel")
    p.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --out folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from . import write_dataset

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
        workers=args.workers,
        progress=not args.quiet,
        clips_per_identity=args.clips_per_identity,
        overwrite=args.overwrite,
    )
    elapsed = time.perf_counter() - started
    total = args.train + args.test + args.cross_pairs
    print(
        f"wrote {total} {args.category} videos ({args.train} train, {args.test} test, {args.cross_pairs} "
        f"cross-identity) of {args.frames} frames at {args.size}x{args.size} to {root} in {elapsed:.1f}s"
    )
    return 0
