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

# (module, attribute) of each sub-command's ``register`` function, in the order --help lists them.
SUBCOMMANDS = [
    ("fomm.demo", "register"),
    ("fomm.animate_cli", "register"),
    ("fomm.crop", "register"),
    ("fomm.training.cli", "register"),
    ("fomm.evaluation.cli", "register"),
    ("fomm.data.synthetic.cli", "register"),
    ("fomm.models.checkpoint_cli", "register"),
]


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fomm",
        description="First Order Motion Model: animate a still image with the motion of a driving video.",
        epilog="Example: fomm animate --source photo.jpg --driving video.mp4 "
        "--checkpoint vox-cpk.pth.tar --out result.mp4",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name, attr in SUBCOMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:  # a sub-command not built yet
            if exc.name == module_name:
                continue
            raise
        getattr(module, attr)(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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
