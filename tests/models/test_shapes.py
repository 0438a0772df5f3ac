"""Which preset a checkpoint without a config gets when presets of the same shapes differ.

The community's 512 x 512 vox checkpoints (13 x 13 anti-alias kernels) have every tensor of a 256
one, kernels included: the shapes fit vox-256 and vox-512 alike. Here the bundled presets are
replaced by two small ones of that pair (the parity-512 fixture's config, made by the original
code, and its 256 twin), so a real checkpoint of the original code loads in a fraction of a second.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from fomm.config import Config, resolve_config
from fomm.models import checkpoint, shapes
from fomm.models.checkpoint import load_model
from fomm.models.shapes import AmbiguousPreset

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "parity-512" / "variants"


def small_presets() -> dict[str, Config]:
    """``vox-512``: the fixture's config (29 x 29 kernels by its own sigma); ``vox-256``: the same
    at 256 x 256 with scale 0.25, whose own kernels are 13 x 13."""
    big = resolve_config(FIXTURE / "vox-512-k29" / "config.yaml")
    big.name = "vox-512"
    small = big.copy()
    small.name = "vox-256"
    small.dataset_params.frame_shape = (256, 256, 3)
    small.model_params.kp_detector_params.scale_factor = 0.25
    small.model_params.generator_params.dense_motion_params.scale_factor = 0.25
    return {"vox-256": small, "vox-512": big}


@pytest.fixture
def presets(monkeypatch, tmp_path):
    configs = small_presets()
    for module in (shapes, checkpoint):
        monkeypatch.setattr(module, "preset_names", lambda: list(configs))
    monkeypatch.setattr(shapes, "load_preset", lambda name: configs[name].copy())
    monkeypatch.setenv("FOMM_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FOMM_MODELS", raising=False)
    return configs


def copy_as(kind: str, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FIXTURE / f"vox-512-{kind}" / "checkpoint.pth.tar", path)
    return path


def register(monkeypatch, tmp_path, path: Path, preset: str) -> None:
    """A FOMM_MODELS entry with the file's sha256 (as a user's own, or a published one, would be)."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    entry = {"mine": {"preset": preset, "file": "mine.pth.tar", "urls": [], "sha256": digest}}
    (tmp_path / "models.json").write_text(json.dumps(entry))
    monkeypatch.setenv("FOMM_MODELS", str(tmp_path / "models.json"))


def test_a_13x13_checkpoint_without_a_name_to_go_by_loads_at_256_with_one_warning(presets, tmp_path):
    """An unnamed file of these shapes is most often a 256 px checkpoint of the original code: it
    loads as vox-256, and one warning line names the fix for the 512 model."""
    path = copy_as("k13", tmp_path / "model.pth.tar")
    with pytest.warns(UserWarning) as seen:
        cfg = load_model(path).config
    assert (cfg.name, cfg.frame_shape) == ("vox-256", (256, 256))
    (message,) = [str(w.message) for w in seen]
    assert message == (
        f"{path} carries no config and its name does not say which model it is: read as vox-256 at 256x256; "
        "its shapes fit vox-512 at 512x512 too (pass --config vox-512 if it is that one)"
    )
    assert load_model(path, config=presets["vox-512"]).config.frame_shape == (512, 512)  # the fix works


def test_kinds_that_tie_at_one_size_are_one_line_naming_both(presets, tmp_path, monkeypatch):
    """Two presets of the same shapes and frame size that compute different functions (here the
    keypoint temperature differs): nothing can choose, so one error line names both and the fix."""
    other = presets["vox-256"].copy()
    other.name = "cold-256"
    other.model_params.kp_detector_params.temperature = 0.01
    presets["cold-256"] = other
    path = copy_as("k13", tmp_path / "model.pth.tar")
    with pytest.raises(AmbiguousPreset) as exc:
        load_model(path)
    message = str(exc.value)
    assert message.startswith(f"{path} carries no config and fits several presets that compute different")
    assert "cold-256 at 256x256" in message and "vox-256 at 256x256" in message and "\n" not in message
    assert message.endswith("(or name the file after it)") and "--config vox-512" in message
    assert sorted(exc.value.presets) == ["cold-256", "vox-256", "vox-512"]


