"""Worker for test_ddp.py, launched by ``python -m torch.distributed.run --nproc_per_node=2``.

It trains the tiny config with the real trainer, records every file write the trainer makes on
this rank, checks the CPU synchronised BatchNorm against a plain one on the whole batch, and saves
this rank's final weights to ``REPORT/rank<R>.pt`` (test-only output, outside the run folder).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch


def sync_bn_check(rank: int, world: int) -> dict:
    from fomm.training.distributed import CpuSyncBatchNorm2d

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2 * world, 3, 5, 5, generator=gen)
    w = torch.randn(2 * world, 3, 5, 5, generator=gen)
    plain = torch.nn.BatchNorm2d(3)
    with torch.no_grad():
        plain.weight.uniform_(0.5, 1.5, generator=gen)
        plain.bias.uniform_(-0.5, 0.5, generator=gen)
    synced = CpuSyncBatchNorm2d(3)
    synced.load_state_dict(plain.state_dict())
    xf = x.clone().requires_grad_(True)
    yf = plain(xf)
    (yf * w).sum().backward()
    sl = slice(2 * rank, 2 * rank + 2)
    xl = x[sl].clone().requires_grad_(True)
    out = synced(xl)
    (out * w[sl]).sum().backward()
    wgrad = synced.weight.grad.clone()
    torch.distributed.all_reduce(wgrad)
    return {
        "out": float((out - yf[sl]).abs().max()),
        "xgrad": float((xl.grad - xf.grad[sl]).abs().max()),
        "wgrad": float((wgrad - plain.weight.grad).abs().max()),
        "running_mean": float((synced.running_mean - plain.running_mean).abs().max()),
    }


def main(config_path: str, data: str, out: str, report: str) -> None:
    import torch.utils.tensorboard as TB

    import fomm.training.run_dir as R
    import fomm.training.trainer as T
    import fomm.training.visualize as V

    rank = int(os.environ["RANK"])
    writes: list[str] = []

    def recorder(fn):
        def wrapped(path, *a, **k):
            writes.append(str(path))
            return fn(path, *a, **k)

        return wrapped

    R.save_checkpoint = recorder(R.save_checkpoint)
    R.atomic_write_bytes = recorder(R.atomic_write_bytes)
    T.save_png = recorder(V.save_png)  # the trainer's own reference (imported at its top)
    real_writer = TB.SummaryWriter

    class Writer(real_writer):
        def __init__(self, log_dir=None, *a, **k):
            writes.append(str(log_dir))
            super().__init__(log_dir, *a, **k)

    TB.SummaryWriter = Writer
    final: dict = {}
    checks: dict = {}
    opts = T.TrainOptions(
        out=out,
        data=data,
        max_steps=4,
        batch_size=4,
        checkpoint_every=2,
        vis_every=2,
        log_every=1,
        progress=False,
        precision="fp32",
    )
    trainer = T.Trainer(config_path, opts)

    def after_step(tr, values):
        if tr.step == 1:
            checks.update(sync_bn_check(tr.dist.rank, tr.dist.world_size))
            checks["world_size"] = tr.dist.world_size
            checks["backend"] = tr.dist.backend
            checks["batch_per_process"] = tr.batch_per_rank
            checks["bn_type"] = type(tr.model.generator.first.norm).__name__
        if tr.step == 4:
            final.update({k: v.detach().clone() for k, v in tr.model.state_dict().items()})

    trainer.hooks["after_step"] = after_step
    trainer.run()
    Path(report).mkdir(parents=True, exist_ok=True)
    torch.save(final, Path(report) / f"rank{rank}.pt")
    (Path(report) / f"rank{rank}.json").write_text(json.dumps({"writes": writes, "checks": checks}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
