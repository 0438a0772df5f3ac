"""The inference stack as one object: InferenceModel(model, precision, device)."""

import warnings

import numpy as np
import pytest
import torch

import fomm
from fomm.animation.engine import AnimationEngine
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


# ------------------------------------------------------------------------------------------------
# fast in bf16 (forced here: where the CPU has no bf16 units it is emulated, slower but the same numbers)
# ------------------------------------------------------------------------------------------------
def parity_model(parity_dir, name):
    d = parity_dir / "variants" / name
    return fomm.load_model(d / "checkpoint.pth.tar", config=d / "config.yaml")


def parity_clip(parity_dir):
    source = np.load(parity_dir / "inputs" / "source.npy")[0].transpose(1, 2, 0)
    driving = np.load(parity_dir / "inputs" / "driving.npy").transpose(0, 2, 3, 1)
    return np.ascontiguousarray(source), np.ascontiguousarray(driving)


def test_bf16_weights_are_converted_once_and_the_geometry_stays_fp32(setup):
    model, source, driving = setup
    im = InferenceModel(model, "fast", fast_dtype=torch.bfloat16)
    convs = [m for m in im.generator.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(c.weight.dtype == torch.bfloat16 for c in convs)
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs if c.weight.shape[-1] > 1)
    blur = im.generator.dense_motion_network.down.weight if hasattr(im.generator.dense_motion_network, "down") else None
    assert blur is None or blur.dtype == torch.float32
    # the caller's model is untouched; the keypoint detector keeps fp32 weights (see the next test)
    assert next(model.generator.parameters()).dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in im.kp_detector.parameters())
    encoded = im.encode_source(source)
    assert encoded.state.features.dtype == torch.float32  # sampled with fp32 grids
    kp = im.keypoints(driving)
    out = im.animate(encoded, kp, outputs=("prediction", "occlusion_map", "deformed"))
    assert all(v.dtype == torch.float32 for v in out.values())


def test_bf16_keypoint_detector_decision(parity_dir):
    """bf16 moves the parity keypoints by far more than 0.05 px at 256 px (3.3 px measured), so
    ``fast`` keeps the keypoint detector in fp32 (inference.KP_DETECTOR_LOW_PRECISION) and its
    keypoints are exact's."""
    from fomm.models import inference
    from fomm.models.fused import optimize_for_inference, to_low_precision

    model = parity_model(parity_dir, "vox")
    source, driving = parity_clip(parity_dir)
    frames = torch.from_numpy(np.concatenate([source[None], driving])).permute(0, 3, 1, 2)
    with torch.no_grad():
        fp32 = optimize_for_inference(model.kp_detector)(frames)["value"]
        bf16 = to_low_precision(optimize_for_inference(model.kp_detector), torch.bfloat16)(frames)["value"]
    px_at_256 = float((fp32 - bf16).abs().max()) * 255 / 2
    assert px_at_256 > 0.05 and inference.KP_DETECTOR_LOW_PRECISION is False
    fast = InferenceModel(model, "fast", fast_dtype=torch.bfloat16).keypoints(driving)["value"]
    exact = InferenceModel(model, "exact").keypoints(driving)["value"]
    assert torch.allclose(fast, exact, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vox", "mgif", "x-nojac", "x-noocc"])
def test_bf16_fast_psnr_against_exact_on_the_parity_clips(parity_dir, name):
    model = parity_model(parity_dir, name)
    source, driving = parity_clip(parity_dir)
    exact = fomm.animate(model, source, driving, precision="exact")
    engine = AnimationEngine(model, precision="fast", fast_dtype=torch.bfloat16)
    engine.set_source(source)
    fast = np.concatenate([o["prediction"] for o in engine.run(driving)])
    psnr = 10 * np.log10(1.0 / np.mean((exact.astype(np.float64) - fast) ** 2))
    assert psnr >= 45, psnr
