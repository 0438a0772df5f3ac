"""Writes checkpoints in a loop with the trainer's writer, for test_kill.py (which SIGKILLs it).

Each checkpoint ``step-N.pt`` carries ``payload = full(PAYLOAD_SIZE, N)`` so the test can check
that what it loads is whole and belongs to its step.
"""

from __future__ import annotations

import sys

import torch

PAYLOAD_SIZE = 4_000_000  # 16 MB of float32: a write takes long enough to be interrupted


def main(run_dir: str, config_path: str, start: int) -> None:
    from fomm.config import Config
    from fomm.models.first_order_model import FirstOrderModel
    from fomm.training.trainer import write_checkpoint

    model = FirstOrderModel(Config.from_yaml(config_path))
    step = int(start)
    while True:
        step += 1
        extra = {"step": step, "payload": torch.full((PAYLOAD_SIZE,), float(step))}
        write_checkpoint(run_dir, step, model, extra, keep=2, is_best=(step % 3 == 0))
        print(step, flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
