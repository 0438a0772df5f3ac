"""The run folder of ``fomm train``: every file a run writes, and the lock that keeps it to one run.

::

    RUN_DIR/
      checkpoints/step-XXXXXXXX.pt   the last --keep step checkpoints (written atomically, rotated)
      checkpoints/best.pt            hard link to the best step checkpoint
      checkpoints/epoch-EEEE.pt      every train_params.checkpoint_freq epochs, never rotated
      run.json                       config, command, paths, versions, status and each start's history
      log.csv                        losses averaged over each --log-every steps
      tensorboard/                   TensorBoard scalars and images
      vis/step-XXXXXXXX.png          visualisations
      .lock, .lock.pid               held by the running process (released by the OS when it dies)

Checkpoints (:func:`write_checkpoint`) appear under their final name only when complete (temporary
file, fsync, rename), so a crash at any moment leaves the previous ones loadable; temporary files
left by a killed write are removed at the next write in that folder. RNG states
(:func:`capture_rng`) are stored as tensors, lists and numbers, so ``torch.load(weights_only=True)``
reads them.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import platform
import random
import re
import shlex
import shutil
import socket
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock, Timeout

import fomm
from fomm.atomic import atomic_path, atomic_write_bytes
from fomm.errors import FommError
from fomm.models.checkpoint import read_checkpoint, save_checkpoint

CHECKPOINT_RE = re.compile(r"^step-(\d{8,})\.pt$")
LOCK_NAME = ".lock"
PID_NAME = ".lock.pid"


# ------------------------------------------------------------------------------------------------
# Checkpoint files
# ------------------------------------------------------------------------------------------------
def checkpoint_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(step, path)`` of the visible step checkpoints, oldest first (temporary files ignored)."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = CHECKPOINT_RE.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(run_dir: str | os.PathLike) -> tuple[Path, dict] | None:
    """The newest step checkpoint that loads (a newer unreadable one is reported and skipped)."""
    for _, path in reversed(list_checkpoints(run_dir)):
        try:
            data = read_checkpoint(path)
        except FommError as exc:
            warnings.warn(f"skipping unreadable checkpoint {path} ({exc})", UserWarning, stacklevel=2)
            continue
        if "step" in data and "generator" in data:
            return path, data
    return None


def clean_temporaries(folder: str | os.PathLike) -> None:
    """Remove the temporary files (``.NAME.XXXX.tmp.EXT``) left in ``folder`` by a killed atomic write."""
    folder = Path(folder)
    if folder.is_dir():
        for p in folder.iterdir():
            if p.name.startswith(".") and ".tmp" in p.name:
                with contextlib.suppress(OSError):
                    p.unlink()


def _link_atomic(src: Path, dst: Path) -> None:
    """Make ``dst`` the same file as ``src`` (hard link, else copy), replacing it atomically."""
    with atomic_path(dst) as tmp:
        tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)


def write_checkpoint(
    run_dir: str | os.PathLike,
    step: int,
    model,
    extra: dict,
    keep: int,
    is_best: bool = False,
    keep_as: str | None = None,
    save=None,
) -> Path:
    """Write ``checkpoints/step-XXXXXXXX.pt`` atomically, point ``best.pt`` at it when ``is_best``
    (and ``checkpoints/<keep_as>``, never rotated, when given), and delete all but the newest
    ``keep`` step checkpoints. Temporary files of an earlier, killed write are removed first.
    ``save(path, model, extra)`` writes the file (default: FOMM's layout, ``save_checkpoint``).
    """
    folder = checkpoint_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    clean_temporaries(folder)
    path = folder / f"step-{int(step):08d}.pt"
    if save is None:
        save_checkpoint(path, model, **extra)
    else:
        save(path, model, extra)
    if is_best:
        _link_atomic(path, folder / "best.pt")
    if keep_as:
        _link_atomic(path, folder / keep_as)
    for _, old in list_checkpoints(run_dir)[: -int(keep)]:
        with contextlib.suppress(OSError):
            old.unlink()
    return path


# ------------------------------------------------------------------------------------------------
# RNG states as weights_only-friendly values
# ------------------------------------------------------------------------------------------------
def capture_rng(transform_generator: torch.Generator | None) -> dict:
    """This process's torch (CPU, CUDA), numpy, python and warp-generator states."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    out = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": str(np_state[0]),
            "key": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {
            "version": int(py_state[0]),
            "state": list(py_state[1]),
            "gauss_next": py_state[2] if py_state[2] is None else float(py_state[2]),
        },
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    if transform_generator is not None:
        out["transform"] = transform_generator.get_state()
    return out


def restore_rng(state: dict, transform_generator: torch.Generator | None) -> None:
    """Undo :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"][: torch.cuda.device_count()])
    if transform_generator is not None and "transform" in state:
        transform_generator.set_state(state["transform"])


def scheduler_state(scheduler) -> dict:
    """A scheduler's state dict without ``milestones`` (a Counter, not weights_only-loadable; it
    comes from the config)."""
    state = scheduler.state_dict()
    state.pop("milestones", None)
    return state


def versions() -> dict:
    out = {
        "fomm": getattr(fomm, "__version__", "?"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.version.cuda
        out["gpu"] = torch.cuda.get_device_name(0)
    return out


# ------------------------------------------------------------------------------------------------
# What a checkpoint and run.json say about a trainer (``t``: a fomm.training.trainer.Trainer)
# ------------------------------------------------------------------------------------------------
def training_state(t, reason: str, metric: float, rngs: list) -> dict:
    """Everything a checkpoint of trainer ``t`` holds besides the weights."""
    extra = {
        **{"optimizer_" + k: o.state_dict() for k, o in t.optimizers.items()},
        "schedulers": {k: scheduler_state(s) for k, s in t.schedulers.items()},
        "epoch": int(t.epoch),
        "epoch_step": int(t.epoch_step),
        "step": int(t.step),
        "rng": rngs,
        "loss_window": [float(v) for v in t.loss_window],
        "best_metric": float(t.best_metric),
        "best_step": int(t.best_step),
        "train_meta": {
            "world_size": t.dist.world_size,
            "batch_size": int(t.cfg.train_params.batch_size),
            "seed": int(t.options.seed),
            "precision": t.options.precision,
            "steps_per_epoch": t.steps_per_epoch,
            "reason": reason,
            "running_loss": float(metric) if math.isfinite(metric) else None,
            "vgg19": t.vgg_status.get("source", ""),
        },
    }
    if t.amp:
        extra["scaler_g"] = t.scaler_g.state_dict()
        extra["scaler_d"] = t.scaler_d.state_dict()
    return extra


def restore_training_state(t, data: dict) -> None:
    """Continue trainer ``t`` from checkpoint ``data``: weights, optimizers, schedulers, counters and RNG states."""
    for part in ("generator", "kp_detector", "discriminator"):
        if isinstance(data.get(part), dict):
            getattr(t.model, part).load_state_dict(data[part])
    for name, opt in t.optimizers.items():
        if isinstance(data.get("optimizer_" + name), dict):
            opt.load_state_dict(data["optimizer_" + name])
    for name, sched in t.schedulers.items():
        state = data.get("schedulers", {}).get(name)
        if state:
            sched.load_state_dict(state)
    for name, scaler in (("scaler_g", t.scaler_g), ("scaler_d", t.scaler_d)):
        if t.amp and data.get(name):
            scaler.load_state_dict(data[name])
    t.step = int(data["step"])
    t.epoch = int(data.get("epoch", 0))
    t.epoch_step = int(data.get("epoch_step", 0))
    t.loss_window.extend(float(v) for v in data.get("loss_window", []))
    t.best_metric = float(data.get("best_metric", math.inf))
    t.best_step = int(data.get("best_step", -1))
    rng = data.get("rng") or []
    if t.dist.rank < len(rng):
        restore_rng(rng[t.dist.rank], t.transform_generator)
    else:
        t.say("note: the checkpoint has no RNG state for this process; the warp noise is re-seeded")
    meta = data.get("train_meta", {})
    if (
        int(meta.get("world_size", t.dist.world_size)) != t.dist.world_size
        or int(meta.get("batch_size", t.cfg.train_params.batch_size)) != t.cfg.train_params.batch_size
    ):
        t.say(
            "note: the process count or batch size changed since the checkpoint; the run continues but "
            "is not an exact continuation"
        )
    t.saved_step = t.step
    t.last_checkpoint = t.resume_path


def run_info(t) -> dict:
    """What run.json says about the run of trainer ``t`` besides its status and history."""
    opts = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(t.options).items()}
    return {
        "step": t.step,
        "epoch": t.epoch,
        "total_steps": t.total_steps,
        "config_name": t.cfg.name,
        "config": t.cfg.to_dict(),
        "command": list(t.options.command if t.options.command is not None else sys.argv),
        "seed": int(t.options.seed),
        "options": opts,
        "versions": versions(),
        "device": str(t.device),
        "world_size": t.dist.world_size,
        "backend": t.dist.backend,
        "amp": t.amp,
        "cpu_autocast": autocast_name(t.cpu_autocast),
        "compile": bool(t.options.compile),
        "cpu_allocator": getattr(t, "cpu_allocator", None),
        "threads": torch.get_num_threads(),
        "vgg19": t.vgg_status,
        "data": t.data_info,
        "init_from": t.init_report,
        "best_checkpoint_rule": f"lowest mean over the last {t.loss_window.maxlen} steps of the non-adversarial "
        f"generator loss (perceptual, pixel and equivariance terms; all generator "
        f"terms when the perceptual weights are 0)",
        "best": {
            "step": t.best_step,
            "running_loss": t.best_metric if math.isfinite(t.best_metric) else None,
        },
        "last_checkpoint": str(t.last_checkpoint) if t.last_checkpoint else None,
        "paths": {
            "out": str(t.run_dir),
            "data": t.cfg.dataset_params.root_dir,
            "config": config_path(t.config_in),
        },
    }


def config_path(given) -> str | None:
    """The absolute path of a --config YAML file (None for a preset, a dict or a resumed run)."""
    if isinstance(given, (str, os.PathLike)) and Path(given).is_file():
        return os.path.abspath(given)
    return None


# ------------------------------------------------------------------------------------------------
# One run at a time
# ------------------------------------------------------------------------------------------------
class RunLock:
    """``RUN_DIR/.lock``, held (an OS file lock) for the life of the process that trains in the
    folder; its PID is in ``RUN_DIR/.lock.pid``. A killed process never leaves a stale lock."""

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        self._lock = None
        self.created_folder = False

    def acquire(self) -> None:
        if not self.run_dir.is_dir():
            self.run_dir.mkdir(parents=True)
            self.created_folder = True
        lock = FileLock(str(self.run_dir / LOCK_NAME))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise FommError(
                f"{self.run_dir} is in use by another fomm train ({self._holder()}); wait for it to end "
                f"or stop it, or choose another --out"
            ) from None
        self._lock = lock
        atomic_write_bytes(self.run_dir / PID_NAME, f"{os.getpid()} {socket.gethostname()}\n".encode())

    def _holder(self) -> str:
        try:
            pid, host = (self.run_dir / PID_NAME).read_text().split()[:2]
        except (OSError, ValueError):
            return "PID unknown"
        return f"PID {pid}" if host == socket.gethostname() else f"PID {pid} on {host}"

    def release(self, remove_empty: bool = False) -> None:
        """Let go of the lock; ``remove_empty``: also remove the folder when this process made it
        and nothing but the lock files is in it (a run that failed during setup)."""
        if self._lock is None:
            return
        with contextlib.suppress(OSError):
            (self.run_dir / PID_NAME).unlink()
        self._lock.release()
        self._lock = None
        if remove_empty and self.created_folder and {p.name for p in self.run_dir.iterdir()} <= {LOCK_NAME}:
            with contextlib.suppress(OSError):
                (self.run_dir / LOCK_NAME).unlink()
                self.run_dir.rmdir()


# ------------------------------------------------------------------------------------------------
# run.json
# ------------------------------------------------------------------------------------------------
def ended_by(exc: BaseException) -> str:
    """run.json's status for a run stopped by ``exc``."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    return f"error: {exc}" if isinstance(exc, FommError) else f"error: {type(exc).__name__}: {exc}"


