"""Live-animation latency and batch throughput: torch exact, torch fast and ONNX Runtime.

For each model (vox-256 at 256x256 and puppet-64 at 64x64, seeded random weights: speed does not
depend on the weights) and each backend, the engine's per-frame work is timed after the source
is encoded (source work excluded, as in live mode):

- latency: one driving frame at batch 1 (keypoints, normalisation, generator), median over frames;
- throughput: frames/s at batch 1, 2, 4 and 8; the best batch is reported.

The header names the CPU, its flags (avx2, avx512f, avx512_bf16, amx), the thread count and the
torch / onnxruntime versions; on a machine with CUDA, torch runs on the GPU and ONNX Runtime on its
CUDA execution provider (with onnxruntime-gpu installed).

    python benchmarks/latency_benchmark.py                       # both sizes, ~5 min on 2 cores
    python benchmarks/latency_benchmark.py --sizes 64 --frames 16
"""

from __future__ import annotations

import argparse
import os
import platform
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
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    wanted = ["avx2", "avx512f", "avx512_bf16"]
    present = [f for f in wanted if f in flags]
    if {"amx_tile", "amx_bf16"} & flags:
        present.append("amx")
    return name, present


def clip(size: int, frames: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A source and ``frames`` smoothly moving driving frames, float32 ``(H, W, 3)`` in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    freq = rng.uniform(3, 7, size=3)
    out = [
        np.stack([0.5 + 0.4 * np.sin(freq[c] * (xx + 0.05 * np.sin(0.2 * t)) + 2 * yy * c) for c in range(3)], -1)
        for t in range(frames + 1)
    ]
    out = np.clip(np.stack(out), 0, 1).astype(np.float32)
    return out[0], out[1:]


def make_engine(model, mode: str, batch: int):
    from fomm.animation import AnimationEngine

    backend, precision = ("onnxruntime", "exact") if mode == "onnxruntime" else ("torch", mode.split()[-1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return AnimationEngine(model, batch_size=batch, precision=precision, backend=backend)


def time_batches(engine, source, driving, batch: int, frames: int) -> list[float]:
    """Seconds per frame of each batch after one warm-up batch (int8 calibrates there)."""
    engine.set_source(source)
    engine.animate_batch(driving[:batch])
    if engine.device.type == "cuda":
        torch.cuda.synchronize()
    per_frame = []
    for start in range(0, max(frames, batch), batch):
        chunk = driving[np.arange(start, start + batch) % len(driving)]
        t0 = time.perf_counter()
        engine.animate_batch(chunk)["prediction"].cpu()
        per_frame.append((time.perf_counter() - t0) / batch)
    return per_frame


def bench(model, mode: str, size: int, frames: int) -> dict:
    source, driving = clip(size, max(frames, max(BATCHES)))
    row = {"mode": mode}
    throughput = {}
    for batch in BATCHES:
        engine = make_engine(model, mode, batch)
        per_frame = time_batches(engine, source, driving, batch, frames)
        if batch == 1:
            row["latency_ms"] = 1000 * statistics.median(per_frame)
            row["p95_ms"] = 1000 * float(np.percentile(per_frame, 95))
        throughput[batch] = 1 / statistics.mean(per_frame)
    row["best_batch"] = max(throughput, key=throughput.get)
    row["fps_best"] = throughput[row["best_batch"]]
    row["fps_batch1"] = throughput[1]
    return row


def header(device: str) -> None:
    import onnxruntime as ort

    import fomm

    name, flags = cpu_description()
    print(f"fomm {fomm.__version__} latency benchmark")
    print(f"CPU: {name}; {os.cpu_count()} logical cores; flags: {', '.join(flags) or 'none of avx2/avx512/amx'}")
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime {ort.__version__}")
    if hasattr(os, "getloadavg"):
        print(f"load average before the run: {os.getloadavg()[0]:.1f} (other processes share these cores)")
    if device == "cuda":
        cuda_ep = "CUDAExecutionProvider" in ort.get_available_providers()
        print(f"GPU: {torch.cuda.get_device_name()}; ONNX Runtime CUDA execution provider: {cuda_ep}")
    else:
        print("GPU: none (torch and ONNX Runtime on the CPU)")


def main() -> None:
    from fomm.config import load_preset
    from fomm.testing import random_model

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 64], choices=sorted(MODELS))
    parser.add_argument("--frames", type=int, default=8, help="frames timed per batch size (default 8)")
    parser.add_argument("--modes", nargs="+", default=["torch exact", "torch fast", "onnxruntime"])
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    os.environ.setdefault("FOMM_HOME", os.path.join(tempfile.gettempdir(), "fomm-latency-benchmark"))
    header(device)
    rows = []
    for size in args.sizes:
        model = random_model(load_preset(MODELS[size]), seed=0).to(device)
        for mode in args.modes:
            print(f"  {MODELS[size]} {mode} ...", flush=True)
            rows.append({"model": MODELS[size], "size": size, **bench(model, mode, size, args.frames)})
    line = f"| {'model':9} | {'size':7} | {'mode':11} | {'latency b1 ms':>13} | {'p95 ms':>7} | {'fps b1':>6} |"
    line += f" {'best batch':>10} | {'fps best':>8} |"
    if hasattr(os, "getloadavg"):
        print(f"load average after the run: {os.getloadavg()[0]:.1f}")
    print()
    print(line)
    print("|" + "|".join("-" * (len(c)) for c in line.split("|")[1:-1]) + "|")
    for r in rows:
        size = f"{r['size']}x{r['size']}"
        print(
            f"| {r['model']:9} | {size:7} | {r['mode']:11} | {r['latency_ms']:13.1f} | "
            f"{r['p95_ms']:7.1f} | {r['fps_batch1']:6.2f} | {r['best_batch']:10d} | {r['fps_best']:8.2f} |"
        )


if __name__ == "__main__":
    main()
