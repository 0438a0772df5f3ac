"""Generator identity initialisation and frozen BatchNorm statistics (train_params options)."""

from __future__ import annotations

import copy

import pytest
import torch

from fomm.config import Config
from fomm.errors import FommError
from fomm.models.checkpoint import read_checkpoint
from fomm.models.first_order_model import FirstOrderModel
from fomm.training.generator_init import calibrate_norms, generator_norms, identity_init
from fomm.training.trainer import train

QUIET = dict(
    progress=False, threads=1, tensorboard=False, vis_every=0, log_every=1, precision="fp32"
)  # numbers must not depend on the CPU's bf16 (the default is auto)


def _full_res(tiny_config: dict) -> dict:
    cfg = copy.deepcopy(tiny_config)
    cfg["model_params"]["generator_params"].update(num_down_blocks=0, block_expansion=8, num_bottleneck_blocks=2)
    return cfg


def test_identity_init_maps_each_colour_through_a_sigmoid(tiny_config):
    """After the init, decode(first(x)) == sigmoid((x - mean) / std) per colour, with the batch's
    statistics of each colour (BatchNorm in training mode): the image passes through unblurred."""
    torch.manual_seed(0)
    gen = FirstOrderModel(Config.from_dict(_full_res(tiny_config))).generator.train()
    identity_init(gen)
    assert all(not b.conv2.weight.any() for b in gen.bottleneck)
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        out = gen.decode(gen.first(x))
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    expected = torch.sigmoid((x - mean) / torch.sqrt(var + gen.first.norm.eps))
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_identity_init_needs_a_full_resolution_generator(tiny_config):
    gen = FirstOrderModel(Config.from_dict(tiny_config)).generator  # 2 down blocks
    with pytest.raises(FommError, match="num_down_blocks: 0"):
        identity_init(gen)


def test_calibrate_norms_sets_batch_statistics_and_leaves_other_buffers(tiny_config):
    torch.manual_seed(0)
    model = FirstOrderModel(Config.from_dict(_full_res(tiny_config))).train()
    gen, kp = model.generator, model.kp_detector
    norms = generator_norms(gen)
    dense = set(map(id, gen.dense_motion_network.modules()))
    assert norms and gen.first.norm in norms and not any(id(n) in dense for n in norms)
    seen = {}
    hook = gen.first.norm.register_forward_hook(lambda m, i, o: seen.setdefault("x", i[0].detach().clone()))
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    src, drv = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    calibrate_norms(model, norms, lambda: gen(src, kp_source=kp(src), kp_driving=kp(drv)))
    hook.remove()
    torch.testing.assert_close(gen.first.norm.running_mean, seen["x"].mean(dim=(0, 2, 3)))
    torch.testing.assert_close(gen.first.norm.running_var, seen["x"].var(dim=(0, 2, 3), unbiased=True))
    assert all(not n.training for n in norms) and kp.training and gen.dense_motion_network.training
    own = {f"generator.{name}" for name, m in gen.named_modules() if m in norms}
    after = model.state_dict()
    for key, value in before.items():
        changed = not torch.equal(value, after[key])
        assert changed == (key.rsplit(".", 1)[0] in own), key


