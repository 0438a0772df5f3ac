"""Bad inputs across every command get one clear line and no output (issue #13).

Each row runs ``fomm.cli.main([...])`` in-process on tiny inputs made here and checks: exit status
2, exactly one stderr line starting with ``fomm <command>: error:``, no traceback, and nothing at
the output path.
"""

from __future__ import annotations

import os
import warnings
import zipfile

import numpy as np
import pytest
import yaml

from fomm.cli import main
from fomm.config import load_preset
from fomm.data import video_io
from fomm.errors import install_cli_warning_format
from fomm.testing import moving_square_video, write_frame_folder

SIZE = 64


CLIP = moving_square_video(SIZE, 4, seed=0)  # the photo is its first frame


def _config(root, name: str, path: str, value) -> str:
    data = load_preset("tiny-64").to_dict()
    node = data
    *parents, key = path.split(".")
    for part in parents:
        node = node[part]
    node[key] = value
    out = root / f"{name}.yaml"
    out.write_text(yaml.safe_dump(data))
    return str(out)


def _videos(root, split: str, count: int = 2, frames: int = 4) -> None:
    for v in range(count):
        write_frame_folder(root / split / f"v{v}", moving_square_video(SIZE, frames, v))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_checkpoint, bomb_png):
    root = tmp_path_factory.mktemp("bad_inputs")
    p = {"root": str(root)}
    p["src"] = str(video_io.write_image(root / "src.png", CLIP[0]))
    p["drv"] = str(video_io.write_video(root / "drv.mp4", CLIP, fps=10))
    p["ckpt"] = str(tiny_checkpoint)
    p["bomb"] = str(bomb_png)  # 40,000 x 40,000 pixels in about 200 KB
    (root / "photos").mkdir()  # many sources: a good photo and a bomb
    video_io.write_image(root / "photos" / "a.png", CLIP[1])
    (root / "photos" / "b.png").write_bytes(bomb_png.read_bytes())
    p["photos_with_bomb"] = str(root / "photos")
    png, mp4 = (root / "src.png").read_bytes(), (root / "drv.mp4").read_bytes()
    files = {
        "empty.png": b"",
        "text.png": b"not an image at all\n",
        "trunc.png": png[: len(png) // 2],
        "empty.mp4": b"",
        "text.mp4": b"not a video\n",
        "trunc.mp4": mp4[:200],
        "png.pth": png,
        "empty.pth": b"",
        "text.pth": b"my notes\n",
        "exists.mp4": b"not to be touched",
        "exists.txt": b"a file where a folder should be",
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
        p[name.replace(".", "_")] = str(root / name)
    with zipfile.ZipFile(root / "zip.pth", "w") as archive:
        archive.writestr("readme.txt", "hello")
    p["zip_pth"] = str(root / "zip.pth")
    p["trunc_pth"] = str(root / "trunc.pth")
    data = tiny_checkpoint.read_bytes()
    (root / "trunc.pth").write_bytes(data[: len(data) // 2])
    bad_values = {
        "epochs_two": ("train_params.num_epochs", "two"),
        "kp_ten": ("model_params.common_params.num_kp", "ten"),
        "kp_zero": ("model_params.common_params.num_kp", 0),
        "shape_text": ("dataset_params.frame_shape", "64x64"),
        "scale_zero": ("model_params.kp_detector_params.scale_factor", 0),
        "lr_typo": ("train_params.lr_generater", 1e-4),
    }
    for name, (key, value) in bad_values.items():
        p[f"cfg_{name}"] = _config(root, name, key, value)
    (root / "broken.yaml").write_text("model_params: [unclosed\n")
    p["cfg_broken"] = str(root / "broken.yaml")
    data_dir = root / "data"
    _videos(data_dir, "train")
    _videos(data_dir, "test")
    p["data"] = str(data_dir)
    (root / "nodata").mkdir()
    p["nodata"] = str(root / "nodata")
    (root / "onnx").mkdir()  # an ONNX export folder (its manifest is all that is read before refusing it)
    (root / "onnx" / "manifest.json").write_text('{"format": "fomm-onnx", "frame_shape": [64, 64]}')
    p["onnx"] = str(root / "onnx")
    return p


# (row id, argv with {placeholders}; {out} is the output folder that must stay empty)
ANIMATE = "animate --no-progress --device cpu --source {src} --driving {drv} --checkpoint {ckpt}"
ROWS = [
    # animate: missing / empty / corrupt / truncated / wrong-kind inputs
    ("animate-source-missing", ANIMATE.replace("{src}", "{root}/nope.png") + " --out {out}/r.mp4"),
    ("animate-source-empty", ANIMATE.replace("{src}", "{empty_png}") + " --out {out}/r.mp4"),
    ("animate-source-text", ANIMATE.replace("{src}", "{text_png}") + " --out {out}/r.mp4"),
    ("animate-source-truncated", ANIMATE.replace("{src}", "{trunc_png}") + " --out {out}/r.mp4"),
    ("animate-source-is-video", ANIMATE.replace("{src}", "{drv}") + " --out {out}/r.mp4"),
    ("animate-driving-missing", ANIMATE.replace("{drv}", "{root}/nope.mp4") + " --out {out}/r.mp4"),
    ("animate-driving-empty", ANIMATE.replace("{drv}", "{empty_mp4}") + " --out {out}/r.mp4"),
    ("animate-driving-text", ANIMATE.replace("{drv}", "{text_mp4}") + " --out {out}/r.mp4"),
    ("animate-driving-truncated", ANIMATE.replace("{drv}", "{trunc_mp4}") + " --out {out}/r.mp4"),
    ("animate-source-bomb", ANIMATE.replace("{src}", "{bomb}") + " --out {out}/r.mp4"),
    ("animate-driving-bomb", ANIMATE.replace("{drv}", "{bomb}") + " --out {out}/r.mp4"),
    ("animate-checkpoint-png", ANIMATE.replace("{ckpt}", "{png_pth}") + " --out {out}/r.mp4"),
    ("animate-checkpoint-empty", ANIMATE.replace("{ckpt}", "{empty_pth}") + " --out {out}/r.mp4"),
    ("animate-checkpoint-text", ANIMATE.replace("{ckpt}", "{text_pth}") + " --out {out}/r.mp4"),
    ("animate-checkpoint-zip", ANIMATE.replace("{ckpt}", "{zip_pth}") + " --out {out}/r.mp4"),
    ("animate-checkpoint-truncated", ANIMATE.replace("{ckpt}", "{trunc_pth}") + " --out {out}/r.mp4"),
    ("animate-driving-is-checkpoint", ANIMATE.replace("{drv}", "{ckpt}") + " --out {out}/r.mp4"),
    ("animate-config-is-checkpoint", ANIMATE + " --config {ckpt} --out {out}/r.mp4"),
    ("animate-checkpoint-folder", ANIMATE.replace("{ckpt}", "{root}") + " --out {out}/r.mp4"),
    ("animate-checkpoint-none", ANIMATE.replace(" --checkpoint {ckpt}", "") + " --out {out}/r.mp4"),
    ("animate-checkpoint-unknown-name", ANIMATE.replace("{ckpt}", "face64") + " --out {out}/r.mp4"),
    ("animate-checkpoint-onnx-folder-torch", ANIMATE.replace("{ckpt}", "{onnx}") + " --out {out}/r.mp4"),
    # animate: bad option and config values
    ("animate-out-extension", ANIMATE + " --out {out}/r.docx"),
    ("animate-batch-size-0", ANIMATE + " --out {out}/r.mp4 --batch-size 0"),
    ("animate-best-frame-text", ANIMATE + " --out {out}/r.mp4 --best-frame soon"),
    ("animate-best-frame-too-large", ANIMATE + " --out {out}/r.mp4 --best-frame 99"),
    ("animate-device-bogus", ANIMATE.replace("cpu", "tpu") + " --out {out}/r.mp4"),
    ("animate-config-missing", ANIMATE + " --config {root}/nope.yaml --out {out}/r.mp4"),
    ("animate-config-broken", ANIMATE + " --config {cfg_broken} --out {out}/r.mp4"),
    ("animate-config-num-kp-ten", ANIMATE + " --config {cfg_kp_ten} --out {out}/r.mp4"),
    ("animate-config-scale-zero", ANIMATE + " --config {cfg_scale_zero} --out {out}/r.mp4"),
    ("animate-config-preset-typo", ANIMATE + " --config tiny64 --out {out}/r.mp4"),
    ("animate-config-png", ANIMATE + " --config {src} --out {out}/r.mp4"),
    # crop
    ("crop-input-missing", "crop {root}/nope.mp4 --out {out}/c.mp4 --no-progress"),
    ("crop-input-empty", "crop {empty_mp4} --out {out}/c.mp4 --no-progress"),
    ("crop-input-text", "crop {text_png} --out {out}/c.png --no-progress"),
    ("crop-input-truncated", "crop {trunc_mp4} --out {out}/c.mp4 --no-progress"),
    ("crop-input-bomb", "crop {bomb} --out {out}/c.png --no-progress"),
    ("crop-input-is-checkpoint", "crop {ckpt} --out {out}/c.mp4 --no-progress"),
    ("crop-size-0", "crop {src} --out {out}/c.png --size 0 --no-progress"),
    ("crop-scale-negative", "crop {src} --out {out}/c.png --crop-scale -1 --no-progress"),
    ("crop-out-extension", "crop {src} --out {out}/c.docx --no-progress"),
    # train: bad config values, files and options (all before a run folder is written)
    ("train-config-epochs-two", "train --config {cfg_epochs_two} --data {data} --out {out}/run --quiet"),
    ("train-config-num-kp-ten", "train --config {cfg_kp_ten} --data {data} --out {out}/run --quiet"),
    ("train-config-num-kp-0", "train --config {cfg_kp_zero} --data {data} --out {out}/run --quiet"),
    ("train-config-frame-shape", "train --config {cfg_shape_text} --data {data} --out {out}/run --quiet"),
    ("train-config-scale-0", "train --config {cfg_scale_zero} --data {data} --out {out}/run --quiet"),
    ("train-config-typo", "train --config {cfg_lr_typo} --data {data} --out {out}/run --quiet"),
    ("train-config-broken", "train --config {cfg_broken} --data {data} --out {out}/run --quiet"),
    ("train-config-missing", "train --config {root}/nope.yaml --data {data} --out {out}/run --quiet"),
    ("train-config-png", "train --config {src} --data {data} --out {out}/run --quiet"),
    ("train-data-missing", "train --config tiny-64 --data {root}/nope --out {out}/run --quiet"),
    ("train-data-is-a-file", "train --config tiny-64 --data {src} --out {out}/run --quiet"),
    ("train-data-empty", "train --config tiny-64 --data {nodata} --out {out}/run --quiet"),
    ("train-batch-size-0", "train --config tiny-64 --data {data} --out {out}/run --batch-size 0 --quiet"),
    ("train-lr-scale-text", "train --config tiny-64 --data {data} --out {out}/run --lr-scale fast --quiet"),
    ("train-init-from-png", "train --config tiny-64 --data {data} --out {out}/run --init-from {png_pth} --quiet"),
    ("train-out-is-a-file", "train --config tiny-64 --data {data} --out {exists_txt} --quiet"),
    ("train-resume-no-run", "train --out {out}/run --resume --quiet"),
    # evaluate
    ("evaluate-data-missing", "evaluate --checkpoint {ckpt} --data {root}/nope --out {out}/e.json"),
    ("evaluate-data-is-a-file", "evaluate --checkpoint {ckpt} --data {src} --out {out}/e.json"),
    ("evaluate-data-empty", "evaluate --checkpoint {ckpt} --data {nodata} --out {out}/e.json"),
    ("evaluate-checkpoint-png", "evaluate --checkpoint {png_pth} --data {data} --out {out}/e.json"),
    ("evaluate-checkpoint-missing", "evaluate --checkpoint {root}/no.pth --data {data} --out {out}/e.json"),
    ("evaluate-checkpoint-onnx-folder", "evaluate --checkpoint {onnx} --data {data} --out {out}/e.json"),
    ("evaluate-tasks-bogus", "evaluate --checkpoint {ckpt} --data {data} --out {out}/e.json --tasks dance"),
    ("evaluate-max-videos-0", "evaluate --checkpoint {ckpt} --data {data} --out {out}/e.json --max-videos 0"),
    (
        "evaluate-config-bad",
        "evaluate --checkpoint {ckpt} --config {cfg_kp_zero} --data {data} --out {out}/e.json",
    ),
    # synth
    ("synth-size-0", "synth --category puppet --out {out}/ds --size 0 --quiet"),
    ("synth-train-negative", "synth --category puppet --out {out}/ds --train -1 --quiet"),
    ("synth-frames-0", "synth --category puppet --out {out}/ds --frames 0 --quiet"),
    ("synth-category-bogus", "synth --category robot --out {out}/ds --quiet"),
    ("synth-out-is-a-file", "synth --category puppet --out {exists_txt} --train 1 --test 1 --quiet"),
    # export
    ("export-checkpoint-png", "export {png_pth} --out {out}/x.pth.tar"),
    ("export-checkpoint-missing", "export {root}/nope.pth --out {out}/x.pth.tar"),
    ("export-checkpoint-onnx-folder", "export {onnx} --out {out}/x.pth.tar"),
    ("export-checkpoint-empty", "export {empty_pth} --out {out}/x.pth.tar"),
    ("export-checkpoint-truncated", "export {trunc_pth} --out {out}/x.pth.tar"),
    ("export-out-is-the-input", "export {ckpt} --out {ckpt}"),
    ("export-format-bogus", "export {ckpt} --out {out}/x.pth.tar --format tflite"),
    ("export-onnx-config-bad", "export {ckpt} --format onnx --config {cfg_scale_zero} --out {out}/onnx"),
    # demo
    ("demo-out-is-a-file", "demo --out {exists_txt} --no-progress"),
    ("demo-checkpoint-png", "demo --checkpoint {png_pth} --out {out}/demo --no-progress"),
    ("demo-checkpoint-missing", "demo --checkpoint {root}/nope.pth --out {out}/demo --no-progress"),
    ("demo-device-bogus", "demo --device tpu --out {out}/demo --no-progress"),
]


def _argv(template: str, inputs: dict, out) -> list[str]:
    return [part.format(out=out, **inputs) for part in template.split()]


@pytest.mark.parametrize("row, template", [pytest.param(row, template, id=row) for row, template in ROWS])
def test_bad_input_gets_one_error_line_and_no_output(row, template, inputs, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    argv = _argv(template, inputs, out)
    command = argv[0]
    before = sorted(p.name for p in (tmp_path / "out").iterdir())
    kept = ("exists_txt", "exists_mp4", "ckpt", "src")
    exists_before = {inputs[k]: open(inputs[k], "rb").read() for k in kept}
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith(f"fomm {command}: error:")]
    assert code == 2, f"exit {code}; stderr: {err[-2000:]}"
    assert len(lines) == 1, err[-2000:]
    assert "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == before, "output written"
    for path, data in exists_before.items():
        assert open(path, "rb").read() == data, f"{path} was modified"


def test_a_decompression_bomb_source_names_its_size_and_the_fix(inputs, tmp_path, capsys):
    """A 40,000 x 40,000 PNG of 200 KB: one line with the size and the fix, before any decoding."""
    argv = _argv(ANIMATE.replace("{src}", "{bomb}") + " --out {out}/r.mp4", inputs, tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fomm animate: error: image ") and "bomb.png is 40000x40000" in err[0]
    assert "over the limit of 100 megapixels" in err[0] and "FOMM_MAX_IMAGE_PIXELS=" in err[0]
    assert not (tmp_path / "r.mp4").exists()


def test_a_decompression_bomb_among_many_sources_is_one_line(inputs, tmp_path, capsys):
    argv = _argv(ANIMATE.replace("{src}", "{photos_with_bomb}") + " --out {out}/many", inputs, tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "b.png is 40000x40000 pixels" in err[0] and "FOMM_MAX_IMAGE_PIXELS=" in err[0]


def test_cli_warnings_are_one_line_without_source(capsys):
    saved = warnings.showwarning
    try:
        install_cli_warning_format()
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = warnings.showwarning  # catch_warnings restores it afterwards
            install_cli_warning_format()
            warnings.warn("source is 1x1;\nresized to 64x64", UserWarning, stacklevel=1)
    finally:
        warnings.showwarning = saved
    err = capsys.readouterr().err
    assert err == "fomm: warning: source is 1x1; resized to 64x64\n"


def test_rows_leave_no_stray_files(inputs):
    root_files = sorted(p.name for p in os.scandir(inputs["root"]) if p.name.startswith("."))
    assert root_files == []  # no temporaries left beside the inputs


# ------------------------------------------------------------------------------------------------
# The Python API raises the same FommError (never a raw torch or numpy exception)
# ------------------------------------------------------------------------------------------------
def _api_call(case: str, inputs: dict, tmp_path):
    import fomm
    from fomm.training import train

    bad = yaml.safe_load(open(inputs["cfg_kp_zero"]).read())
    if case == "load_model-config-dict":
        return fomm.load_model(inputs["ckpt"], config=bad)
    if case == "load_model-config-object":
        cfg = load_preset("tiny-64")
        cfg.model_params.kp_detector_params.scale_factor = 0
        return fomm.load_model(inputs["ckpt"], config=cfg)
    if case == "load_model-png":
        return fomm.load_model(inputs["png_pth"])
    if case == "FirstOrderModel-num-kp-0":
        from fomm.models.first_order_model import FirstOrderModel

        cfg = load_preset("tiny-64")
        cfg.model_params.common_params.num_kp = 0
        return FirstOrderModel(cfg)
    if case == "train-batch-size-text":
        return train(
            "tiny-64", data=inputs["data"], out=tmp_path / "run", max_steps=1, progress=False, batch_size="abc"
        )
    if case == "train-config-dict":
        return train(bad, data=inputs["data"], out=tmp_path / "run", max_steps=1, progress=False)
    model = fomm.load_model(inputs["ckpt"])
    source = CLIP[0].astype(np.float32) / 255
    driving = CLIP[1:3].astype(np.float32) / 255
    if case == "animate-nan-source":
        source[3, 3, 0] = np.nan
    elif case == "animate-inf-driving":
        driving[0, 1, 1, 1] = np.inf
    return fomm.animate(model, source, driving)


@pytest.mark.parametrize(
    "case, match",
    [
        ("load_model-config-dict", r"^config: model_params.common_params.num_kp is 0; expected a whole number >= 1$"),
        (
            "load_model-config-object",
            r"model_params.kp_detector_params.scale_factor is 0; expected a number in \(0, 1\]",
        ),
        ("load_model-png", r"is not a PyTorch checkpoint \(it looks like a PNG image\)"),
        (
            "FirstOrderModel-num-kp-0",
            r"^config tiny-64: model_params.common_params.num_kp is 0; expected a whole number >= 1$",
        ),
        ("train-batch-size-text", r"^batch_size is 'abc'; expected a whole number >= 1"),
        ("train-config-dict", r"model_params.common_params.num_kp is 0"),
        ("animate-nan-source", r"NaN"),
        ("animate-inf-driving", r"infinite"),
    ],
)
def test_python_api_raises_fomm_error(case, match, inputs, tmp_path):
    from fomm.errors import FommError

    with pytest.raises(FommError, match=match):
        _api_call(case, inputs, tmp_path)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="signals")
def test_second_train_on_a_running_out_is_refused(inputs, tmp_path, capsys):
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    argv = ["train", "--config", "tiny-64", "--data", inputs["data"], "--out", str(run), "--quiet", "--threads", "1"]
    argv += ["--vis-every", "0", "--no-tensorboard"]
    first = subprocess.Popen([sys.executable, "-m", "fomm.cli", *argv, "--epochs", "100000"])
    try:
        deadline = time.time() + 120
        while (
            not any((run / n).exists() for n in (".lock.pid", "run.json"))
            and first.poll() is None
            and time.time() < deadline
        ):
            time.sleep(0.2)
        assert first.poll() is None, "the first run stopped early"
        code = main([*argv, "--resume", "--max-steps", "1"])
        err = capsys.readouterr().err
        assert code == 2 and len([ln for ln in err.splitlines() if ln.startswith("fomm train: error:")]) == 1, err
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=120)


_KILLED_SYNTH = """
import os, signal, sys
import fomm.data.synthetic.dataset as D
D._run_jobs = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)  # killed while rendering
D.write_dataset(sys.argv[1], "puppet", 1, 1, 3, 32, 0, 0, progress=False, workers=1)
"""


@pytest.mark.skipif(os.name != "posix", reason="signals")
def test_killed_synth_leaves_a_folder_the_next_write_removes(tmp_path):
    import subprocess
    import sys

    from fomm.data.synthetic import write_dataset

    proc = subprocess.run([sys.executable, "-c", _KILLED_SYNTH, str(tmp_path / "ds")], capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".ds.fomm-") and left[0].endswith(".tmp"), left
    write_dataset(tmp_path / "other", "puppet", 1, 1, 3, 32, 0, 0, progress=False, workers=1)
    assert [p.name for p in tmp_path.iterdir()] == ["other"]


@pytest.mark.parametrize("row", ["animate-driving-truncated", "crop-input-truncated"])
def test_truncated_video_is_called_truncated(row, inputs, tmp_path, capsys):
    template = next(t for r, t in ROWS if r == row)
    (tmp_path / "out").mkdir()
    assert main(_argv(template, inputs, tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert "trunc.mp4 is truncated or corrupt" in err and "re-export or re-download it" in err
    assert "audio" not in err


# ------------------------------------------------------------------------------------------------
# The whole of stderr is the one line (issue #27 walk-through): argparse mistakes print no usage
# block, and the C libraries (OpenCV's PNG decoder, FFmpeg inside OpenCV) print nothing of their
# own before it. capfd reads the file descriptor, so their lines would count.
# ------------------------------------------------------------------------------------------------
LIVE = "live --no-window --source {src} --checkpoint {ckpt}"
WHOLE_STDERR_ROWS = [
    ("animate-precision-bogus", ANIMATE + " --precision bogus --out {out}/r.mp4", "invalid choice: 'bogus'"),
    ("animate-out-missing", ANIMATE, "required: --out"),
    ("animate-no-checkpoint", ANIMATE.replace(" --checkpoint {ckpt}", "") + " --out {out}/r.mp4", "face-64"),
    ("animate-checkpoint-unknown-name", ANIMATE.replace("{ckpt}", "face65") + " --out {out}/r.mp4", "face-64"),
    ("animate-source-text", ANIMATE.replace("{src}", "{text_png}") + " --out {out}/r.mp4", "cannot decode"),
    ("animate-source-truncated", ANIMATE.replace("{src}", "{trunc_png}") + " --out {out}/r.mp4", "trunc.png"),
    ("live-no-checkpoint", "live --no-window --source {src} --camera {drv} --out {out}/l.mp4", "face-64"),
    ("live-precision-bogus", LIVE + " --camera {drv} --precision bogus --out {out}/l.mp4", "invalid choice"),
    ("live-camera-text", LIVE + " --camera {text_mp4} --out {out}/l.mp4", "text.mp4"),
    ("live-camera-truncated", LIVE + " --camera {trunc_mp4} --out {out}/l.mp4", "trunc.mp4"),
    ("live-camera-index-missing", LIVE + " --camera 57 --out {out}/l.mp4", "cannot open camera 57"),
    ("animate-out-under-a-file", ANIMATE + " --out {src}/r.mp4", "src.png is a file, not a folder"),
    ("export-pth-into-a-folder", "export {ckpt} --out {out}/", "--format pth writes one file"),
    ("synth-category-bogus", "synth --category robot --out {out}/ds --quiet", "choose from"),
]


@pytest.mark.parametrize("row, template, says", [pytest.param(*r, id=r[0]) for r in WHOLE_STDERR_ROWS])
def test_the_whole_stderr_is_one_line(row, template, says, inputs, tmp_path, capfd):
    out = tmp_path / "out"
    out.mkdir()
    argv = _argv(template, inputs, out)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    captured = capfd.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, captured.err[-2000:]
    assert lines[0].startswith(f"fomm {argv[0]}: error:") and says in lines[0], lines[0]
    assert not captured.out and not any(out.iterdir())