def autocast_name(dtype: torch.dtype | None) -> str | None:
    """run.json's ``cpu_autocast``: ``bfloat16``, or None for float32."""
    return str(dtype).removeprefix("torch.") if dtype else None


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def read_run_json(run_dir: str | os.PathLike) -> dict:
    """``RUN_DIR/run.json`` as a dict (empty when missing or unreadable)."""
    path = Path(run_dir) / "run.json"
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return {}


def write_run_json(run_dir: Path, status: str, info: dict, start: dict | None = None) -> None:
    """Write ``run.json``: ``info`` with ``status`` and the history of starts (``runs``).

    ``start``: a new start (resume) to append; a previous start still marked ``running`` (its
    process was killed: the caller holds the run's lock) is marked ``killed`` first. A status other
    than ``running`` closes the current start with its end time, step and status.
    """
    previous = read_run_json(run_dir)
    runs = previous.get("runs", [])
    paths = info.get("paths")
    if paths and paths.get("config") is None:  # a resumed run keeps the first start's --config path
        paths["config"] = (previous.get("paths") or {}).get("config")
    if start is not None:
        if runs and "ended" not in runs[-1]:
            runs[-1].update({"ended": "unknown (the process was killed)", "status": "killed"})
            runs[-1].setdefault("end_step", start.get("start_step"))
        runs.append(start)
    elif runs and status != "running":
        runs[-1].update({"ended": now(), "end_step": info.get("step"), "status": status})
    body = {"status": status, **info, "runs": runs}
    atomic_write_bytes(Path(run_dir) / "run.json", (json.dumps(body, indent=2, default=str) + "\n").encode())


