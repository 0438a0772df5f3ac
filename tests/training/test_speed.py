"""Training speed settings (fomm.training.speed) change the speed, not the objective: the optimised
step gives the same losses and gradients as the straightforward one, and bfloat16 is chosen only
where the CPU computes it natively."""

from __future__ import annotations

import json

import pytest
import torch

from fomm.config import Config
from fomm.errors import FommError
from fomm.models.first_order_model import FirstOrderModel
from fomm.training import speed as S
from fomm.training.losses import GeneratorFullModel, Transform
from fomm.training.trainer import Trainer, TrainOptions
from fomm.training.vgg import random_vgg19

QUIET = dict(
    progress=False, threads=1, tensorboard=False, vis_every=0, checkpoint_every=0, log_every=1, precision="fp32"
)
REL = 1e-5  # float32: relative error allowed on a loss value and on a gradient's norm


# -- selection logic ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "flags, precision, device, expected",
    [
        ({"avx2", "fma"}, "auto", "cpu", None),  # AMD/Intel AVX2 only: bf16 would be emulated
        ({"avx2", "avx512f"}, "auto", "cpu", None),  # AVX-512 without BF16
        ({"avx2", "avx512f", "avx512_bf16"}, "auto", "cpu", torch.bfloat16),  # Cooper Lake, Zen 4/5
        ({"avx2", "avx512f", "amx_tile", "amx_bf16"}, "auto", "cpu", torch.bfloat16),  # Sapphire Rapids
        ({"avx512_bf16", "amx_bf16"}, "fp32", "cpu", None),  # fp32 is never overridden
        ({"avx2"}, "bf16", "cpu", torch.bfloat16),  # asked for explicitly
        ({"avx512_bf16"}, "auto", "cuda", None),  # CUDA: the amp option decides
    ],
)
def test_autocast_dtype_selection(flags, precision, device, expected):
    assert S.autocast_dtype(precision, device, flags) is expected


def test_precision_of_new_and_resumed_runs():
    """A new run takes --precision or the default; a resumed run keeps its own (fp32 when its
    checkpoint predates the record) unless --precision names another, which a note says."""
    assert S.DEFAULT_PRECISION == "auto" and S.TPSMM_DEFAULT_PRECISION == "fp32"
    assert S.resolve_precision(None, None, resuming=False) == ("auto", None)
    assert S.resolve_precision(None, None, resuming=False, default="fp32") == ("fp32", None)
    assert S.resolve_precision("fp32", None, resuming=False) == ("fp32", None)
    assert S.resolve_precision(None, "bf16", resuming=True) == ("bf16", None)
    assert S.resolve_precision("bf16", "bf16", resuming=True) == ("bf16", None)
    assert S.resolve_precision(None, None, resuming=True) == ("fp32", None)  # before the record: fp32
    precision, note = S.resolve_precision("auto", "fp32", resuming=True)
    assert precision == "auto" and note == "note: --precision auto on --resume; the run trained with fp32 until now"
    with pytest.raises(FommError, match="--precision is 'half'; use one of fp32, bf16, auto"):
        S.resolve_precision("half", None, resuming=False)


def test_memory_format_selection_and_bad_values(tmp_path):
    assert S.use_channels_last("auto", "cpu") and not S.use_channels_last("auto", "cuda")
    assert S.use_channels_last("channels_last", "cuda") and not S.use_channels_last("contiguous", "cpu")
    with pytest.raises(FommError, match="--precision"):
        TrainOptions(out=tmp_path / "r", precision="half").check()
    with pytest.raises(FommError, match="--memory-format"):
        TrainOptions(out=tmp_path / "r", memory_format="nhwc").check()
    x = S.to_layout({"source": torch.rand(2, 3, 4, 4), "name": ["a", "b"]}, True)
    assert x["source"].is_contiguous(memory_format=torch.channels_last) and x["name"] == ["a", "b"]


