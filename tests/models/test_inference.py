"""The inference stack as one object: InferenceModel(model, precision, device)."""

import warnings

import numpy as np
import pytest
import torch

import fomm
from fomm.models import quantized
from fomm.models.inference import InferenceModel
from fomm.testing import random_model


@pytest.fixture(scope="module")
def setup():
    model = random_model("tiny-64", seed=3)
    rng = np.random.default_rng(0)
    source = rng.random((64, 64, 3), dtype=np.float32)
    driving = np.clip(source[None] + 0.1 * rng.standard_normal((4, 64, 64, 3)), 0, 1).astype(np.float32)
    return model, source, driving


def loop(model, source, driving):
    """The original's per-frame algorithm, relative motion with movement scaling."""

    def t(x):
        return torch.from_numpy(x).permute(2, 0, 1)[None]

    with torch.no_grad():
        kp_source = model.kp_detector(t(source))
        kp_initial = model.kp_detector(t(driving[0]))
        out = []
        for frame in driving:
            kp = fomm.normalize_kp(kp_source, model.kp_detector(t(frame)), kp_initial, True, True, True)
            out.append(model.generator(t(source), kp_driving=kp, kp_source=kp_source)["prediction"][0])
    return torch.stack(out).permute(0, 2, 3, 1).numpy()


def test_encode_once_animate_batches_equals_the_loop(setup):
    model, source, driving = setup
    im = InferenceModel(model, "exact")
    encoded = im.encode_source(source)
    assert encoded.kp["value"].shape == (1, model.config.model_params.common_params.num_kp, 2)
    kp = im.keypoints(driving)
    kp_initial = {k: v[:1].expand_as(v) for k, v in kp.items()}
    kp_source = {k: v.expand_as(kp[k]) for k, v in encoded.kp.items()}
    kp_norm = fomm.normalize_kp(kp_source, kp, kp_initial, True, True, True)
    out = im.animate(encoded, kp_norm, outputs=("prediction", "occlusion_map"))
    assert out["prediction"].shape == (4, 3, 64, 64) and out["occlusion_map"].shape[0] == 4
    got = out["prediction"].permute(0, 2, 3, 1).numpy()
    assert np.abs(got - loop(model, source, driving)).max() < 1e-5


def test_fast_without_int8_or_bf16_runs_fp32_with_one_warning(setup, monkeypatch):
    model, source, driving = setup
    monkeypatch.setattr("fomm.models.inference.cpu_has_fast_bf16", lambda: False)
    monkeypatch.setattr(quantized, "int8_supported", lambda: False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fast = fomm.animate(model, source, driving, precision="fast")
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "running in fp32" in messages[0], messages
    exact = fomm.animate(model, source, driving, precision="exact")
    assert np.abs(fast - exact).max() < 1e-6


def test_int8_probe_says_no_when_the_deprecated_ops_fail(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("quantized ops removed")

    monkeypatch.setattr(quantized.Int8Conv, "__init__", broken)
    assert quantized.int8_supported.__wrapped__() is False
