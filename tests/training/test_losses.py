"""The training losses reproduce the original's values on the parity fixture (vox variant)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fomm import load_model
from fomm.config import Config
from fomm.models.geometry import make_coordinate_grid
from fomm.training.losses import DiscriminatorFullModel, GeneratorFullModel, Transform

TERMS = ["gen_gan", "feature_matching", "equivariance_value", "equivariance_jacobian", "disc_gan"]


@pytest.fixture(scope="module")
def parity_losses(parity_dir):
    """Run both full models exactly as the fixture's ``_how`` says, with the saved warp injected."""
    d = parity_dir / "variants" / "vox"
    manifest = json.loads((parity_dir / "manifest.json").read_text())
    reference = next(v for v in manifest["variants"] if v["name"] == "vox")["training_losses"]
    cfg = Config.from_yaml(d / "config.yaml")
    cfg.train_params.loss_weights.perceptual = [0] * 5
    cfg.train_params.loss_weights.generator_gan = 1
    model = load_model(d / "checkpoint.pth.tar", config=cfg, with_discriminator=True).train()
    source = torch.from_numpy(np.load(parity_dir / "inputs" / "source.npy"))
    driving = torch.from_numpy(np.load(parity_dir / "inputs" / "driving.npy"))
    x = {"source": torch.cat([source, driving[0:1]]), "driving": driving[[3, 5]]}
    transform = Transform.from_params(
        torch.from_numpy(np.load(d / "train_transform_theta.npy")),
        torch.from_numpy(np.load(d / "train_transform_control_params.npy")),
        torch.from_numpy(np.load(d / "train_transform_control_points.npy")),
    )
    gen_full = GeneratorFullModel(model.kp_detector, model.generator, model.discriminator, cfg.train_params)
    disc_full = DiscriminatorFullModel(model.kp_detector, model.generator, model.discriminator, cfg.train_params)
    assert gen_full.vgg is None  # perceptual weights 0: no VGG is built
    torch.manual_seed(1234)
    losses, generated = gen_full(x, transform=transform)
    losses.update(disc_full(x, generated))
    return reference, losses, generated, d


@pytest.mark.parametrize("term", TERMS)
def test_loss_terms_match_original(parity_losses, term):
    reference, losses, _, _ = parity_losses
    np.testing.assert_allclose(float(losses[term].detach()), reference[term], rtol=1e-4, atol=0, err_msg=term)


def test_transformed_frame_and_keypoints_match_original(parity_losses):
    _, _, generated, d = parity_losses
    np.testing.assert_allclose(
        generated["transformed_frame"].detach().numpy(), np.load(d / "train_transformed_frame.npy"), rtol=0, atol=1e-5
    )
    np.testing.assert_allclose(
        generated["transformed_kp"]["value"].detach().numpy(),
        np.load(d / "train_transformed_kp_value.npy"),
        rtol=0,
        atol=1e-5,
    )
    np.testing.assert_allclose(
        generated["transformed_kp"]["jacobian"].detach().numpy(),
        np.load(d / "train_transformed_kp_jacobian.npy"),
        rtol=0,
        atol=1e-5,
    )


def test_losses_backpropagate_to_every_trained_module(parity_losses):
    _, losses, generated, _ = parity_losses
    total = sum(v for k, v in losses.items() if k != "disc_gan")
    kp_params = generated["kp_driving"]["value"]
    grad = torch.autograd.grad(total, kp_params, retain_graph=True, allow_unused=True)[0]
    assert grad is not None and torch.isfinite(grad).all()


def test_transform_jacobian_matches_finite_differences():
    torch.manual_seed(0)
    t = Transform(3, sigma_affine=0.05, sigma_tps=0.005, points_tps=5, generator=torch.Generator().manual_seed(3))
    pts = torch.rand(3, 7, 2, dtype=torch.float64) * 2 - 1
    t.theta, t.control_params = t.theta.double(), t.control_params.double()
    t.control_points = t.control_points.double()
    jac = t.jacobian(pts)
    eps = 1e-6
    for axis in range(2):
        step = torch.zeros_like(pts)
        step[..., axis] = eps
        fd = (t.warp_coordinates(pts + step) - t.warp_coordinates(pts - step)) / (2 * eps)
        np.testing.assert_allclose(jac[..., :, axis].detach().numpy(), fd.numpy(), atol=1e-6)


