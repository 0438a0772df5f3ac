"""The options of ``fomm animate``, each defined once: its names, type, default, choices and help.

``fomm animate`` adds them in the groups of its help; ``fomm live`` picks the ones it shares
(the face crop, running, three of motion) by name, with its own wording where a camera takes
the driving video's place, so that a default, a choice or a flag cannot differ between the two.
:func:`add_options` adds picked options to a parser or an argument group.

Light: the face-crop options come from :mod:`fomm.faces.cli` (OpenCV) only when picked.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping

from fomm.animation.options import (
    BACKENDS,
    BEST_FRAME_METHODS,
    DEVICES,
    DRIVING_FITS,
    LAYOUTS,
    PANEL_SIZE,
    PRECISIONS,
)
from fomm.cli_args import positive_int

__all__ = ["CROP", "MOTION", "OUTPUT", "RUNNING", "add_options"]

# fomm animate's groups: the names of their options, in the order its help lists them.
MOTION = (
    "--relative",
    "--no-relative",
    "--avd",
    "--mode",
    "--adapt-scale",
    "--no-adapt-scale",
    "--best-frame",
    "--find_best_frame",
    "--best-frame-method",
    "--driving-fit",
)
CROP = ("--crop", "--no-paste-back", "--color-match", "--crop-scale", "--crop-smoothing", "--tracker", "--boxes-json")
OUTPUT = ("--layout", "--show-keypoints", "--panel-size", "--no-labels", "--save-frames", "--audio", "--no-audio")
RUNNING = ("--device", "--cpu", "--backend", "--batch-size", "--precision", "--compile", "--no-progress")

Spec = tuple[tuple[str, ...], dict]


def add_options(target, flags: Iterable[str], help: Mapping[str, str] | None = None) -> None:
    """Add the options ``flags`` to ``target`` (a parser or an argument group), in this order.

    A flag may be any of an option's names; the one given is listed first (``fomm live`` shows
    ``--absolute`` where ``fomm animate`` shows ``--no-relative``). ``help``: the command's own
    help text of some of them, by the flag given."""
    flags = tuple(flags)
    specs = _specs(crop=any(flag in CROP[3:] for flag in flags))
    for flag in flags:
        names, keywords = next((names, keywords) for names, keywords in specs if flag in names)
        names = (flag, *(name for name in names if name != flag))
        if help and flag in help:
            keywords = {**keywords, "help": help[flag]}
        target.add_argument(*names, **keywords)


def _specs(crop: bool) -> list[Spec]:
    specs = _motion() + _paste() + _output() + _running()
    if crop:
        from fomm.faces.cli import crop_argument_specs  # OpenCV: only for the commands that crop

        specs += crop_argument_specs()
    return specs


def best_frame_arg(text: str):
    """argparse type of ``--best-frame``: ``auto`` or a frame number >= 0."""
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not 'auto' or a frame number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"frame number {value} is negative; frames are counted from 0")
    return value


def _motion() -> list[Spec]:
    return [
        (
            ("--relative",),
            dict(
                dest="relative",
                action="store_true",
                default=True,
                help="apply the driving motion relative to its initial frame (default)",
            ),
        ),
        (
            ("--no-relative", "--absolute"),
            dict(dest="relative", action="store_false", help="use the driving keypoints as they are (absolute motion)"),
        ),
        (
            ("--avd",),
            dict(
                dest="avd",
                action="store_true",
                default=False,
                help="Thin-Plate Spline Motion Model checkpoints: animation via disentanglement (the AVD "
                "network gives the driving pose the source's shape; for other identities)",
            ),
        ),
        (
            ("--mode",),
            dict(
                dest="mode",
                choices=("standard", "relative", "avd"),
                help="the TPSMM demo's flag: standard = --no-relative, relative = --relative, avd = --avd",
            ),
        ),
        (
            ("--adapt-scale", "--adapt_scale"),
            dict(
                dest="adapt_scale",
                action="store_true",
                default=True,
                help="scale the motion by the source/driving keypoint hull ratio (default)",
            ),
        ),
        (
            ("--no-adapt-scale",),
            dict(
                dest="adapt_scale",
                action="store_false",
                help="do not scale the motion by the source/driving keypoint hull ratio",
            ),
        ),
        (
            ("--best-frame", "--best_frame"),
            dict(
                dest="best_frame",
                type=best_frame_arg,
                metavar="auto|N",
                help="measure the motion from the driving frame that best matches the source's pose "
                "(auto) or from frame N, instead of the first frame",
            ),
        ),
        (
            ("--find_best_frame",),
            dict(
                dest="best_frame",
                action="store_const",
                const="auto",
                help="the original's flag: the same as --best-frame auto",
            ),
        ),
        (
            ("--best-frame-method",),
            dict(
                choices=BEST_FRAME_METHODS,
                default="auto",
                help="how --best-frame auto chooses: landmarks (face landmark alignment, as the original; "
                "needs pip install 'fomm[faces]'), keypoints (the model's keypoints, any category) or auto "
                "(landmarks when installed and the source has a face, else keypoints; default)",
            ),
        ),
        (
            ("--driving-fit",),
            dict(
                choices=DRIVING_FITS,
                default="crop",
                help="a non-square driving video is centre-cropped (crop, default), letterboxed (pad) "
                "or squashed (stretch) to the model's square frames",
            ),
        ),
    ]


def _paste() -> list[Spec]:
    """The face crop's own options (the others: :func:`fomm.faces.cli.crop_argument_specs`)."""
    return [
        (
            ("--crop",),
            dict(
                action="store_true",
                help="crop the source and the driving video around the face first (error if none is found); "
                "the animated face is pasted back into the full photo",
            ),
        ),
        (
            ("--no-paste-back",),
            dict(
                dest="paste_back",
                action="store_false",
                default=True,
                help="with --crop: write the animated crop only, not the full photo",
            ),
        ),
        (
            ("--color-match",),
            dict(
                action="store_true",
                help="with --crop: match the animated face's colours to the photo around it (hides the seam)",
            ),
        ),
    ]


