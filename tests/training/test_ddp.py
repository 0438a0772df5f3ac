"""Two CPU processes (gloo) train the tiny config with torchrun: they agree and only rank 0 writes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from fomm.models.checkpoint import read_checkpoint

HERE = Path(__file__).resolve().parent
# Every test here starts torchrun with two training processes (tens of seconds on 2 cores).
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(tmp_path_factory, tiny_data, config: dict):
    tmp = tmp_path_factory.mktemp("ddp")
    cfg = tmp / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(config))
    out, report = tmp / "run", tmp / "report"
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join([str(HERE)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
    )
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        str(HERE / "ddp_worker.py"),
        str(cfg),
        str(tiny_data),
        str(out),
        str(report),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, report, proc


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory, tiny_data):
    from training_inputs import TINY

    return _torchrun(tmp_path_factory, tiny_data, TINY)


def test_frozen_generator_statistics_agree_across_ranks(tmp_path_factory, tiny_data):
    """generator_batchnorm: frozen under torchrun: the statistics measured on the first (global)
    batch are the same on both ranks and stay fixed; the ranks end with identical weights."""
    import copy

    from training_inputs import TINY

    cfg = copy.deepcopy(TINY)
    cfg["model_params"]["generator_params"].update(num_down_blocks=0, block_expansion=8)
    cfg["train_params"].update(generator_init="identity", generator_batchnorm="frozen")
    out, report, _ = _torchrun(tmp_path_factory, tiny_data, cfg)
    w0, w1 = torch.load(report / "rank0.pt"), torch.load(report / "rank1.pt")
    assert not [k for k in w0 if not torch.equal(w0[k], w1[k])]
    s2 = read_checkpoint(out / "checkpoints" / "step-00000002.pt")["generator"]
    s4 = read_checkpoint(out / "checkpoints" / "step-00000004.pt")["generator"]
    for key in ("first.norm.running_mean", "first.norm.running_var", "bottleneck.r0.norm2.running_var"):
        assert torch.equal(s2[key], s4[key]) and torch.equal(s4[key], w0[f"generator.{key}"]), key
    assert float(s4["first.norm.running_var"].min()) > 0


def test_ranks_agree_on_weights(ddp_run):
    out, report, _ = ddp_run
    w0, w1 = torch.load(report / "rank0.pt"), torch.load(report / "rank1.pt")
    assert w0.keys() == w1.keys() and len(w0) > 100
    differ = [k for k in w0 if not torch.equal(w0[k], w1[k])]
    assert not differ, differ[:5]
    saved = read_checkpoint(out / "checkpoints" / "step-00000004.pt")
    for part in ("generator", "kp_detector", "discriminator"):
        for k, v in saved[part].items():
            assert torch.equal(v, w0[f"{part}.{k}"]), k
    assert len(saved["rng"]) == 2 and not torch.equal(saved["rng"][0]["transform"], saved["rng"][1]["transform"])


def test_only_rank_zero_writes(ddp_run):
    out, report, _ = ddp_run
    r0 = json.loads((report / "rank0.json").read_text())
    r1 = json.loads((report / "rank1.json").read_text())
    assert r1["writes"] == []
    assert any(w.endswith("step-00000004.pt") for w in r0["writes"])
    assert any(w.endswith("run.json") for w in r0["writes"]) and any("vis" in w for w in r0["writes"])
    info = json.loads((out / "run.json").read_text())
    assert info["world_size"] == 2 and info["backend"] == "gloo" and info["data"]["batch_per_process"] == 2


def test_batchnorm_is_synchronised(ddp_run):
    _, report, _ = ddp_run
    for r in (0, 1):
        checks = json.loads((report / f"rank{r}.json").read_text())["checks"]
        assert checks["world_size"] == 2 and checks["batch_per_process"] == 2
        assert checks["bn_type"] == "CpuSyncBatchNorm2d"
        for key in ("out", "xgrad", "wgrad", "running_mean"):
            assert checks[key] < 1e-5, (key, checks[key])
