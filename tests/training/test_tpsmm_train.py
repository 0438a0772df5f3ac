"""``fomm train`` with a TPSMM config on tiny ``fomm synth`` data: the objective's terms and
schedules, exact resume, and the AVD stage."""

from __future__ import annotations

import copy
import csv

import pytest
import torch
import yaml

from fomm.cli import main
from fomm.models.checkpoint import load_model, read_checkpoint
from fomm.models.tpsmm.config import load_tpsmm_preset, resolve_tpsmm_config
from fomm.testing import TINY_TPSMM, random_tpsmm_model
from fomm.training.tpsmm.losses import TpsmmObjective, dropout_probability
from fomm.training.tpsmm.records import CsvLog, loss_columns


def tiny_config(**train) -> dict:
    cfg = copy.deepcopy(TINY_TPSMM)
    weights = {"perceptual": [0, 0, 0, 0, 0], "equivariance_value": 10, "warp_loss": 10, "bg": 10, "pixel": 1}
    cfg["train_params"].update({"loss_weights": weights, "dropout_epoch": 2, "epoch_milestones": [1], **train})
    return cfg


def test_dropout_schedule_of_the_vox_preset():
    tp = load_tpsmm_preset("tpsmm-vox-256").train_params  # startp 0.1, maxp 0.3, 10 epochs, until 35
    assert [dropout_probability(e, tp) for e in (0, 5, 10, 34, 35)] == pytest.approx([0.1, 0.25, 0.3, 0.3, None])


def test_objective_terms_and_the_background_start():
    model = random_tpsmm_model().train()
    cfg = resolve_tpsmm_config(tiny_config(bg_start=1))
    objective = TpsmmObjective(model, cfg.train_params, vgg=None, generator=torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(1)
    x = {"source": torch.rand(2, 3, 64, 64, generator=gen), "driving": torch.rand(2, 3, 64, 64, generator=gen)}
    before, _ = objective(x, epoch=0)
    after, generated = objective(x, epoch=1)
    assert set(before) == {"pixel", "equivariance_value", "warp_loss"}  # no background loss before bg_start
    assert set(after) == set(before) | {"bg"}
    assert all(torch.isfinite(v) and v >= 0 for v in after.values())
    sum(after.values()).backward()
    assert model.dense_motion_network.maps.weight.grad.abs().sum() > 0
    assert len(generated["warped_encoder_maps"]) == 4


def test_log_columns_hold_the_terms_that_start_later(tmp_path):
    """vox-256's background loss starts at epoch 10: log.csv has its column from the first row on."""
    assert loss_columns(load_tpsmm_preset("tpsmm-vox-256"), "main") == [
        "perceptual",
        "equivariance_value",
        "warp_loss",
        "bg",
    ]
    assert loss_columns(load_tpsmm_preset("tpsmm-mgif-256"), "main")[-1] == "warp_loss"  # no background model
    log = CsvLog(tmp_path / "log.csv", loss_columns(resolve_tpsmm_config(tiny_config(bg_start=1)), "main"))
    log.write(1, 0, {"pixel": 0.5, "equivariance_value": 1.0, "warp_loss": 2.0})
    log.write(2, 1, {"pixel": 0.25, "equivariance_value": 1.0, "warp_loss": 2.0, "bg": 0.125})
    with (tmp_path / "log.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["step", "epoch", "seconds", "pixel", "equivariance_value", "warp_loss", "bg"]
    assert (rows[0]["bg"], rows[1]["bg"], rows[1]["pixel"]) == ("", "0.125", "0.25")


def test_fomm_only_flags_are_said_in_one_warning_line(tmp_path, capsys):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny_config()))
    argv = ["train", "--config", str(tmp_path / "tiny.yaml"), "--out", str(tmp_path / "run"), "--quiet"]
    argv += ["--data", str(tmp_path / "none"), "--lr-scale", "2", "--memory-format", "channels_last"]
    assert main([*argv, "--compile", "--vis-every", "5", "--precision", "bf16"]) == 2  # no data: one error line
    err = capsys.readouterr().err
    assert "fomm: warning: --lr-scale, --memory-format: not used by Thin-Plate Spline Motion Model runs" in err
    assert err.count("warning") == 1 and "--compile" not in err and "--precision" not in err
    assert not (tmp_path / "run").exists()  # a run that failed during setup leaves no folder


def train(data, out, *extra) -> int:
    args = ["train", "--data", str(data), "--out", str(out), "--batch-size", "2", "--log-every", "1", "--quiet"]
    if "--resume" not in extra and "--precision" not in extra:
        args += ["--precision", "fp32"]  # exact numbers whatever fomm train's default is
    return main([*args, *extra])


@pytest.mark.slow
def test_training_resumes_exactly_and_trains_the_avd_network(tpsmm_data, tmp_path):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny_config()))
    config = ["--config", str(tmp_path / "tiny.yaml")]
    assert train(tpsmm_data, tmp_path / "straight", *config, "--max-steps", "3") == 0
    assert train(tpsmm_data, tmp_path / "halves", *config, "--max-steps", "2") == 0
    assert train(tpsmm_data, tmp_path / "halves", "--resume", "--max-steps", "3") == 0  # crosses an epoch end
    a = read_checkpoint(tmp_path / "straight" / "checkpoints" / "step-00000003.pt")
    b = read_checkpoint(tmp_path / "halves" / "checkpoints" / "step-00000003.pt")
    assert a["epoch"] == b["epoch"] == 1
    for part in ("kp_detector", "dense_motion_network", "inpainting_network", "bg_predictor"):
        for key, tensor in a[part].items():
            assert torch.equal(tensor, b[part][key]), f"{part}.{key}"
    trained = tmp_path / "straight" / "checkpoints" / "best.pt"
    assert not load_model(trained).has_avd
    assert train(tpsmm_data, tmp_path / "avd", "--stage", "avd", "--init-from", str(trained), "--max-steps", "2") == 0
    model = load_model(tmp_path / "avd" / "checkpoints" / "best.pt")
    assert model.has_avd
    assert (tmp_path / "avd" / "log-avd.csv").read_text().startswith("step,epoch,seconds,rec_kp")


def test_avd_stage_needs_a_tpsmm_checkpoint(tpsmm_data, tmp_path, capsys):
    from fomm.testing import random_checkpoint

    fomm_ckpt = random_checkpoint(tmp_path / "fomm.pth.tar")
    assert train(tpsmm_data, tmp_path / "a", "--stage", "avd", "--init-from", str(fomm_ckpt)) != 0
    err = capsys.readouterr().err.strip()
    assert "is not a Thin-Plate Spline Motion Model checkpoint" in err and len(err.splitlines()) == 1
    assert train(tpsmm_data, tmp_path / "b", "--stage", "avd") != 0
    assert "pass --init-from CKPT" in capsys.readouterr().err
