"""Training speed: seconds per step, steps/s and samples/s of one training step (generator losses,
backward, Adam steps; the discriminator too when the config enables the GAN) for

* puppet-64 and face-64 at batch 8, and the full vox-256 config at batch 2, on random frames with
  the random VGG19 perceptual loss (for vox-256 the same work as the original's train.py step timed
  in benchmarks/reference/official-cpu-baseline.json: 7.6 s per step on a 2-core AMD EPYC);
* each in the variants of fomm.training.speed and fomm.cpu: ``before`` (float32, NCHW, glibc's
  default allocator: the step before the speed work), ``channels_last`` (float32 NHWC, default
  allocator), ``default`` (float32 NHWC with fomm's tuned allocator: what ``fomm train`` does on the
  CPU now), ``bf16`` (opt-in ``--precision bf16``, tuned allocator; listed by default only where
  the CPU computes bfloat16 natively) and, on request, ``tuned_nchw`` (the allocator alone);
* optionally (``--loop``) the whole ``fomm train`` loop on a small synthetic puppet dataset.

The allocator setting (glibc ``mallopt``) is process-wide and cannot be undone, so every variant
runs in fresh processes (``--rounds`` of them, ``--steps`` timed steps each after ``--warmup``
steps: 2 by default, since the heap reaches its working size only in the second step),
alternated A B C, C B A so that all see the same machine load on average; the caller's
``MALLOC_*`` and ``FOMM_ALLOCATOR`` variables are not passed to them. Per step: wall seconds, CPU
seconds (user + system) and system seconds alone (the page faults the allocator avoids show
there); per variant the peak resident memory of its processes.

Prints the CPU model and flags (avx2, avx512f, avx512_bf16, amx), the load average, a table with
the speed-up over ``before``, and the vox-256 ratio to the original's timing, raw and scaled by a
yardstick (one vox-256 generator frame now vs when the baseline was taken, timed in this parent
process, which keeps glibc's default allocator as the baseline did). Warm-up steps are excluded.

    python benchmarks/train_benchmark.py [--quick] [--json out.json]
    python benchmarks/train_benchmark.py --configs vox-256:2 --variants before,default --rounds 3
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "benchmarks" / "reference" / "official-cpu-baseline.json"


def _load():
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        return "?"


def generator_frame_seconds(repeats: int = 3) -> float:
    """Median time of one vox-256 generator frame (eval, batch 1), the baseline's ``generator_one_frame``:
    a yardstick for how fast this machine is right now compared with when the baseline was taken."""
    from fomm.config import load_preset
    from fomm.models.first_order_model import FirstOrderModel

    torch.manual_seed(0)
    model = FirstOrderModel(load_preset("vox-256"), with_discriminator=False).eval()
    x = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        kp_s = model.kp_detector(x)
        kp_d = {k: v + 0.01 for k, v in kp_s.items()}
        model.generator(x, kp_driving=kp_d, kp_source=kp_s)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            model.generator(x, kp_driving=kp_d, kp_source=kp_s)
            times.append(time.perf_counter() - t)
    return statistics.median(times)


VARIANTS = {
    # name: (memory_format, precision, allocator)
    "before": ("contiguous", "fp32", "default"),  # the step before the speed work
    "channels_last": ("channels_last", "fp32", "default"),  # NHWC alone (last session's speed-up)
    "tuned_nchw": ("contiguous", "fp32", "tuned"),  # the allocator alone (opt-in row)
    "default": ("channels_last", "fp32", "tuned"),  # what fomm train does on the CPU now
    "bf16": ("channels_last", "bf16", "tuned"),  # opt-in --precision bf16
}
DEFAULT_VARIANTS = ("before", "channels_last", "default", "bf16")


def make_step(
    config_name: str,
    batch: int,
    memory_format: str = "auto",
    precision: str = "fp32",
    fused_adam: bool = True,
    device: str = "cpu",
):
    """One training step of ``config_name`` (random weights and frames, the random VGG19) as the
    trainer runs it with these speed settings; returns ``(step, params)``. ``fused_adam``: Adam's
    fused kernel, as ``fomm train`` uses it (fomm.training.model_setup.optimizers). On ``device``
    "cuda", ``precision`` "bf16" runs the step under CUDA bf16 autocast (benchmarks/gpu_check.sh)."""
    from fomm.config import load_preset
    from fomm.models.first_order_model import FirstOrderModel
    from fomm.training import speed as S
    from fomm.training.losses import DiscriminatorFullModel, GeneratorFullModel
    from fomm.training.vgg import random_vgg19

    cfg = load_preset(config_name)
    h, w = cfg.frame_shape
    tp = cfg.train_params
    channels_last = S.use_channels_last(memory_format, device)
    dtype = S.autocast_dtype(precision, "cpu") if device == "cpu" else (torch.bfloat16 if precision == "bf16" else None)
    torch.manual_seed(0)
    model = S.prepare_model(FirstOrderModel(cfg).train().to(device), channels_last)
    gan = tp.loss_weights.generator_gan != 0
    vgg = random_vgg19() if sum(tp.loss_weights.perceptual) else None
    if vgg is not None:
        vgg = vgg.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    gen_full = GeneratorFullModel(
        model.kp_detector,
        model.generator,
        model.discriminator,
        tp,
        vgg=vgg,
        transform_generator=torch.Generator().manual_seed(0),
    )
    gen_full.pyramid.to(device)
    disc_full = DiscriminatorFullModel(model.kp_detector, model.generator, model.discriminator, tp) if gan else None
    fused = {"fused": True} if fused_adam else {}
    opts = {
        k: torch.optim.Adam(getattr(model, k).parameters(), lr=2e-4, betas=(0.5, 0.999), **fused)
        for k in ("generator", "kp_detector", "discriminator")
    }
    gen = torch.Generator().manual_seed(1)
    x = {"source": torch.rand(batch, 3, h, w, generator=gen), "driving": torch.rand(batch, 3, h, w, generator=gen)}
    x = S.to_layout({k: v.to(device) for k, v in x.items()}, channels_last)

    def autocast():
        if dtype is None:
            return torch.autocast(device, enabled=False)
        return torch.autocast(device, dtype=dtype)

    def step():
        with autocast():
            losses, generated = gen_full(x)
        sum(v.mean().float() for v in losses.values()).backward()
        for k in ("generator", "kp_detector"):
            opts[k].step()
            opts[k].zero_grad(set_to_none=True)
        if gan:
            opts["discriminator"].zero_grad(set_to_none=True)
            with autocast():
                loss_d = sum(v.mean().float() for v in disc_full(x, generated).values())
            loss_d.backward()
            opts["discriminator"].step()
            opts["discriminator"].zero_grad(set_to_none=True)

    params = {k: sum(p.numel() for p in getattr(model, k).parameters()) for k in ("kp_detector", "generator")}
    return step, params


def worker(config_name: str, batch: int, variant: str, steps: int, warmup: int, threads: int) -> dict:
    """Time one variant in this (fresh) process: set its allocator, build its step, warm up, then
    ``steps`` timed steps. Per step: wall seconds and this process's CPU seconds (user + system, and
    system alone: page faults show there); the process's peak resident memory."""
    import resource

    from fomm.cpu import allocator_info, tune_allocator

    memory_format, precision, allocator = VARIANTS[variant]
    if allocator == "tuned":
        tune_allocator()
    torch.set_num_threads(threads)
    # the variants before the speed work keep the plain (per-tensor) Adam
    fused_adam = variant not in ("before", "channels_last", "tuned_nchw")
    step, params = make_step(config_name, batch, memory_format, precision, fused_adam)
    for _ in range(warmup):
        step()
    wall, cpu, system = [], [], []
    for _ in range(steps):
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        step()
        wall.append(time.perf_counter() - t0)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        system.append(r1.ru_stime - r0.ru_stime)
        cpu.append(r1.ru_utime - r0.ru_utime + system[-1])
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {
        "wall": wall,
        "cpu": cpu,
        "sys": system,
        "peak_rss_mb": peak_mb,
        "allocator": allocator_info(),
        "params": params,
    }


