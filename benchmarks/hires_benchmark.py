"""Animation at 512 x 512 next to 256 x 256: what the resolution costs.

Full-size vox-256 and vox-512 (the same networks; vox-512 has 512x512 frames and its keypoint
detector and dense motion network at scale 0.125, so they still see 64x64) with seeded random
weights. Per size: the per-frame loop of the original's algorithm (the baseline, batch 1), and
fomm's ``exact`` and ``fast`` engines at batch 1 and at the best of ``--batch-sizes``; FLOPs per
frame and each run's peak RSS (every run in its own process). ``--kernel 13`` gives vox-512 the
community's 13x13 anti-alias kernels instead of the original's 29x29.

    python benchmarks/hires_benchmark.py --frames 8 --batch-sizes 2 4 --threads 2

Helpers (the loop, peak RSS, PSNR) come from animate_benchmark.py, the clip from fomm.testing.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from animate_benchmark import peak_rss_mb, per_frame_loop, psnr  # noqa: E402


def build(config: str, kernel: int | None):
    from fomm.config import load_preset
    from fomm.models.blocks import sigma_for_kernel_size
    from fomm.testing import random_model

    cfg = load_preset(config)
    if kernel is not None and config != "vox-256":
        mp_ = cfg.model_params
        sigma = sigma_for_kernel_size(kernel)
        mp_.kp_detector_params.anti_alias_sigma = mp_.generator_params.dense_motion_params.anti_alias_sigma = sigma
    return random_model(cfg, seed=0)


def run(spec: dict, result_file: str) -> None:
    """Child process: one (size, mode, batch) run, timed after a warm-up; outputs saved."""
    from fomm.cpu import tune_allocator

    tune_allocator()
    torch.set_num_threads(spec["threads"])
    import warnings

    from fomm.animation.engine import AnimationEngine
    from fomm.testing import driving_clip

    warnings.simplefilter("ignore")
    model = build(spec["config"], spec["kernel"])
    source, driving = driving_clip(spec["frames"], model.frame_shape[0])
    if spec["mode"] == "loop":
        per_frame_loop(model, source, driving[:1], "cpu")  # warm-up
        start, cpu = time.perf_counter(), time.process_time()
        out = per_frame_loop(model, source, driving, "cpu")
    else:
        engine = AnimationEngine(model, batch_size=spec["batch"], precision=spec["mode"])
        engine.set_source(source)
        for _ in engine.run(driving[: spec["batch"]]):  # warm-up (allocator, fast's calibration)
            pass
        start, cpu = time.perf_counter(), time.process_time()
        engine.set_source(source)
        out = np.concatenate([o["prediction"] for o in engine.run(iter(driving))])
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    np.save(result_file + ".npy", out)
    Path(result_file).write_text(
        json.dumps(
            {
                **spec,
                "s_per_frame": seconds / len(driving),
                "cpu_s_per_frame": cpu_seconds / len(driving),
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


def flops(config: str, kernel: int | None) -> dict[str, float]:
    """GFLOPs (conv/matmul) per frame of the loop and of the engine (fp32, batch 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    from fomm.animation.engine import AnimationEngine
    from fomm.testing import driving_clip

    model = build(config, kernel)
    source, driving = driving_clip(2, model.frame_shape[0])
    with FlopCounterMode(display=False) as counter:
        per_frame_loop(model, source, driving[:1], "cpu")
    loop = counter.get_total_flops()
    engine = AnimationEngine(model, batch_size=2)
    engine.set_source(source)
    with FlopCounterMode(display=False) as counter:
        for _ in engine.run(driving):
            pass
    return {"loop": loop / 1e9, "engine": counter.get_total_flops() / 2 / 1e9}


def bench(config: str, args, tmp: str) -> list[dict]:
    ctx = mp.get_context("spawn")
    specs = [dict(mode="loop", batch=1)]
    for mode in ("exact", "fast"):
        specs += [dict(mode=mode, batch=b) for b in sorted({1, *args.batch_sizes})]
    rows, outputs = [], {}
    for spec in specs:
        spec.update(config=config, kernel=args.kernel, frames=args.frames, threads=args.threads)
        result = os.path.join(tmp, f"{config}-{spec['mode']}-{spec['batch']}.json")
        proc = ctx.Process(target=run, args=(spec, result))
        proc.start()
        proc.join()
        if proc.exitcode != 0:
            print(f"{config} {spec['mode']} batch {spec['batch']}: failed (exit {proc.exitcode})", file=sys.stderr)
            continue
        row = json.loads(Path(result).read_text())
        outputs[(row["mode"], row["batch"])] = np.load(result + ".npy")
        rows.append(row)
    loop = outputs.get(("loop", 1))
    base = next((r["s_per_frame"] for r in rows if r["mode"] == "loop"), None)
    for row in rows:
        row["speedup"] = base / row["s_per_frame"] if base else float("nan")  # wall time
        key = (row["mode"], row["batch"])
        row["max_abs_vs_loop"] = float(np.abs(outputs[key] - loop).max()) if loop is not None else float("nan")
        exact = outputs.get(("exact", row["batch"]))
        row["psnr_vs_exact"] = psnr(outputs[key], exact) if row["mode"] == "fast" and exact is not None else None
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["vox-256", "vox-512"])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[2, 4], help="tried besides batch 1")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--kernel", type=int, choices=(13, 29), default=None, help="vox-512's anti-alias kernel")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args()
    from fomm.animation.engine import cpu_has_fast_bf16

    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model_name = next((ln.split(":", 1)[1].strip() for ln in flags.splitlines() if ln.startswith("model name")), "?")
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    have = [f for f in wanted if f" {f}" in flags]
    print(
        f"fomm 512 benchmark: {', '.join(args.configs)}; torch {torch.__version__}, {platform.machine()} "
        f"'{model_name}' ({', '.join(have) or 'no avx2'}), capability {torch.backends.cpu.get_cpu_capability()}, "
        f"native bf16: {cpu_has_fast_bf16()}, {args.threads} threads, {args.frames} frames, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    all_rows, all_flops = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for config in args.configs:
            all_flops[config] = flops(config, args.kernel)
            all_rows += bench(config, args, tmp)
    print(
        f"{'config':8} {'mode':5} {'batch':>5} {'s/frame':>8} {'frames/s':>8} {'vs loop':>7} "
        f"{'GFLOP/frame':>11} {'peak RSS MB':>11} {'max|d| loop':>11} {'PSNR exact':>10}"
    )
    for config in args.configs:
        rows = [r for r in all_rows if r["config"] == config]
        for mode in ("loop", "exact", "fast"):
            mode_rows = [r for r in rows if r["mode"] == mode]
            best = min(mode_rows, key=lambda r: r["s_per_frame"], default=None)
            for r in mode_rows:
                if r["batch"] != 1 and r is not best:
                    continue
                g = all_flops[config]["loop" if mode == "loop" else "engine"]
                p = f"{r['psnr_vs_exact']:.1f}" if r["psnr_vs_exact"] is not None else ""
                print(
                    f"{config:8} {mode:5} {r['batch']:5d} {r['s_per_frame']:8.3f} {1 / r['s_per_frame']:8.2f} "
                    f"{r['cpu_s_per_frame']:11.3f} "
                    f"{r['speedup']:6.2f}x {g:11.1f} {r['peak_rss_mb']:11.0f} {r['max_abs_vs_loop']:11.1e} {p:>10}"
                )
    print(
        "rows: the loop (batch 1), each engine at batch 1 and at its best batch (by wall time); 'vs loop' within one "
        "size, from wall time; CPU s/frame: user + system seconds of the run's process (less sensitive to other load)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"flops": all_flops, "rows": all_rows}, indent=1))


if __name__ == "__main__":
    main()
