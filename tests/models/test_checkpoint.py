"""Checkpoint formats, preset detection and clear errors for bad checkpoints."""

import numpy as np
import pytest
import torch

import fomm
from fomm.errors import FommError
from fomm.models.checkpoint import export_original, load_model, read_checkpoint
from fomm.testing import random_checkpoint, random_model


def test_our_format_round_trip_needs_no_config(tmp_path):
    path = random_checkpoint(tmp_path / "ours.pth", seed=3)
    model = load_model(path)
    reference = random_model(seed=3)
    for key, value in reference.generator.state_dict().items():
        assert torch.equal(model.generator.state_dict()[key], value)
    assert model.config.frame_shape == (64, 64)
    assert not model.training


def test_original_and_dataparallel_formats(tmp_path):
    path = random_checkpoint(tmp_path / "orig.pth.tar", original_format=True)
    model = load_model(path, config="tiny-64")
    data = torch.load(path, weights_only=True)
    wrapped = {part: {f"module.{k}": v for k, v in data[part].items()} for part in ("generator", "kp_detector")}
    torch.save(wrapped, tmp_path / "dp.pth.tar")
    model_dp = load_model(tmp_path / "dp.pth.tar", config="tiny-64")
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model.kp_detector(x)["value"], model_dp.kp_detector(x)["value"])


def test_preset_is_detected_from_shapes(tmp_path):
    path = random_checkpoint(tmp_path / "tiny.pth.tar", original_format=True)
    assert load_model(path).config.name == "tiny-64"


def test_export_to_original_format(tmp_path):
    ours = random_checkpoint(tmp_path / "ours.pth")
    out = export_original(ours, tmp_path / "exported.pth.tar")
    data = torch.load(out, weights_only=True)
    assert {"generator", "kp_detector", "discriminator", "epoch"} <= set(data)
    assert "config" not in data
    load_model(out, config="tiny-64")


def test_missing_checkpoint():
    with pytest.raises(FommError, match="checkpoint not found"):
        load_model("/nonexistent/vox-cpk.pth.tar")


def test_truncated_checkpoint(tmp_path):
    path = random_checkpoint(tmp_path / "ok.pth")
    data = path.read_bytes()
    (tmp_path / "bad.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(FommError, match="truncated or corrupt"):
        load_model(tmp_path / "bad.pth")


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "x.pth").write_bytes(b"hello, not a checkpoint")
    with pytest.raises(FommError, match=r"x.pth is not a PyTorch checkpoint \(it looks like a text file\)"):
        read_checkpoint(tmp_path / "x.pth")
    torch.save({"foo": torch.zeros(1)}, tmp_path / "y.pth")
    with pytest.raises(FommError, match="not a FOMM (or [A-Z]+ )*checkpoint"):
        load_model(tmp_path / "y.pth")


def _zip(path, names):
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for name in names:
            archive.writestr(name, b"x")
    return path.read_bytes()


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("png", r"is not a PyTorch checkpoint \(it looks like a PNG image\); pass a .pth/.pth.tar file"),
        ("jpeg", r"\(it looks like a JPEG image\)"),
        ("mp4", r"\(it looks like an MP4/MOV video\)"),
        ("empty", r"model.pth.tar is an empty file \(0 bytes\); download or copy it again"),
        ("text", r"\(it looks like a text file\)"),
        ("html", r"\(it looks like an HTML page\); a download that returned a web page"),
        ("lfs", r"\(it looks like a Git LFS pointer\); fetch the real file with git lfs pull"),
        ("yaml", r"\(it looks like a FOMM YAML config\); pass it with --config"),
        ("zip", r"\(it looks like a ZIP archive of other files \(a.txt, b.png\)\); extract"),
        ("npz", r"\(it looks like a NumPy .npz archive\)"),
        ("gzip", r"\(it looks like a gzip archive\)"),
        ("binary", r"\(its first bytes match no known format\)"),
        ("pickle", r"is a plain Python pickle, not a PyTorch checkpoint; fomm refuses to unpickle it"),
        ("folder", r"is a folder, not a checkpoint file; pass .*best.pt"),
    ],
)
def test_files_that_are_not_checkpoints_are_named(tmp_path, kind, expected):
    import pickle

    import numpy as np
    from PIL import Image

    path = tmp_path / "model.pth.tar"
    if kind == "png":
        Image.new("RGB", (4, 4)).save(path, format="PNG")
    elif kind == "jpeg":
        Image.new("RGB", (4, 4)).save(path, format="JPEG")
    elif kind == "folder":
        path.mkdir()
        (path / "best.pt").write_bytes(b"")
    else:
        data = {
            "mp4": b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00",
            "empty": b"",
            "text": "just some notes \u00e9\n".encode(),
            "html": b"\n<!DOCTYPE html><html><body>Google Drive - virus scan warning</body></html>",
            "lfs": b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n",
            "yaml": b"dataset_params: {}\nmodel_params:\n  common_params: {num_kp: 10}\n",
            "gzip": b"\x1f\x8b\x08\x00" + bytes(20),
            "binary": bytes(range(256)) * 4,
            "pickle": pickle.dumps({"generator": {}, "kp_detector": {}}),
        }.get(kind)
        if kind == "zip":
            data = _zip(path, ["a.txt", "b.png"])
        elif kind == "npz":
            np.savez(tmp_path / "a.npz", x=np.zeros(2))
            data = (tmp_path / "a.npz").read_bytes()
        path.write_bytes(data)
    with pytest.raises(FommError, match=expected) as info:
        load_model(path)
    assert "\n" not in str(info.value)
    assert "Python objects" not in str(info.value)


