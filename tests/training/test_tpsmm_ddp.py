"""Two CPU processes (gloo) train the tiny TPSMM config with torchrun: the processes end with the same
weights, only the first writes, BatchNorm is synchronised, and a resumed run continues exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from test_ddp import _free_port  # noqa: I001 - tests/training/test_ddp.py
from test_tpsmm_train import tiny_config

from fomm.models.checkpoint import read_checkpoint

HERE = Path(__file__).resolve().parent
PARTS = ("kp_detector", "dense_motion_network", "inpainting_network", "bg_predictor")
pytestmark = pytest.mark.slow  # torchrun with two training processes, four times


def torchrun(config: Path, data: Path, out: Path, report: Path, max_steps: int, tag: str) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1"]
    cmd += [f"--master_port={_free_port()}", str(HERE / "tpsmm_ddp_worker.py")]
    cmd += [str(config), str(data), str(out), str(report), str(max_steps), tag]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tpsmm_data):
    """``straight``: 3 steps; ``halves``: 2 steps, then ``--resume`` to 3 (2 steps per epoch: it
    crosses an epoch end and its scheduler step); ``avd``: 2 AVD-stage steps from ``straight``."""
    tmp = tmp_path_factory.mktemp("tpsmm-ddp")
    config, report = tmp / "tiny.yaml", tmp / "report"
    config.write_text(yaml.safe_dump(tiny_config()))
    report.mkdir()
    torchrun(config, tpsmm_data, tmp / "straight", report, 3, "straight")
    torchrun(config, tpsmm_data, tmp / "halves", report, 2, "first")
    torchrun(config, tpsmm_data, tmp / "halves", report, 3, "resume")
    torchrun(tmp / "straight" / "checkpoints" / "best.pt", tpsmm_data, tmp / "avd", report, 2, "avd")
    return tmp, report


def test_processes_agree_and_the_checkpoint_holds_their_weights(runs):
    tmp, report = runs
    w0, w1 = torch.load(report / "straight-rank0.pt"), torch.load(report / "straight-rank1.pt")
    assert w0.keys() == w1.keys() and len(w0) > 100
    assert not [k for k in w0 if not torch.equal(w0[k], w1[k])]
    saved = read_checkpoint(tmp / "straight" / "checkpoints" / "step-00000003.pt")
    for part in PARTS:
        for key, value in saved[part].items():
            assert torch.equal(value, w0[f"{part}.{key}"]), f"{part}.{key}"
    assert saved["world_size"] == 2 and len(saved["rng"]) == 2
    assert not torch.equal(saved["rng"][0]["transform"], saved["rng"][1]["transform"])  # own warp streams


def test_only_the_first_process_writes(runs):
    tmp, report = runs
    seen = {r: json.loads((report / f"straight-rank{r}.json").read_text()) for r in (0, 1)}
    assert seen[1]["writes"] == []
    names = {Path(w).name for w in seen[0]["writes"]}
    assert {"step-00000002.pt", "step-00000003.pt", "run.json", "log.csv", "step-00000002.png"} <= names
    for r in (0, 1):
        checks = seen[r]["checks"]
        assert checks["world_size"] == 2 and checks["backend"] == "gloo" and checks["batch_per_rank"] == 2
        assert checks["bn"] == "CpuSyncBatchNorm2d"
        assert checks["bf16_sync_bn_error"] < 0.04  # bf16 rounding; summed in bf16 it was 0.28
    info = json.loads((tmp / "straight" / "run.json").read_text())
    assert (info["world_size"], info["backend"], info["status"]) == (2, "gloo", "stopped at --max-steps")
    rows = (tmp / "straight" / "log.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows] == ["step", "1", "2", "3"]


def test_a_resumed_run_continues_exactly(runs):
    tmp, report = runs
    a = read_checkpoint(tmp / "straight" / "checkpoints" / "step-00000003.pt")
    b = read_checkpoint(tmp / "halves" / "checkpoints" / "step-00000003.pt")
    assert a["epoch"] == b["epoch"] == 1 and a["epoch_step"] == b["epoch_step"] == 1
    for part in PARTS:
        for key, tensor in a[part].items():
            assert torch.equal(tensor, b[part][key]), f"{part}.{key}"
    r0, r1 = torch.load(report / "resume-rank0.pt"), torch.load(report / "resume-rank1.pt")
    assert all(torch.equal(r0[k], r1[k]) for k in r0)
    info = json.loads((tmp / "halves" / "run.json").read_text())
    assert [(run["start_step"], run["world_size"]) for run in info["runs"]] == [(0, 2), (2, 2)]


def test_the_avd_stage_trains_the_same_network_on_both_processes(runs):
    tmp, report = runs
    w0, w1 = torch.load(report / "avd-rank0.pt"), torch.load(report / "avd-rank1.pt")
    assert not [k for k in w0 if not torch.equal(w0[k], w1[k])]  # the untrained AVD network starts as rank 0's
    saved = read_checkpoint(tmp / "avd" / "checkpoints" / "step-00000002.pt")
    before = read_checkpoint(tmp / "straight" / "checkpoints" / "step-00000003.pt")
    assert saved["stage"] == "avd" and saved["world_size"] == 2
    assert all(torch.equal(v, w0[f"avd_network.{k}"]) for k, v in saved["avd_network"].items())
    assert all(torch.equal(v, saved["kp_detector"][k]) for k, v in before["kp_detector"].items())  # frozen
    rows = (tmp / "avd" / "log-avd.csv").read_text().splitlines()
    assert rows[0] == "step,epoch,seconds,rec_kp" and len(rows) == 3