def test_transform_is_seeded_and_identity_without_noise():
    a = Transform(2, sigma_affine=0.05, sigma_tps=0.005, points_tps=5, generator=torch.Generator().manual_seed(7))
    b = Transform(2, sigma_affine=0.05, sigma_tps=0.005, points_tps=5, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a.theta, b.theta) and torch.equal(a.control_params, b.control_params)
    ident = Transform(2, sigma_affine=0.0, sigma_tps=0.0, points_tps=5)
    frame = torch.rand(2, 3, 16, 16)
    assert ident.transform_frame(frame).shape == frame.shape
    grid = make_coordinate_grid((4, 4)).view(1, -1, 2)
    np.testing.assert_allclose(ident.warp_coordinates(grid)[0].numpy(), grid[0].numpy(), atol=1e-7)


def test_perceptual_loss_uses_pyramid_and_weights(tiny_config):
    """perceptual = sum over scales and layers of w_i * mean|f_i(pred) - f_i(real)|, computed by hand."""
    from fomm.models.blocks import ImagePyramid
    from fomm.models.first_order_model import FirstOrderModel
    from fomm.training.vgg import random_vgg19

    cfg = Config.from_dict(tiny_config)
    lw = cfg.train_params.loss_weights
    lw.generator_gan, lw.equivariance_value, lw.equivariance_jacobian = 0, 0, 0
    lw.perceptual = [1, 2, 3, 0, 0]
    torch.manual_seed(0)
    model = FirstOrderModel(cfg).train()
    vgg = random_vgg19()
    gen_full = GeneratorFullModel(model.kp_detector, model.generator, None, cfg.train_params, vgg=vgg)
    x = {"source": torch.rand(2, 3, 32, 32), "driving": torch.rand(2, 3, 32, 32)}
    losses, generated = gen_full(x)
    assert set(losses) == {"perceptual"}
    pyramid = ImagePyramid([1, 0.5], 3)
    pred, real = pyramid(generated["prediction"].detach()), pyramid(x["driving"])
    expected = 0.0
    for key in pred:
        fp, fr = vgg(pred[key]), vgg(real[key])
        expected += sum(w * float((fp[i] - fr[i]).abs().mean()) for i, w in enumerate(lw.perceptual) if w)
    np.testing.assert_allclose(float(losses["perceptual"]), expected, rtol=1e-5)


def _only_term(tiny_config, term: str, weight: float):
    """A tiny model whose generator loss is ``term`` alone, at ``weight`` (absent from the YAML while
    0, written back once set), and its losses on a random pair: ``(model, gen_full, x, losses,
    generated)``."""
    from fomm.models.first_order_model import FirstOrderModel

    cfg = Config.from_dict(tiny_config)
    assert term not in cfg.to_dict()["train_params"]["loss_weights"]
    lw = cfg.train_params.loss_weights
    lw.generator_gan, lw.equivariance_value, lw.equivariance_jacobian = 0, 0, 0
    lw.perceptual = [0, 0, 0, 0, 0]
    setattr(lw, term, weight)
    assert getattr(Config.from_dict(cfg.to_dict()).train_params.loss_weights, term) == weight
    torch.manual_seed(0)
    model = FirstOrderModel(cfg).train()
    gen_full = GeneratorFullModel(model.kp_detector, model.generator, None, cfg.train_params)
    x = {"source": torch.rand(2, 3, 32, 32), "driving": torch.rand(2, 3, 32, 32)}
    losses, generated = gen_full(x)
    assert set(losses) == {term}
    return model, gen_full, x, losses, generated


