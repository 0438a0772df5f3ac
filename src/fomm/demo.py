"""``fomm demo``: animate the bundled source image with the bundled driving video, using the
bundled model, and write a side-by-side video plus a PNG contact sheet."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def run_demo(
    out_dir: str | Path = "fomm-demo", device: str = "cpu", progress: bool = True, checkpoint: str | Path | None = None
) -> dict:
    """Write ``demo.mp4`` (source | driving | result, keypoints drawn) and ``demo-sheet.png``.

    Returns the paths and the animation's statistics.
    """
    from fomm.bundled import bundled_checkpoint_path, demo_inputs
    from fomm.data.video_io import read_frames, write_image
    from fomm.drawing import contact_sheet
    from fomm.pipeline import animate_video

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    source, driving = demo_inputs()
    video = out_dir / "demo.mp4"
    stats = animate_video(
        source,
        driving,
        checkpoint=checkpoint or bundled_checkpoint_path(),
        out=video,
        layout="side-by-side",
        show_keypoints=True,
        device=device,
        progress=progress,
    )
    frames, _ = read_frames(video)
    picks = np.linspace(0, len(frames) - 1, num=min(8, len(frames))).round().astype(int)
    sheet = contact_sheet([frames[i] for i in picks], columns=2)
    sheet_path = write_image(out_dir / "demo-sheet.png", sheet)
    return {"video": video, "sheet": Path(sheet_path), **stats}


def register(subparsers) -> argparse.ArgumentParser:
    from fomm.cli_args import summary

    parser = subparsers.add_parser(
        "demo",
        help=summary("demo"),
        description="Animate the bundled source image with the bundled driving video using the bundled "
        "model; writes a side-by-side video (source | driving | result, keypoints drawn) and a "
        "PNG contact sheet.",
        epilog="Example: fomm demo --out fomm-demo",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--out", default="fomm-demo", help="output folder")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto")
    parser.add_argument("--checkpoint", help="use this checkpoint instead of the bundled model")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    result = run_demo(args.out, device=args.device, progress=not args.no_progress, checkpoint=args.checkpoint)
    print(f"wrote {result['video']} ({result['frames']} frames, source | driving | result)")
    print(f"wrote {result['sheet']} (contact sheet)")
    return 0
