"""Int8 per-frame convolutions (precision="fast" on CPUs without native bf16)."""

import numpy as np
import pytest
import torch

from fomm.models.fused import optimize_for_inference
from fomm.models.quantized import (
    Int8Conv,
    Int8ConvReLU,
    Int8ResBlock,
    Int8SubPixelUp,
    int8_supported,
    is_calibrating,
    quantize_per_frame_convs,
    set_calibration,
)
from fomm.testing import random_model

pytestmark = pytest.mark.skipif(not int8_supported(), reason="no x86 int8 kernels in this PyTorch")


def psnr(a, b):
    return float(10 * torch.log10(1.0 / ((a - b) ** 2).mean()))


@pytest.fixture(scope="module")
def inputs():
    model = random_model("tiny-64", seed=5)
    gen = torch.Generator().manual_seed(0)
    source = torch.rand(1, 3, 64, 64, generator=gen)
    driving = torch.rand(3, 3, 64, 64, generator=gen)
    with torch.no_grad():
        kp_source = {k: v.expand(3, *v.shape[1:]) for k, v in model.kp_detector(source).items()}
        kp_driving = model.kp_detector(driving)
    return model, source.expand(3, -1, -1, -1), kp_source, kp_driving


def test_rewrites_the_per_frame_convs_only(inputs):
    model = inputs[0]
    gen = quantize_per_frame_convs(optimize_for_inference(model.generator))
    assert all(isinstance(b, Int8ResBlock) for b in gen.bottleneck)
    assert all(isinstance(b, Int8SubPixelUp) for b in gen.up_blocks)
    hourglass = gen.dense_motion_network.hourglass
    assert any(isinstance(m, Int8ConvReLU) for m in hourglass.modules())
    assert not any(isinstance(m, Int8Conv) for m in gen.first.modules())  # source encoder: fp32
    assert not any(isinstance(m, Int8Conv) for m in gen.down_blocks.modules())
    assert isinstance(gen.final, torch.nn.Conv2d)


def test_calibration_runs_fp32_then_int8_is_close(inputs):
    model, source, kp_source, kp_driving = inputs
    with torch.no_grad():
        reference = optimize_for_inference(model.generator)(source, kp_driving=kp_driving, kp_source=kp_source)
        gen = quantize_per_frame_convs(optimize_for_inference(model.generator))
        assert is_calibrating(gen)
        calibrating = gen(source, kp_driving=kp_driving, kp_source=kp_source)
        set_calibration(gen, False)
        assert not is_calibrating(gen)
        int8 = gen(source, kp_driving=kp_driving, kp_source=kp_source)
    # while calibrating the rewritten convs compute in fp32: same frames
    assert (calibrating["prediction"] - reference["prediction"]).abs().max() < 1e-5
    difference = (int8["prediction"] - reference["prediction"]).abs().max()
    assert 0 < difference < 0.05
    assert psnr(int8["prediction"], reference["prediction"]) > 40
    assert psnr(int8["occlusion_map"], reference["occlusion_map"]) > 35
    # a fresh calibration forgets the old ranges
    set_calibration(gen, True)
    conv = next(m for m in gen.modules() if isinstance(m, Int8Conv))
    assert conv.calibrating and conv.out_scale is None and conv.lo == float("inf")


def test_int8_conv_error_and_saturation():
    torch.manual_seed(0)
    conv = Int8Conv(torch.randn(8, 8, 3, 3) * 0.1, torch.zeros(8), (1, 1), relu=True)
    x = torch.rand(1, 8, 16, 16)
    with torch.no_grad():
        expected = conv(x)
        conv.finish_calibration(margin=0.25)
        from fomm.models.quantized import _quantize_dynamic

        small = conv.forward_q(_quantize_dynamic(x)).dequantize()
        large = conv.forward_q(_quantize_dynamic(4 * x)).dequantize()
    assert (small - expected).abs().max() < 0.05 * expected.max()
    assert float(((small - expected) ** 2).mean() / (expected**2).mean()) < 1e-3
    # the calibrated range (widened by the margin) spans 127 levels; uint8 leaves as much again
    # above it, and anything beyond saturates
    assert conv.out_scale == pytest.approx(float(expected.max()) * 1.25 / 127, rel=1e-6)
    assert float(large.max()) == pytest.approx(255 * conv.out_scale, rel=1e-6)
    assert float((4 * expected).max()) > 255 * conv.out_scale


def test_engine_fast_mode_uses_int8_without_bf16(monkeypatch):
    import fomm
    from fomm.animation.engine import AnimationEngine

    monkeypatch.setattr("fomm.models.inference.cpu_has_fast_bf16", lambda: False)
    model = random_model("tiny-64", seed=1)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64] / 63.0
    driving = np.stack(
        [
            np.stack(
                [
                    0.5 + 0.4 * np.sin(6 * xx + 0.3 * t),
                    0.5 + 0.4 * np.cos(5 * yy - 0.2 * t),
                    0.5 + 0.3 * np.sin(4 * (xx + yy)),
                ],
                -1,
            )
            for t in range(10)
        ]
    ).astype(np.float32)
    source = np.clip(driving[0] + 0.05 * rng.standard_normal(driving[0].shape), 0, 1).astype(np.float32)
    exact = fomm.animate(model, source, driving, precision="exact", batch_size=4)
    engine = AnimationEngine(model, precision="fast", batch_size=4)
    assert engine.inference.int8 and engine.inference.low_dtype is None
    engine.set_source(source)
    fast = np.concatenate([o["prediction"] for o in engine.run(driving)])
    assert not engine.inference.calibrating
    assert np.abs(fast[0] - exact[0]).max() < 1e-5  # the calibration frame is computed in fp32
    assert 0 < np.abs(fast - exact).max() < 0.05
    assert 10 * np.log10(1.0 / np.mean((fast - exact) ** 2)) >= 35
    # a new source recalibrates on its first frame
    engine.set_source(driving[3])
    assert engine.inference.calibrating
    next(engine.run(driving[:2]))
    assert not engine.inference.calibrating


def test_int8_frames_leave_the_process_warning_filters_alone(monkeypatch):
    """A catch_warnings() per activation would swap the process's filters under other threads (an
    app serving other requests): quantizing and converting frames must not enter one, and the
    deprecation PyTorch raises for quantized tensors stays silent."""
    import warnings

    from fomm.models.quantized import _quantize_dynamic

    conv = Int8Conv(torch.randn(4, 4, 3, 3) * 0.1, torch.zeros(4), (1, 1), relu=False)
    x = torch.rand(1, 4, 8, 8)
    with torch.no_grad():
        conv(x)
        conv.finish_calibration(margin=0.25)

        def refuse(*args, **kwargs):
            raise AssertionError("catch_warnings() entered on the int8 path")

        monkeypatch.setattr(warnings, "catch_warnings", refuse)
        filters = list(warnings.filters)
        out = conv.forward_q(_quantize_dynamic(x)).dequantize()
        fresh = Int8Conv(torch.randn(4, 4, 3, 3), torch.zeros(4), (1, 1), relu=True)
    assert out.shape == (1, 4, 8, 8) and fresh.calibrating and warnings.filters == filters