def test_pixel_loss_is_the_mean_l1_over_the_pyramid(tiny_config):
    """Our optional pixel term: w * mean over scales of mean|pred_s - real_s|; absent (and not
    written back to YAML) when its weight is 0."""
    from fomm.models.blocks import ImagePyramid

    model, gen_full, x, losses, generated = _only_term(tiny_config, "pixel", 7)
    pyramid = ImagePyramid([1, 0.5], 3)
    pred, real = pyramid(generated["prediction"].detach()), pyramid(x["driving"])
    expected = 7 * np.mean([float((pred[k] - real[k]).abs().mean()) for k in pred])
    np.testing.assert_allclose(float(losses["pixel"]), expected, rtol=1e-5)
    losses["pixel"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.kp_detector.parameters())


def test_pixel_motion_loss_weights_the_l1_by_where_the_driving_frame_moved(tiny_config):
    """Our optional motion-weighted pixel term: w * mean_s sum(m_s * mean_c|pred_s - real_s|) / sum(m_s)
    with m_s = mean_c|real_s - source_s|; 0 when nothing moved; a pixel that moved outweighs a static one."""
    from fomm.models.blocks import ImagePyramid

    model, gen_full, x, losses, generated = _only_term(tiny_config, "pixel_motion", 3)
    pyramid = ImagePyramid([1, 0.5], 3)
    pred, real, src = pyramid(generated["prediction"].detach()), pyramid(x["driving"]), pyramid(x["source"])
    per_scale = []
    for k in pred:
        m = (real[k] - src[k]).abs().mean(1)
        per_scale.append(float((m * (pred[k] - real[k]).abs().mean(1)).sum() / m.sum()))
    np.testing.assert_allclose(float(losses["pixel_motion"]), 3 * np.mean(per_scale), rtol=1e-5)
    losses["pixel_motion"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.kp_detector.parameters())

    # Nothing moved: no weight anywhere, the term is exactly 0 (no division by zero).
    still = {"source": x["source"], "driving": x["source"].clone()}
    assert float(gen_full(still)[0]["pixel_motion"]) == 0
    # One moved pixel: its error is the whole term (a static pixel's error does not count).
    real1, src1 = torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    real1[..., 1, 2] = 0.5
    pred1 = real1.clone()
    pred1[..., 1, 2] += 0.2
    pred1[..., 3, 3] += 0.9
    gen_full.scales = [1]
    value = gen_full.pixel_motion_loss({"prediction_1": pred1}, {"prediction_1": real1}, {"prediction_1": src1})
    np.testing.assert_allclose(float(value), 3 * 0.2, rtol=1e-5)


def test_kp_motion_term_is_the_coverage_prior_of_both_keypoint_sets(tiny_config):
    """Our optional motion coverage prior: w * mean over the source's and the driving's keypoints of
    motion_coverage_loss with the motion map of the pair; it trains the keypoint detector alone."""
    from fomm.training.recipe import motion_coverage_loss, motion_map

    model, gen_full, x, losses, generated = _only_term(tiny_config, "kp_motion", 4)
    m = motion_map(x["source"], x["driving"], gen_full.kp_motion_size)
    kp_s, kp_d = generated["kp_source"]["value"].detach(), generated["kp_driving"]["value"].detach()
    expected = 4 * (float(motion_coverage_loss(kp_s, m)) + float(motion_coverage_loss(kp_d, m))) / 2
    np.testing.assert_allclose(float(losses["kp_motion"]), expected, rtol=1e-5)
    losses["kp_motion"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.kp_detector.parameters())
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.generator.parameters())
    still = {"source": x["source"], "driving": x["source"].clone()}
    assert float(gen_full(still)[0]["kp_motion"]) == 0

    # train_params.kp_motion_size (default 64, above these 32 px frames) pools the map down to it.
    assert gen_full.kp_motion_size == 64
    cfg = Config.from_dict(tiny_config)
    assert "kp_motion_size" not in cfg.to_dict()["train_params"]
    cfg.train_params.kp_motion_size = 8
    tp = Config.from_dict(cfg.to_dict()).train_params
    assert tp.kp_motion_size == 8
    tp.loss_weights.kp_motion, tp.loss_weights.generator_gan = 4, 0
    small = GeneratorFullModel(model.kp_detector, model.generator, None, tp)
    m8 = motion_map(x["source"], x["driving"], 8)
    assert m8.shape == (2, 8, 8)
    expected8 = 4 * (float(motion_coverage_loss(kp_s, m8)) + float(motion_coverage_loss(kp_d, m8))) / 2
    np.testing.assert_allclose(
        float(
            small.motion_losses(x["source"], x["driving"], generated["kp_source"], generated["kp_driving"])["kp_motion"]
        ),
        expected8,
        rtol=1e-5,
    )
    assert abs(expected8 - expected) > 1e-4


