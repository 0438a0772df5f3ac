"""``fomm train --precision`` for TPSMM runs: bf16 autocast keeps the geometry fp32 and the losses
close to fp32's; ``auto`` follows the CPU flags; the run records its precision and a resume keeps it."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
import yaml
from test_tpsmm_train import tiny_config, train  # noqa: I001 - tests/training/test_tpsmm_train.py

from fomm.cli import build_parser
from fomm.models.checkpoint import read_checkpoint
from fomm.models.tpsmm.config import resolve_tpsmm_config
from fomm.testing import random_tpsmm_model
from fomm.training import speed as S
from fomm.training.options import options_from_args
from fomm.training.tpsmm.losses import TpsmmObjective
from fomm.training.tpsmm.trainer import TpsmmTrainer, TpsmmTrainOptions

PAIR = ("source", "driving")
PARTS = ("kp_detector", "dense_motion_network", "inpainting_network")


def objective_step(bf16: bool) -> tuple[dict, dict, dict]:
    """One objective pass and backward of the seeded tiny model on a seeded smooth batch (epoch 0:
    contribution-map dropout on): the losses, the outputs and each part's whole gradient."""
    model = random_tpsmm_model().train()
    tp = resolve_tpsmm_config(tiny_config()).train_params
    objective = TpsmmObjective(model, tp, None, torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(1)
    # smooth frames (like video): on pixel noise the flow's gradient changes with any rounding
    x = {
        k: F.interpolate(torch.rand(2, 3, 8, 8, generator=gen), size=(64, 64), mode="bilinear", align_corners=True)
        for k in PAIR
    }
    torch.manual_seed(3)  # the dropout draws
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        losses, generated = objective(x, epoch=0)
    sum(v.float() for v in losses.values()).backward()
    grads = {p: torch.cat([w.grad.flatten() for w in getattr(model, p).parameters()]) for p in PARTS}
    return {k: float(v.detach()) for k, v in losses.items()}, generated, grads


def test_bf16_losses_are_close_to_fp32_and_the_geometry_stays_fp32():
    exact, _, grads32 = objective_step(bf16=False)
    fast, generated, grads16 = objective_step(bf16=True)
    assert exact == pytest.approx({"pixel": 0.1965, "equivariance_value": 2.344, "warp_loss": 9.167, "bg": 0}, abs=2e-3)
    assert fast == pytest.approx(exact, rel=0.03, abs=1e-3)
    # keypoints, flow, masks and prediction come back fp32 under autocast (the keypoint head runs fp32)
    for key in ("prediction", "deformed", "contribution_maps"):
        assert generated[key].dtype == torch.float32, key
    assert generated["kp_driving"]["fg_kp"].dtype == generated["occlusion_map"][-1].dtype == torch.float32
    # the same descent direction: as close as fp32 with its weights rounded to bf16's 8 bits gives
    # (gradients of this random ReLU / grid-sampling model move with any rounding; measured 0.8-0.85)
    for part in PARTS:
        assert float(F.cosine_similarity(grads16[part], grads32[part], dim=0)) > 0.7, part


@pytest.mark.parametrize(
    "flags, expected",
    [({"avx2", "fma"}, None), ({"avx2", "avx512_bf16"}, torch.bfloat16), ({"avx2", "amx_bf16"}, torch.bfloat16)],
)
def test_auto_follows_the_cpu_flags(flags, expected):
    assert S.autocast_dtype("auto", "cpu", flags) is expected
    assert S.autocast_dtype("bf16", "cpu", flags) is torch.bfloat16
    assert S.autocast_dtype("fp32", "cpu", flags) is None


def test_a_new_tpsmm_run_takes_its_own_default_precision(tmp_path):
    """fp32 for TPSMM (no bf16 convergence record yet), while FOMM runs default to auto."""
    argv = ["train", "--config", "tpsmm-vox-256", "--out", str(tmp_path)]
    args = build_parser(argv).parse_args(argv)
    opts = options_from_args(TpsmmTrainOptions, args, progress=False)
    assert opts.precision is None  # not given: TPSMM's default, S.TPSMM_DEFAULT_PRECISION
    assert TpsmmTrainer(tiny_config(), opts).precision == S.TPSMM_DEFAULT_PRECISION == "fp32"


@pytest.mark.slow
def test_a_bf16_run_records_its_precision_and_resume_keeps_it(tpsmm_data, tmp_path, capsys):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny_config()))
    out = tmp_path / "run"
    assert (
        train(tpsmm_data, out, "--config", str(tmp_path / "tiny.yaml"), "--max-steps", "1", "--precision", "bf16") == 0
    )
    info = json.loads((out / "run.json").read_text())
    assert (info["precision"], info["cpu_autocast"], info["status"]) == ("bf16", "bfloat16", "stopped at --max-steps")
    assert train(tpsmm_data, out, "--resume", "--max-steps", "2") == 0  # no --precision: the run's own
    assert "note: --precision" not in capsys.readouterr().err
    assert read_checkpoint(out / "checkpoints" / "step-00000002.pt")["precision"] == "bf16"
    info = json.loads((out / "run.json").read_text())
    assert info["cpu_autocast"] == "bfloat16" and [r["start_step"] for r in info["runs"]] == [0, 1]
    assert train(tpsmm_data, out, "--resume", "--max-steps", "3", "--precision", "fp32") == 0  # named: it changes
    assert "note: --precision fp32 on --resume; the run trained with bf16 until now" in capsys.readouterr().err
    assert read_checkpoint(out / "checkpoints" / "step-00000003.pt")["precision"] == "fp32"
    rows = (out / "log.csv").read_text().splitlines()
    assert rows[0].startswith("step,epoch,seconds,pixel") and len(rows) == 4
    assert all(float(v) == float(v) for v in rows[-1].split(",")[3:])  # finite losses, no NaN
