"""Inference rewrites: BatchNorm folding, sub-pixel up-sampling and Winograd convolutions."""
import pytest
import torch
import torch.nn.functional as F

from fomm.models.inference import FusedResBlock, WinogradConv3x3, optimize_for_inference, winograd_eligible
from fomm.testing import random_model


@pytest.mark.parametrize("shape", [(2, 64, 64, 16, 16), (1, 72, 80, 13, 7), (3, 96, 64, 5, 9)])
def test_winograd_conv_matches_direct_conv(shape):
    b, c, o, h, w = shape
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(c, o, 3, padding=1)
    x = torch.randn(b, c, h, w)
    expected = F.conv2d(x.double(), conv.weight.double(), conv.bias.double(), padding=1)
    winograd = WinogradConv3x3(conv)
    for inp in (x, x.contiguous(memory_format=torch.channels_last)):
        out = winograd(inp)
        assert out.shape == (b, o, h, w)
        assert (out.double() - expected).abs().max() / expected.abs().max() < 5e-5


def test_winograd_eligibility():
    assert winograd_eligible(torch.nn.Conv2d(64, 64, 3, padding=1))
    assert not winograd_eligible(torch.nn.Conv2d(32, 64, 3, padding=1))           # too narrow
    assert not winograd_eligible(torch.nn.Conv2d(64, 64, 3, padding=1, stride=2))
    assert not winograd_eligible(torch.nn.Conv2d(64, 64, 7, padding=3))
    assert not winograd_eligible(torch.nn.Conv2d(64, 64, 3, padding=1, groups=2))


def test_optimized_generator_with_and_without_winograd(wide_config):
    model = random_model(wide_config, seed=3)
    source = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    driving = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        kp_source = {k: v.expand(2, *v.shape[1:]) for k, v in model.kp_detector(source).items()}
        kp_driving = model.kp_detector(driving)
        src = source.expand(2, -1, -1, -1)
        expected = model.generator(src, kp_driving=kp_driving, kp_source=kp_source)["prediction"]
        folded = optimize_for_inference(model.generator)
        winograd = optimize_for_inference(model.generator, winograd=True)
        out_folded = folded(src, kp_driving=kp_driving, kp_source=kp_source)["prediction"]
        out_winograd = winograd(src, kp_driving=kp_driving, kp_source=kp_source)["prediction"]
    blocks = [m for m in winograd.modules() if isinstance(m, FusedResBlock)]
    assert blocks and all(isinstance(b.conv1, WinogradConv3x3) and isinstance(b.conv2, WinogradConv3x3)
                          for b in blocks)
    assert not any(isinstance(m, WinogradConv3x3) for m in folded.modules())
    assert (out_folded - expected).abs().max() < 1e-5
    assert 1e-7 < (out_winograd - expected).abs().max() < 1e-4
    # the original model is left untouched
    assert not any(isinstance(m, WinogradConv3x3) for m in model.modules())
