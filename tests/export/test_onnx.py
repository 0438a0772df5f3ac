"""ONNX export (fomm export --format onnx) and the ONNX Runtime backend.

Each model is exported once per module (the exporter traces for about 10 s); the ONNX Runtime
frames must agree with the torch exact path within 1e-4.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import fomm  # noqa: E402
from fomm.animation.engine import AnimationEngine  # noqa: E402
from fomm.cli import main  # noqa: E402
from fomm.export import runtime  # noqa: E402
from fomm.testing import random_model  # noqa: E402


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A private FOMM_HOME for the on-the-fly export cache."""
    path = tmp_path_factory.mktemp("fomm-home")
    patch = pytest.MonkeyPatch()
    patch.setenv("FOMM_HOME", str(path))
    yield path
    patch.undo()


@pytest.fixture(scope="module")
def inputs(parity_dir):
    to_hwc = lambda x: x.permute(0, 2, 3, 1).numpy()  # noqa: E731
    source = to_hwc(torch.from_numpy(np.load(parity_dir / "inputs" / "source.npy")))[0]
    driving = to_hwc(torch.from_numpy(np.load(parity_dir / "inputs" / "driving.npy")))
    return source, driving


def parity_model(parity_dir, name):
    d = parity_dir / "variants" / name
    return d / "checkpoint.pth.tar", d / "config.yaml"


def torch_and_onnx(model, source, driving, relative=True, batch_size=4):
    """Frames from the torch exact path and from ONNX Runtime, same engine settings."""
    out = []
    for backend in ("torch", "onnxruntime"):
        engine = AnimationEngine(model, relative=relative, batch_size=batch_size, backend=backend)
        engine.set_source(source)
        out.append(np.concatenate([o["prediction"] for o in engine.run(driving)]))
    return out


