"""Interruptions and the run folder: the lock, Ctrl-C, run.json's history, absolute paths, bad --out."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from training_inputs import ENV, FOMM_TRAIN, QUIET_FLAGS, log_lines, wait_for, write_yaml

from fomm.cli import main as cli_main
from fomm.config import Config
from fomm.errors import FommError
from fomm.models.first_order_model import FirstOrderModel
from fomm.training.run_dir import RunLock, checkpoint_dir, latest_checkpoint, write_checkpoint
from fomm.training.trainer import Trainer, TrainOptions

QUIET = dict(
    progress=False, threads=1, tensorboard=False, vis_every=0, log_every=0, precision="fp32"
)  # numbers must not depend on the CPU's bf16 (the default is auto)


def test_out_naming_a_file_is_one_line_before_setup(tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("x")
    assert cli_main(["train", "--config", "puppet-64", "--data", str(tmp_path / "none"), "--out", str(target)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a file" in err[0] and "does not exist" not in err[0]
    assert target.read_text() == "x"


@pytest.mark.parametrize("kind", ["missing", "empty", "no-checkpoint"])
def test_resume_without_a_run_says_so_and_does_not_advise_config(tmp_path, capsys, kind):
    run = tmp_path / "runz"
    if kind != "missing":
        run.mkdir()
    if kind == "no-checkpoint":
        (run / "run.json").write_text('{"status": "running"}')
    assert cli_main(["train", "--out", str(run), "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ("checkpoints/step-*.pt" in err[0] or "does not exist" in err[0])
    if kind == "no-checkpoint":
        assert "before its first checkpoint" in err[0]
    else:
        assert "check the --out path" in err[0] and "--config" not in err[0]
    assert run.exists() == (kind != "missing")  # nothing created in a mistyped folder


def test_a_second_trainer_on_the_same_folder_is_refused(tmp_path, tiny_config, tiny_data):
    """The lock names the PID that holds it; it is released when the run ends (and never left by a
    failed setup)."""
    seen = {}

    def after_step(trainer, losses):
        if trainer.step == 1:
            with pytest.raises(FommError, match=rf"in use by another fomm train \(PID {os.getpid()}\)") as info:
                Trainer(None, TrainOptions(out=trainer.run_dir, resume=True, **QUIET)).run()
            seen["message"] = str(info.value)

    run = tmp_path / "run"
    trainer = Trainer(tiny_config, TrainOptions(out=run, data=tiny_data, max_steps=2, **QUIET))
    trainer.hooks["after_step"] = after_step
    assert trainer.run().step == 2
    assert "\n" not in seen["message"] and not (run / ".lock.pid").exists()
    lock = RunLock(run)
    lock.acquire()  # free again
    lock.release()
    with pytest.raises(FommError, match="does not exist"):  # a failed setup leaves no folder behind
        Trainer(tiny_config, TrainOptions(out=tmp_path / "new", data=tmp_path / "nothing", **QUIET)).run()
    assert not (tmp_path / "new").exists()


def test_write_checkpoint_removes_temporaries_of_a_killed_write(tmp_path, tiny_config):
    stale = checkpoint_dir(tmp_path) / ".step-00000001.k2j3h4.tmp.pt"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"partial")
    model = FirstOrderModel(Config.from_dict(tiny_config))
    write_checkpoint(tmp_path, 2, model, {"step": 2}, keep=2)
    assert sorted(p.name for p in checkpoint_dir(tmp_path).iterdir()) == ["step-00000002.pt"]


@pytest.mark.slow
def test_ctrl_c_checkpoints_the_step_and_resume_works_from_another_directory(tmp_path, tiny_config, tiny_data):
    """Ctrl-C: the step is finished and checkpointed, run.json says so with absolute paths, the exact
    resume command is printed and the exit status is 130; a second fomm train meanwhile is refused
    with the PID; the printed command continues the run from another working directory."""
    first, other = tmp_path / "a", tmp_path / "b"
    first.mkdir(), other.mkdir()
    write_yaml(first / "tiny.yaml", tiny_config)
    data = os.path.relpath(tiny_data, first)
    args = [*QUIET_FLAGS, "--log-every", "1"]
    cmd = [*FOMM_TRAIN, "--config", "tiny.yaml", "--data", data, "--out", "run"]
    proc = subprocess.Popen(
        cmd + args + ["--epochs", "50"],
        cwd=first,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    run = first / "run"
    try:
        wait_for(lambda: log_lines(run) > 2)
        second = subprocess.run(
            [*FOMM_TRAIN, "--out", str(run), "--resume"],
            env=ENV,
            capture_output=True,
            text=True,
            timeout=120,
        )
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert second.returncode == 2 and f"(PID {proc.pid})" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1
    assert proc.returncode == 130, err
    info = json.loads((run / "run.json").read_text())
    path, data_ = latest_checkpoint(run)
    assert info["status"] == "interrupted (Ctrl-C)" and data_["step"] == info["step"] >= 2
    assert info["runs"][-1]["status"] == "interrupted (Ctrl-C)" and info["last_checkpoint"] == str(path)
    assert info["paths"] == {"out": str(run), "data": str(tiny_data), "config": str(first / "tiny.yaml")}
    resume = err.split("continue with: ")[1].splitlines()[0]
    assert resume == f"fomm train --out {run} --resume --threads 1 --vis-every 0 --log-every 1 --no-tensorboard --quiet"
    stopped = data_["step"]
    done = subprocess.run(
        [sys.executable, "-m", "fomm.cli"] + resume.split()[1:] + ["--max-steps", str(stopped + 1)],
        cwd=other,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    info = json.loads((run / "run.json").read_text())
    assert info["step"] == stopped + 1 and [r["status"] for r in info["runs"]] == [
        "interrupted (Ctrl-C)",
        "stopped at --max-steps",
    ]
    assert info["paths"]["config"] == str(first / "tiny.yaml")


@pytest.mark.slow
def test_a_second_ctrl_c_stops_at_once(tmp_path, tiny_config, tiny_data):
    """Ctrl-C twice: the run stops without finishing its checkpoint; what is on disk still loads,
    run.json says it was interrupted and the exit status is 130."""
    cfg = write_yaml(tmp_path / "tiny.yaml", tiny_config)
    run = tmp_path / "run"
    cmd = [*FOMM_TRAIN, "--config", str(cfg), "--data", str(tiny_data), "--out", str(run), *QUIET_FLAGS]
    cmd += ["--log-every", "1"]
    proc = subprocess.Popen(cmd + ["--checkpoint-every", "1"], env=ENV, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: log_lines(run) > 2)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err.strip().splitlines()[-1] and "Traceback" not in err, err
    path, data = latest_checkpoint(run)
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted (Ctrl-C)"
    assert not (run / ".lock.pid").exists()
