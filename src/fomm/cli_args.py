"""What the ``fomm`` sub-commands share: the table of commands and argparse helpers.

Sub-command modules import these from here, never from :mod:`fomm.cli` (the dispatcher, which
imports them). Add a command by adding a line to :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import textwrap

# Each sub-command: (name, the module whose ``register(subparsers)`` adds it, its line in
# ``fomm --help``). Only the chosen command's module is imported, so ``fomm --help`` and the
# light commands start without torch.
COMMANDS = [
    ("demo", "fomm.apps.demo", "animate the bundled example with the bundled model (no download needed)"),
    ("animate", "fomm.animation.cli", "animate a photo (or a folder of photos) with the motion of a driving video"),
    ("live", "fomm.apps.live", "animate a photo live from a camera or stream (window, file or virtual camera)"),
    ("crop", "fomm.faces", "crop a video or image around the face, ready for animation"),
    (
        "prepare",
        "fomm.prepare",
        "turn a folder of raw videos into a training set: clips per shot and subject, train/test by source",
    ),
    ("app", "fomm.apps.app", "serve a local web page to animate photos (offline; Gradio)"),
    (
        "train",
        "fomm.training.cli",
        "train a model on a folder of videos (original FOMM losses; resumable; torchrun-ready)",
    ),
    ("export", "fomm.export.cli", "write a checkpoint as the original .pth.tar or as ONNX graphs (--format onnx)"),
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
    (
        "models",
        "fomm.hub.cli",
        "list the bundled models (face-64, puppet-64) and the published checkpoints (vox, ...) and which are downloaded",
    ),
    ("download", "fomm.hub.cli", "download a published checkpoint or URL: resumable, verified, cached"),
]


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The one help style of every ``fomm`` command.

    Descriptions and epilogs keep their lines (examples stay on one line each, ready to copy);
    a line wider than the terminal is wrapped at spaces only. Argument help is wrapped at
    spaces only too: never inside ``vox-cpk.pth.tar`` or ``--no-paste-back``. An option's
    default is appended as ``(default: X)`` unless its text already says it (has the word
    "default") or there is none to say (None, a flag).
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines: list[str] = []
        paragraph: list[str] = []  # consecutive lines of prose (not indented, not blank)
        for line in [*text.splitlines(), None]:
            if line and not line.startswith(" ") and not (paragraph and paragraph[-1].endswith(":")):
                paragraph.append(line)  # prose; a line ending in ":" (a heading) ends its paragraph
                continue
            if paragraph and max(map(len, paragraph)) + len(indent) > width:
                paragraph = _wrap(" ".join(paragraph), width - len(indent))  # too wide here: wrapped again
            lines += paragraph + ([] if line is None else [line])
            paragraph = []
        return "\n".join(indent + line if line else line for line in lines)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or default is None
            or default is argparse.SUPPRESS
            or isinstance(default, bool)
            or not action.option_strings
            or action.nargs == 0
        ):
            return text
        return text + " (default: %(default)s)"  # a default the text does not state

    def _split_lines(self, text: str, width: int) -> list[str]:
        return _wrap(" ".join(text.split()), width)


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, max(width, 20), break_on_hyphens=False, break_long_words=False)


class CommandParser(argparse.ArgumentParser):
    """The parser of ``fomm`` and of each sub-command: always :class:`HelpFormatter`, and a
    mistake on the command line is one line (exit status 2), like every other user error."""

    def __init__(self, *args, formatter_class=None, **kwargs):
        super().__init__(*args, formatter_class=HelpFormatter, **kwargs)

    def error(self, message: str):
        # argparse prints the whole usage first (a dozen lines for fomm animate) and the problem
        # last; its message already names the option and the allowed values, --help the rest.
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def add_model_arguments(group) -> None:
    """``--checkpoint`` and ``--config``, worded alike for every command that animates."""
    group.add_argument(
        "--checkpoint",
        metavar="PATH_OR_NAME",
        help="the model: a checkpoint file (e.g. vox-cpk.pth.tar), a bundled model (face-64, puppet-64; no "
        "download), a name that fomm models lists (fomm download vox, then vox), or with --backend "
        "onnxruntime a folder written by fomm export --format onnx",
    )
    group.add_argument(
        "--config",
        metavar="NAME_OR_YAML",
        help="model config: a preset (e.g. vox-256) or a YAML file; needed only when the "
        "checkpoint fits no bundled preset",
    )


def summary(name: str) -> str:
    """The one-line help of sub-command ``name``."""
    return next(text for command, _, text in COMMANDS if command == name)


def add_command(subparsers, name: str, description: str, epilog: str | None = None) -> argparse.ArgumentParser:
    """Add sub-command ``name``'s parser, its help the command's line in :data:`COMMANDS` (the
    dispatcher makes every parser a :class:`CommandParser`, so all share one help style)."""
    return subparsers.add_parser(name, help=summary(name), description=description, epilog=epilog)


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


def version() -> str:
    """The installed distribution's version (``importlib.metadata``), else ``fomm.__version__``."""
    from importlib import metadata

    try:
        return metadata.version("fomm")
    except metadata.PackageNotFoundError:
        from fomm import __version__

        return __version__