def test_the_29x29_kind_fits_vox_512_alone(presets, tmp_path):
    model = load_model(copy_as("k29", tmp_path / "model.pth.tar"))
    assert model.config.name == "vox-512" and model.config.model_params.kp_detector_params.anti_alias_sigma is None


@pytest.mark.parametrize(
    "name, preset",
    [
        ("first-order-model-checkpoint-94.pth.tar", "vox-512"),  # as the community published it
        ("vox-512.pth.tar", "vox-512"),  # as fomm download's cache has it
        ("my-vox-512-faces.pth", "vox-512"),
        ("vox-cpk.pth.tar", "vox-256"),
    ],
)
def test_the_file_name_decides_between_them(presets, tmp_path, name, preset):
    cfg = load_model(copy_as("k13", tmp_path / name)).config
    assert cfg.name == preset and cfg.frame_shape == ((512, 512) if preset == "vox-512" else (256, 256))
    sigma = cfg.model_params.kp_detector_params.anti_alias_sigma
    assert sigma == (1.5 if preset == "vox-512" else None)  # vox-256's own kernels are 13 x 13


def test_a_registered_sha256_decides_whatever_the_file_is_called(presets, tmp_path, monkeypatch):
    """A renamed copy of a registered checkpoint (FOMM_MODELS or a published sha256) loads with its
    preset, and computes what the original code computed with it (the fixture's keypoints)."""
    path = copy_as("k13", tmp_path / "renamed" / "weights.pth.tar")
    register(monkeypatch, tmp_path, path, "vox-512")
    model = load_model(path)
    cfg = model.config
    assert (cfg.name, cfg.frame_shape, cfg.model_params.kp_detector_params.anti_alias_sigma) == (
        "vox-512",
        (512, 512),
        1.5,
    )
    source = np.load(FIXTURE.parent / "inputs" / "source_hwc.npz")
    source = source["byteplanes"].T.copy().view(np.float32).reshape(source["shape"])
    with torch.no_grad():
        kp = model.kp_detector(torch.from_numpy(source).permute(2, 0, 1)[None])["value"].numpy()
    np.testing.assert_allclose(kp, np.load(FIXTURE / "vox-512-k13" / "kp_source_value.npy"), atol=1e-5)
    register(monkeypatch, tmp_path, path, "vox-256")
    assert load_model(path).config.name == "vox-256"
    (tmp_path / "renamed" / "weights.pth.tar").write_bytes(path.read_bytes() + b"\0")  # not the registered file
    with pytest.warns(UserWarning, match="read as vox-256 at 256x256"):
        assert load_model(path).config.name == "vox-256"


def test_presets_of_one_function_need_no_tie_break(presets, tmp_path, monkeypatch):
    """Two presets of one network and one function (as taichi-256 and vox-256): no error, the
    name picks among them, else the first by name; no file is hashed for it."""
    twin = presets["vox-256"].copy()
    twin.name = "taichi-256"
    presets["taichi-256"] = twin
    monkeypatch.setattr(checkpoint, "registered_preset", lambda label: pytest.fail("hashed"))
    monkeypatch.setattr(shapes, "known_kind", lambda cfg, states: cfg)  # vox-512: its own kernels only
    assert load_model(copy_as("k13", tmp_path / "taichi-cpk.pth.tar")).config.name == "taichi-256"
    assert load_model(copy_as("k13", tmp_path / "model.pth.tar")).config.name == "taichi-256"


@pytest.mark.parametrize("name", ["vox-512.pth.tar", "first-order-model-checkpoint-94.pth.tar"])
def test_a_given_config_other_than_the_name_s_size_is_said(presets, tmp_path, name):
    """The same family at another size computes another function: one warning line (vox-adv-256
    and vox-256, one function, are not said; tests/models/test_checkpoint.py)."""
    path = copy_as("k13", tmp_path / name)
    with pytest.warns(UserWarning, match=rf"{name} looks like a vox-512 checkpoint .*--config vox-256 is used"):
        assert load_model(path, config=presets["vox-256"]).config.frame_shape == (256, 256)
