"""The ``fomm`` command line: a thin layer over the Python API.

Each sub-command lives beside the code it drives and exposes ``register(subparsers)``, which adds
its parser and sets ``func`` to a function taking the parsed arguments. Problems with the user's
input arrive here as :class:`fomm.errors.FommError` and are printed as one line, without a
traceback (exit status 2); warnings as one line ``fomm: warning: <message>``. Ctrl-C exits with
status 130; outputs are written atomically, so an interrupted command leaves no partial file.
The table of commands and the argparse helpers live in :mod:`fomm.cli_args` (sub-commands import
them from there, never from this dispatcher).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import warnings

from fomm.cli_args import COMMANDS, CommandParser, positive_float, positive_int, summary, version  # noqa: F401
from fomm.errors import FommError, install_cli_warning_format


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser, with the full parser of the command named in ``argv`` (others listed only)."""
    argv = sys.argv[1:] if argv is None else argv
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = CommandParser(
        prog="fomm",
        description="First Order Motion Model: animate a still image with the motion of a driving video.",
        epilog="example:\n  fomm animate --source photo.jpg --driving video.mp4 --checkpoint vox-cpk.pth.tar --out result.mp4",
    )
    parser.add_argument("--version", action="version", version=f"fomm {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    for module_name in dict.fromkeys(module for name, module, _ in COMMANDS if name == chosen):
        importlib.import_module(module_name).register(sub)
    for name, _, text in COMMANDS:
        if name not in sub.choices:
            sub.add_parser(name, help=text)
    return parser


@contextlib.contextmanager
def opencv_logs_off():
    """OpenCV's own log lines (libpng or libtiff on a corrupt file, V4L2 on a missing camera) off
    while a command runs: it says each problem in its one line. OpenCV's log level is process-wide,
    so only the command line, whose process this is, sets it (never the library); OpenCV's own
    ``OPENCV_LOG_LEVEL`` keeps them when set."""
    if "OPENCV_LOG_LEVEL" in os.environ:
        yield
        return
    import cv2

    logging = cv2.utils.logging
    saved = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging.setLogLevel(saved)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        with warnings.catch_warnings(), opencv_logs_off():
            install_cli_warning_format()  # one line 'fomm: warning: ...', no source line
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
