"""``fomm demo``: animate the bundled source image with the bundled driving video, using the
bundled model of a category (``face`` when it is installed, else ``puppet``), and write a
labelled side-by-side video plus a PNG contact sheet."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

from fomm.animation.options import DEVICES, PANEL_SIZE
from fomm.atomic import make_temp_dir
from fomm.bundled import BUNDLED_MODELS, bundled_checkpoint_path, default_category, demo_inputs
from fomm.cli_args import positive_int, summary
from fomm.errors import FommError, plural

SHEET_FRAMES = 4  # frames on the contact sheet, evenly spread over the clip


def _inputs(category: str | None, checkpoint) -> tuple[str, Path, Path, Path]:
    """``(category, checkpoint, source, driving)``: the bundled ones unless a checkpoint is given."""
    if category is None:
        category = default_category()
    source, driving = demo_inputs(category)
    return category, checkpoint or bundled_checkpoint_path(category), source, driving


def _sheet(frames_dir: Path, count: int) -> np.ndarray:
    """A few labelled frames of the side-by-side video (read back losslessly from PNGs)."""
    from fomm.data.drawing import contact_sheet, label_panel
    from fomm.data.video_io import list_frame_files, read_image

    files = list_frame_files(frames_dir)
    picks = np.linspace(0, len(files) - 1, num=min(count, len(files))).round().astype(int)
    frames = [label_panel(read_image(files[i]), f"frame {i}") for i in picks]
    return contact_sheet(frames, columns=2 if len(frames) > 1 else 1, gap=4)


def run_demo(
    out_dir: str | Path = "fomm-demo",
    device: str = "cpu",
    progress: bool = True,
    checkpoint: str | Path | None = None,
    category: str | None = None,
    panel_size: int = PANEL_SIZE,
) -> dict:
    """Write ``demo.mp4`` (labelled source | driving | result panels, each enlarged to
    ``panel_size`` pixels, keypoints drawn) and ``demo-sheet.png`` (a few of its frames).

    ``category``: ``face`` or ``puppet`` (None: ``face`` when its model is installed, else
    ``puppet``); ``checkpoint`` replaces the bundled model. Returns the paths, the category and the
    animation's statistics.
    """
    from fomm.animation.pipeline import animate_video  # torch and PyAV: when the demo runs, not for --help
    from fomm.data.video_io import write_image
    from fomm.models.checkpoint import load_model

    category, checkpoint, source, driving = _inputs(category, checkpoint)
    out_dir = _check_out_dir(out_dir)
    model = load_model(checkpoint, device=device)  # the one way in: name, file, format, device
    created = not out_dir.exists()
    video = out_dir / "demo.mp4"
    try:
        tmp = make_temp_dir(out_dir / "demo-frames")  # a killed run's folder: removed by the next write
        try:
            stats = animate_video(
                source,
                driving,
                model=model,
                out=video,
                layout="side-by-side",
                show_keypoints=True,
                panel_size=panel_size,
                save_frames=tmp / "frames",
                device=device,
                progress=progress,
            )
            sheet = _sheet(tmp / "frames", SHEET_FRAMES)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        sheet_path = write_image(out_dir / "demo-sheet.png", sheet)
    except BaseException:
        if created:  # the folder is ours: leave nothing of a failed demo
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    return {**stats, "save_frames": None, "video": video, "sheet": Path(sheet_path), "category": category}


def _check_out_dir(out_dir) -> Path:
    """``out_dir`` as a Path, or a FommError when it names a file."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise FommError(f"--out {out_dir} is a file; give a folder for the demo video and sheet")
    return out_dir


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "demo",
        help=summary("demo"),
        description="Animate the bundled source image with the bundled driving video using the bundled "
        "model; writes a labelled side-by-side video (source | driving | result, keypoints drawn, "
        "panels enlarged for display) and a PNG contact sheet of a few of its frames into the --out "
        "folder (default: fomm-demo in the current folder, created if missing).",
        epilog="examples:\n"
        "  fomm demo                                   # writes fomm-demo/demo.mp4 and fomm-demo/demo-sheet.png\n"
        "  fomm demo --category puppet --out puppet-demo",
    )
    parser.add_argument(
        "--out",
        default="fomm-demo",
        metavar="DIR",
        help="output folder (default: fomm-demo, in the current folder; created if missing)",
    )
    parser.add_argument(
        "--category",
        choices=list(BUNDLED_MODELS),
        default=None,
        help="which bundled model and inputs (default: face when installed, else puppet)",
    )
    parser.add_argument("--device", choices=DEVICES, default="cpu", help="where to run the model (default: cpu)")
    parser.add_argument("--checkpoint", help="use this checkpoint instead of the bundled model")
    parser.add_argument(
        "--panel-size",
        type=positive_int,
        default=PANEL_SIZE,
        metavar="PX",
        help=f"height of each panel (default: {PANEL_SIZE})",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    result = run_demo(
        args.out,
        device=args.device,
        progress=not args.no_progress,
        checkpoint=args.checkpoint,
        category=args.category,
        panel_size=args.panel_size,
    )
    w, h = result["size"]
    print(
        f"wrote {result['video']} ({plural(result['frames'], 'frame')}, {w}x{h}: source | driving | result, {result['category']})"
    )
    print(f"wrote {result['sheet']} (contact sheet, keypoints drawn)")
    return 0
