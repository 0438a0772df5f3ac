"""``fomm prepare RAW_DIR --out DATA``."""

from __future__ import annotations

import argparse

from fomm.errors import plural

EPILOG = """\
examples:
  fomm prepare phone_videos/ --out data/mine                       # faces, 256x256 .mp4 clips
  fomm prepare lab/ --out data/arms --category object --size 128   # whatever moves
  fomm prepare list.txt --out data/mine --format png --test-fraction 0.2
  fomm prepare raw/ --out /shared/data --shard 3/16                # part 3 of 16 (or from Slurm)
  fomm train --config vox-256 --data data/mine --out runs/mine     # then train on it

DATA gets train/<source id>#<n>.mp4 and test/<source id>#<n>.mp4 (every clip of a source in one
split; '#' groups them for id_sampling), prepare.json (every clip with its source, frames
start..end-1 and box; every dropped video or clip with its reason) and prepare.png (sample
clips' boxes). A rerun skips the finished videos; shards may run at once into one folder, and
prepare.json is complete when the last one ends. See docs/prepare.md.
"""


def register(subparsers) -> argparse.ArgumentParser:
    from fomm.cli_args import add_command, positive_int
    from fomm.faces.detect import TRACKERS
    from fomm.faces.track import MAX_LOST
    from fomm.prepare.options import CATEGORIES, DEFAULT_MARGIN, FORMATS

    p = add_command(
        subparsers,
        "prepare",
        description="Cut a folder of raw videos (any size, frame rate, orientation; scene cuts, still\n"
        "stretches and broken files included) into square clips of one subject each, split\n"
        "train/test by source video, ready for fomm train --data DATA.",
        epilog=EPILOG,
    )
    p.add_argument(
        "raw", metavar="RAW_DIR", help="folder of videos (searched recursively), or a .txt file listing them"
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="DATA",
        help="dataset folder to write (train/, test/, prepare.json; missing folders are created)",
    )
    p.add_argument(
        "--category",
        choices=CATEGORIES,
        default="face",
        help="face: follow faces (dlib landmarks with fomm[faces], else OpenCV's Haar cascade); "
        "object: follow the region that moves (bodies, animals, machines) (default: face)",
    )
    p.add_argument(
        "--crop",
        choices=("subject", "full"),
        default="subject",
        help="subject: a box around the subject; full: the whole frame, centre-cropped square (default: subject)",
    )
    p.add_argument("--size", type=positive_int, default=256, help="clip side in pixels (default: 256)")
    p.add_argument(
        "--margin",
        type=float,
        metavar="M",
        help="enlarge the union of the subject's boxes by M of its side on each side "
        f"(default: {DEFAULT_MARGIN['face']} for faces, {DEFAULT_MARGIN['object']} for objects)",
    )
    p.add_argument("--format", choices=FORMATS, default="mp4", help="H.264 .mp4 clips or PNG folders (default: mp4)")
    p.add_argument("--min-frames", type=positive_int, default=32, metavar="N", help="drop clips shorter (default: 32)")
    p.add_argument(
        "--min-size",
        type=positive_int,
        default=128,
        metavar="PX",
        help="drop subjects whose box is smaller in the source (default: 128)",
    )
    p.add_argument(
        "--test-fraction", type=float, default=0.1, metavar="F", help="share of source videos in test/ (default: 0.1)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the train/test split (default: 0)")
    p.add_argument("--tracker", choices=TRACKERS, default="auto", help="face tracker (default: auto)")
    p.add_argument(
        "--max-lost",
        type=int,
        default=MAX_LOST,
        metavar="N",
        help=f"frames without the subject that end a track (default: {MAX_LOST})",
    )
    p.add_argument("--workers", type=positive_int, metavar="W", help="processes (default: all cores)")
    p.add_argument(
        "--shard",
        metavar="I/N",
        help="prepare only part I of N (0-based; default: from SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT when set)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from fomm.prepare.options import PrepareOptions
    from fomm.prepare.run import prepare
    from fomm.prepare.split import parse_shard

    opts = PrepareOptions(
        category=args.category,
        crop=args.crop,
        size=args.size,
        margin=args.margin,
        format=args.format,
        min_frames=args.min_frames,
        min_size=args.min_size,
        test_fraction=args.test_fraction,
        seed=args.seed,
        tracker=args.tracker,
        max_lost=args.max_lost,
        workers=args.workers,
        shard=parse_shard(args.shard),
        progress=not args.no_progress,
    )
    result = prepare(args.raw, args.out, opts)
    print("\n".join(report(result, args.out, opts)))
    return 0


def report(result: dict, out, opts) -> list[str]:
    """The lines printed at the end of a run."""
    c, run = result["counts"], result["this_run"]
    index, count = opts.shard
    part = f" (shard {index}/{count}: {plural(run['videos'], 'video')})" if count > 1 else ""
    lines = [
        f"prepared {plural(run['prepared'], 'video')}, skipped {run['skipped']} already done{part}",
        f"{out}: {plural(c['clips'], 'clip')} ({c['train']} train, {c['test']} test, {plural(c['frames'], 'frame')}) "
        f"from {c['videos_done']} of {plural(c['videos'], 'video')}",
    ]
    if not c["videos"]:
        lines.append("no videos found (only the files listed as not-a-video in prepare.json)")
    if c["dropped"]:
        lines.append(
            "dropped: " + ", ".join(f"{n} {reason}" for reason, n in c["dropped"].items()) + " (see prepare.json)"
        )
    if result["complete"] and c["train"] and not c["test"] and opts.test_fraction > 0:
        lines.append(
            "no test clips: the test videos were dropped (or too few videos); fomm evaluate needs some: "
            "try another --seed or a larger --test-fraction"
        )
    for warning in result["warnings"][:5]:
        lines.append(f"warning: {warning['source']}: {warning['warning']}")
    if not result["complete"]:
        lines.append(
            f"{plural(c['videos'] - c['videos_done'], 'video')} not prepared yet (other shards); prepare.json fills as they finish"
        )
    sheet = f" and {out}/prepare.png" if c["clips"] else ""
    lines.append(f"wrote {out}/prepare.json{sheet}; train with: fomm train --config CONFIG --data {out} --out RUN_DIR")
    return lines