@pytest.mark.slow
def test_cli_export_writes_three_checked_graphs_and_a_manifest(parity_dir, home, inputs, tmp_path, capsys):
    import onnx

    checkpoint, config = parity_model(parity_dir, "vox")
    out = tmp_path / "vox-onnx"
    assert main(["export", str(checkpoint), "--config", str(config), "--format", "onnx", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "wrote" in printed and f"fomm animate --checkpoint {out}/ --backend onnxruntime" in printed  # how to use it
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["opset"] >= 16 and manifest["fomm_version"] == fomm.__version__
    assert manifest["frame_shape"] == [128, 128] and manifest["jacobian"] and manifest["occlusion_map"]
    graphs = manifest["graphs"]
    assert set(graphs) == {"kp_detector", "source_encoder", "generator"}
    for spec in graphs.values():
        onnx.checker.check_model(str(out / spec["file"]), full_check=True)
    kp_in = graphs["kp_detector"]["inputs"][0]
    assert kp_in == {"name": "image", "shape": ["batch", 3, 128, 128]}
    gen = graphs["generator"]
    assert [i["name"] for i in gen["inputs"]] == [
        "kp_driving_value", "kp_driving_jacobian", "kp_source_value", "kp_source_jacobian", "features", "source_small",
    ]  # fmt: skip
    assert gen["inputs"][0]["shape"] == ["batch", 10, 2] and gen["inputs"][2]["shape"] == [1, 10, 2]
    assert [o["name"] for o in gen["outputs"]] == ["prediction", "occlusion_map"]
    assert gen["outputs"][0]["shape"] == ["batch", 3, 128, 128]

    # the folder serves the engine: put it where the on-the-fly export would go, and check frames
    model = fomm.load_model(checkpoint, config=config)
    shutil.copytree(out, runtime.cache_root() / runtime.model_key(model))
    source, driving = inputs
    exact, ort = torch_and_onnx(model, source, driving, batch_size=4)
    assert np.abs(ort - exact).max() < 1e-4
    exact1, ort1 = torch_and_onnx(model, source, driving[:3], relative=False, batch_size=1)
    assert np.abs(ort1 - exact1).max() < 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name", ["x-nojac", "x-noocc"])
def test_onnxruntime_backend_without_jacobians_or_occlusion(parity_dir, home, inputs, name):
    checkpoint, config = parity_model(parity_dir, name)
    model = fomm.load_model(checkpoint, config=config)
    source, driving = inputs
    exact, ort = torch_and_onnx(model, source, driving, batch_size=3)  # on-the-fly export, cached
    assert np.abs(ort - exact).max() < 1e-4
    folder = runtime.cache_root() / runtime.model_key(model)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["jacobian"] == (name != "x-nojac") and manifest["occlusion_map"] == (name != "x-noocc")


@pytest.mark.slow
def test_vox256_random_weights_at_128px_and_the_cache(home, monkeypatch):
    """vox-256's architecture (full widths) with seeded random weights, at 128x128 to keep it fast
    (the smallest size its 5-block keypoint hourglass at scale 0.25 allows)."""
    config = fomm.load_preset("vox-256")
    config.dataset_params.frame_shape = [128, 128, 3]
    model = random_model(config, seed=2)
    rng = np.random.default_rng(1)
    source = rng.random((128, 128, 3), dtype=np.float32)
    driving = np.clip(source[None] + 0.05 * rng.standard_normal((3, 128, 128, 3)), 0, 1).astype(np.float32)
    exact, ort = torch_and_onnx(model, source, driving, batch_size=2)
    assert np.abs(ort - exact).max() < 1e-4

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(runtime, "export_onnx", no_export)
    AnimationEngine(model, backend="onnxruntime")  # the cached export is reused
    api = fomm.animate(model, source, driving, batch_size=2, backend="onnxruntime")  # the Python API
    assert np.abs(api - exact).max() < 1e-4


def test_bad_export_arguments(tmp_path, capsys):
    model_path = tmp_path / "m.pth.tar"
    torch.save({"kp_detector": {}, "generator": {}}, model_path)
    assert main(["export", str(model_path), "--format", "onnx", "--out", str(tmp_path / "x.onnx")]) == 2
    assert "folder" in capsys.readouterr().err
    assert main(["export", str(model_path)]) == 2
    with pytest.raises(fomm.errors.FommError, match="backend"):
        AnimationEngine(random_model("tiny-64", seed=0), backend="tensorrt")


@pytest.mark.slow
def test_export_folder_is_the_model_for_animate_live_and_app(home, tmp_path, capsys, monkeypatch):
    """fomm export --format onnx writes a folder that fomm animate, fomm live and the app run with
    --backend onnxruntime (no PyTorch weights); any other backend gets one line."""
    from fomm.apps.app import GIVEN_CHOICE, Animator
    from fomm.data.video_io import VideoWriter, read_frames, write_image
    from fomm.export import export_onnx
    from fomm.models.exported import ExportedModel

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    model = random_model("tiny-64", seed=4)
    folder = tmp_path / "tiny-onnx"
    export_onnx(model, folder)
    rng = np.random.default_rng(0)
    source = rng.random((64, 64, 3), dtype=np.float32)
    driving = np.clip(source[None] + 0.1 * rng.standard_normal((5, 64, 64, 3)), 0, 1).astype(np.float32)

    exported = fomm.load_model(folder, backend="onnxruntime")
    assert isinstance(exported, ExportedModel)
    ort = fomm.animate(exported, source, driving, backend="onnxruntime")
    exact = fomm.animate(model, source, driving)
    assert ort.shape == exact.shape == (5, 64, 64, 3) and np.abs(ort - exact).max() < 1e-4

    write_image(tmp_path / "source.png", (255 * source).astype(np.uint8))
    with VideoWriter(tmp_path / "driving.mp4", fps=10) as writer:
        for frame in driving:
            writer.write(frame)
    io = ["--source", str(tmp_path / "source.png"), "--checkpoint", str(folder)]
    out = tmp_path / "out.mp4"
    assert (
        main(
            ["animate", *io, "--driving", str(tmp_path / "driving.mp4"), "--out", str(out), "--backend", "onnxruntime"]
        )
        == 0
    )
    assert read_frames(out)[0].shape == (5, 64, 64, 3)
    assert main(["animate", *io, "--driving", str(tmp_path / "driving.mp4"), "--out", str(tmp_path / "t.mp4")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (
        f"fomm animate: error: {folder} is an ONNX export folder; run it with --backend onnxruntime, or pass the "
        f".pth checkpoint it was exported from for the torch backend"
    )
    live = ["live", *io, "--camera", str(tmp_path / "driving.mp4"), "--no-realtime", "--backend", "onnxruntime"]
    assert main([*live, "--out", str(tmp_path / "live.mp4")]) == 0
    assert read_frames(tmp_path / "live.mp4")[0].shape == (5, 64, 64, 3)

    animator = Animator(device="cpu", workdir=tmp_path / "app", checkpoint=folder, backend="onnxruntime")
    choices, default = animator.menu()
    assert default == GIVEN_CHOICE and choices[0] == (f"given: {folder.name} (fomm app --checkpoint)", GIVEN_CHOICE)
    result, text = animator.animate(tmp_path / "source.png", tmp_path / "driving.mp4", fomm_options(), GIVEN_CHOICE)
    assert read_frames(result)[0].shape == (5, 64, 64, 3) and text.startswith("5 frames, 64x64")


def fomm_options():
    from fomm.animation.options import AnimateOptions

    return AnimateOptions()
