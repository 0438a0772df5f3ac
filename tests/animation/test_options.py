"""AnimateOptions: one frozen, checked object for every option of fomm animate, and the typed results."""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from fomm.animation.options import PRECISIONS, AnimateOptions
from fomm.animation.results import AnimateResult, ManyResult
from fomm.cli import build_parser
from fomm.errors import FommError


def _animate_args(*extra):
    argv = ["animate", "--source", "a.png", "--driving", "b.mp4", "--checkpoint", "m.pt", "--out", "o.mp4", *extra]
    return build_parser(argv).parse_args(argv)


def test_defaults_are_fomm_animate_defaults_and_the_object_is_frozen():
    o = AnimateOptions()
    assert (o.relative, o.adapt_movement_scale, o.best_frame, o.layout, o.precision) == (
        True,
        True,
        None,
        "result",
        "exact",
    )
    assert o.paste_back and not o.pastes_back and o.crop_options == {}
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.layout = "side-by-side"
    fast = o.replace(precision="fast", best_frame="3")
    assert (fast.precision, fast.best_frame, o.precision) == ("fast", 3, "exact")  # checked and normalised again


def test_every_animate_flag_fills_the_options():
    o = AnimateOptions.from_args(_animate_args())
    assert o == AnimateOptions(device="auto")  # the CLI's only other default: --device auto
    args = _animate_args(
        "--no-relative", "--no-adapt-scale", "--driving-fit", "pad", "--crop", "--no-paste-back",
        "--crop-scale", "2", "--layout", "side-by-side", "--show-keypoints", "--panel-size", "128", "--no-labels",
        "--save-frames", "frames", "--no-audio", "--cpu", "--backend", "onnxruntime", "--batch-size", "2",
        "--precision", "fast", "--compile", "--no-progress",
    )  # fmt: skip
    o = AnimateOptions.from_args(args)
    assert (o.relative, o.adapt_movement_scale, o.driving_fit, o.crop, o.paste_back) == (
        False,
        False,
        "pad",
        True,
        False,
    )
    assert o.crop_options == {"scale": 2.0, "smoothing": 4.0, "tracker": "auto", "boxes_json": None}
    assert (o.layout, o.show_keypoints, o.panel_size, o.labels, o.save_frames) == (
        "side-by-side",
        True,
        128,
        False,
        "frames",
    )
    assert (o.audio, o.device, o.backend, o.batch_size, o.precision, o.compile, o.progress) == (
        False, "cpu", "onnxruntime", 2, "fast", True, False,
    )  # fmt: skip
    o = AnimateOptions.from_args(_animate_args("--find_best_frame", "--best-frame-method", "keypoints"))
    assert (o.best_frame, o.best_frame_method) == ("auto", "keypoints")
    assert AnimateOptions.from_args(_animate_args(), layout="side-by-side").layout == "side-by-side"


def test_every_field_has_a_flag():
    """The dataclass holds every option of fomm animate, and fomm animate sets every field."""
    dests = {a.dest for a in build_parser(["animate"])._subparsers._group_actions[0].choices["animate"]._actions}
    files = {"help", "source", "driving", "checkpoint", "config", "out", "mode"}  # --mode: sets relative/avd
    crop = {"crop_scale", "crop_smoothing", "tracker", "boxes_json"}
    fields = {f.name for f in dataclasses.fields(AnimateOptions)}
    assert dests - files - crop == (fields - {"crop_options", "fps", "adapt_movement_scale"}) | {"adapt_scale"}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"layout": "grid"}, r"^unknown layout 'grid'; use one of result, side-by-side \(--layout\)$"),
        ({"precision": "half"}, r"^unknown precision 'half'; use one of exact, fast \(--precision\)$"),
        ({"backend": "tf"}, r"unknown backend 'tf'"),
        ({"driving_fit": "zoom"}, r"unknown driving fit 'zoom'"),
        ({"best_frame": -1}, r"not 'auto' or a frame number >= 0"),
        ({"best_frame_method": "keypoints"}, r"used only with --best-frame auto"),
        ({"batch_size": 0}, r"^batch size must be a whole number >= 1 \(got 0\); use e.g. --batch-size 8$"),
        ({"panel_size": 2.5}, r"panel size must be a whole number"),
        ({"fps": 0}, r"fps must be a number > 0"),
        ({"crop_options": {"scale": 2}}, r"^--crop-scale: used only with --crop; add --crop or drop them$"),
        ({"color_match": True}, r"^--color-match: used only with --crop"),
        ({"crop": True, "paste_back": False, "color_match": True}, r"needs the crop pasted back"),
        ({"crop": True, "crop_options": {"scale": 99}}, r"--crop-scale must be a number in"),
    ],
)
def test_mistakes_are_one_line_naming_the_fix(kwargs, match):
    with pytest.raises(FommError, match=match):
        AnimateOptions(**kwargs)


def test_unknown_names_say_the_closest():
    with pytest.raises(TypeError, match="unknown animation option 'layuot'; did you mean 'layout'"):
        AnimateOptions().replace(layuot="result")
    with pytest.raises(TypeError, match="'layuot'; did you mean 'layout'"):
        AnimateOptions.build(None, layuot="result")


def test_older_calls_keep_their_meaning():
    assert AnimateOptions(crop=True, paste_back=None).pastes_back  # None: on with crop, as before
    assert not AnimateOptions(paste_back=True).pastes_back  # paste-back needs a crop
    assert AnimateOptions(crop_options=None).crop_options == {}
    assert AnimateOptions(batch_size=8.0).batch_size == 8


def test_animate_video_takes_at_most_ten_parameters_and_overrides():
    from fomm.animation.pipeline import animate_video

    params = inspect.signature(animate_video).parameters
    assert len(params) <= 10 and list(params)[:5] == ["source", "driving", "checkpoint", "model", "out"]
    with pytest.raises(FommError, match="layout"):
        animate_video("a.png", "b.mp4", out="x.mp4", options=AnimateOptions(), layout="grid")


def test_precision_names_are_defined_once():
    import fomm.animation.engine as engine
    import fomm.models.inference as inference
    import fomm.models.precision as precision

    assert inference.PRECISIONS is precision.PRECISIONS is engine.PRECISIONS is PRECISIONS
    src = Path(precision.__file__).parent.parent
    defined = [p for p in src.rglob("*.py") if "PRECISIONS = (" in p.read_text()]
    assert sorted(p.relative_to(src).as_posix() for p in defined) == ["models/precision.py", "training/speed.py"]


def test_options_do_not_import_torch():
    code = "import sys, fomm.animation.options, fomm.animation.cli\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False"]


def test_results_are_typed_and_read_like_dicts():
    one = AnimateResult(
        out=Path("a.mp4"), frames=3, fps=25.0, seconds=1.0, frames_per_second=3.0, best_frame=None,
        best_frame_method=None, size=(64, 48), audio=False, save_frames=None, kind="container", source="a.png",
        crop_box=None, tracker=None, pasted_back=False,
    )  # fmt: skip
    assert one["frames"] == one.frames == 3 and one["size"] == (64, 48) and one.get("tracker") is None
    assert "outputs" not in one and dict(one)["kind"] == "container" and len(one) == 15
    with pytest.raises(KeyError):
        one["nope"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.frames = 4
    many = ManyResult(out=Path("d"), outputs=(one,), sources=1, frames=3, fps=25.0, seconds=1.0, frames_per_second=3.0)
    assert many["outputs"][0]["frames"] == 3 and "outputs" in many