@pytest.mark.slow
def test_frozen_norms_stay_fixed_and_resume_is_bitwise(tmp_path, tiny_config, tiny_data):
    """A run with both options: the generator's statistics are those of step 1 for the whole run,
    the dense motion network's keep moving, and 2 steps + resume to 4 == 4 steps straight."""
    cfg = _full_res(tiny_config)
    cfg["train_params"].update(generator_init="identity", generator_batchnorm="frozen")
    a = train(cfg, data=tiny_data, out=tmp_path / "a", max_steps=4, checkpoint_every=1, keep=10, **QUIET)
    train(cfg, data=tiny_data, out=tmp_path / "b", max_steps=2, checkpoint_every=2, **QUIET)
    b = train(None, out=tmp_path / "b", resume=True, max_steps=4, checkpoint_every=2, **QUIET)
    s1 = read_checkpoint(tmp_path / "a" / "checkpoints" / "step-00000001.pt")["generator"]
    s4, sb = read_checkpoint(a.last_checkpoint)["generator"], read_checkpoint(b.last_checkpoint)["generator"]
    assert torch.equal(s1["first.norm.running_mean"], s4["first.norm.running_mean"])
    assert torch.equal(s1["bottleneck.r0.norm1.running_var"], s4["bottleneck.r0.norm1.running_var"])
    dense = [k for k in s1 if k.startswith("dense_motion_network") and k.endswith("running_mean")]
    assert dense and any(not torch.equal(s1[k], s4[k]) for k in dense)
    assert all(torch.equal(s4[k], sb[k]) for k in s4)
    stored = read_checkpoint(a.last_checkpoint)["config"]["train_params"]
    assert stored["generator_init"] == "identity" and stored["generator_batchnorm"] == "frozen"


def test_options_round_trip_and_are_checked(tmp_path, tiny_config, tiny_data):
    cfg = Config.from_dict(tiny_config)
    assert "generator_init" not in cfg.to_dict()["train_params"]  # defaults are not written
    assert (cfg.train_params.generator_init, cfg.train_params.generator_batchnorm) == ("default", "batch")
    bad = copy.deepcopy(tiny_config)
    bad["train_params"]["generator_batchnorm"] = "sync"
    with pytest.raises(FommError, match="generator_batchnorm"):
        train(bad, data=tiny_data, out=tmp_path / "r1", max_steps=1, **QUIET)
    bad["train_params"].update(generator_batchnorm="frozen", generator_init="identity")  # 2 down blocks
    with pytest.raises(FommError, match="num_down_blocks"):
        train(bad, data=tiny_data, out=tmp_path / "r2", max_steps=1, **QUIET)


@pytest.mark.slow
def test_init_from_copies_matching_tensors_and_keeps_their_statistics(tmp_path, tiny_config, tiny_data):
    """--init-from: a new run (other dense-motion resolution, so some shapes differ) starts from the
    matching tensors of another run, frozen statistics included, with fresh optimizers."""
    cfg = _full_res(tiny_config)
    cfg["train_params"].update(generator_init="identity", generator_batchnorm="frozen")
    first = train(cfg, data=tiny_data, out=tmp_path / "a", max_steps=2, checkpoint_every=0, **QUIET)
    src = read_checkpoint(first.last_checkpoint)
    cfg2 = copy.deepcopy(cfg)
    cfg2["model_params"]["generator_params"]["dense_motion_params"]["scale_factor"] = 1
    cfg2["model_params"]["align_corners"] = True
    seen = {}
    from fomm.training.trainer import Trainer, TrainOptions

    trainer = Trainer(
        cfg2,
        TrainOptions(
            out=tmp_path / "b",
            data=tiny_data,
            max_steps=1,
            checkpoint_every=0,
            init_from=first.last_checkpoint,
            **QUIET,
        ),
    )
    trainer.hooks["after_step"] = lambda t, losses: seen.setdefault("step", t.step)
    trainer.setup()
    gen = trainer.model.generator.state_dict()
    assert torch.equal(gen["first.norm.running_mean"], src["generator"]["first.norm.running_mean"])
    assert torch.equal(gen["final.weight"], src["generator"]["final.weight"])
    assert torch.equal(trainer.model.kp_detector.state_dict()["kp.weight"], src["kp_detector"]["kp.weight"])
    report = trainer.init_report
    assert report["kp_detector"]["loaded"] == report["kp_detector"]["of"]
    assert report["generator"]["unused"] == ["dense_motion_network.down.weight"]  # no down-sampling at scale 1
    assert trainer.norms_calibrated and not trainer.optimizers["generator"].state
    with pytest.raises(FommError, match="not found"):
        train(cfg2, data=tiny_data, out=tmp_path / "c", max_steps=1, init_from=tmp_path / "nope.pt", **QUIET)
