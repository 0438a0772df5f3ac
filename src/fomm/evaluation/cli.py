"""``fomm evaluate`` and ``fomm train-landmarks``."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from fomm.cli_args import add_command, positive_float, positive_int
from fomm.errors import FommError, plural

EVALUATE_EPILOG = """\
examples:
  fomm synth --category puppet --out data/puppet64
  fomm evaluate --checkpoint runs/puppet64/checkpoints/best.pt --data data/puppet64 --out report.json
  fomm evaluate --checkpoint vox-cpk.pth.tar --data data/vox --out vox.json --max-videos 20 --save recon/

  fomm evaluate --data data/face64 --out face.json     # the bundled model of the dataset's category
  fomm evaluate --checkpoint vox-cpk.pth.tar --config vox-256 --data my-face-videos --out faces.json

Prints the tables and writes report.json (one object per task: reconstruction, cross_identity; each
maps model / static / global_affine to l1, psnr, ssim, akd) and report.md (the same as Markdown
tables). On procedural datasets (dataset.json, made by fomm synth) frame 0 (the source) is left
out of the metrics and AKD uses the shipped landmark detector of the category against the exact
ground-truth keypoints. On other videos the original protocol is used (frame 0 included); on
faces, with pip install 'fomm[faces]', AKD (68 dlib landmarks) and AED (dlib identity embedding)
are added with the share of frames where no face was found.
"""

TRAIN_EPILOG = """\
example:
  fomm synth --category puppet --train 400 --test 40 --frames 16 --cross-pairs 0 --out /tmp/puppet64
  fomm train-landmarks --data /tmp/puppet64 --out puppet-64.pt --steps 2000 --seed 0

Writes puppet-64.pt (weights, loadable with torch.load(weights_only=True)) and puppet-64.json (how it
was trained, and its AKD on the dataset's test split). scripts/train_landmarks.sh made the shipped ones.
"""


def register(subparsers) -> None:
    _register_evaluate(subparsers)
    _register_train_landmarks(subparsers)


def _register_evaluate(subparsers) -> None:
    p = add_command(
        subparsers,
        "evaluate",
        description="Evaluate a checkpoint with the original protocols: video reconstruction from frame 0 "
        "(L1, PSNR, SSIM, AKD) and, on procedural datasets, cross-identity animation against exact "
        "renderings; writes a JSON report and a Markdown table beside it.",
        epilog=EVALUATE_EPILOG,
    )
    p.add_argument(
        "--checkpoint",
        help="checkpoint (.pth.tar or fomm .pt); default: the bundled model of the dataset's category (dataset.json)",
    )
    p.add_argument("--config", help="preset name or YAML, for checkpoints that carry no config")
    p.add_argument("--data", required=True, metavar="DIR", help="dataset folder (DIR/test/<video>...)")
    p.add_argument(
        "--out",
        required=True,
        metavar="REPORT.json",
        help="JSON report (REPORT.md is written beside; missing folders are created)",
    )
    p.add_argument(
        "--tasks",
        default="reconstruction,cross_identity",
        help="comma-separated: reconstruction, cross_identity (default both; cross_identity needs procedural data)",
    )
    p.add_argument("--max-videos", type=positive_int, metavar="N", help="evaluate at most N videos per task")
    p.add_argument("--batch-size", type=positive_int, default=16, metavar="B", help="frames per batch")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, mps or auto")
    p.add_argument("--threads", type=positive_int, help="CPU threads for PyTorch (default: PyTorch's)")
    p.add_argument("--landmarks", metavar="PT", help="landmark detector file to use instead of the shipped one")
    p.add_argument("--save", metavar="DIR", help="also write the model's outputs to DIR/<task>/<video>.mp4")
    p.add_argument(
        "--save-format",
        choices=("mp4", "png"),
        default="mp4",
        help="mp4 (default) or png (each video as one horizontal strip)",
    )
    p.add_argument(
        "--source-frame",
        choices=("exclude", "include"),
        help="leave frame 0 (the source) out of the metrics or keep it (default: exclude on procedural "
        "data, include on other videos, as the original)",
    )
    p.add_argument(
        "--face-metrics",
        choices=("auto", "on", "off"),
        default="auto",
        help="AKD/AED with the fomm[faces] models on real videos (auto: when installed and a face is found)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_evaluate)


def _register_train_landmarks(subparsers) -> None:
    t = add_command(
        subparsers,
        "train-landmarks",
        description="Train the small heatmap landmark detector that fomm evaluate uses for AKD on procedural "
        "data, from the training split's ground-truth keypoints (deterministic for a seed).",
        epilog=TRAIN_EPILOG,
    )
    t.add_argument("--data", required=True, metavar="DIR", help="procedural dataset made by fomm synth")
    t.add_argument(
        "--out",
        required=True,
        metavar="FILE.pt",
        help="detector weights (FILE.json beside; missing folders are created)",
    )
    t.add_argument("--steps", type=positive_int, default=2000, help="training steps")
    t.add_argument("--seed", type=int, default=0, help="seed")
    t.add_argument("--batch-size", type=positive_int, default=32, help="batch size")
    t.add_argument("--lr", type=positive_float, default=2e-3, help="Adam learning rate")
    t.add_argument("--width", type=positive_int, default=8, help="network width")
    t.add_argument(
        "--threads", type=positive_int, default=1, help="CPU threads (1: deterministic and light on shared machines)"
    )
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=run_train_landmarks)


def run_evaluate(args: argparse.Namespace) -> int:
    from fomm.evaluation.evaluate import evaluate
    from fomm.evaluation.report import console_table, write_report

    if Path(args.out).suffix.lower() != ".json":
        raise FommError(f"report path {args.out} does not end in .json; pass e.g. --out report.json")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    report = evaluate(
        args.checkpoint,
        args.data,
        max_videos=args.max_videos,
        tasks=args.tasks,
        batch_size=args.batch_size,
        progress=not args.no_progress,
        device=args.device,
        config=args.config,
        landmark_detector=args.landmarks,
        save_dir=args.save,
        save_format=args.save_format,
        source_frame=args.source_frame,
        face_metrics=args.face_metrics,
    )
    out, md = write_report(report, args.out)
    print(console_table(report), end="")
    print(f"wrote {out} and {md}")
    return 0


def run_train_landmarks(args: argparse.Namespace) -> int:
    from fomm.evaluation.landmarks import train_landmark_detector

    command = "fomm " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["train-landmarks"] else None
    record = train_landmark_detector(
        args.data,
        args.out,
        steps=args.steps,
        seed=args.seed,
        batch_size=args.batch_size,
        lr=args.lr,
        width=args.width,
        threads=args.threads,
        progress=not args.no_progress,
        command=command,
    )
    msg = (
        f"wrote {args.out} ({record['weights_bytes'] / 1e6:.2f} MB); final training loss {record['losses'][-1]:.3f} px"
    )
    if "test_akd_px" in record:
        msg += f"; test AKD {record['test_akd_px']:.3f} px on {plural(record['test_frames'], 'held-out frame')}"
    print(msg)
    return 0