# -- same objective -------------------------------------------------------------------------------
def _step(cfg: Config, optimised: bool, dtype=torch.float32) -> tuple[dict, dict]:
    """Loss values and parameter gradients of one generator step, straightforward or optimised."""
    torch.manual_seed(0)
    model = FirstOrderModel(cfg).train()
    vgg = random_vgg19()
    gen = torch.Generator().manual_seed(1)
    h, w = cfg.frame_shape
    x = {"source": torch.rand(2, 3, h, w, generator=gen), "driving": torch.rand(2, 3, h, w, generator=gen)}
    t = Transform(2, sigma_affine=0.05, sigma_tps=0.005, points_tps=5, generator=gen)
    transform = Transform.from_params(t.theta.to(dtype), t.control_params.to(dtype), t.control_points.to(dtype))
    full = GeneratorFullModel(model.kp_detector, model.generator, None, cfg.train_params, vgg=vgg).to(dtype)
    x = {k: v.to(dtype) for k, v in x.items()}
    if optimised:
        S.prepare_model(model, channels_last=True)
        vgg.to(memory_format=torch.channels_last)
        x = S.to_layout(x, True)
        assert model.generator.final.weight.is_contiguous(memory_format=torch.channels_last)
    losses, _ = full(x, transform=transform)
    sum(v.mean() for v in losses.values()).backward()
    parts = ("generator", "kp_detector")
    grads = {f"{part}.{n}": p.grad for part in parts for n, p in getattr(model, part).named_parameters()}
    return {k: float(v.detach()) for k, v in losses.items()}, grads


@pytest.fixture
def step_config(tiny_config) -> Config:
    cfg = Config.from_dict(tiny_config)
    cfg.train_params.loss_weights.generator_gan = 0
    cfg.train_params.loss_weights.pixel = 100
    cfg.train_params.loss_weights.perceptual = [10, 10, 0, 0, 0]
    return cfg


def test_optimised_step_gives_the_same_losses_and_gradients_float64(step_config):
    """The layout change (inputs, keypoint detector, generator and VGG19 NHWC) does not change the
    math: in float64 every loss term and every parameter gradient equals the plain step's (1e-10)."""
    plain_losses, plain_grads = _step(step_config, optimised=False, dtype=torch.float64)
    fast_losses, fast_grads = _step(step_config, optimised=True, dtype=torch.float64)
    assert set(plain_losses) == {"perceptual", "pixel", "equivariance_value", "equivariance_jacobian"}
    assert fast_losses == pytest.approx(plain_losses, rel=1e-12, abs=0)
    assert plain_grads.keys() == fast_grads.keys()
    # a conv bias before BatchNorm has a true gradient of 0: its computed one is rounding noise,
    # so the floor is 1e-10 of the whole gradient's norm
    floor = 1e-10 * float(torch.cat([g.flatten() for g in plain_grads.values()]).norm())
    for name, g in plain_grads.items():
        err = float((fast_grads[name] - g).norm())
        assert err <= 1e-10 * float(g.norm()) + floor, (name, err, float(g.norm()))


def test_optimised_step_float32_losses_and_gradients(step_config):
    """With the float32 oneDNN kernels of both layouts: every loss term within 1e-5 relative, and the
    whole gradient within 1e-3 relative. (Gradients of a ReLU / |x| network are piecewise constant:
    where float32 rounding moves one activation across a kink, that unit's contribution switches,
    which is why the exact check is the float64 one above.)"""
    plain_losses, plain_grads = _step(step_config, optimised=False)
    fast_losses, fast_grads = _step(step_config, optimised=True)
    assert fast_losses == pytest.approx(plain_losses, rel=REL, abs=0)
    for part in ("generator", "kp_detector"):
        a = torch.cat([g.flatten() for n, g in plain_grads.items() if n.startswith(part)])
        b = torch.cat([fast_grads[n].flatten() for n in plain_grads if n.startswith(part)])
        assert float((a - b).norm()) <= 1e-3 * float(a.norm()), part


# -- the trainer applies the settings -------------------------------------------------------------
def _first_step(tiny_config, tiny_data, out, **options) -> tuple[dict, dict]:
    """Train one step; returns its losses and what a hook saw during the generator's forward."""
    seen: dict = {}

    def after_step(trainer, values):
        seen["trainer"] = trainer

    opts = TrainOptions(out=out, data=tiny_data, **{"max_steps": 1, **QUIET, **options})
    trainer = Trainer(tiny_config, opts)
    trainer.hooks["after_step"] = after_step
    original = GeneratorFullModel.forward

    def spy(self, x, transform=None):
        seen["autocast"] = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu")
        seen["source_nhwc"] = x["source"].is_contiguous(memory_format=torch.channels_last)
        return original(self, x, transform)

    GeneratorFullModel.forward = spy
    try:
        result = trainer.run()
    finally:
        GeneratorFullModel.forward = original
    return result.losses, seen


