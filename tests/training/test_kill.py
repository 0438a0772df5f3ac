"""SIGKILL at any moment never leaves a visible checkpoint that fails to load."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from training_inputs import ENV, FOMM_TRAIN, QUIET_FLAGS, log_lines, wait_for, write_yaml

from fomm.models.checkpoint import read_checkpoint
from fomm.training.trainer import checkpoint_dir, latest_checkpoint, list_checkpoints

HERE = Path(__file__).resolve().parent


@pytest.mark.slow
def test_sigkill_during_checkpoint_writes(tmp_path, tiny_config):
    from ckpt_writer import PAYLOAD_SIZE

    cfg = write_yaml(tmp_path / "tiny.yaml", tiny_config)
    run = tmp_path / "run"
    rng = random.Random(1234)
    start = 0
    for _ in range(4):
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "ckpt_writer.py"), str(run), str(cfg), str(start)],
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_for(lambda start=start: list_checkpoints(run) and list_checkpoints(run)[-1][0] > start + 1)
            time.sleep(rng.uniform(0.0, 0.4))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        visible = list_checkpoints(run)
        assert visible and len(visible) <= 3
        path, data = latest_checkpoint(run)  # the newest visible one must load...
        assert path == visible[-1][1]
        step = data["step"]
        assert path.name == f"step-{step:08d}.pt"
        payload = data["payload"]  # ...whole, and be the one of its step
        assert payload.shape == (PAYLOAD_SIZE,) and bool((payload == step).all())
        for _, p in visible:
            read_checkpoint(p)
        best = checkpoint_dir(run) / "best.pt"
        if best.exists():
            assert read_checkpoint(best)["step"] % 3 == 0
        start = step


@pytest.mark.slow
def test_killed_training_resumes(tmp_path, tiny_config, tiny_data):
    """Kill ``fomm train`` at a random moment after its second checkpoint; ``--resume`` finishes."""
    cfg = write_yaml(tmp_path / "tiny.yaml", tiny_config)
    run = tmp_path / "run"
    args = [*FOMM_TRAIN, "--config", str(cfg), "--data", str(tiny_data), "--out", str(run), "--checkpoint-every", "1"]
    args += QUIET_FLAGS
    proc = subprocess.Popen(args + ["--max-steps", "1000"], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: len(list_checkpoints(run)) >= 2)
        time.sleep(random.Random(7).uniform(0.0, 0.3))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    path, data = latest_checkpoint(run)
    target = data["step"] + 2
    done = subprocess.run(
        args + ["--resume", "--max-steps", str(target)], env=ENV, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-2000:]
    path, data = latest_checkpoint(run)
    assert data["step"] == target
    assert not [p for p in checkpoint_dir(run).iterdir() if ".tmp" in p.name]  # stale temporaries cleaned
    info = json.loads((run / "run.json").read_text())  # the killed start is marked so in the history
    assert [r["status"] for r in info["runs"]] == ["killed", "stopped at --max-steps"]
    assert info["last_checkpoint"] == str(path) and info["runs"][0]["end_step"] == target - 2


@pytest.mark.slow
def test_sigterm_checkpoints_the_current_step_and_resume_continues(tmp_path, tiny_config, tiny_data):
    """SIGTERM (a scheduler's preemption): the run finishes its step, writes a checkpoint of it, marks
    run.json and exits 0; --resume then continues from exactly that step."""
    cfg = write_yaml(tmp_path / "tiny.yaml", tiny_config)
    run = tmp_path / "run"
    args = [*FOMM_TRAIN, "--out", str(run), *QUIET_FLAGS, "--log-every", "1", "--checkpoint-every", "1000"]
    proc = subprocess.Popen(
        args + ["--config", str(cfg), "--data", str(tiny_data), "--epochs", "50"],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: log_lines(run) > 3)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "stopped by SIGTERM" in err and "--resume" in err
    info = json.loads((run / "run.json").read_text())
    path, data = latest_checkpoint(run)
    assert info["status"] == "stopped by SIGTERM" and data["step"] == info["step"] >= 3
    stopped = data["step"]
    done = subprocess.run(
        args + ["--resume", "--max-steps", str(stopped + 2)], env=ENV, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert read_checkpoint(latest_checkpoint(run)[0])["step"] == stopped + 2