def test_legacy_torch_format_is_still_read(tmp_path):
    path = random_checkpoint(tmp_path / "orig.pth.tar", original_format=True)
    data = torch.load(path, weights_only=True)
    torch.save(data, tmp_path / "legacy.pth.tar", _use_new_zipfile_serialization=False)
    assert load_model(tmp_path / "legacy.pth.tar", config="tiny-64").config.name == "tiny-64"


def test_pickled_objects_are_refused(tmp_path):
    import argparse  # any class outside torch's allow-list stands for arbitrary code

    torch.save({"generator": {}, "kp_detector": {}, "obj": argparse.Namespace(a=1)}, tmp_path / "evil.pth")
    with pytest.raises(FommError, match="refuses to unpickle"):
        load_model(tmp_path / "evil.pth")


@pytest.mark.slow
def test_checkpoint_of_another_config(tmp_path):
    path = random_checkpoint(tmp_path / "tiny.pth.tar", original_format=True)
    with pytest.raises(FommError) as info:
        load_model(path, config="vox-256")
    message = str(info.value)
    assert "does not fit config 'vox-256'" in message and "closest preset: tiny-64" in message
    assert "\n" not in message


def test_checkpoint_fitting_no_preset(parity_dir):
    with pytest.raises(FommError, match="fits no bundled preset"):
        load_model(parity_dir / "variants" / "vox" / "checkpoint.pth.tar")


def test_align_corners_option_changes_sampling(parity_dir):
    d = parity_dir / "variants" / "vox"
    default = load_model(d / "checkpoint.pth.tar", config=d / "config.yaml")
    old = load_model(d / "checkpoint.pth.tar", config=d / "config.yaml", align_corners=True)
    assert default.config.model_params.align_corners is False
    assert old.generator.dense_motion_network.align_corners is True
    src = np.load(parity_dir / "inputs" / "source.npy")[0].transpose(1, 2, 0)
    drv = np.load(parity_dir / "inputs" / "driving.npy").transpose(0, 2, 3, 1)[:2]
    a, b = fomm.animate(default, src, drv), fomm.animate(old, src, drv)
    assert np.abs(a - b).max() > 1e-3


def _pad0_twin(monkeypatch):
    """Add a preset ``face-64-pad0``: face-64's shapes, another keypoint padding (another function)."""
    from fomm.config import Config, load_preset
    from fomm.models import shapes as ckpt

    d = load_preset("face-64").to_dict()
    d["model_params"]["kp_detector_params"]["pad"] = 0
    twin = Config.from_dict(d)
    twin.name = "face-64-pad0"
    real = ckpt.preset_configs
    monkeypatch.setattr(ckpt, "preset_configs", lambda states=None: {**real(states), "face-64-pad0": twin})


