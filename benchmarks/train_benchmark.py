"""Training speed: steps/s and samples/s of one training step (generator losses, backward, Adam steps;
the discriminator too when the config enables the GAN), for

* the full vox-256 config at batch 2, with the random VGG19 perceptual loss (the same work as the
  original's train.py step timed in benchmarks/reference/official-cpu-baseline.json: 7.6 s per step);
* the 64x64 presets (puppet-64 by default) at batch 8 and 4, on random frames;
* the whole ``fomm train`` loop on a small synthetic puppet dataset (data loading and logging
  included), read back from the run's log.csv.

Warm-up steps are excluded. Usage: ``python benchmarks/train_benchmark.py [--quick]``; about 2-3
minutes on 2 CPU cores. Timings on a shared machine are noisy: the load average is printed.
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


def time_steps(config_name: str, batch: int, steps: int, warmup: int = 1) -> dict:
    from fomm.config import load_preset
    from fomm.models.first_order_model import FirstOrderModel
    from fomm.training.losses import DiscriminatorFullModel, GeneratorFullModel
    from fomm.training.vgg import random_vgg19

    cfg = load_preset(config_name)
    h, w = cfg.frame_shape
    tp = cfg.train_params
    torch.manual_seed(0)
    model = FirstOrderModel(cfg).train()
    gan = tp.loss_weights.generator_gan != 0
    vgg = random_vgg19() if sum(tp.loss_weights.perceptual) else None
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

    def step():
        losses, generated = gen_full(x)
        sum(v.mean() for v in losses.values()).backward()
        for k in ("generator", "kp_detector"):
            opts[k].step()
            opts[k].zero_grad(set_to_none=True)
        if gan:
            opts["discriminator"].zero_grad(set_to_none=True)
            sum(v.mean() for v in disc_full(x, generated).values()).backward()
            opts["discriminator"].step()
            opts["discriminator"].zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    return {
        "config": config_name,
        "batch": batch,
        "steps": steps,
        "median_s": med,
        "min_s": min(times),
        "steps_per_s": 1 / med,
        "samples_per_s": batch / med,
        "params": {
            k: sum(p.numel() for p in getattr(model, k).parameters())
            for k in ("kp_detector", "generator", "discriminator")
        },
    }


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (noisier)")
    parser.add_argument("--preset", default="puppet-64", help="64x64 preset to time (puppet-64)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    n_vox, n_small = (1, 3) if args.quick else (3, 6)
    started = time.perf_counter()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {_load()}")
    yard_before = generator_frame_seconds()
    results = [time_steps("vox-256", 2, n_vox)]
    for batch in (8, 4):
        results.append(time_steps(args.preset, batch, n_small))
    results.append(time_trainer(args.preset, n_small))
    print(f"{'config':34s} {'batch':>5s} {'s/step':>8s} {'steps/s':>8s} {'samples/s':>10s}")
    for r in results:
        print(
            f"{r['config']:34s} {r['batch']:5d} {r['median_s']:8.3f} {r['steps_per_s']:8.3f} {r['samples_per_s']:10.2f}"
        )
    yard = (yard_before + generator_frame_seconds()) / 2
    if BASELINE.is_file():
        base = json.loads(BASELINE.read_text())
        ref = base["train_step_batch2"]["median_s"]
        ref_frame = base["generator_one_frame"]["median_s"]
        ours = results[0]["median_s"]
        slow = yard / ref_frame
        print(
            f"vox-256 batch 2: ours {ours:.2f} s/step vs the original {ref:.2f} s/step on this machine "
            f"(ratio {ref / ours:.2f}x; >1 means we are faster)"
        )
        print(
            f"machine speed now: one vox-256 generator frame takes {yard:.2f} s ({torch.get_num_threads()} "
            f"threads) vs {ref_frame:.2f} s when the baseline was taken (2 threads, idle): {slow:.2f}x slower; "
            f"scaled to the baseline's speed: ours {ours / slow:.2f} s/step vs {ref:.2f} "
            f"(ratio {ref * slow / ours:.2f}x; a rough estimate when the machine is shared)"
        )
    small = results[1]
    print(
        f"{args.preset} at batch {small['batch']}: {small['median_s']:.2f} s/step -> "
        f"{3600 / small['median_s']:.0f} steps/hour ({3600 * small['samples_per_s']:.0f} samples/hour)"
    )
    print(f"params: vox-256 {results[0]['params']}; {args.preset} {small['params']}")
    print(f"load average after: {_load()}; total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "src"))
    sys.exit(main())