def describe_missing_run(run_dir: Path) -> str:
    """One line for ``--resume`` on a folder that holds no run."""
    looked = f"{checkpoint_dir(run_dir)}/step-*.pt"
    if not run_dir.exists():
        return f"--resume: {run_dir} does not exist, so there is no run to resume; check the --out path"
    if (run_dir / "run.json").is_file():
        return (
            f"--resume: the run in {run_dir} stopped before its first checkpoint (no {looked}); start it "
            f"again without --resume (with --config)"
        )
    return f"--resume: {run_dir} holds no training run (no {looked}, no run.json); check the --out path"


RESUME_FLAGS = (  # TrainOptions field, flag, default (the options a checkpoint does not store)
    ("max_steps", "--max-steps", None),
    ("workers", "--workers", 0),
    ("device", "--device", "auto"),
    ("threads", "--threads", None),
    ("checkpoint_every", "--checkpoint-every", 500),
    ("vis_every", "--vis-every", 250),
    ("log_every", "--log-every", 10),
    ("keep", "--keep", 3),
    ("memory_format", "--memory-format", "auto"),
)


def resume_command(run_dir: Path, options, world_size: int = 1, extra: tuple[str, ...] = ()) -> str:
    """The command line that continues this run with the same options (those ``options`` has:
    FOMM's TrainOptions or TPSMM's); ``extra`` words follow ``--resume``."""
    head = f"torchrun --nproc_per_node={world_size} -m fomm.cli train" if world_size > 1 else "fomm train"
    words = [head, "--out", shlex.quote(str(run_dir)), "--resume", *extra]
    for name, flag, default in RESUME_FLAGS:
        value = getattr(options, name, default)
        if value != default:
            words += [flag, shlex.quote(str(value))]
    for on, flag in (
        (options.compile, "--compile"),
        (getattr(options, "amp", None) is False, "--no-amp"),
        (options.allow_resize, "--allow-resize"),
        (not getattr(options, "tensorboard", True), "--no-tensorboard"),
        (not options.progress, "--quiet"),
    ):
        if on:
            words.append(flag)
    return " ".join(words)