@pytest.mark.slow
def test_presets_with_the_same_shapes_but_other_functions_need_a_config(tmp_path, monkeypatch):
    """Two presets with every tensor shape in common and one frame size but another keypoint
    padding: a checkpoint without a config cannot tell them apart, so it is refused with one line.
    A vox-256 one (the community's vox-512 has all its shapes, 13 x 13 kernels included) loads at
    the smaller size with one warning line unless its file name says which; the original presets
    that share shapes also share their model options."""
    from fomm import FirstOrderModel, FommError, load_model

    _pad0_twin(monkeypatch)
    model = FirstOrderModel("face-64")
    state = {"generator": model.generator.state_dict(), "kp_detector": model.kp_detector.state_dict()}
    with pytest.raises(FommError, match="fits several presets that compute different functions.*face-64.*face-64-pad0"):
        load_model(state)
    assert load_model(state, config="face-64").config.name == "face-64"
    model = FirstOrderModel("vox-256")
    state = {"generator": model.generator.state_dict(), "kp_detector": model.kp_detector.state_dict()}
    with pytest.warns(UserWarning, match="read as vox-256 at 256x256; its shapes fit vox-512 at 512x512 too"):
        assert load_model(state).config.name == "vox-256"
    assert load_model(state, config="vox-512").config.name == "vox-512"
    assert load_model(state, name="vox-cpk.pth.tar").config.model_params.kp_detector_params.pad == 0


@pytest.mark.slow
def test_config_less_load_reads_each_preset_once(tmp_path, monkeypatch):
    """Ranking the presets by shape and checking the tied ones use the same loaded configs: each
    bundled preset is loaded (parsed + validated) once and its model is built once per load."""
    import collections

    from fomm.config import preset_names
    from fomm.models import shapes as ckpt

    path = random_checkpoint(tmp_path / "tiny.pth.tar", original_format=True)
    loads, builds = collections.Counter(), collections.Counter()
    real_load, real_shapes = ckpt.load_preset, ckpt.expected_part_shapes

    def counting_load(name):
        loads[name] += 1
        return real_load(name)

    def counting_shapes(cfg, parts):
        builds[cfg.name] += 1
        return real_shapes(cfg, parts)

    monkeypatch.setattr(ckpt, "load_preset", counting_load)
    monkeypatch.setattr(ckpt, "expected_part_shapes", counting_shapes)
    assert load_model(path).config.name == "tiny-64"
    assert loads == dict.fromkeys(preset_names(), 1) and builds == dict.fromkeys(preset_names(), 1)
    _pad0_twin(monkeypatch)  # face-64 then ties with its twin: still one load each, then refused
    model = fomm.FirstOrderModel("face-64")
    loads.clear()
    with pytest.raises(FommError, match="fits several presets"):
        load_model({"generator": model.generator.state_dict(), "kp_detector": model.kp_detector.state_dict()})
    assert loads == dict.fromkeys(preset_names(), 1)


# ------------------------------------------------------------------------------------------------
# The one way in: names, folders, families, presets with identical networks
# ------------------------------------------------------------------------------------------------
def test_bundled_models_load_by_name():
    from fomm.bundled import bundled_checkpoint_path

    model = load_model("face-64")
    assert model.config.name == "face-64" and model.frame_shape == (64, 64)
    reference = torch.load(bundled_checkpoint_path("face"), weights_only=True)["kp_detector"]
    for key, value in model.kp_detector.state_dict().items():
        assert torch.equal(value, reference[key]), key
    assert load_model("puppet-64", device="auto").config.name == "puppet-64"


@pytest.mark.parametrize("name", ["face64", "no-such-model", "/nowhere/x.pth.tar"])
def test_unknown_checkpoint_says_what_to_pass_in_one_line(name):
    with pytest.raises(FommError) as err:
        load_model(name)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"checkpoint not found: {name}")
    for hint in ("face-64", "puppet-64", "fomm models", "fomm download vox"):
        assert hint in message, hint
    if name == "face64":
        assert "did you mean 'face-64'" in message


