"""The size limits checked when a config is loaded (fomm.config.limits, and TPSMM's occlusion
masks): each one against the real networks on both sides of its boundary, the two TPSMM settings of experiments/tpsmm-ablation (and
FOMM's same failures) as one line of ``fomm train``, and every shipped config passing."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
import yaml

from fomm.cli import main as cli_main
from fomm.config import HourglassParams, load_preset, preset_names
from fomm.config.limits import check_hourglass, check_pyramid, downsampled, perceptual_depth
from fomm.config.sections import Invalid
from fomm.models.blocks import AntiAliasInterpolation2d, Hourglass, ImagePyramid
from fomm.models.tpsmm.config import (
    TpsGeneratorParams,
    check_masks,
    load_tpsmm_preset,
    resolve_tpsmm_config,
    tpsmm_preset_names,
)
from fomm.models.tpsmm.dense_motion import DenseMotionNetwork, instance_norm
from fomm.models.tpsmm.inpainting import InpaintingNetwork
from fomm.training.vgg import random_vgg19

ROOT = Path(__file__).resolve().parents[1]
ABLATION = ROOT / "experiments" / "tpsmm-ablation" / "tpsmm-puppet-64.yaml"


def _runs(module, x) -> bool:
    try:
        module(x)
    except (RuntimeError, ValueError, IndexError):
        return False
    return True


def _raises(check, *args) -> bool:
    try:
        check(*args)
    except Invalid:
        return True
    return False


@pytest.mark.parametrize("norm_name, norm", [("InstanceNorm", instance_norm), ("BatchNorm", torch.nn.BatchNorm2d)])
def test_the_hourglass_limit_is_exactly_where_the_network_fails(norm_name, norm):
    torch.manual_seed(0)
    frames = [(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (32, 64), (48, 64)]
    for (h, w), scale, blocks in itertools.product(frames, (1, 0.5, 0.25), range(1, 7)):
        net = torch.nn.Sequential(AntiAliasInterpolation2d(3, scale), Hourglass(2, 3, blocks, 4, norm=norm)).train()
        runs = _runs(net, torch.rand(2, 3, h, w))
        refused = _raises(check_hourglass, "p", (h, w), scale, blocks, norm_name)
        assert runs != refused, (h, w, scale, blocks, runs)


def test_the_pyramid_limit_is_exactly_where_vgg19_fails():
    vgg = random_vgg19()
    weights = ([1, 1, 1, 1, 1], [1, 1, 1, 1, 0], [1, 1, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 0, 0, 0])
    for side, scale in itertools.product((8, 16, 24, 32, 64), (1, 0.5, 0.25, 0.125)):
        level = ImagePyramid([scale], 3)(torch.rand(1, 3, side, side))[f"prediction_{scale}"]
        assert level.shape[-1] == downsampled(side, scale)
        for w in weights:
            depth = perceptual_depth(w)
            runs = depth == 0 or _runs(lambda x, d=depth: vgg(x, depth=d), level)
            assert runs != _raises(check_pyramid, (side, side), [scale], w), (side, scale, w)


def _ablation(dense_motion: dict | None = None, scales: list | None = None) -> dict:
    """experiments/tpsmm-ablation's config with the original's dense motion or pyramid."""
    data = yaml.safe_load(ABLATION.read_text())
    data["model_params"]["dense_motion_params"].update(dense_motion or {})
    data["train_params"]["scales"] = scales or data["train_params"]["scales"]
    return data


def _puppet(kp_detector: dict | None = None, scales: list | None = None) -> dict:
    """The FOMM preset puppet-64 with another keypoint detector or pyramid."""
    data = load_preset("puppet-64").to_dict()
    data["model_params"]["kp_detector_params"].update(kp_detector or {})
    data["train_params"]["scales"] = scales or data["train_params"]["scales"]
    return data


@pytest.mark.parametrize(
    "config, message",
    [
        (  # experiments/tpsmm-ablation: the original's dense motion at 64 px
            _ablation(dense_motion={"scale_factor": 0.25, "num_blocks": 5}),
            "model_params.dense_motion_params: scale_factor 0.25 x 64 px = 16 px halved by 5 hourglass blocks "
            "reaches 1x1 at block 5 (InstanceNorm needs at least 2x2); use num_blocks <= 4 or scale_factor 0.5",
        ),
        (  # experiments/tpsmm-ablation: the original's pyramid at 64 px
            _ablation(scales=[1, 0.5, 0.25, 0.125]),
            "train_params.scales: scale 0.125 x 64 px = 8 px is too small for the perceptual loss: VGG-19 up to "
            "relu5_1 (the last slice with a non-zero loss_weights.perceptual) pools 4 times and needs at least "
            "16 px; use scales [1, 0.5, 0.25] or perceptual weights of 0 after relu4_1",
        ),
        (  # FOMM has the same two limits
            _puppet(scales=[1, 0.5, 0.25, 0.125]),
            "train_params.scales: scale 0.125 x 64 px = 8 px is too small for the perceptual loss",
        ),
        (
            _puppet(kp_detector={"num_blocks": 6}),
            "model_params.kp_detector_params: scale_factor 0.5 x 64 px = 32 px halved by 6 hourglass blocks reaches "
            "1x1 at block 6 (its 2x2 pooling needs 2x2); use num_blocks <= 5 or scale_factor 1",
        ),
    ],
)
def test_fomm_train_stops_with_one_line_before_building_anything(tmp_path, capsys, config, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    (tmp_path / "data").mkdir()
    out = tmp_path / "run"
    code = cli_main(["train", "--config", str(path), "--data", str(tmp_path / "data"), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"fomm train: error: config {path}: ") and message in err
    assert not out.exists()


def test_every_shipped_config_fits_its_frame():
    resolve_tpsmm_config(ABLATION)  # the TPSMM config the ablation trained with
    for name in tpsmm_preset_names():
        load_tpsmm_preset(name)
    for name in preset_names():
        load_preset(name)


def test_the_multi_mask_limits_are_where_the_networks_fail():
    """With multi_mask, TPSMM's 4 occlusion masks must come from the hourglass (num_blocks >=
    4 - log2(1 / scale_factor)) and fit the inpainting network (num_down_blocks 3): refused exactly
    where the dense motion and inpainting networks fail, but for one setting that this port runs and
    the original cannot build (scale_factor 1 with 2 blocks and 1 down block), refused as the
    original's architecture."""
    torch.manual_seed(0)
    side = 64
    for scale, blocks, down in itertools.product((1, 0.5, 0.25, 0.125), range(1, 5), range(1, 5)):
        if downsampled(side, scale) % 2**blocks:
            continue  # the hourglass limit, tested above
        dense = DenseMotionNetwork(2, blocks, 4, num_tps=1, num_channels=3, scale_factor=scale, multi_mask=True)
        inpainting = InpaintingNetwork(3, 2, 4, down, multi_mask=True)
        x, kp = torch.rand(1, 3, side, side), {"fg_kp": torch.rand(1, 5, 2) * 2 - 1}
        with torch.no_grad():
            runs = _runs(lambda x, d=dense, i=inpainting, kp=kp: i(x, d(x, kp, kp)), x)
        refused = _raises(
            check_masks,
            HourglassParams(num_blocks=blocks, scale_factor=scale),
            TpsGeneratorParams(num_down_blocks=down),
        )
        assert runs != refused or (scale, blocks, down) == (1, 2, 1), (scale, blocks, down, runs)