def _run_worker(
    config_name: str, batch: int, variant: str, steps: int, warmup: int, threads: int, timeout: float
) -> dict | None:
    """:func:`worker` in a new Python process, without the caller's MALLOC_* / FOMM_ALLOCATOR (so
    that "default" means glibc's defaults and "tuned" fomm's settings). None when it ran past
    ``timeout`` seconds (it is stopped)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "FOMM_ALLOCATOR"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    job = json.dumps([config_name, batch, variant, steps, warmup, threads])
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", job]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"  {config_name} {variant}: stopped after {timeout:.0f} s (see --timeout)", flush=True)
        return None
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"worker {config_name} {variant} failed:\n{done.stderr[-2000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def _summary(config_name: str, batch: int, variant: str, runs: list[dict]) -> dict:
    """One table row from a variant's processes (``median_s`` None when none finished)."""
    row = {"config": config_name, "variant": variant, "batch": batch, "processes": len(runs)}
    if not runs:
        return {**row, "steps": 0, "median_s": None, "allocator": {"tuned": VARIANTS[variant][2] == "tuned"}}
    wall = [t for run in runs for t in run["wall"]]
    med = statistics.median(wall)
    return {
        **row,
        "steps": len(wall),
        "median_s": med,
        "cpu_s": statistics.median(t for run in runs for t in run["cpu"]),
        "sys_s": statistics.median(t for run in runs for t in run["sys"]),
        "min_s": min(wall),
        "wall_s": wall,
        "steps_per_s": 1 / med,
        "samples_per_s": batch / med,
        "peak_rss_mb": max(run["peak_rss_mb"] for run in runs),
        "allocator": runs[0]["allocator"],
        "params": runs[0]["params"],
    }