def test_forward_is_its_steps_in_paper_order(tiny_config):
    """forward = keypoints -> generate -> reconstruction -> GAN -> separation -> equivariance, bitwise;
    the loss keys come in that order and a term's weight of 0 leaves it out."""
    from fomm.models.first_order_model import FirstOrderModel
    from fomm.training.vgg import random_vgg19

    cfg = Config.from_dict(tiny_config)
    lw = cfg.train_params.loss_weights
    lw.pixel, lw.kp_separation, lw.perceptual = 2, 0.5, [1, 2, 0, 0, 0]
    torch.manual_seed(0)
    model = FirstOrderModel(cfg, with_discriminator=True).eval()  # eval: no spectral-norm power step
    vgg = random_vgg19()
    gen_full = GeneratorFullModel(model.kp_detector, model.generator, model.discriminator, cfg.train_params, vgg=vgg)
    x = {"source": torch.rand(2, 3, 32, 32), "driving": torch.rand(2, 3, 32, 32)}
    transform = gen_full.make_transform(x["driving"])
    losses, generated = gen_full(x, transform=transform)
    order = ["perceptual", "pixel", "gen_gan", "feature_matching", "kp_separation"]
    assert list(losses) == order + ["equivariance_value", "equivariance_jacobian"]

    kp_s, kp_d = gen_full.keypoints(x["source"], x["driving"])
    gen = gen_full.generate(x["source"], kp_s, kp_d)
    fake, real = gen_full.pyramid(gen["prediction"]), gen_full.pyramid(x["driving"])
    steps = {**gen_full.reconstruction_losses(fake, real), **gen_full.adversarial_losses(fake, real, kp_d)}
    steps.update(gen_full.separation_losses(kp_s, kp_d))
    steps.update(gen_full.equivariance_losses(x["driving"], kp_d, gen, transform))
    assert all(torch.equal(steps[k], losses[k]) for k in losses) and set(steps) == set(losses)
    assert torch.equal(gen["transformed_frame"], generated["transformed_frame"])

    lw.generator_gan, lw.equivariance_jacobian = 0, 0
    gen_full = GeneratorFullModel(model.kp_detector, model.generator, model.discriminator, cfg.train_params, vgg=vgg)
    assert list(gen_full(x, transform=transform)[0]) == ["perceptual", "pixel", "kp_separation", "equivariance_value"]


def test_log_csv_has_a_column_for_every_loss_term(tiny_config):
    """log.csv records each term the generator and discriminator compute (the separation prior and
    the motion-weighted pixel term included), in the order the losses come."""
    from fomm.models.first_order_model import FirstOrderModel
    from fomm.training.run_dir import log_fields
    from fomm.training.vgg import random_vgg19

    cfg = Config.from_dict(tiny_config)
    lw = cfg.train_params.loss_weights
    lw.pixel, lw.pixel_motion, lw.kp_separation, lw.kp_motion, lw.generator_gan = 2, 3, 0.5, 2, 1
    torch.manual_seed(0)
    model = FirstOrderModel(cfg, with_discriminator=True).eval()
    gen_full = GeneratorFullModel(
        model.kp_detector, model.generator, model.discriminator, cfg.train_params, vgg=random_vgg19()
    )
    losses, _ = gen_full({"source": torch.rand(1, 3, 32, 32), "driving": torch.rand(1, 3, 32, 32)})
    fields = log_fields(cfg)
    assert [f for f in fields if f in losses] == list(losses)
    assert "disc_gan" in fields