@pytest.mark.slow
def test_trainer_memory_format_and_precision(tmp_path, tiny_config, tiny_data):
    """contiguous, channels_last and bf16 runs start from the same weights and batch: the first
    step's losses agree (1e-5; bf16 within 15%), and each run used what it was asked for."""
    base, seen_base = _first_step(tiny_config, tiny_data, tmp_path / "a", memory_format="contiguous")
    fast, seen_fast = _first_step(tiny_config, tiny_data, tmp_path / "b", memory_format="channels_last")
    half, seen_half = _first_step(tiny_config, tiny_data, tmp_path / "c", precision="bf16")
    assert seen_base["autocast"] is False and not seen_base["source_nhwc"]
    assert seen_fast["autocast"] is False and seen_fast["source_nhwc"]
    assert seen_half["autocast"] is torch.bfloat16 and seen_half["source_nhwc"]  # auto layout on the CPU
    weight = seen_fast["trainer"].model.generator.final.weight
    assert weight.is_contiguous(memory_format=torch.channels_last)
    assert fast == pytest.approx(base, rel=REL, abs=1e-7)
    assert half == pytest.approx(base, rel=0.15, abs=1e-3)  # 8 mantissa bits; the GAN terms move most


@pytest.mark.slow
def test_resume_keeps_the_runs_precision(tmp_path, tiny_config, tiny_data):
    """A bf16 run resumed without --precision continues in bf16 (the checkpoint records it), and
    run.json names both the option and the autocast dtype it gave."""
    out = tmp_path / "run"
    _first_step(tiny_config, tiny_data, out, precision="bf16", checkpoint_every=1)
    assert torch.load(out / "checkpoints" / "best.pt", weights_only=True)["train_meta"]["precision"] == "bf16"
    _, seen = _first_step(tiny_config, None, out, resume=True, max_steps=2, precision=None)
    assert seen["autocast"] is torch.bfloat16 and seen["trainer"].options.precision == "bf16"
    run = json.loads((out / "run.json").read_text())
    assert run["options"]["precision"] == "bf16" and run["cpu_autocast"] == "bfloat16"


# -- the allocator ------------------------------------------------------------------------------
ALLOCATOR_RUNS = """
import json, os, sys
from pathlib import Path
from fomm import cpu
from fomm.training.trainer import Trainer, TrainOptions
cfg, data, out = json.loads(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
quiet = dict(progress=False, threads=1, tensorboard=False, vis_every=0, checkpoint_every=0, log_every=1, precision="fp32")
results = {}
for mode in ("default", "tuned"):  # glibc's defaults first: nothing tuned before them in this process
    os.environ["FOMM_ALLOCATOR"] = mode
    cpu._allocator_state = None
    losses = Trainer(cfg, TrainOptions(out=out / mode, data=data, max_steps=1, **quiet)).run().losses
    run = json.loads((out / mode / "run.json").read_text())
    results[mode] = {"losses": {k: float(v).hex() for k, v in losses.items()}, "allocator": run["cpu_allocator"]}
print(json.dumps(results))
"""


@pytest.mark.slow
def test_tuned_allocator_gives_bitwise_identical_losses(tmp_path, tiny_config, tiny_data):
    """One training step with glibc's default allocator and with fomm's tuned one (in a fresh
    process: mallopt is process-wide) gives the same losses bit for bit; run.json records which."""
    import json
    import os
    import subprocess
    import sys

    from fomm.cpu import glibc_version

    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    args = [sys.executable, "-c", ALLOCATOR_RUNS, json.dumps(tiny_config), str(tiny_data), str(tmp_path)]
    out = json.loads(subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout)
    default, tuned = out["default"], out["tuned"]
    assert default["losses"] == tuned["losses"] and len(default["losses"]) >= 4
    assert default["allocator"] == {"tuned": False, "reason": "FOMM_ALLOCATOR=default"}
    assert tuned["allocator"]["tuned"] is (glibc_version() is not None)


def test_fused_adam_on_the_cpu_gives_adams_update(tiny_config):
    """The optimizers use Adam's fused kernel on the CPU (faster, fomm.training.model_setup) and
    move the weights as the plain Adam does, to float32 rounding."""
    from fomm.training.model_setup import optimizers

    cfg = Config.from_dict(tiny_config)
    torch.manual_seed(0)
    fused_model, plain_model = FirstOrderModel(cfg), FirstOrderModel(cfg)
    plain_model.load_state_dict(fused_model.state_dict())
    opts, _ = optimizers(fused_model, cfg)
    assert all(o.param_groups[0]["fused"] for o in opts.values())
    lr = opts["generator"].param_groups[0]["lr"]
    plain = torch.optim.Adam(plain_model.generator.parameters(), lr=lr, betas=(0.5, 0.999))
    for _ in range(3):
        for model in (fused_model, plain_model):
            for p in model.generator.parameters():
                p.grad = torch.sin(p.detach() * 3 + 1)  # the same gradients for both
        opts["generator"].step()
        plain.step()
    for a, b in zip(fused_model.generator.parameters(), plain_model.generator.parameters()):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)