# ------------------------------------------------------------------------------------------------
# log.csv and TensorBoard
# ------------------------------------------------------------------------------------------------
def log_fields(cfg) -> list[str]:
    """The columns of log.csv: the loss terms ``cfg`` uses."""
    lw = cfg.train_params.loss_weights
    use_gan = lw.generator_gan != 0
    active = []
    if sum(lw.perceptual):
        active.append("perceptual")
    if lw.pixel:
        active.append("pixel")
    if lw.pixel_motion:
        active.append("pixel_motion")
    if use_gan:
        active.append("gen_gan")
        if sum(lw.feature_matching):
            active.append("feature_matching")
    if lw.kp_separation:
        active.append("kp_separation")
    if lw.kp_motion:
        active.append("kp_motion")
    if lw.equivariance_value:
        active.append("equivariance_value")
    if lw.equivariance_jacobian and cfg.model_params.common_params.estimate_jacobian:
        active.append("equivariance_jacobian")
    if use_gan:
        active.append("disc_gan")
    head, tail = ["step", "epoch", "lr_generator", "lr_kp_detector"], ["loss_generator", "running_loss"]
    return head + active + tail + ["seconds", "samples_per_s"]


class RunLog:
    """``log.csv`` (one row per ``--log-every`` steps) and the TensorBoard writer of a run.

    Opening it keeps the rows of ``log.csv`` up to ``step`` only (a killed run may have logged past
    its checkpoint) and starts TensorBoard at ``step + 1``.
    """

    def __init__(self, run_dir: Path, fields: list[str], step: int, tensorboard: bool, say: Callable[[str], None]):
        self.path = run_dir / "log.csv"
        self.fields = fields
        self.writer = None
        run_dir.mkdir(parents=True, exist_ok=True)
        rows = []
        if self.path.is_file() and step > 0:
            with open(self.path, newline="") as fh:
                rows = [r for r in csv.DictReader(fh) if r.get("step", "").isdigit() and int(r["step"]) <= step]
        buf = io.StringIO()
        wr = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
        wr.writeheader()
        wr.writerows(rows)
        atomic_write_bytes(self.path, buf.getvalue().encode())
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=step + 1 if step > 0 else None)
            except ImportError:  # pragma: no cover - tensorboard missing
                say("note: tensorboard is not installed; TensorBoard logging is off")

    def write(self, row: dict, means: dict[str, float]) -> None:
        """Append ``row`` to log.csv; ``means`` (the losses), the running loss, the learning rate
        and the speed to TensorBoard."""
        with open(self.path, "a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=self.fields, extrasaction="ignore").writerow(
                {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
            )
        if self.writer is not None:
            step = row["step"]
            for name, v in means.items():
                self.writer.add_scalar(f"loss/{name}", v, step)
            self.writer.add_scalar("loss/running", row["running_loss"], step)
            self.writer.add_scalar("lr/generator", row["lr_generator"], step)
            self.writer.add_scalar("speed/samples_per_s", row["samples_per_s"], step)

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        """A ``(H, W, 3)`` uint8 image to TensorBoard."""
        if self.writer is not None:
            self.writer.add_image(tag, image, step, dataformats="HWC")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
