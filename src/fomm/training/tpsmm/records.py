"""The files of a TPSMM run folder: the step checkpoints (the newest ``keep`` and ``best.pt``),
``log.csv`` (``log-avd.csv`` for the AVD stage), ``run.json`` (the settings of the run and of
each start, as FOMM runs record them; see :mod:`fomm.training.run_dir`) and ``vis/step-*.png``
(:mod:`fomm.training.visualize`)."""

from __future__ import annotations

import csv
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from fomm.errors import FommError
from fomm.models.checkpoint import atomic_torch_save, read_checkpoint
from fomm.models.tpsmm.checkpoint import is_tpsmm_checkpoint, tpsmm_checkpoint_dict
from fomm.training import run_dir as R
from fomm.training.visualize import make_visualization, save_png


def read_tpsmm(path) -> dict:
    """A checkpoint that must be a TPSMM one (--init-from), or one clear error."""
    data = read_checkpoint(path)
    if not is_tpsmm_checkpoint(data):
        raise FommError(
            f"--init-from {path} is not a Thin-Plate Spline Motion Model checkpoint (no inpainting_network, "
            f"kp_detector and dense_motion_network); pass a TPSMM one"
        )
    return data


def latest_tpsmm_checkpoint(run_dir) -> tuple[Path, dict] | None:
    """The newest step checkpoint of a TPSMM run that loads, with its contents."""
    for _, path in reversed(R.list_checkpoints(run_dir)):
        try:
            data = read_checkpoint(path)
        except FommError:
            continue
        if "step" in data and "tpsmm_format" in data:
            return path, data
    return None


def write_tpsmm_checkpoint(run_dir: Path, step: int, model, extra: dict, keep: int) -> Path:
    """``checkpoints/step-XXXXXXXX.pt`` in the original's TPSMM layout (atomic), ``best.pt`` pointing
    to it, the oldest beyond ``keep`` removed (:func:`fomm.training.run_dir.write_checkpoint`)."""

    def save(path: Path, model, extra: dict) -> None:
        atomic_torch_save(tpsmm_checkpoint_dict(model, **extra), path)

    return R.write_checkpoint(run_dir, step, model, extra, keep, is_best=True, save=save)


def run_info(t) -> dict:
    """What run.json says about TPSMM trainer ``t`` (besides its status and the history of starts)."""
    opts = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(t.opts).items()}
    return {
        "model": "tpsmm",
        "stage": t.opts.stage,
        "step": t.step,
        "epoch": t.epoch,
        "config_name": t.cfg.name,
        "config": t.cfg.to_dict(),
        "seed": t.seed,
        "options": opts,
        "precision": t.precision,  # as asked (auto: bf16 only where the CPU has it natively)
        "cpu_autocast": R.autocast_name(t.cpu_autocast),
        "device": str(t.device),
        "world_size": t.dist.world_size,
        "backend": t.dist.backend,
        "threads": torch.get_num_threads(),
        "versions": R.versions(),
        "last_checkpoint": str(t.last_checkpoint) if t.last_checkpoint else None,
        "paths": {"out": str(t.run_dir), "data": t.cfg.dataset_params.root_dir},
    }


def write_run_json(t, status: str, new_run: bool = False) -> None:
    """``RUN_DIR/run.json`` for trainer ``t`` (rank 0 only); ``new_run``: this process's start is appended."""
    if not t.dist.is_main:
        return
    start = None
    if new_run:
        resumed = t.resume_path
        start = {"started": R.now(), "start_step": t.step, "resumed_from": str(resumed) if resumed else None}
        start.update(command=list(sys.argv), world_size=t.dist.world_size)
    R.write_run_json(t.run_dir, status, run_info(t), start)


def resume_command(t) -> str:
    """The command line that continues the run of TPSMM trainer ``t`` with its options."""
    stage = ("--stage", "avd") if t.opts.stage == "avd" else ()
    return R.resume_command(t.run_dir, t.opts, t.dist.world_size, stage)


def loss_columns(cfg, stage: str) -> list[str]:
    """The loss terms a stage logs, in the objective's order: every term the config turns on, also
    those that start later (``bg`` from ``bg_start``; its cells are empty before)."""
    if stage == "avd":
        return ["rec_kp"]
    w = cfg.train_params.loss_weights
    on = {"perceptual": sum(w.perceptual), "pixel": w.pixel, "equivariance_value": w.equivariance_value}
    on.update(warp_loss=w.warp_loss, bg=w.bg if cfg.model_params.common_params.bg else 0)
    return [name for name, weight in on.items() if weight]


class CsvLog:
    """``log.csv``: step, epoch, seconds and the loss terms ``columns`` (a resumed run's file keeps
    its own columns)."""

    def __init__(self, path: Path, columns: list[str]):
        self.path, self.start, self.columns, self.fields = path, time.time(), columns, None

    def write(self, step: int, epoch: int, losses: dict) -> None:
        row = {"step": step, "epoch": epoch, "seconds": round(time.time() - self.start, 2), **losses}
        new = not self.path.is_file()
        if self.fields is None:
            head = ["step", "epoch", "seconds", *self.columns]
            self.fields = head if new else next(csv.reader(self.path.open()))
        with self.path.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.fields, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)


def tpsmm_visualization(batch: dict, generated: dict, kp_size: int | None = None) -> np.ndarray:
    """FOMM's training picture for a TPSMM step: source, driving and equivariance-warped frames with
    their keypoints (each TPS's 5 in one colour), the source deformed by the flow, the finest
    occlusion mask, the contribution maps and the prediction."""
    picture = {
        k: generated[k] for k in ("deformed", "contribution_maps", "prediction", "transformed_frame") if k in generated
    }
    for name in ("kp_source", "kp_driving", "transformed_kp"):
        if name in generated:
            picture[name] = {"value": generated[name]["fg_kp"]}
    picture["occlusion_map"] = generated["occlusion_map"][-1]
    return make_visualization(batch, picture, kp_size=kp_size, kp_group=5)


def write_visualization(run_dir: Path, step: int, batch: dict, generated: dict, kp_size: int | None = None) -> Path:
    """``RUN_DIR/vis/step-XXXXXXXX.png`` (atomic) of a main-stage step."""
    return save_png(Path(run_dir) / "vis" / f"step-{step:08d}.png", tpsmm_visualization(batch, generated, kp_size))