def _fake_export(folder, frame_shape=(64, 64)):
    import json

    folder.mkdir()
    manifest = {"format": "fomm-onnx", "preset": "tiny-64", "frame_shape": list(frame_shape), "graphs": {}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_onnx_export_folder_is_a_model_for_onnxruntime_only(tmp_path):
    from fomm.models.exported import ExportedModel

    folder = _fake_export(tmp_path / "onnx")
    model = load_model(folder, backend="onnxruntime")
    assert isinstance(model, ExportedModel) and model.frame_shape == (64, 64) and model.eval() is model
    assert model.device.type == "cpu" and model.name == "tiny-64"
    with pytest.raises(FommError, match=r"ONNX export folder; run it with --backend onnxruntime") as err:
        load_model(folder)  # the torch backend needs the weights
    assert "\n" not in str(err.value)
    with pytest.raises(FommError, match=r"ONNX export folder, not a checkpoint file.*\.pth checkpoint"):
        read_checkpoint(folder)
    with pytest.raises(FommError, match=r"--config vox-256 is for 256x256 frames.*64x64"):
        load_model(folder, config="vox-256", backend="onnxruntime")
    (folder / "manifest.json").write_text('{"format": "other"}')
    with pytest.raises(FommError, match="not a fomm ONNX manifest"):
        load_model(folder, backend="onnxruntime")
    with pytest.raises(FommError, match="unknown backend 'tensorrt'"):
        load_model(folder, backend="tensorrt")


def test_a_model_family_hooks_in_with_a_recogniser_and_a_builder(monkeypatch):
    from fomm.models import checkpoint as ckpt

    built = []

    def build(data, request):
        built.append((sorted(data), request.label, request.config))
        return torch.nn.Linear(1, 1)

    family = ckpt.Family("toy", lambda data: "toy_net" in data, build)
    monkeypatch.setattr(ckpt, "FAMILIES", [*ckpt.FAMILIES, family])
    model = load_model({"toy_net": {}}, config="tiny-64", name="toy.pth")
    assert isinstance(model, torch.nn.Linear) and not model.training
    assert built == [(["toy_net"], "toy.pth", "tiny-64")]
    with pytest.raises(FommError, match=r"x.pth has no generator .*not a FOMM or .*TOY checkpoint"):
        load_model({"other": {}}, name="x.pth")


def test_stored_config_other_than_the_given_one_is_said_in_one_line(tmp_path):
    path = random_checkpoint(tmp_path / "ours.pth")  # stores tiny-64
    other = fomm.load_preset("tiny-64").to_dict()
    other["model_params"]["kp_detector_params"]["temperature"] = 0.5  # same shapes, another function
    with pytest.warns(UserWarning) as caught:
        model = load_model(path, config=other)
    (warning,) = [str(w.message) for w in caught]
    assert "ours.pth was trained with config 'tiny-64'" in warning and "other model options" in warning
    assert "drop --config" in warning and "\n" not in warning
    assert model.config.model_params.kp_detector_params.temperature == 0.5  # the given one is used
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model(path, config="tiny-64")  # the stored one: nothing to say
        load_model(path)


@pytest.mark.slow
def test_file_name_of_another_preset_is_said_and_breaks_ties(tmp_path):
    """bair-256, taichi-256 and vox-256 are the same network: the shapes cannot tell them apart
    (without a name to go by, the first by name is taken), a file name can."""
    import warnings

    model = fomm.FirstOrderModel("vox-256")
    state = {"generator": model.generator.state_dict(), "kp_detector": model.kp_detector.state_dict()}
    torch.save(state, tmp_path / "taichi-cpk.pth.tar")
    (tmp_path / "vox-cpk.pth.tar").hardlink_to(tmp_path / "taichi-cpk.pth.tar")
    assert load_model(tmp_path / "taichi-cpk.pth.tar").config.name == "taichi-256"
    with pytest.warns(UserWarning, match=r"taichi-cpk.pth.tar looks like a taichi-256 checkpoint .*--config vox-256"):
        load_model(tmp_path / "taichi-cpk.pth.tar", config="vox-256")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model(tmp_path / "vox-cpk.pth.tar", config="vox-adv-256")  # the same family: nothing to say


def test_preset_in_name():
    from fomm.models.checkpoint import preset_in_name

    assert preset_in_name("/x/taichi-cpk.pth.tar") == "taichi-256"
    assert preset_in_name("vox-adv-cpk.pth.tar") == "vox-adv-256"
    assert preset_in_name("vox-cpk.pth.tar") == "vox-256"
    assert preset_in_name("vox-512-k13.pth") == "vox-512"
    assert preset_in_name("checkpoints/best.pt") is None
    assert preset_in_name("vox-vs-taichi.pth") is None  # two presets: no guess
