"""Live-animation latency and batch throughput: torch exact, torch fast and ONNX Runtime.

For each model (vox-256 at 256x256 and puppet-64 at 64x64, seeded random weights: speed does not
depend on the weights) and each backend, the engine's per-frame work is timed after the source
is encoded (source work excluded, as in live mode):

- latency: one driving frame at batch 1 (keypoints, normalisation, generator): minimum and median;
- throughput: frames/s at batch 1, 2, 4 and 8; the best batch is reported.

Rounds interleave the modes, so that load from other processes spreads evenly; on a shared machine
the minimum latency and the best round are the figures closest to an idle machine. The process
uses fomm's tuned glibc allocator (fomm.cpu.tune_allocator, as fomm's animation does on the CPU);
``FOMM_ALLOCATOR=default`` keeps glibc's own settings.

The header names the CPU, its flags (avx2, avx512f, avx512_bf16, amx), the thread count and the
torch / onnxruntime versions; on a machine with CUDA, torch runs on the GPU and ONNX Runtime on its
CUDA execution provider (with onnxruntime-gpu installed).

    python benchmarks/latency_benchmark.py                       # both sizes, ~5 min on 2 cores
    python benchmarks/latency_benchmark.py --sizes 64 --frames 16
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings

import numpy as np
import torch

MODELS = {256: "vox-256", 64: "puppet-64"}
BATCHES = (1, 2, 4, 8)


def cpu_description() -> tuple[str, list[str]]:
    """CPU model name and which of avx2 / avx512f / avx512_bf16 / amx it has (Linux /proc/cpuinfo)."""
    from fomm.cpu import cpu_flags, cpu_model

    flags = cpu_flags()
    present = [f for f in ("avx2", "avx512f", "avx512_bf16") if f in flags]
    if {"amx_tile", "amx_bf16"} & flags:
        present.append("amx")
    return cpu_model(), present


def make_engine(model, mode: str):
    from fomm.animation.engine import AnimationEngine

    backend, precision = ("onnxruntime", "exact") if mode == "onnxruntime" else ("torch", mode.split()[-1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return AnimationEngine(model, batch_size=max(BATCHES), precision=precision, backend=backend)


def time_batches(engine, driving, batch: int, frames: int) -> list[float]:
    """Seconds per frame of each batch of ``batch`` frames, over at least ``frames`` frames."""
    per_frame = []
    for start in range(0, max(frames, batch), batch):
        chunk = driving[np.arange(start, start + batch) % len(driving)]
        t0 = time.perf_counter()
        engine.animate_batch(chunk)["prediction"].cpu()
        per_frame.append((time.perf_counter() - t0) / batch)
    return per_frame


def bench(model, modes: list[str], size: int, frames: int, rounds: int) -> list[dict]:
    """Rounds interleave the modes, so that load from other processes spreads over all of them;
    latency is reported as the minimum and the median over every batch-1 frame, throughput from
    the best round of each batch size (the least disturbed)."""
    from fomm.testing import driving_clip

    source, driving = driving_clip(max(frames, max(BATCHES)), size)
    engines = {}
    for mode in modes:
        engines[mode] = make_engine(model, mode)
        engines[mode].set_source(source)
        engines[mode].animate_batch(driving[:2])  # warm-up (int8 calibrates here)
    times = {(mode, b): [] for mode in modes for b in BATCHES}
    for _ in range(rounds):
        for mode in modes:
            for batch in BATCHES:
                times[mode, batch].append(time_batches(engines[mode], driving, batch, frames))
    rows = []
    for mode in modes:
        latency = [t for run in times[mode, 1] for t in run]
        fps = {b: max(1 / statistics.mean(run) for run in times[mode, b]) for b in BATCHES}
        best = max(fps, key=fps.get)
        rows.append(
            {
                "mode": mode,
                "latency_min_ms": 1000 * min(latency),
                "latency_ms": 1000 * statistics.median(latency),
                "fps_batch1": fps[1],
                "best_batch": best,
                "fps_best": fps[best],
            }
        )
    return rows


def header(device: str) -> None:
    import onnxruntime as ort

    import fomm
    from fomm.cpu import allocator_info

    name, flags = cpu_description()
    print(f"fomm {fomm.__version__} latency benchmark")
    print(f"CPU: {name}; {os.cpu_count()} logical cores; flags: {', '.join(flags) or 'none of avx2/avx512/amx'}")
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime {ort.__version__}")
    alloc = allocator_info()
    print(f"glibc allocator: {'tuned' if alloc['tuned'] else 'default'} ({alloc['reason']})")
    if hasattr(os, "getloadavg"):
        print(f"load average before the run: {os.getloadavg()[0]:.1f} (other processes share these cores)")
    if device == "cuda":
        cuda_ep = "CUDAExecutionProvider" in ort.get_available_providers()
        print(f"GPU: {torch.cuda.get_device_name()}; ONNX Runtime CUDA execution provider: {cuda_ep}")
    else:
        print("GPU: none (torch and ONNX Runtime on the CPU)")


def main() -> None:
    from fomm.config import load_preset
    from fomm.cpu import tune_allocator
    from fomm.testing import random_model

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 64], choices=sorted(MODELS))
    parser.add_argument("--frames", type=int, default=4, help="frames per batch size and round (default 4)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all modes (default 3)")
    parser.add_argument("--modes", nargs="+", default=["torch exact", "torch fast", "onnxruntime"])
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    os.environ.setdefault("FOMM_HOME", os.path.join(tempfile.gettempdir(), "fomm-latency-benchmark"))
    tune_allocator()  # as fomm's animation does on the CPU (FOMM_ALLOCATOR=default keeps glibc's own)
    header(device)
    rows = []
    for size in args.sizes:
        model = random_model(load_preset(MODELS[size]), seed=0).to(device)
        print(f"  {MODELS[size]}: {', '.join(args.modes)} ...", flush=True)
        for row in bench(model, args.modes, size, args.frames, args.rounds):
            rows.append({"model": MODELS[size], "size": size, **row})
    line = f"| {'model':9} | {'size':7} | {'mode':11} | {'b1 latency min ms':>17} | {'median ms':>9} | {'fps b1':>6} |"
    line += f" {'best batch':>10} | {'fps best':>8} |"
    if hasattr(os, "getloadavg"):
        print(f"load average after the run: {os.getloadavg()[0]:.1f}")
    print()
    print(line)
    print("|" + "|".join("-" * (len(c)) for c in line.split("|")[1:-1]) + "|")
    for r in rows:
        size = f"{r['size']}x{r['size']}"
        print(
            f"| {r['model']:9} | {size:7} | {r['mode']:11} | {r['latency_min_ms']:17.1f} | "
            f"{r['latency_ms']:9.1f} | {r['fps_batch1']:6.2f} | {r['best_batch']:10d} | {r['fps_best']:8.2f} |"
        )


if __name__ == "__main__":
    main()
