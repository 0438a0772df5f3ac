"""The ``fomm`` command line: a thin layer over the Python API.

Each sub-command lives beside the code it drives and exposes ``register(subparsers)``, which adds
its parser and sets ``func`` to a function taking the parsed arguments. Problems with the user's
input arrive here as :class:`fomm.errors.FommError` and are printed as one line, without a
traceback (exit status 2). Ctrl-C exits with status 130; outputs are written atomically, so an
interrupted command leaves no partial file.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from fomm.errors import FommError

# Each sub-command: (name, the module whose ``register(subparsers)`` adds it, its line in
# ``fomm --help``). Only the chosen command's module is imported, so ``fomm --help`` and the
# light commands start without torch.
COMMANDS = [
    ("demo", "fomm.demo", "animate the bundled example with the bundled model (no download needed)"),
    ("animate", "fomm.animate_cli", "animate a photo with the motion of a driving video"),
    ("crop", "fomm.crop", "crop a video or image around the face, ready for animation"),
    ("app", "fomm.app", "serve a local web page to animate photos (offline; Gradio)"),
    (
        "train",
        "fomm.training.cli",
        "train a model on a folder of videos (original FOMM losses; resumable; torchrun-ready)",
    ),
    ("export", "fomm.training.cli", "convert one of our checkpoints to the original .pth.tar format"),
    (
        "evaluate",
        "fomm.evaluation.cli",
        "measure a model: reconstruction (and cross-identity animation on "
        "procedural data) against static and global-affine baselines",
    ),
    ("train-landmarks", "fomm.evaluation.cli", "train an evaluation landmark detector on a procedural dataset"),
    (
        "synth",
        "fomm.data.synthetic.cli",
        "generate a synthetic video dataset (puppets or cartoon faces) with exact keypoints",
    ),
    ("models", "fomm.hub.cli", "list the published checkpoints (vox, taichi, ...) and which are downloaded"),
    ("download", "fomm.hub.cli", "download a published checkpoint or URL: resumable, verified, cached"),
]


def summary(name: str) -> str:
    """The one-line help of sub-command ``name``."""
    return next(text for command, _, text in COMMANDS if command == name)


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser, with the full parser of the command named in ``argv`` (others listed only)."""
    argv = sys.argv[1:] if argv is None else argv
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = argparse.ArgumentParser(
        prog="fomm",
        description="First Order Motion Model: animate a still image with the motion of a driving video.",
        epilog="Example: fomm animate --source photo.jpg --driving video.mp4 "
        "--checkpoint vox-cpk.pth.tar --out result.mp4",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in dict.fromkeys(module for name, module, _ in COMMANDS if name == chosen):
        importlib.import_module(module_name).register(sub)
    for name, _, text in COMMANDS:
        if name not in sub.choices:
            sub.add_parser(name, help=text)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        result = args.func(args)
    except FommError as exc:
        print(f"fomm {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fomm {args.command}: interrupted; no partial output was left", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
