"""Recipe options against keypoint collapse (fomm.training.recipe) and the coverage measure."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fomm.config import Config, load_preset
from fomm.models.keypoint_detector import KPDetector, spread_centers, spread_logit_bias
from fomm.training.losses import GeneratorFullModel
from fomm.training.recipe import (
    equivariance_factor,
    keypoint_coverage,
    motion_coverage_loss,
    motion_map,
    normalized_to_px,
    separation_loss,
    spread_weight,
)

NEW_TRAIN_KEYS = (
    "kp_spread_init",
    "kp_spread_steps",
    "equivariance_warmup_steps",
    "equivariance_warmup_factor",
    "kp_separation_sigma",
    "kp_motion_size",
)


@pytest.mark.parametrize("name", ["face-64", "vox-256", "taichi-256", "mgif-256", "bair-256"])
def test_presets_leave_the_options_off_and_unwritten(name):
    cfg = load_preset(name)
    tp = cfg.to_dict()["train_params"]
    assert not set(NEW_TRAIN_KEYS) & set(tp) and not {"kp_separation", "kp_motion"} & set(tp["loss_weights"])
    assert spread_weight(cfg.train_params, 0) == 0 and equivariance_factor(cfg.train_params, 0) == 1
    assert cfg.train_params.loss_weights.kp_separation == 0


def test_puppet_preset_carries_the_collapse_fix():
    """puppet-64 is the recipe of the ablation (experiments/ablation/): pad 3, a weak narrow separation
    prior, 15 keypoints, the motion-weighted pixel term of the bundled v8 and the motion coverage
    prior of the bundled v11; the other options stay off, and the original presets use none of them."""
    cfg = load_preset("puppet-64")
    assert cfg.model_params.kp_detector_params.pad == 3 and cfg.model_params.common_params.num_kp == 15
    assert cfg.train_params.loss_weights.kp_separation == 1 and cfg.train_params.kp_separation_sigma == 0.05
    assert cfg.train_params.loss_weights.pixel_motion == 30 and cfg.train_params.loss_weights.kp_motion == 10
    for name in ("vox-256", "taichi-256", "face-64"):
        lw = load_preset(name).train_params.loss_weights
        assert lw.pixel_motion == 0 and lw.kp_motion == 0
    assert spread_weight(cfg.train_params, 0) == 0 and equivariance_factor(cfg.train_params, 0) == 1


def test_options_round_trip_through_yaml_dicts():
    d = load_preset("face-64").to_dict()
    d["train_params"].update(kp_spread_init=3.0, kp_spread_steps=200, equivariance_warmup_steps=50)
    d["train_params"]["loss_weights"]["kp_separation"] = 10.0
    tp = Config.from_dict(Config.from_dict(d).to_dict()).train_params
    assert (tp.kp_spread_init, tp.kp_spread_steps, tp.equivariance_warmup_steps) == (3.0, 200, 50)
    assert tp.loss_weights.kp_separation == 10.0 and tp.kp_separation_sigma == 0.1


def test_schedules_decay_linearly_to_the_plain_recipe():
    tp = {
        "kp_spread_init": 4.0,
        "kp_spread_steps": 100,
        "equivariance_warmup_steps": 10,
        "equivariance_warmup_factor": 5,
    }
    assert [spread_weight(tp, s) for s in (0, 25, 100, 500)] == [4.0, 3.0, 0.0, 0.0]
    assert [equivariance_factor(tp, s) for s in (0, 5, 10, 11)] == [5.0, 3.0, 1.0, 1.0]
    assert spread_weight({"kp_spread_init": 4.0}, 0) == 0  # no decay length: off


def test_separation_loss_values_and_gradient():
    together = torch.zeros(2, 5, 2)
    assert float(separation_loss(together, 0.1)) == pytest.approx(1.0)
    apart = torch.tensor([[[-0.8, -0.8], [0.8, 0.8], [-0.8, 0.8]]])
    assert float(separation_loss(apart, 0.1)) < 1e-20
    pair = torch.tensor([[[0.0, 0.0], [0.1, 0.0]]], requires_grad=True)
    value = separation_loss(pair, 0.1)
    assert float(value.detach()) == pytest.approx(np.exp(-0.5), rel=1e-6)
    value.backward()
    assert pair.grad[0, 0, 0] > 0 and pair.grad[0, 1, 0] < 0  # descending moves them apart
    assert float(separation_loss(torch.zeros(1, 1, 2), 0.1)) == 0


def test_motion_map_is_where_the_frames_differ_normalised():
    source = torch.zeros(2, 3, 8, 8)
    driving = source.clone()
    driving[0, :, 2, 5] = 0.3
    driving[0, 0, 6, 1] = 0.9  # one channel of three: a third of the pixel above's mean
    m = motion_map(source, driving, max_size=64)
    assert m.shape == (2, 8, 8) and not m.requires_grad
    assert float(m[0].sum()) == pytest.approx(1.0) and float(m[1].sum()) == 0  # nothing moved: all 0
    assert float(m[0, 2, 5]) == pytest.approx(0.5) and float(m[0, 6, 1]) == pytest.approx(0.5)
    big = motion_map(torch.zeros(1, 3, 128, 96), torch.ones(1, 3, 128, 96), max_size=64)
    assert big.shape == (1, 64, 64) and float(big.sum()) == pytest.approx(1.0)


def test_motion_coverage_loss_is_the_k_means_cost_of_the_moving_pixels():
    """sum_p m_p min_k |g_p - kp_k|^2: each moving pixel pulls only its nearest keypoint, towards it."""
    motion = torch.zeros(1, 5, 5)
    motion[0, 0, 4] = 0.75  # x = +1, y = -1
    motion[0, 4, 0] = 0.25  # x = -1, y = +1
    kp = torch.tensor([[[0.5, -1.0], [-1.0, 1.0], [0.0, 0.0]]], requires_grad=True)
    value = motion_coverage_loss(kp, motion)
    assert float(value.detach()) == pytest.approx(0.75 * 0.25 + 0.25 * 0.0)
    value.backward()
    np.testing.assert_allclose(kp.grad[0, 0].numpy(), [2 * 0.75 * (0.5 - 1.0), 0.0])  # descent: towards x = 1
    assert float(kp.grad[0, 1].abs().sum()) == 0 and float(kp.grad[0, 2].abs().sum()) == 0  # not the nearest
    assert float(motion_coverage_loss(kp.detach(), torch.zeros(1, 5, 5))) == 0


def test_keypoint_coverage_counts():
    gt = np.array([[[10.0, 10.0], [30.0, 30.0], [50.0, 50.0], [12.0, 10.0]]] * 2)  # (T=2, J=4, 2)
    collapsed = np.full((2, 3, 2), 11.0)  # all near GT 0 and 3
    cov = keypoint_coverage(collapsed, gt, radius=3.0)
    assert cov["covered"] == 2 and cov["claimed"] == 1 and cov["on_target"] == 3 and cov["spread_px"] == 0
    spread = np.array([[[10.0, 11.0], [31.0, 30.0], [70.0, 0.0]], [[10.0, 10.0], [50.0, 52.0], [29.0, 29.0]]])
    cov = keypoint_coverage(spread, gt, radius=3.0)
    # frame 0: GT 0, 3 (by one keypoint) and 1 covered, 2 claimed; frame 1: all 4 covered, 3 claimed
    assert cov["covered"] == 3.5 and cov["claimed"] == 2.5 and cov["on_target"] == 2.5
    assert cov["num_frames"] == 2
    with pytest.raises(ValueError):
        keypoint_coverage(np.zeros((2, 3, 2)), np.zeros((3, 4, 2)))
    np.testing.assert_allclose(normalized_to_px(np.array([[-1.0, 1.0]]), 64), [[0.0, 63.0]])


def _kp_detector(pad: int = 3) -> KPDetector:
    torch.manual_seed(0)
    return KPDetector(16, 6, 3, 64, 3, temperature=0.1, estimate_jacobian=True, scale_factor=1, pad=pad).eval()


def test_spread_bias_moves_keypoints_to_their_centres_and_is_off_by_default():
    kp = _kp_detector()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    assert kp.spread_weight == 0
    with torch.no_grad():
        plain = kp(x)["value"]
        logits, _ = kp.heatmap_logits(x)
        heat = torch.softmax(logits.flatten(2) / 0.1, dim=2).view_as(logits)
        from fomm.models.geometry import heatmap_to_keypoints

        torch.testing.assert_close(plain, heatmap_to_keypoints(heat))  # unchanged without the bias
        kp.spread_weight = 50.0
        pulled = kp(x)["value"]
    centres = spread_centers(6)
    assert (pulled - centres).norm(dim=-1).max() < 0.05 < (plain - centres).norm(dim=-1).mean()
    assert spread_logit_bias(6, 8, 8).shape == (6, 8, 8) and float(spread_logit_bias(6, 8, 8).max()) <= 0
    assert centres.norm(dim=1).max() <= 0.5 and torch.pdist(centres).min() > 0.1


def test_generator_full_model_applies_the_options(tiny_config):
    from fomm.models.first_order_model import FirstOrderModel

    cfg = Config.from_dict(tiny_config)
    lw = cfg.train_params.loss_weights
    lw.generator_gan, lw.perceptual, lw.equivariance_jacobian = 0, [0, 0, 0, 0, 0], 0
    lw.kp_separation = 2.0
    tp = cfg.train_params
    tp.kp_spread_init, tp.kp_spread_steps = 6.0, 10
    tp.equivariance_warmup_steps, tp.equivariance_warmup_factor = 10, 3.0
    torch.manual_seed(0)
    model = FirstOrderModel(cfg).train()
    gen_full = GeneratorFullModel(model.kp_detector, model.generator, None, tp)
    assert model.kp_detector.spread_weight == 6.0  # step 0 at construction
    x = {"source": torch.rand(2, 3, 32, 32), "driving": torch.rand(2, 3, 32, 32)}
    values = {}
    for step in (0, 10):
        gen_full.set_step(step)
        torch.manual_seed(5)
        losses, generated = gen_full(x)
        values[step] = {k: float(v) for k, v in losses.items()}
        sep = (
            2.0
            * (
                separation_loss(generated["kp_source"]["value"], 0.1)
                + separation_loss(generated["kp_driving"]["value"], 0.1)
            )
            / 2
        )
        assert values[step]["kp_separation"] == pytest.approx(float(sep), rel=1e-5)
    assert model.kp_detector.spread_weight == 0.0
    # the warm-up factor 3 at step 0 and 1 at step 10 (the keypoints differ too: the spread bias is gone)
    assert values[0]["equivariance_value"] > 0 and set(values[0]) == {"kp_separation", "equivariance_value"}
