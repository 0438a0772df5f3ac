"""Cost per frame of the two model families on this machine: FOMM vox-256 against TPSMM vox-256
(both full size, seeded random weights: the cost does not depend on the weights), through
fomm's animation engine (``fomm.animate``, relative mode, batches of 4), fp32 and ``fast``.

    python benchmarks/tpsmm_benchmark.py --frames 8 --threads 2

Prints wall and CPU seconds per frame (CPU seconds: user + system of this process; on a shared
machine the wall time measures the load as much as the code), the parameter counts and the CPU
flags. The two models run alternately, each twice, and the better run of each is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch


def models():
    from fomm.models.tpsmm import TpsmmModel
    from fomm.testing import random_model

    torch.manual_seed(0)
    tpsmm = TpsmmModel("tpsmm-vox-256", with_bg=False).eval()
    tpsmm.has_avd = True
    return {"fomm vox-256": random_model("vox-256"), "tpsmm vox-256": tpsmm}


def time_one(model, source, driving, precision: str) -> tuple[float, float]:
    import fomm

    wall, cpu = time.perf_counter(), time.process_time()
    fomm.animate(model, source, driving, precision=precision, batch_size=4)
    return (time.perf_counter() - wall) / len(driving), (time.process_time() - cpu) / len(driving)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--precisions", default="exact,fast")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from fomm.cpu import describe_cpu
    from fomm.testing import driving_clip

    source, driving = driving_clip(args.frames, 256)
    nets = models()
    results = {}
    for precision in args.precisions.split(","):
        for model in nets.values():  # warm-up: first calls allocate and pick kernels
            time_one(model, source, driving[:4], precision)
        best: dict[str, tuple[float, float]] = {}
        for _ in range(2):
            for name, model in nets.items():
                t = time_one(model, source, driving, precision)
                best[name] = min(best.get(name, t), t, key=lambda x: x[1])
        results[precision] = {
            k: {"wall_s_per_frame": round(w, 3), "cpu_s_per_frame": round(c, 3)} for k, (w, c) in best.items()
        }
    inference = ("kp_detector", "generator", "dense_motion_network", "inpainting_network")
    params = {
        name: sum(p.numel() for part in inference if hasattr(m, part) for p in getattr(m, part).parameters())
        for name, m in nets.items()
    }
    print(
        json.dumps(
            {
                "frames": args.frames,
                "threads": args.threads,
                "cpu": describe_cpu(),
                "parameters": params,
                "results": results,
            },
            indent=2,
            default=str,
        )
    )


if __name__ == "__main__":
    main()
