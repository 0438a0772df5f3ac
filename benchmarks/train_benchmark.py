"""Training speed: seconds per step, steps/s and samples/s of one training step (generator losses,
backward, Adam steps; the discriminator too when the config enables the GAN) for

* puppet-64 and face-64 at batch 8, and the full vox-256 config at batch 2, on random frames with
  the random VGG19 perceptual loss (for vox-256 the same work as the original's train.py step timed
  in benchmarks/reference/official-cpu-baseline.json: 7.6 s per step on a 2-core AMD EPYC);
* each in the variants of fomm.training.speed, timed interleaved (A B C A B C) so that they share
  the machine's load: ``before`` (float32, NCHW: the step before the speed work), ``channels_last``
  (float32, the default on the CPU) and ``bf16`` (opt-in ``--precision bf16``; listed by default
  only where the CPU computes bfloat16 natively);
* optionally (``--loop``) the whole ``fomm train`` loop on a small synthetic puppet dataset.

Prints the CPU model and flags (avx2, avx512f, avx512_bf16, amx), the load average, a table with
the speed-up over ``before``, and the vox-256 ratio to the original's timing, raw and scaled by a
yardstick (one vox-256 generator frame now vs when the baseline was taken). Warm-up steps are
excluded. Usage: ``python benchmarks/train_benchmark.py [--quick] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
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
    # name: (memory_format, precision) -- "before" is the plain float32 NCHW step
    "before": ("contiguous", "fp32"),
    "channels_last": ("channels_last", "fp32"),
    "bf16": ("channels_last", "bf16"),
}


def make_step(config_name: str, batch: int, memory_format: str = "auto", precision: str = "fp32"):
    """One training step of ``config_name`` (random weights and frames, the random VGG19) as the
    trainer runs it with these speed settings; returns ``(step, params)``."""
    from fomm.config import load_preset
    from fomm.models.first_order_model import FirstOrderModel
    from fomm.training import speed as S
    from fomm.training.losses import DiscriminatorFullModel, GeneratorFullModel
    from fomm.training.vgg import random_vgg19

    cfg = load_preset(config_name)
    h, w = cfg.frame_shape
    tp = cfg.train_params
    channels_last = S.use_channels_last(memory_format, "cpu")
    dtype = S.autocast_dtype(precision, "cpu")
    torch.manual_seed(0)
    model = S.prepare_model(FirstOrderModel(cfg).train(), channels_last)
    gan = tp.loss_weights.generator_gan != 0
    vgg = random_vgg19() if sum(tp.loss_weights.perceptual) else None
    if vgg is not None and channels_last:
        vgg = vgg.to(memory_format=torch.channels_last)
    gen_full = GeneratorFullModel(
        model.kp_detector,
        model.generator,
        model.discriminator,
        tp,
        vgg=vgg,
        transform_generator=torch.Generator().manual_seed(0),
    )
    disc_full = DiscriminatorFullModel(model.kp_detector, model.generator, model.discriminator, tp) if gan else None
    opts = {
        k: torch.optim.Adam(getattr(model, k).parameters(), lr=2e-4, betas=(0.5, 0.999))
        for k in ("generator", "kp_detector", "discriminator")
    }
    gen = torch.Generator().manual_seed(1)
    x = {"source": torch.rand(batch, 3, h, w, generator=gen), "driving": torch.rand(batch, 3, h, w, generator=gen)}
    x = S.to_layout(x, channels_last)

    def autocast():
        return torch.autocast("cpu", dtype=dtype) if dtype is not None else torch.autocast("cpu", enabled=False)

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


def time_variants(config_name: str, batch: int, steps: int, variants: list[str], warmup: int = 1) -> list[dict]:
    """Median seconds per step of each variant, measured interleaved (A B C A B C ...) so that all
    see the same machine load; wall-clock and this process's CPU time."""
    built = {v: make_step(config_name, batch, *VARIANTS[v]) for v in variants}
    for v in variants:
        for _ in range(warmup):
            built[v][0]()
    wall: dict = {v: [] for v in variants}
    cpu: dict = {v: [] for v in variants}
    for _ in range(steps):
        for v in variants:
            t, c = time.perf_counter(), time.process_time()
            built[v][0]()
            wall[v].append(time.perf_counter() - t)
            cpu[v].append(time.process_time() - c)
    out = []
    for v in variants:
        med = statistics.median(wall[v])
        out.append(
            {
                "config": config_name,
                "variant": v,
                "batch": batch,
                "steps": steps,
                "median_s": med,
                "cpu_s": statistics.median(cpu[v]),
                "min_s": min(wall[v]),
                "steps_per_s": 1 / med,
                "samples_per_s": batch / med,
                "params": built[v][1],
            }
        )
    return out


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
        f"{'config':10s} {'batch':>5s} {'variant':14s} {'s/step':>8s} {'cpu s':>7s} {'steps/s':>8s} "
        f"{'samples/s':>9s} {'speed-up':>8s}"
    )
    before = {r["config"]: r for r in results if r["variant"] == "before"}
    for r in results:
        b = before.get(r["config"])
        up = f"{b['median_s'] / r['median_s']:.2f}x" if b else "-"
        print(
            f"{r['config']:10s} {r['batch']:5d} {r['variant']:14s} {r['median_s']:8.3f} {r['cpu_s']:7.2f} "
            f"{r['steps_per_s']:8.3f} {r['samples_per_s']:9.2f} {up:>8s}"
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
        if r["config"] != "vox-256":
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
    parser.add_argument("--quick", action="store_true", help="fewer steps (noisier)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per variant (default 3, --quick 1)")
    parser.add_argument(
        "--variants",
        default=None,
        help="comma list of before,channels_last,bf16 (default: all; bf16 only where the CPU has it natively)",
    )
    parser.add_argument("--configs", default="puppet-64:8,face-64:8,vox-256:2", help="PRESET:BATCH list")
    parser.add_argument("--loop", action="store_true", help="also time the whole fomm train loop on puppet-64")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--json", default=None, help="write the results to this JSON file")
    args = parser.parse_args(argv)
    from fomm.training.speed import describe_cpu

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    steps = args.steps or (1 if args.quick else 3)
    machine = describe_cpu()
    if args.variants:
        variants = args.variants.split(",")
    else:
        variants = [v for v in VARIANTS if v != "bf16" or machine["native_bf16"]]
    started = time.perf_counter()
    flags = " ".join(f"{k}={'yes' if v else 'no'}" for k, v in machine["flags"].items())
    print(f"CPU {machine['cpu']} ({machine['cores']} cores): {flags}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {_load()}")
    yard_before = generator_frame_seconds()
    results = []
    for item in args.configs.split(","):
        name, batch = item.split(":")
        rows = time_variants(name, int(batch), steps, variants)
        results += rows
        done = ", ".join(f"{r['variant']} {r['median_s']:.2f} s/step" for r in rows)
        print(f"  {name}: {done} ({time.perf_counter() - started:.0f} s, load {_load()})", flush=True)
    if args.loop:
        loop = time_trainer("puppet-64", 3 * steps)
        print(f"fomm train loop, puppet-64 batch {loop['batch']}: {loop['median_s']:.3f} s/step (data + logging)")
    _table(results)
    yard = (yard_before + generator_frame_seconds()) / 2
    ratios = {}
    if BASELINE.is_file() and any(r["config"] == "vox-256" for r in results):
        ratios = _versus_original(results, yard)
    print(f"load average after: {_load()}; total {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": machine, "results": results, "yardstick_s": yard, "vs_original": ratios}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "src"))
    sys.exit(main())
