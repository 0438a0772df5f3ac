"""The anti-aliased pyramid blurs in float32 whatever the precision around it."""

import torch

from fomm.models.blocks import AntiAliasInterpolation2d


def _frame(channels_last: bool) -> torch.Tensor:
    torch.manual_seed(0)
    x = torch.rand(1, 3, 64, 64)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def test_blur_under_bf16_autocast_is_the_float32_blur():
    down = AntiAliasInterpolation2d(3, 0.125)  # the 29x29 kernel that was slow in bf16 + NHWC
    assert down.weight.shape == (3, 1, 29, 29)
    ref = down(_frame(False))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = down(_frame(True))
    assert out.dtype == torch.float32 and out.shape == (1, 3, 8, 8)
    assert torch.allclose(out, ref, atol=1e-6)


def test_blur_of_a_bf16_model_returns_bf16_close_to_float32():
    down = AntiAliasInterpolation2d(3, 0.25).to(torch.bfloat16)
    x = _frame(True)
    out = down(x.to(torch.bfloat16))
    ref = AntiAliasInterpolation2d(3, 0.25)(x)
    assert out.dtype == torch.bfloat16 and out.shape == (1, 3, 16, 16)
    assert (out.float() - ref).abs().max() < 1e-2  # only the input's and output's bf16 rounding
    assert torch.equal(AntiAliasInterpolation2d(3, 1.0)(x), x)