def time_variants(
    config_name: str,
    batch: int,
    steps: int,
    variants: list[str],
    rounds: int = 2,
    threads: int = 2,
    warmup: int = 2,
    timeout: float = 1200,
) -> list[dict]:
    """Median seconds per step of each variant. mallopt is process-wide and cannot be undone, so
    every variant runs in its own fresh process; the processes alternate (A B C, C B A, ...) so
    that all variants see the same machine load on average. Wall-clock, CPU and system seconds.
    A variant whose process runs past ``timeout`` is not run again."""
    runs: dict = {v: [] for v in variants}
    stopped: set = set()
    for r in range(rounds):
        for v in variants if r % 2 == 0 else variants[::-1]:
            if v not in stopped:
                run = _run_worker(config_name, batch, v, steps, warmup, threads, timeout)
                if run is None:
                    stopped.add(v)
                else:
                    runs[v].append(run)
    return [_summary(config_name, batch, v, runs[v]) for v in variants]


def time_trainer(config_name: str, steps: int) -> dict:
    """The whole ``fomm train`` loop (data loading, logging) on a small synthetic dataset."""
    from fomm.data.synthetic import write_dataset
    from fomm.training.trainer import train

    category = "face" if config_name.startswith("face") else "puppet"
    with tempfile.TemporaryDirectory() as tmp:
        data = write_dataset(
            Path(tmp) / "data",
            category,
            num_train=8,
            num_test=0,
            num_frames=16,
            size=64,
            seed=0,
            num_cross_pairs=0,
            progress=False,
        )
        out = Path(tmp) / "run"
        train(
            config_name,
            data=data,
            out=out,
            max_steps=steps + 1,
            num_repeats=8,
            log_every=1,
            vis_every=0,
            checkpoint_every=0,
            progress=False,
            tensorboard=False,
            threads=torch.get_num_threads(),
        )
        rows = list(csv.DictReader(open(out / "log.csv")))[1:]  # the first step is the warm-up
        batch = json.loads((out / "run.json").read_text())["data"]["batch_size"]
    med = statistics.median(float(r["seconds"]) for r in rows)
    return {
        "config": config_name + " (fomm train loop)",
        "batch": batch,
        "steps": len(rows),
        "median_s": med,
        "steps_per_s": 1 / med,
        "samples_per_s": batch / med,
    }


def _table(results: list[dict]) -> None:
    print(
        f"{'config':10s} {'batch':>5s} {'variant':14s} {'alloc':>6s} {'s/step':>8s} {'cpu s':>7s} {'sys s':>6s} "
        f"{'steps/s':>8s} {'samples/s':>9s} {'peak RSS':>9s} {'speed-up':>8s}"
    )
    before = {r["config"]: r for r in results if r["variant"] == "before"}
    for r in results:
        alloc = "tuned" if r["allocator"]["tuned"] else "glibc"
        if r["median_s"] is None:
            print(f"{r['config']:10s} {r['batch']:5d} {r['variant']:14s} {alloc:>6s} did not finish (--timeout)")
            continue
        b = before.get(r["config"])
        up = f"{b['median_s'] / r['median_s']:.2f}x" if b and b["median_s"] else "-"
        print(
            f"{r['config']:10s} {r['batch']:5d} {r['variant']:14s} {alloc:>6s} {r['median_s']:8.3f} {r['cpu_s']:7.2f} "
            f"{r['sys_s']:6.2f} {r['steps_per_s']:8.3f} {r['samples_per_s']:9.2f} {r['peak_rss_mb']:6.0f} MB "
            f"{up:>8s}"
        )


