"""The figures of benchmarks/gpu_check.sh on one CUDA GPU (run that script, not this file alone).

Prints the GPU's name, then:

1. quality of ``fast`` on the GPU: PSNR against ``exact`` on the parity clips (tests/fixtures/parity,
   at least 45 dB is the bar the CPU tests hold);
2. vox-256 animation throughput (seeded random weights, 256x256): ``exact`` and ``fast`` at batch
   1, 8 and 32, frames/s after a warm-up (the source encoded once, as ``fomm animate`` does);
3. live latency: one frame at batch 1 (keypoints, normalisation, generator, result back on the
   host), median and minimum over ``--live-frames`` frames, ``exact`` and ``fast``;
4. one vox-256 training step (batch ``--train-batch``, random frames, the random VGG19 perceptual
   loss, fused Adam as ``fomm train`` does), fp32 and under CUDA bf16 autocast: seconds per step.

    python benchmarks/gpu_check.py [--frames 256] [--live-frames 100] [--train-batch 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
PARITY = REPO / "tests" / "fixtures" / "parity"
sys.path.insert(0, str(REPO / "benchmarks"))


def sync() -> None:
    torch.cuda.synchronize()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def parity_psnr() -> None:
    import fomm

    source = np.ascontiguousarray(np.load(PARITY / "inputs" / "source.npy")[0].transpose(1, 2, 0))
    driving = np.ascontiguousarray(np.load(PARITY / "inputs" / "driving.npy").transpose(0, 2, 3, 1))
    for name in ("vox", "mgif", "x-nojac", "x-noocc"):
        d = PARITY / "variants" / name
        model = fomm.load_model(d / "checkpoint.pth.tar", config=d / "config.yaml", device="cuda")
        exact = fomm.animate(model, source, driving, precision="exact")
        fast = fomm.animate(model, source, driving, precision="fast")
        value = psnr(fast, exact)
        print(f"  {name:8} fast vs exact {value:6.1f} dB {'ok' if value >= 45 else 'BELOW 45 dB'}")


def engines(model):
    from fomm.animation.engine import AnimationEngine

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {mode: AnimationEngine(model, batch_size=32, precision=mode) for mode in ("exact", "fast")}


def throughput(engine, driving: np.ndarray, batch: int, frames: int) -> float:
    """frames/s of ``frames`` driving frames in batches of ``batch`` (after one warm-up batch)."""
    engine.animate_batch(driving[:batch])
    sync()
    start = time.perf_counter()
    done = 0
    while done < frames:
        engine.animate_batch(driving[np.arange(done, done + batch) % len(driving)])["prediction"].cpu()
        done += batch
    sync()
    return done / (time.perf_counter() - start)


def live_latency(engine, driving: np.ndarray, frames: int) -> tuple[float, float]:
    """Median and minimum milliseconds of one frame at batch 1, result on the host."""
    engine.animate_batch(driving[:1])
    times = []
    for i in range(frames):
        sync()
        start = time.perf_counter()
        engine.animate_batch(driving[i % len(driving)][None])["prediction"].cpu()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times), min(times)


def animation(frames: int, live_frames: int) -> None:
    from fomm.testing import driving_clip, random_model

    model = random_model("vox-256", seed=0).to("cuda")
    source, driving = driving_clip(64, 256)
    for mode, engine in engines(model).items():
        engine.set_source(source)
        fps = {b: throughput(engine, driving, b, frames) for b in (1, 8, 32)}
        median, minimum = live_latency(engine, driving, live_frames)
        print(
            f"  {mode:5}  frames/s: batch 1 {fps[1]:7.1f}, batch 8 {fps[8]:7.1f}, batch 32 {fps[32]:7.1f};"
            f"  live latency {median:6.1f} ms (min {minimum:.1f})"
        )


def training(batch: int, steps: int = 5) -> None:
    from train_benchmark import make_step

    for precision in ("fp32", "bf16"):
        step, _ = make_step("vox-256", batch, "contiguous", precision, fused_adam=True, device="cuda")
        step()
        step()  # warm-up: cuDNN picks its algorithms
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        seconds = (time.perf_counter() - start) / steps
        print(f"  {precision}: {seconds:.3f} s/step at batch {batch} ({batch / seconds:.1f} samples/s)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=256, help="frames per throughput figure")
    p.add_argument("--live-frames", type=int, default=100)
    p.add_argument("--train-batch", type=int, default=8)
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device (torch.cuda.is_available() is False): run it on a machine with an NVIDIA GPU")
        return 1
    from fomm.cpu import tune_allocator

    tune_allocator()
    props = torch.cuda.get_device_properties(0)
    print(
        f"GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB; torch {torch.__version__}, CUDA {torch.version.cuda}; "
        f"bf16 supported: {torch.cuda.is_bf16_supported()}"
    )
    print("fast vs exact on the parity clips (CUDA):")
    parity_psnr()
    print("vox-256 animation (random weights, 256x256):")
    animation(args.frames, args.live_frames)
    print("vox-256 training step (random frames, random VGG19 perceptual loss, fused Adam):")
    training(args.train_batch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
