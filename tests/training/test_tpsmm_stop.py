"""How a TPSMM run stops, as FOMM runs do: Ctrl-C finishes the step, checkpoints it, prints the
command that continues it (exactly) and exits 130; an error is recorded in run.json; a second
fomm train in the same folder is refused while one runs."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch
import yaml
from test_tpsmm_train import tiny_config, train  # noqa: I001 - tests/training/test_tpsmm_train.py

from fomm.errors import FommError
from fomm.models.checkpoint import read_checkpoint
from fomm.training import run_dir as R
from fomm.training.tpsmm.trainer import TpsmmTrainer

pytestmark = pytest.mark.slow  # tiny training runs
PARTS = ("kp_detector", "dense_motion_network", "inpainting_network", "bg_predictor")


@pytest.fixture
def config(tmp_path):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny_config()))
    return ["--config", str(tmp_path / "tiny.yaml")]


def stop_during_step(monkeypatch, step: int, action) -> None:
    """Run ``action`` while the trainer's step ``step`` (1-based) computes."""
    real = TpsmmTrainer._step

    def spy(self, objective, batch):
        if self.step + 1 == step:
            action()
        return real(self, objective, batch)

    monkeypatch.setattr(TpsmmTrainer, "_step", spy)


def test_ctrl_c_checkpoints_the_step_and_the_run_continues_exactly(tpsmm_data, tmp_path, config, monkeypatch, capsys):
    assert train(tpsmm_data, tmp_path / "straight", *config, "--max-steps", "3") == 0
    stop_during_step(monkeypatch, 1, lambda: os.kill(os.getpid(), signal.SIGINT))  # mid-epoch (2 steps each)
    assert train(tpsmm_data, tmp_path / "halves", *config, "--max-steps", "3") == 130
    err = capsys.readouterr().err
    assert f"interrupted (Ctrl-C) at step 1; continue with: fomm train --out {tmp_path / 'halves'} --resume" in err
    assert json.loads((tmp_path / "halves" / "run.json").read_text())["status"] == "interrupted (Ctrl-C)"
    assert [s for s, _ in R.list_checkpoints(tmp_path / "halves")] == [1]
    monkeypatch.undo()
    assert train(tpsmm_data, tmp_path / "halves", "--resume", "--max-steps", "3") == 0
    a = read_checkpoint(tmp_path / "straight" / "checkpoints" / "step-00000003.pt")
    b = read_checkpoint(tmp_path / "halves" / "checkpoints" / "step-00000003.pt")
    for part in PARTS:
        assert all(torch.equal(v, b[part][k]) for k, v in a[part].items()), part


def test_an_error_is_recorded_and_a_held_folder_is_refused(tpsmm_data, tmp_path, config, monkeypatch, capsys):
    def fail():
        raise FommError("the loss is not finite at step 2")

    stop_during_step(monkeypatch, 2, fail)
    out = tmp_path / "run"
    assert train(tpsmm_data, out, *config, "--max-steps", "3") == 2
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "error: the loss is not finite at step 2" and info["runs"][-1]["end_step"] == 1
    capsys.readouterr()
    lock = R.RunLock(out)
    lock.acquire()  # another fomm train holds the folder
    try:
        assert train(tpsmm_data, out, "--resume", "--max-steps", "3") == 2
    finally:
        lock.release()
    err = capsys.readouterr().err.strip()
    assert f"{out} is in use by another fomm train (PID {os.getpid()})" in err and len(err.splitlines()) == 1
