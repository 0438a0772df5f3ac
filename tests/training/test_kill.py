"""SIGKILL at any moment never leaves a visible checkpoint that fails to load."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from fomm.models.checkpoint import read_checkpoint
from fomm.training.trainer import checkpoint_dir, latest_checkpoint, list_checkpoints

HERE = Path(__file__).resolve().parent


def _wait_for(predicate, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


def test_sigkill_during_checkpoint_writes(tmp_path, tiny_config):
    from ckpt_writer import PAYLOAD_SIZE

    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config))
    run = tmp_path / "run"
    rng = random.Random(1234)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    start = 0
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, str(HERE / "ckpt_writer.py"), str(run), str(cfg), str(start)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _wait_for(lambda: list_checkpoints(run) and list_checkpoints(run)[-1][0] > start + 1)
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


def test_killed_training_resumes(tmp_path, tiny_config, tiny_data):
    """Kill ``fomm train`` at a random moment after its second checkpoint; ``--resume`` finishes."""
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config))
    run = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    args = [sys.executable, "-m", "fomm.cli", "train", "--config", str(cfg), "--data", str(tiny_data), "--out",
            str(run), "--checkpoint-every", "1", "--vis-every", "0", "--quiet", "--threads", "1", "--no-tensorboard"]
    proc = subprocess.Popen(args + ["--max-steps", "1000"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: len(list_checkpoints(run)) >= 2, timeout=120)
        time.sleep(random.Random(7).uniform(0.0, 0.3))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    path, data = latest_checkpoint(run)
    target = data["step"] + 2
    done = subprocess.run(args + ["--resume", "--max-steps", str(target)], env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    path, data = latest_checkpoint(run)
    assert data["step"] == target
    assert not [p for p in checkpoint_dir(run).iterdir() if ".tmp" in p.name]  # stale temporaries cleaned
