"""The TPSMM networks load the original checkpoint layout unchanged and reproduce the original
code's outputs (tests/fixtures/tpsmm-parity, made by the official TPSMM code at commit c616878 with
a ResNet-18 of base width 8): keypoints and dense motion within 1e-4, frames within 1e-3, for every
network and the three animation modes of ``demo.make_animation``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fomm import animate, load_model
from fomm.errors import FommError

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "tpsmm-parity"
KEYPOINTS, DENSE, FRAMES = 1e-4, 1e-4, 1e-3


def stored(name: str) -> np.ndarray:
    """A fixture array (``.npz`` files hold the float32 bytes as byte planes)."""
    path = FIXTURE / name
    if path.suffix == ".npz":
        z = np.load(path)
        return z["byteplanes"].T.copy().view(np.float32).reshape(z["shape"])
    return np.load(path)


@pytest.fixture(scope="module")
def model():
    return load_model(FIXTURE / "checkpoint.pth.tar", config=FIXTURE / "config.yaml")


@pytest.fixture(scope="module")
def inputs():
    source = torch.from_numpy(stored("inputs/source_hwc.npz")).permute(2, 0, 1)[None]
    driving = torch.from_numpy(stored("inputs/driving_hwc.npz")).permute(0, 3, 1, 2)
    return source, driving


@pytest.fixture(scope="module")
def keypoints(model, inputs):
    source, driving = inputs
    with torch.no_grad():
        return model.kp_detector(source), model.kp_detector(driving)


def close(actual: torch.Tensor, name: str, tol: float) -> None:
    expected = stored(name)
    assert tuple(actual.shape) == expected.shape, name
    np.testing.assert_allclose(actual.detach().numpy(), expected, rtol=0, atol=tol, err_msg=name)


def test_checkpoint_loads_with_its_width_and_avd(model):
    assert model.kind == "tpsmm"
    assert model.config.model_params.resnet_width == 8  # taken from the checkpoint, not the config
    assert model.has_avd and model.bg_predictor is None
    assert model.frame_shape == (128, 128)


def test_keypoints(keypoints):
    kp_source, kp_driving = keypoints
    close(kp_source["fg_kp"], "outputs/kp_source_fg_kp.npy", KEYPOINTS)
    close(kp_driving["fg_kp"], "outputs/kp_driving_fg_kp.npy", KEYPOINTS)


@pytest.mark.parametrize("tag", ["nobg", "bg"])
def test_dense_motion(model, inputs, keypoints, tag):
    source, _ = inputs
    kp_source, kp_driving = keypoints
    bg_param = torch.from_numpy(stored("inputs/bg_param.npy")) if tag == "bg" else None
    with torch.no_grad():
        out = model.dense_motion_network(
            source_image=source.expand(4, -1, -1, -1),
            kp_driving=kp_driving,
            kp_source={"fg_kp": kp_source["fg_kp"].expand(4, -1, -1)},
            bg_param=bg_param,
            dropout_flag=False,
        )
    close(out["deformation"], f"outputs/dense_{tag}_deformation.npy", DENSE)
    close(out["contribution_maps"], f"outputs/dense_{tag}_contribution_maps.npz", DENSE)
    close(out["deformed_source"], f"outputs/dense_{tag}_deformed_source.npz", DENSE)
    assert [tuple(m.shape[2:]) for m in out["occlusion_map"]] == [(16, 16), (32, 32), (64, 64), (128, 128)]
    for i, mask in enumerate(out["occlusion_map"]):
        close(mask, f"outputs/dense_{tag}_occlusion_map_{i}.{'npz' if i == 3 else 'npy'}", DENSE)


def test_inpainting_and_avd(model, inputs, keypoints):
    source, _ = inputs
    kp_source, kp_driving = keypoints
    source4, kp_source4 = source.expand(4, -1, -1, -1), {"fg_kp": kp_source["fg_kp"].expand(4, -1, -1)}
    with torch.no_grad():
        dense = model.dense_motion_network(source_image=source4, kp_driving=kp_driving, kp_source=kp_source4)
        out = model.inpainting_network(source4, dense)
        avd = model.avd_network(kp_source4, kp_driving)
    close(out["prediction"], "outputs/inpainting_prediction.npz", FRAMES)
    close(out["deformed"], "outputs/inpainting_deformed.npz", FRAMES)
    close(avd["fg_kp"], "outputs/avd_fg_kp.npy", KEYPOINTS)


@pytest.mark.parametrize(
    "mode, options", [("standard", dict(relative=False)), ("relative", dict(relative=True)), ("avd", dict(avd=True))]
)
def test_animation_modes(model, mode, options):
    frames = animate(model, stored("inputs/source_hwc.npz"), stored("inputs/driving_hwc.npz"), **options)
    expected = stored(f"outputs/anim_{mode}_prediction_hwc.npz")
    assert frames.shape == expected.shape
    np.testing.assert_allclose(frames, expected, rtol=0, atol=FRAMES)


def test_modes_differ_so_the_comparisons_mean_something(model):
    """The three stored modes differ by far more than the tolerance (a wrong mode cannot pass)."""
    a, b = stored("outputs/anim_standard_prediction_hwc.npz"), stored("outputs/anim_relative_prediction_hwc.npz")
    assert np.abs(a - b).max() > 100 * FRAMES


def test_a_fomm_model_with_avd_is_one_clear_error():
    from fomm.testing import random_model

    with pytest.raises(FommError, match="Thin-Plate Spline"):
        animate(random_model(), np.zeros((64, 64, 3), np.float32), np.zeros((1, 64, 64, 3), np.float32), avd=True)
