"""The training loop: learning, exact resume, checkpoints, logs, bad data and the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from fomm import load_model
from fomm.cli import main as cli_main
from fomm.config import Config
from fomm.errors import FommError
from fomm.models.checkpoint import read_checkpoint
from fomm.models.first_order_model import FirstOrderModel
from fomm.testing import moving_square_video, write_frame_folder
from fomm.training import losses as L
from fomm.training.trainer import Trainer, TrainOptions, latest_checkpoint, list_checkpoints, train

QUIET = dict(
    progress=False, threads=1, tensorboard=False, precision="fp32"
)  # numbers must not depend on the CPU's bf16 (the default is auto)


def _states_equal(a: dict, b: dict) -> list[str]:
    return [k for k in a if not torch.equal(a[k], b[k])]


# ------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_tiny_model_overfits_two_videos_64px(tmp_path, tiny_config, synthetic_dataset):
    """On 2 videos at 64x64 the reconstruction L1 on fixed frame pairs falls by at least half."""
    from fomm.data.datasets import FramesDataset

    root = synthetic_dataset("puppet", num_train=2, num_test=0, num_frames=8, size=64, seed=0, num_cross_pairs=0)
    cfg = tiny_config
    cfg["dataset_params"].update(frame_shape=[64, 64, 3], augmentation_params={})
    mp = cfg["model_params"]
    mp["kp_detector_params"]["scale_factor"] = 0.25
    mp["generator_params"].update(block_expansion=8, max_features=64)
    mp["generator_params"]["dense_motion_params"]["scale_factor"] = 0.25
    cfg["train_params"].update(num_repeats=4, num_epochs=100, scales=[1, 0.5])
    cfg["train_params"]["loss_weights"].update(
        generator_gan=0, equivariance_value=0, equivariance_jacobian=0, perceptual=[10, 0, 0, 0, 0]
    )
    ds = FramesDataset(root, frame_shape=(64, 64, 3), random_seed=0)
    ds.set_epoch(0)
    items = [ds.get_item(i, r) for i in range(2) for r in range(2)]
    x = {k: torch.from_numpy(np.stack([it[k] for it in items])) for k in ("source", "driving")}

    def l1(model):
        model.train()
        with torch.no_grad():
            out = model.generator(
                x["source"], kp_source=model.kp_detector(x["source"]), kp_driving=model.kp_detector(x["driving"])
            )
        return float((out["prediction"] - x["driving"]).abs().mean())

    torch.manual_seed(0)
    before = l1(FirstOrderModel(Config.from_dict(cfg)))
    result = train(
        cfg,
        data=root,
        out=tmp_path / "run",
        max_steps=40,
        lr_scale=10,
        checkpoint_every=0,
        vis_every=0,
        log_every=0,
        **QUIET,
    )
    after = l1(load_model(result.last_checkpoint))
    assert after <= 0.5 * before, (before, after)


# ------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_resume_continues_bitwise(tmp_path, tiny_config, tiny_data):
    """6 steps straight == 3 steps, stop, resume to 6 (mid-epoch stop, crossing an epoch end and an
    lr milestone, GAN on): identical weights, optimizer and scheduler states, and log."""
    cfg = tiny_config
    cfg["train_params"]["epoch_milestones"] = [1]
    kw = dict(checkpoint_every=2, vis_every=0, log_every=1, **QUIET)
    a = train(cfg, data=tiny_data, out=tmp_path / "a", max_steps=6, **kw)
    train(cfg, data=tiny_data, out=tmp_path / "b", max_steps=3, **kw)
    b = train(None, out=tmp_path / "b", resume=True, max_steps=6, **kw)
    ca, cb = read_checkpoint(a.last_checkpoint), read_checkpoint(b.last_checkpoint)
    assert ca["step"] == cb["step"] == 6 and ca["epoch"] == cb["epoch"] == 1 and cb["epoch_step"] == 2
    for part in ("generator", "kp_detector", "discriminator"):
        assert not _states_equal(ca[part], cb[part]), part
    for opt in ("optimizer_generator", "optimizer_kp_detector", "optimizer_discriminator"):
        sa, sb = ca[opt]["state"], cb[opt]["state"]
        assert sa.keys() == sb.keys()
        for k in sa:
            assert all(torch.equal(sa[k][n], sb[k][n]) for n in sa[k]), opt
        assert ca[opt]["param_groups"][0]["lr"] == cb[opt]["param_groups"][0]["lr"] == pytest.approx(2e-5)
    assert ca["schedulers"] == cb["schedulers"]
    rows_a = list(csv.DictReader(open(tmp_path / "a" / "log.csv")))
    rows_b = list(csv.DictReader(open(tmp_path / "b" / "log.csv")))
    assert [r["step"] for r in rows_b] == [str(i) for i in range(1, 7)]
    for ra, rb in zip(rows_a, rows_b):
        assert {k: v for k, v in ra.items() if k not in ("seconds", "samples_per_s")} == {
            k: v for k, v in rb.items() if k not in ("seconds", "samples_per_s")
        }
    runs = json.loads((tmp_path / "b" / "run.json").read_text())["runs"]
    assert [r["start_step"] for r in runs] == [0, 3] and runs[1]["resumed_from"].endswith("step-00000003.pt")


# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_data):
    import copy

    from training_inputs import TINY

    out = tmp_path_factory.mktemp("run") / "r"
    result = train(
        copy.deepcopy(TINY),
        data=tiny_data,
        out=out,
        max_steps=5,
        checkpoint_every=1,
        vis_every=2,
        log_every=2,
        keep=2,
        progress=False,
        threads=1,
        command=["fomm", "train", "--test"],
    )
    return out, result


@pytest.mark.slow
def test_checkpoints_rotate_and_load_without_config(finished_run, tmp_path):
    out, result = finished_run
    steps = [s for s, _ in list_checkpoints(out)]
    assert steps == [4, 5]
    assert result.best_checkpoint == out / "checkpoints" / "best.pt"
    for path in [p for _, p in list_checkpoints(out)] + [result.best_checkpoint]:
        data = torch.load(path, map_location="cpu", weights_only=True)
        assert {
            "generator",
            "kp_detector",
            "discriminator",
            "config",
            "optimizer_generator",
            "schedulers",
            "epoch",
            "epoch_step",
            "step",
            "rng",
            "loss_window",
            "best_metric",
        } <= set(data)
        rng = data["rng"][0]
        assert isinstance(rng["torch"], torch.Tensor) and isinstance(rng["numpy"]["key"], torch.Tensor)
        assert isinstance(rng["python"]["state"], list) and isinstance(rng["transform"], torch.Tensor)
    model = load_model(result.last_checkpoint)  # no config needed
    assert model.config.frame_shape == (32, 32)
    data = read_checkpoint(result.last_checkpoint)
    assert not _states_equal(model.generator.state_dict(), data["generator"])
    assert data["step"] == 5 and latest_checkpoint(out)[0] == result.last_checkpoint
    # checkpoint_freq 1: the end of epoch 1 (step 4) is kept as epoch-0001.pt, beside the rotation
    kept = sorted(p.name for p in (out / "checkpoints").glob("epoch-*.pt"))
    assert kept == ["epoch-0001.pt"] and read_checkpoint(out / "checkpoints" / kept[0])["step"] == 4

    exported = tmp_path / "orig.pth.tar"
    assert cli_main(["export", str(result.last_checkpoint), "--out", str(exported)]) == 0
    assert cli_main(["export", str(result.last_checkpoint)]) == 2  # no output path
    assert cli_main(["export", str(tmp_path / "missing.pt"), str(tmp_path / "x.pth.tar")]) == 2
    orig = torch.load(exported, map_location="cpu", weights_only=True)
    assert set(orig) == {
        "generator",
        "kp_detector",
        "discriminator",
        "optimizer_generator",
        "optimizer_discriminator",
        "optimizer_kp_detector",
        "epoch",
    }
    again = load_model(exported, config=model.config)
    assert not _states_equal(again.kp_detector.state_dict(), data["kp_detector"])


def test_run_folder_has_logs_images_and_metadata(finished_run):
    out, _ = finished_run
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "stopped at --max-steps" and info["step"] == 5
    assert info["command"] == ["fomm", "train", "--test"] and info["seed"] == 0
    assert info["vgg19"]["pretrained"] is False and "random" in info["vgg19"]["source"]
    assert info["data"]["num_videos"] == 4 and info["data"]["batch_size"] == 2
    assert info["config"]["model_params"]["kp_detector_params"]["block_expansion"] == 4
    assert {"torch", "numpy", "python", "fomm"} <= set(info["versions"])
    rows = list(csv.DictReader(open(out / "log.csv")))
    assert [r["step"] for r in rows] == ["2", "4", "5"]
    assert {
        "perceptual",
        "gen_gan",
        "feature_matching",
        "equivariance_value",
        "equivariance_jacobian",
        "disc_gan",
        "running_loss",
    } <= set(rows[0])
    assert all(np.isfinite(float(r["perceptual"])) for r in rows)
    pngs = sorted(p.name for p in (out / "vis").glob("*.png"))
    assert pngs == ["step-00000002.png", "step-00000004.png", "step-00000005.png"]
    img = cv2.imread(str(out / "vis" / pngs[0]))
    assert img is not None and img.shape[0] == 16 + 2 * 128 and img.shape[1] == 7 * 128  # column names band
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))


def test_existing_run_needs_resume_and_config_must_match(finished_run, tiny_config, tiny_data):
    out, _ = finished_run
    with pytest.raises(FommError, match="--resume"):
        Trainer(tiny_config, TrainOptions(out=out, data=tiny_data, max_steps=6, **QUIET)).setup()
    other = tiny_config
    other["model_params"]["common_params"]["num_kp"] = 7
    with pytest.raises(FommError, match="does not match"):
        Trainer(other, TrainOptions(out=out, resume=True, max_steps=6, **QUIET)).setup()


# ------------------------------------------------------------------------------------------------
def _videos(root: Path, count: int, frames: int, size: int) -> Path:
    for i in range(count):
        write_frame_folder(root / "train" / f"v{i}", moving_square_video(size, frames, i))
    return root


@pytest.mark.parametrize("case", ["empty", "one-frame", "wrong-size", "missing"])
def test_bad_data_stops_with_fomm_error(tmp_path, tiny_config, case):
    root = tmp_path / "data"
    if case == "empty":
        (root / "train").mkdir(parents=True)
        match = "no training videos"
    elif case == "one-frame":
        _videos(root, 3, 1, 32)
        match = "at least 2 frames"
    elif case == "wrong-size":
        _videos(root, 3, 4, 48)
        match = "--allow-resize"
    else:
        match = "does not exist"
    with pytest.raises(FommError, match=match):
        train(tiny_config, data=root, out=tmp_path / "run", max_steps=1, **QUIET)
    assert not list_checkpoints(tmp_path / "run")


def test_wrong_size_message_says_width_x_height(tmp_path, tiny_config):
    """Sizes read width x height, as fomm animate prints them: 48 wide, 32 high is 48x32."""
    for i in range(2):
        write_frame_folder(tmp_path / "data" / "train" / f"v{i}", moving_square_video(48, 4, i)[:, :32])
    with pytest.raises(FommError, match=r"frame_shape 32x32 \(width x height; e\.g\. v0: 48x32\)"):
        train(tiny_config, data=tmp_path / "data", out=tmp_path / "run", max_steps=1, **QUIET)


def test_raw_non_square_videos_point_to_fomm_prepare(tmp_path, tiny_config):
    root = tmp_path / "data"
    for i in range(2):
        write_frame_folder(root / "train" / f"v{i}", moving_square_video(48, 4, i)[:, :, :32])  # 48 high, 32 wide
    with pytest.raises(FommError, match=r"fomm prepare .* --size 32 .*--allow-resize would squash"):
        train(tiny_config, data=root, out=tmp_path / "run", max_steps=1, **QUIET)


def test_a_folder_without_splits_says_it_is_split_80_20(tmp_path, tiny_config, capsys):
    root = tmp_path / "data"
    for i in range(5):
        write_frame_folder(root / f"v{i}", moving_square_video(32, 4, i))
    result = train(tiny_config, data=root, out=tmp_path / "run", max_steps=1, vis_every=0, **QUIET)
    assert result.step == 1
    assert "has no train/ and test/ folders: its videos are split 80/20" in capsys.readouterr().err


def test_wrong_size_is_accepted_with_allow_resize(tmp_path, tiny_config):
    root = _videos(tmp_path / "data", 2, 4, 48)
    result = train(tiny_config, data=root, out=tmp_path / "run", max_steps=1, allow_resize=True, vis_every=0, **QUIET)
    assert result.step == 1


def test_dataset_smaller_than_a_batch(tmp_path, tiny_config):
    root = _videos(tmp_path / "data", 1, 4, 32)
    with pytest.raises(FommError, match="fewer than one batch"):
        train(tiny_config, data=root, out=tmp_path / "run", max_steps=1, batch_size=4, num_repeats=1, **QUIET)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, tiny_config, tiny_data, monkeypatch):
    forward = L.GeneratorFullModel.forward
    calls = {"n": 0}

    def poisoned(self, x, transform=None):
        calls["n"] += 1
        losses, generated = forward(self, x, transform)
        if calls["n"] >= 4:
            losses["perceptual"] = losses["perceptual"] * float("nan")
        return losses, generated

    monkeypatch.setattr(L.GeneratorFullModel, "forward", poisoned)
    out = tmp_path / "run"
    with pytest.raises(FommError, match=r"NaN.*step 4.*step-00000002\.pt.*--resume"):
        train(tiny_config, data=tiny_data, out=out, max_steps=10, checkpoint_every=2, vis_every=0, **QUIET)
    assert [s for s, _ in list_checkpoints(out)] == [2]
    path, data = latest_checkpoint(out)
    assert data["step"] == 2 and all(torch.isfinite(v).all() for v in data["generator"].values())
    status = json.loads((out / "run.json").read_text())["status"]
    assert status.startswith("error: the generator loss") and "NaN" in status


def test_config_checks(tmp_path, tiny_config, tiny_data):
    bad = tiny_config
    bad["train_params"]["scales"] = [1, 0.25]  # 8 px pyramid level, relu3_1 needs 4: fine; make relu5 needed
    bad["train_params"]["loss_weights"]["perceptual"] = [1, 1, 1, 1, 1]
    with pytest.raises(FommError, match="perceptual"):
        train(bad, data=tiny_data, out=tmp_path / "r1", max_steps=1, **QUIET)
    bad["train_params"]["loss_weights"]["perceptual"] = [1, 0, 0, 0, 0]
    bad["model_params"]["discriminator_params"]["num_blocks"] = 4
    with pytest.raises(FommError, match="discriminator"):
        train(bad, data=tiny_data, out=tmp_path / "r2", max_steps=1, **QUIET)
    bad["model_params"]["discriminator_params"]["num_blocks"] = 3
    bad["model_params"]["kp_detector_params"]["num_blocks"] = 5
    with pytest.raises(FommError, match="hourglass blocks reaches 1x1"):
        train(bad, data=tiny_data, out=tmp_path / "r3", max_steps=1, **QUIET)


# ------------------------------------------------------------------------------------------------
def test_cli_train_help_and_errors(tmp_path, tiny_data, capsys):
    with pytest.raises(SystemExit):
        cli_main(["train", "--help"])
    text = capsys.readouterr().out
    assert "fomm train --config puppet-64" in text and "torchrun" in text and "--resume" in text
    assert (
        cli_main(["train", "--config", "tiny-64", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "run")])
        == 2
    )
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_train_runs_a_preset(tmp_path, tiny_config, tiny_data):
    import yaml

    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(yaml.safe_dump(tiny_config))
    out = tmp_path / "run"
    args = [
        "train",
        "--config",
        str(cfg_path),
        "--data",
        str(tiny_data),
        "--out",
        str(out),
        "--max-steps",
        "2",
        "--quiet",
        "--threads",
        "1",
        "--no-tensorboard",
        "--vis-every",
        "0",
        "--seed",
        "3",
    ]
    assert cli_main(args) == 0
    assert (
        cli_main(
            [
                "train",
                "--out",
                str(out),
                "--resume",
                "--max-steps",
                "3",
                "--quiet",
                "--threads",
                "1",
                "--vis-every",
                "0",
            ]
        )
        == 0
    )  # no --config, no --seed: the run's own are kept
    info = json.loads((out / "run.json").read_text())
    assert info["step"] == 3 and len(info["runs"]) == 2 and info["seed"] == 3


@pytest.mark.parametrize("preset", ["puppet-64", "face-64"])
def test_presets_build_and_fit_their_frames(preset):
    from fomm.config import load_preset
    from fomm.training.trainer import Trainer as T

    cfg = load_preset(preset)
    assert cfg.frame_shape == (64, 64)
    t = T.__new__(T)
    t.cfg = cfg
    T._check_model_config(t)
    model = FirstOrderModel(cfg)
    kp = model.kp_detector(torch.rand(1, 3, 64, 64))
    assert kp["value"].shape == (1, cfg.model_params.common_params.num_kp, 2)


def test_run_json_follows_the_checkpoints_during_the_run(tmp_path, tiny_config, tiny_data):
    """run.json is rewritten at every checkpoint: someone watching a long run sees its step, best and
    last checkpoint without waiting for the end."""
    seen = []

    def after_step(trainer, losses):
        seen.append(json.loads((trainer.run_dir / "run.json").read_text()))

    opts = TrainOptions(
        out=tmp_path / "run", data=tiny_data, max_steps=4, checkpoint_every=2, vis_every=0, log_every=0, **QUIET
    )
    trainer = Trainer(tiny_config, opts)
    trainer.hooks["after_step"] = after_step
    trainer.run()
    assert [s["step"] for s in seen] == [0, 2, 2, 4]
    assert seen[1]["status"] == "running" and seen[1]["last_checkpoint"].endswith("step-00000002.pt")
    assert seen[1]["best"]["step"] == 2 and "ended" not in seen[1]["runs"][-1]
    final = json.loads((tmp_path / "run" / "run.json").read_text())
    assert final["status"] == "stopped at --max-steps" and final["runs"][-1]["end_step"] == 4


@pytest.mark.slow
def test_last_picture_shows_the_batch_that_made_its_prediction(tmp_path, tiny_config, tiny_data):
    """--max-steps 3 --vis-every 2 (mid-epoch: 4 steps per epoch here): the picture written after the
    loop (step 3) shows step 3's batch beside step 3's prediction, not the next batch the loader had
    already handed out when the loop stopped (issue #27)."""
    from fomm.training.visualize import make_visualization

    trained = []

    def after_step(trainer, losses):
        trained.append((trainer.last_batch, trainer.last_generated))

    opts = TrainOptions(out=tmp_path / "run", data=tiny_data, max_steps=3, vis_every=2, log_every=0, **QUIET)
    trainer = Trainer(tiny_config, opts)
    trainer.hooks["after_step"] = after_step
    trainer.run()
    vis = tmp_path / "run" / "vis"
    assert sorted(p.name for p in vis.glob("*.png")) == ["step-00000002.png", "step-00000003.png"]
    kp_size = max(2, int(tiny_config["visualizer_params"]["kp_size"]) // 2)
    for step in (2, 3):
        written = cv2.imread(str(vis / f"step-{step:08d}.png"))[..., ::-1]
        expected = make_visualization(*trained[step - 1], kp_size=kp_size)
        np.testing.assert_array_equal(written, expected, err_msg=f"step {step}")
