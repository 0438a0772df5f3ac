"""Worker for test_tpsmm_ddp.py, launched by ``python -m torch.distributed.run --nproc_per_node=2``.

It trains (or resumes, or trains the AVD network of) the tiny TPSMM config with the real trainer, records every file the trainer
writes on this rank, and saves this rank's final weights to ``REPORT/<tag>-rank<R>.pt`` and what
it saw to ``REPORT/<tag>-rank<R>.json`` (test-only output, outside the run folder).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch


def recorder(fn, writes: list):
    def wrapped(*args, **kwargs):
        path = args[1] if fn.__name__ in ("atomic_torch_save", "write") else args[0]
        writes.append(str(path))
        return fn(*args, **kwargs)

    return wrapped


def bf16_sync_bn_error(rank: int, world: int) -> float:
    """The largest difference between the synchronised BatchNorm of this rank's half of a bf16 batch
    (mean 5, std 1: E[x^2] is 26 times the variance) and fp32 BatchNorm of the whole batch."""
    from fomm.training.distributed import CpuSyncBatchNorm2d

    x = 5 + torch.randn(2 * world, 3, 30, 30, generator=torch.Generator().manual_seed(0))
    expected = torch.nn.BatchNorm2d(3)(x)[2 * rank : 2 * rank + 2]
    out = CpuSyncBatchNorm2d(3)(x[2 * rank : 2 * rank + 2].bfloat16())
    assert out.dtype == torch.bfloat16
    return float((out.float() - expected).abs().max())


def main(config: str, data: str, out: str, report: str, max_steps: str, tag: str) -> None:
    import fomm.training.run_dir as R
    import fomm.training.tpsmm.records as REC
    from fomm.training.tpsmm.trainer import TpsmmTrainer, TpsmmTrainOptions

    rank = int(os.environ["RANK"])
    writes: list[str] = []
    REC.atomic_torch_save = recorder(REC.atomic_torch_save, writes)
    REC.save_png = recorder(REC.save_png, writes)
    R.atomic_write_bytes = recorder(R.atomic_write_bytes, writes)
    write_row = REC.CsvLog.write
    REC.CsvLog.write = lambda self, *a: (writes.append(str(self.path)), write_row(self, *a))[1]
    resume, avd = tag.startswith("resume"), tag == "avd"  # avd: ``config`` is the checkpoint to start from
    opts = TpsmmTrainOptions(
        out=out, data=data, resume=resume, max_steps=int(max_steps), batch_size=4, num_repeats=2,
        checkpoint_every=2, vis_every=2, log_every=1, precision="fp32", progress=False,
        stage="avd" if avd else "main", init_from=config if avd else None,
    )  # fmt: skip
    trainer = TpsmmTrainer(None if resume or avd else config, opts)
    checks = {
        "world_size": trainer.dist.world_size,
        "backend": trainer.dist.backend,
        "bn": type(trainer.model.kp_detector.fg_encoder.bn1).__name__,
        "threads": torch.get_num_threads(),
    }
    checks["bf16_sync_bn_error"] = bf16_sync_bn_error(rank, trainer.dist.world_size)  # before run() ends the group
    trainer.run()
    checks["batch_per_rank"] = trainer.batch_per_rank
    weights = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    torch.save(weights, Path(report) / f"{tag}-rank{rank}.pt")
    (Path(report) / f"{tag}-rank{rank}.json").write_text(json.dumps({"writes": writes, "checks": checks}))


if __name__ == "__main__":
    main(*sys.argv[1:])