def _output() -> list[Spec]:
    return [
        (
            ("--layout",),
            dict(
                choices=LAYOUTS,
                default="result",
                help="result: the animated frames; side-by-side: labelled source | driving | result (default: result)",
            ),
        ),
        (
            ("--show-keypoints",),
            dict(action="store_true", help="draw keypoints: source, driving and transferred (on the result)"),
        ),
        (
            ("--panel-size",),
            dict(
                type=positive_int,
                default=PANEL_SIZE,
                metavar="PX",
                help=f"side-by-side panels are enlarged to at least PX pixels high (default: {PANEL_SIZE})",
            ),
        ),
        (("--no-labels",), dict(dest="labels", action="store_false", help="side-by-side panels without labels")),
        (
            ("--save-frames",),
            dict(metavar="DIR", help="also write every output frame as a PNG into DIR (created if missing)"),
        ),
        (
            ("--audio",),
            dict(
                dest="audio",
                action="store_true",
                default=True,
                help="copy the driving video's audio into .mp4/.mov/.mkv results (default)",
            ),
        ),
        (
            ("--no-audio",),
            dict(dest="audio", action="store_false", help="do not copy the driving video's audio into the result"),
        ),
    ]


def _running() -> list[Spec]:
    return [
        (
            ("--device",),
            dict(
                choices=DEVICES,
                default="auto",
                help="where to run the model (default: auto: CUDA, then MPS, then CPU)",
            ),
        ),
        (("--cpu",), dict(dest="device", action="store_const", const="cpu", help="the original's flag: --device cpu")),
        (
            ("--backend",),
            dict(
                choices=BACKENDS,
                default="torch",
                help="run the networks in torch (default) or in ONNX Runtime (exported on the fly, cached)",
            ),
        ),
        (
            ("--batch-size",),
            dict(
                type=positive_int,
                default=None,
                metavar="N",
                help="frames animated at once (default: 4 on a CPU, 16 on a GPU)",
            ),
        ),
        (
            ("--precision",),
            dict(
                choices=PRECISIONS,
                default="exact",
                help="exact: float32 (default); fast: bf16/fp16 on GPUs and CPUs with bf16 units, "
                "int8 convolutions on other x86 CPUs (PSNR ~56 dB vs exact on vox-256)",
            ),
        ),
        (("--compile",), dict(action="store_true", help="torch.compile the networks (slow start)")),
        (("--no-progress",), dict(dest="progress", action="store_false", default=True, help="no progress bar")),
    ]