def _versus_original(results: list[dict], yard: float) -> dict:
    """Our vox-256 step against the original's (baseline JSON), raw and scaled by the yardstick."""
    base = json.loads(BASELINE.read_text())
    ref = base["train_step_batch2"]["median_s"]
    ref_frame = base["generator_one_frame"]["median_s"]
    slow = yard / ref_frame
    print(
        f"the original (baseline JSON, {base.get('cpu', '?')}, 2 threads, idle): vox-256 batch 2 {ref:.2f} s/step; "
        f"machine now: one vox-256 generator frame {yard:.2f} s vs {ref_frame:.2f} s then ({slow:.2f}x slower)"
    )
    ratios = {}
    for r in results:
        if r["config"] != "vox-256" or r["median_s"] is None:
            continue
        raw, scaled = ref / r["median_s"], ref * slow / r["median_s"]
        ratios[r["variant"]] = {"raw": raw, "scaled": scaled}
        print(
            f"  vox-256 {r['variant']:14s} {r['median_s']:6.2f} s/step: {raw:.2f}x the original's speed as measured, "
            f"{scaled:.2f}x scaled to the baseline machine's speed (>1: faster)"
        )
    return ratios


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and one round (noisier)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per process (default 3, --quick 1)")
    parser.add_argument("--rounds", type=int, default=None, help="processes per variant, alternated (default 2)")
    parser.add_argument(
        "--variants",
        default=None,
        help=f"comma list of {','.join(VARIANTS)} (default: {','.join(DEFAULT_VARIANTS)}; "
        "bf16 only where the CPU has it natively)",
    )
    parser.add_argument("--configs", default="puppet-64:8,face-64:8,vox-256:2", help="PRESET:BATCH list")
    parser.add_argument("--loop", action="store_true", help="also time the whole fomm train loop on puppet-64")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument(
        "--timeout", type=float, default=1200, help="seconds one variant's process may run (default 1200)"
    )
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per process first (default 2)")
    parser.add_argument("--json", default=None, help="write the results to this JSON file")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # internal: one variant's process
    args = parser.parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(worker(*json.loads(args.worker))), flush=True)
        return 0
    from fomm.cpu import describe_cpu

    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    steps, rounds = args.steps or (1 if args.quick else 3), args.rounds or (1 if args.quick else 2)
    machine = describe_cpu()
    if args.variants:
        variants = args.variants.split(",")
        unknown = [v for v in variants if v not in VARIANTS]
        if unknown:
            parser.error(f"unknown variant(s) {', '.join(unknown)}; use {', '.join(VARIANTS)}")
    else:
        variants = [v for v in DEFAULT_VARIANTS if v != "bf16" or machine["native_bf16"]]
    started = time.perf_counter()
    flags = " ".join(f"{k}={'yes' if v else 'no'}" for k, v in machine["flags"].items())
    print(f"CPU {machine['cpu']} ({machine['cores']} cores): {flags}")
    print(f"torch {torch.__version__}, {threads} threads, load average {_load()}")
    print(
        f"each variant: {rounds} fresh process(es) x ({steps} timed + {args.warmup} warm-up steps), "
        "processes alternated"
    )
    yard_before = generator_frame_seconds()
    results = []
    for item in args.configs.split(","):
        name, batch = item.split(":")
        rows = time_variants(name, int(batch), steps, variants, rounds, threads, args.warmup, args.timeout)
        results += rows
        done = ", ".join(f"{r['variant']} {r['median_s'] or float('nan'):.2f} s/step" for r in rows)
        print(f"  {name}: {done} ({time.perf_counter() - started:.0f} s, load {_load()})", flush=True)
    _table(results)
    yard = (yard_before + generator_frame_seconds()) / 2  # this process keeps glibc's defaults
    ratios = {}
    if BASELINE.is_file() and any(r["config"] == "vox-256" for r in results):
        ratios = _versus_original(results, yard)
    if args.loop:  # last: fomm train tunes this process's allocator
        loop = time_trainer("puppet-64", 3 * steps)
        print(f"fomm train loop, puppet-64 batch {loop['batch']}: {loop['median_s']:.3f} s/step (data + logging)")
    print(f"load average after: {_load()}; total {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": machine, "results": results, "yardstick_s": yard, "vs_original": ratios}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "src"))
    sys.exit(main())
