"""The training loop of ``fomm train`` (the original ``train.py``, made resumable and distributed).

As the original: Adam with ``betas=(0.5, 0.999)`` and a ``MultiStepLR(epoch_milestones,
gamma=0.1)`` per module (stepped at each epoch end), the dataset repeated ``num_repeats`` times per
epoch, batches of ``batch_size`` (shuffled, last partial batch dropped); each step runs the
generator losses (:class:`~fomm.training.losses.GeneratorFullModel`), steps the generator and
keypoint detector, then, when ``generator_gan != 0``, the discriminator loss and its step.

Additions:

* **Distributed** (``torchrun --nproc_per_node=N -m fomm.cli train ...``): gloo on the CPU, NCCL
  on CUDA; ``batch_size`` is the *global* batch, split evenly over the processes (the original's
  DataParallel semantics); BatchNorm statistics are synchronised; a ``DistributedSampler`` shards
  the data; only rank 0 writes (logs, images, checkpoints).
* **Mixed precision** on CUDA (autocast float16 + GradScaler; ``--no-amp`` turns it off) and
  optional ``torch.compile`` of the keypoint detector and generator (slow to compile on a CPU).
* **Checkpoints** in our format (:func:`fomm.models.checkpoint.save_checkpoint`: the config is
  embedded, ``fomm.load_model(path)`` needs nothing else), with the optimizers, schedulers, the
  number of finished epochs (``epoch``), the position inside the current epoch (``epoch_step``),
  the global ``step`` and every process's RNG states (torch CPU and CUDA, numpy, python
  ``random`` and the equivariance-warp generator) stored as tensors, lists and numbers, so
  ``torch.load(weights_only=True)`` reads them. Files ``RUN_DIR/checkpoints/step-XXXXXXXX.pt`` are
  written atomically every ``checkpoint_every`` steps, at each epoch end and when training stops;
  the last ``keep`` are kept, plus ``best.pt``, plus ``epoch-EEEE.pt`` every
  ``train_params.checkpoint_freq`` epochs (the original's schedule; these are never deleted).
* **Best checkpoint**: the lowest running mean, over the last :data:`BEST_WINDOW` steps, of the
  non-adversarial generator loss (perceptual, pixel and equivariance terms; the whole generator loss when
  the perceptual weights are all zero). Adversarial terms are left out because they measure the
  current discriminator, not the reconstruction, and are not comparable over time.
* **Exact resume** (``resume=True``): the run continues as if it had never stopped. Each epoch's
  shuffle comes from ``seed + epoch``, each item's frames and augmentation from ``(seed, epoch,
  index)`` (``FramesDataset.set_epoch``), the warp noise from its own generator, and a resumed
  epoch skips the batches already done; so N steps straight and N/2 + N/2 give the same weights
  (bitwise on the CPU).
* **Bad data / divergence**: no usable video, frames of another size than ``frame_shape``
  (unless ``allow_resize``), a dataset smaller than one batch, and a non-finite loss stop with a
  :class:`~fomm.errors.FommError`; a divergence never overwrites the last good checkpoint.
* The original's ``checkpoint_freq`` (in epochs) is not used: checkpoints come at every epoch end
  and every ``checkpoint_every`` steps.
* **Logs**: tqdm progress, ``RUN_DIR/log.csv`` (losses averaged over each ``log_every`` steps),
  TensorBoard scalars and images under ``RUN_DIR/tensorboard``, visualisations every
  ``vis_every`` steps in ``RUN_DIR/vis/step-XXXXXXXX.png``, and ``RUN_DIR/run.json`` (config,
  command line, seed, versions, VGG19 status, data settings, each start/resume).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import random
import re
import signal
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from fomm.atomic import atomic_path, atomic_write_bytes
from fomm.config import Config, resolve_config
from fomm.errors import FommError
from fomm.models.checkpoint import model_states, read_checkpoint, resolve_device, save_checkpoint
from fomm.models.first_order_model import FirstOrderModel
from fomm.training import distributed as D
from fomm.training.generator_init import (
    GENERATOR_BATCHNORMS,
    GENERATOR_INITS,
    calibrate_norms,
    freeze_norms,
    generator_norms,
    identity_init,
)
from fomm.training.losses import DiscriminatorFullModel, GeneratorFullModel, perceptual_min_size

BEST_WINDOW = 100
CHECKPOINT_RE = re.compile(r"^step-(\d{8,})\.pt$")
ADVERSARIAL = ("gen_gan", "feature_matching")


@dataclass
class TrainOptions:
    """Settings of one ``fomm train`` run (the CLI flags); ``None`` keeps the config's value."""

    out: str | os.PathLike
    data: str | os.PathLike | None = None
    resume: bool = False
    max_steps: int | None = None
    batch_size: int | None = None
    epochs: int | None = None
    num_repeats: int | None = None
    lr_scale: float | None = None
    seed: int | None = None  # None: 0 for a new run, the run's own seed on resume
    workers: int = 0
    device: str = "auto"
    checkpoint_every: int = 500
    vis_every: int = 250
    log_every: int = 10
    keep: int = 3
    vgg19_weights: str | None = None
    init_from: str | os.PathLike | None = None  # a new run starts from these weights (matching tensors)
    compile: bool = False
    amp: bool | None = None  # None: on for CUDA, off elsewhere
    allow_resize: bool = False
    threads: int | None = None
    progress: bool = True
    tensorboard: bool = True
    command: list[str] | None = None  # recorded in run.json (default: sys.argv)

    def check(self) -> None:
        for name in ("max_steps", "batch_size", "epochs", "num_repeats"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or int(v) < 1):
                raise FommError(f"--{name.replace('_', '-')} must be a positive integer, got {v}")
        for name in ("checkpoint_every", "vis_every", "log_every", "workers"):
            if int(getattr(self, name)) < 0:
                raise FommError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if int(self.keep) < 1:
            raise FommError(f"--keep must be at least 1 (checkpoints kept), got {self.keep}")
        if self.lr_scale is not None and not (float(self.lr_scale) > 0 and math.isfinite(float(self.lr_scale))):
            raise FommError(f"--lr-scale must be a positive number, got {self.lr_scale}")
        if self.seed is not None and int(self.seed) < 0:
            raise FommError(f"--seed must be >= 0, got {self.seed}")


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    epoch: int
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    status: str
    losses: dict = field(default_factory=dict)


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


def _clean_temporaries(folder: Path) -> None:
    """Remove temporary files left by an interrupted atomic write."""
    if folder.is_dir():
        for p in folder.iterdir():
            if p.name.startswith(".") and ".tmp" in p.name:
                try:
                    p.unlink()
                except OSError:
                    pass


def _link_atomic(src: Path, dst: Path) -> None:
    """Make ``dst`` the same file as ``src`` (hard link, else copy), replacing it atomically."""
    with atomic_path(dst) as tmp:
        tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:
            import shutil

            shutil.copyfile(src, tmp)


def write_checkpoint(
    run_dir: str | os.PathLike,
    step: int,
    model: FirstOrderModel,
    extra: dict,
    keep: int,
    is_best: bool = False,
    keep_as: str | None = None,
) -> Path:
    """Write ``checkpoints/step-XXXXXXXX.pt`` atomically, point ``best.pt`` at it when ``is_best``
    (and ``checkpoints/<keep_as>``, never rotated, when given), and delete all but the newest
    ``keep`` step checkpoints.

    Every file appears under its final name only when complete (temporary file, fsync, rename),
    so a crash at any moment leaves the previous checkpoints intact and loadable.
    """
    path = checkpoint_dir(run_dir) / f"step-{int(step):08d}.pt"
    save_checkpoint(path, model, **extra)
    if is_best:
        _link_atomic(path, checkpoint_dir(run_dir) / "best.pt")
    if keep_as:
        _link_atomic(path, checkpoint_dir(run_dir) / keep_as)
    for _, old in list_checkpoints(run_dir)[: -int(keep)]:
        try:
            old.unlink()
        except OSError:
            pass
    return path


# ------------------------------------------------------------------------------------------------
# RNG states as weights_only-friendly values
# ------------------------------------------------------------------------------------------------
def capture_rng(transform_generator: torch.Generator | None) -> dict:
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
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"][: torch.cuda.device_count()])
    if transform_generator is not None and "transform" in state:
        transform_generator.set_state(state["transform"])


def _scheduler_state(scheduler) -> dict:
    state = scheduler.state_dict()
    state.pop("milestones", None)  # a Counter (not weights_only-loadable); it comes from the config
    return state


# ------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------
class _ListSampler(Sampler):
    def __init__(self, indices: list[int]):
        self.indices = indices

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _collate(items: list[dict]) -> dict:
    return {
        "source": torch.from_numpy(np.stack([it["source"] for it in items])),
        "driving": torch.from_numpy(np.stack([it["driving"] for it in items])),
        "name": [it.get("name", "") for it in items],
    }


def build_dataset(cfg: Config, seed: int, allow_resize: bool) -> tuple[Dataset, dict]:
    """The training dataset of ``cfg.dataset_params`` (repeated), and facts for ``run.json``."""
    from fomm.data.datasets import DatasetRepeater, FramesDataset

    dp = cfg.dataset_params
    if not dp.root_dir:
        raise FommError("no training data: pass --data DIR (or set dataset_params.root_dir in the config)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        base = FramesDataset(
            dp.root_dir,
            frame_shape=tuple(dp.frame_shape),
            id_sampling=dp.id_sampling,
            is_train=True,
            random_seed=int(seed),
            augmentation_params=dp.augmentation_params or None,
        )
    h, w = cfg.frame_shape
    entries = base.entries
    other = [e for e in entries if (getattr(e, "height", h), getattr(e, "width", w)) != (h, w)]
    if other and not allow_resize:
        e = other[0]
        raise FommError(
            f"{len(other)} of {len(entries)} training videos in {base.root_dir} have frames of another "
            f"size than the config's frame_shape {h}x{w} (e.g. {e.name}: {e.height}x{e.width}); "
            f"resize them to {h}x{w} or pass --allow-resize to resize frames when loading"
        )
    for wmsg in caught:
        if other and allow_resize or "another size" not in str(wmsg.message):
            warnings.warn(wmsg.message, wmsg.category, stacklevel=2)
    repeats = int(cfg.train_params.num_repeats)
    dataset = DatasetRepeater(base, repeats)
    info = {
        "root_dir": str(dp.root_dir),
        "train_folder": str(base.root_dir),
        "num_videos": len(entries),
        "num_items": len(base),
        "frame_shape": list(dp.frame_shape),
        "id_sampling": bool(dp.id_sampling),
        "augmentation_params": dp.augmentation_params,
        "num_repeats": repeats,
        "resized_videos": len(other),
    }
    return dataset, info


# ------------------------------------------------------------------------------------------------
# The trainer
# ------------------------------------------------------------------------------------------------
def effective_config(config, options: TrainOptions) -> Config:
    """The config with the run's overrides applied (data root, batch size, epochs, repeats, lr)."""
    cfg = resolve_config(config).copy()
    if options.data is not None:
        cfg.dataset_params.root_dir = str(options.data)
    tp = cfg.train_params
    if options.batch_size is not None:
        tp.batch_size = int(options.batch_size)
    if options.epochs is not None:
        tp.num_epochs = int(options.epochs)
    if options.num_repeats is not None:
        tp.num_repeats = int(options.num_repeats)
    if options.lr_scale is not None and float(options.lr_scale) != 1:
        s = float(options.lr_scale)
        tp.lr_generator, tp.lr_discriminator, tp.lr_kp_detector = (
            tp.lr_generator * s,
            tp.lr_discriminator * s,
            tp.lr_kp_detector * s,
        )
    if options.vgg19_weights is not None:
        tp.extra["vgg19_weights"] = str(options.vgg19_weights)
    return cfg


def _versions() -> dict:
    import fomm

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


class Trainer:
    """One training run in ``options.out``; :meth:`run` trains and returns a :class:`TrainResult`.

    ``hooks``: optional callables for tests and tools, ``after_step(trainer, losses)``; the step's
    batch and generator outputs are ``trainer.last_batch`` / ``trainer.last_generated``.
    """

    def __init__(self, config, options: TrainOptions, log: Callable[[str], None] | None = None):
        options.check()
        self.options = options
        self.run_dir = Path(options.out)
        self._log_fn = log
        self.hooks: dict[str, Callable] = {}
        self.config_in = config

    # -- small helpers --------------------------------------------------------------------------
    def say(self, message: str) -> None:
        if self.dist.is_main:
            if self._log_fn is not None:
                self._log_fn(message)
            else:
                from tqdm import tqdm

                tqdm.write(f"fomm train: {message}", file=sys.stderr)

    # -- setup ----------------------------------------------------------------------------------
    def setup(self) -> None:
        opts = self.options
        want = resolve_device(opts.device) if opts.device != "auto" or D.env_world_size() <= 1 else None
        if want is None:
            want = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
        if want.type == "mps" and D.env_world_size() > 1:
            raise FommError("distributed training supports cpu and cuda only; use --device cpu or cuda")
        self.dist = D.init_distributed(want.type)
        if want.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank if self.dist.enabled else (want.index or 0))
            torch.cuda.set_device(self.device)
            torch.backends.cudnn.benchmark = True
        else:
            self.device = want
        if self.device.type == "cpu":
            local_world = int(os.environ.get("LOCAL_WORLD_SIZE", self.dist.world_size))
            threads = opts.threads or max(1, (os.cpu_count() or 1) // max(1, local_world))
            torch.set_num_threads(int(threads))
        self.amp = (self.device.type == "cuda") if opts.amp is None else bool(opts.amp and self.device.type == "cuda")

        # run folder state and config
        self.resume_path, resume_data = None, None
        if self.dist.is_main:
            _clean_temporaries(checkpoint_dir(self.run_dir))
        existing = list_checkpoints(self.run_dir)
        if existing and not opts.resume:
            raise FommError(
                f"{self.run_dir} already holds a training run ({existing[-1][1].name}); pass --resume "
                f"to continue it or choose another --out"
            )
        found = latest_checkpoint(self.run_dir) if opts.resume else None
        if opts.resume and found is not None:
            self.resume_path, resume_data = found
            stored = Config.from_dict(resume_data["config"])
            stored.name = resume_data.get("config_name")
            if self.config_in is not None:
                given = resolve_config(self.config_in)
                if given.model_params.to_dict() != stored.model_params.to_dict():
                    raise FommError(
                        f"--config does not match the model of the run in {self.run_dir} "
                        f"(model_params differ); drop --config to resume with the stored one, or "
                        f"choose another --out"
                    )
            if opts.lr_scale is not None:
                self.say("note: --lr-scale is ignored on --resume (the stored optimizer learning rates are used)")
                opts.lr_scale = None
            stored_seed = resume_data.get("train_meta", {}).get("seed")
            if stored_seed is not None:
                if opts.seed is not None and int(opts.seed) != int(stored_seed):
                    self.say(f"note: --seed {opts.seed} is ignored on --resume; the run's seed {stored_seed} is kept")
                opts.seed = int(stored_seed)
            if opts.data is None:
                stored_root = stored.dataset_params.root_dir
                if stored_root is None or not Path(stored_root).exists():
                    raise FommError(f"the data folder of the run ({stored_root}) is gone; pass --data DIR")
            self.cfg = effective_config(stored, opts)
        else:
            if self.config_in is None:
                raise FommError("no config: pass --config NAME_OR_YAML (e.g. puppet-64)")
            if opts.resume:
                self.say(f"--resume: no checkpoint in {self.run_dir}; starting a new run")
            self.cfg = effective_config(self.config_in, opts)
        if opts.seed is None:
            opts.seed = 0
        cfg, tp = self.cfg, self.cfg.train_params

        # seeds: model init is the same on every rank; data/warp streams differ per rank
        seed = int(opts.seed)
        random.seed(seed + self.dist.rank)
        np.random.seed((seed + self.dist.rank) % 2**32)
        torch.manual_seed(seed)
        self.transform_generator = torch.Generator().manual_seed(seed * 1_000_003 + 7919 * (self.dist.rank + 1))

        # data
        if tp.batch_size % self.dist.world_size:
            raise FommError(
                f"batch_size {tp.batch_size} is not divisible by the {self.dist.world_size} processes; "
                f"pass --batch-size as a multiple of --nproc_per_node"
            )
        self.batch_per_rank = tp.batch_size // self.dist.world_size
        self.dataset, self.data_info = build_dataset(cfg, seed, opts.allow_resize)
        per_rank_items = len(self.dataset) // self.dist.world_size
        self.steps_per_epoch = per_rank_items // self.batch_per_rank
        if self.steps_per_epoch < 1:
            raise FommError(
                f"the dataset has {len(self.dataset)} samples per epoch ({self.data_info['num_items']} "
                f"videos x {tp.num_repeats} repeats), fewer than one batch of {tp.batch_size}; lower "
                f"--batch-size or raise --num-repeats"
            )
        self.data_info.update(
            {
                "batch_size": int(tp.batch_size),
                "batch_per_process": self.batch_per_rank,
                "steps_per_epoch": self.steps_per_epoch,
                "workers": int(opts.workers),
            }
        )

        # model
        self._check_model_config()
        self.model = FirstOrderModel(cfg, with_discriminator=True).to(self.device)
        if tp.generator_init not in GENERATOR_INITS:
            raise FommError(
                f"train_params.generator_init is {tp.generator_init!r}; use one of {', '.join(GENERATOR_INITS)}"
            )
        if tp.generator_batchnorm not in GENERATOR_BATCHNORMS:
            raise FommError(
                f"train_params.generator_batchnorm is {tp.generator_batchnorm!r}; use one of "
                f"{', '.join(GENERATOR_BATCHNORMS)}"
            )
        if tp.generator_init == "identity":
            identity_init(self.model.generator)
        self.init_report = None
        if opts.init_from is not None:
            if resume_data is not None:
                self.say(f"note: --init-from is ignored on --resume (the run's checkpoint {self.resume_path} is used)")
            else:
                self.init_report = self._init_from(Path(opts.init_from))
        self.use_gan = tp.loss_weights.generator_gan != 0
        vgg_status: dict = {"pretrained": False, "source": "not used (perceptual weights are all 0)"}
        vgg = None
        if sum(tp.loss_weights.perceptual) != 0:
            from fomm.training.vgg import build_vgg19

            vgg, vgg_status = build_vgg19(opts.vgg19_weights, tp.extra.get("vgg19_weights"))
            vgg = vgg.to(self.device)
            if vgg_status["pretrained"]:
                self.say(f"perceptual loss: ImageNet VGG19 from {vgg_status['path']} ({vgg_status['found_via']})")
            else:
                self.say(
                    "perceptual loss: NO VGG19 weights found -> using a fixed random-weight VGG19 substitute "
                    "(seeded; weaker than ImageNet features). Provide torchvision's vgg19-*.pth with "
                    "--vgg19-weights, train_params.vgg19_weights or FOMM_VGG19_WEIGHTS for the real loss."
                )
        self.vgg_status = vgg_status

        if self.dist.enabled:
            self.model.kp_detector = D.convert_sync_batchnorm(self.model.kp_detector, self.device.type)
            self.model.generator = D.convert_sync_batchnorm(self.model.generator, self.device.type)
        kp, gen, disc = self.model.kp_detector, self.model.generator, self.model.discriminator
        # found after the sync-BN conversion, which replaces the modules
        self.frozen_norms = generator_norms(gen) if tp.generator_batchnorm == "frozen" else []
        self.model.train()
        freeze_norms(self.frozen_norms)
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            kp = DDP(kp, device_ids=ids)
            gen = DDP(gen, device_ids=ids)
            disc = DDP(disc, device_ids=ids) if self.use_gan else disc
        if opts.compile:
            # The discriminator stays eager: a spectral-norm power iteration updates its buffers between
            # its two calls in one step, which a compiled graph's saved tensors do not allow.
            kp, gen = torch.compile(kp), torch.compile(gen)
        self.gen_full = GeneratorFullModel(kp, gen, disc, tp, vgg=vgg, transform_generator=self.transform_generator)
        self.gen_full.pyramid.to(self.device)
        self.disc_full = DiscriminatorFullModel(kp, gen, disc, tp).to(self.device) if self.use_gan else None

        # optimizers and schedulers (per module, as train.py)
        betas = (0.5, 0.999)
        m = self.model
        self.optimizers = {
            "generator": torch.optim.Adam(m.generator.parameters(), lr=tp.lr_generator, betas=betas),
            "discriminator": torch.optim.Adam(m.discriminator.parameters(), lr=tp.lr_discriminator, betas=betas),
            "kp_detector": torch.optim.Adam(m.kp_detector.parameters(), lr=tp.lr_kp_detector, betas=betas),
        }
        self.schedulers = {
            k: torch.optim.lr_scheduler.MultiStepLR(o, list(tp.epoch_milestones), gamma=0.1)
            for k, o in self.optimizers.items()
        }
        self.scaler_g = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.scaler_d = torch.amp.GradScaler("cuda", enabled=self.amp)

        # counters
        self.step = 0
        self.epoch = 0
        self.epoch_step = 0
        self.loss_window: deque = deque(maxlen=BEST_WINDOW)
        self.best_metric = math.inf
        self.best_step = -1
        self.last_checkpoint: Path | None = None
        self.saved_step = -1
        if resume_data is not None:
            self._load_state(resume_data)
        # statistics come with the weights of --init-from; otherwise they are measured on the first batch
        self.norms_calibrated = bool(self.step > 0 or not self.frozen_norms or self.init_report)
        self.total_steps = int(tp.num_epochs) * self.steps_per_epoch
        if opts.max_steps is not None:
            self.total_steps = min(self.total_steps, int(opts.max_steps))

    def _check_model_config(self) -> None:
        cfg, tp = self.cfg, self.cfg.train_params
        h, w = cfg.frame_shape
        for name, section in (
            ("kp_detector_params", cfg.model_params.kp_detector_params),
            ("dense_motion_params", cfg.model_params.generator_params.dense_motion_params),
        ):
            if section is None:
                continue
            size = min(h, w) * section.scale_factor
            if abs(size - round(size)) > 1e-6 or round(size) % (2**section.num_blocks):
                raise FommError(
                    f"{name}: frame {h}x{w} x scale_factor {section.scale_factor} = {size:g} is not "
                    f"divisible by 2**num_blocks = {2**section.num_blocks}; change scale_factor, "
                    f"num_blocks or frame_shape"
                )
        if tp.loss_weights.generator_gan != 0:
            dp = cfg.model_params.discriminator_params
            for scale in dp.scales:
                size = int(min(h, w) * scale)
                for i in range(dp.num_blocks):
                    size -= 3
                    if size >= 1 and i != dp.num_blocks - 1:
                        size //= 2
                if size < 1:
                    raise FommError(
                        f"the discriminator ({dp.num_blocks} blocks of 4x4 convs and poolings) does not "
                        f"fit {h}x{w} frames at scale {scale}; lower discriminator_params.num_blocks or "
                        f"drop that scale"
                    )
        if sum(tp.loss_weights.perceptual) != 0:
            need = perceptual_min_size(tp.loss_weights.perceptual)
            smallest = min(h, w) * min(tp.scales)
            if smallest < need:
                raise FommError(
                    f"train_params.scales reach {smallest:g} px but the VGG19 layers with non-zero "
                    f"perceptual weight need at least {need} px; drop the smallest scale or that weight"
                )

    def _init_from(self, path: Path) -> dict:
        """Copy every tensor of ``path`` whose name and shape match into the new model."""
        if not path.is_file():
            raise FommError(f"--init-from: checkpoint not found: {path}")
        states = model_states(read_checkpoint(path), path)
        report = {"checkpoint": str(path)}
        for part in ("kp_detector", "generator", "discriminator"):
            own = getattr(self.model, part).state_dict()
            given = states.get(part) or {}
            take = {k: v for k, v in given.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
            if take:
                getattr(self.model, part).load_state_dict({**own, **{k: v.to(own[k].dtype) for k, v in take.items()}})
            report[part] = {
                "loaded": len(take),
                "of": len(own),
                "kept_new": sorted(set(own) - set(take)),
                "unused": sorted(set(given) - set(take)),
            }
        if not report["generator"]["loaded"] and not report["kp_detector"]["loaded"]:
            raise FommError(
                f"--init-from: no tensor of {path} fits this model; check that it is a FOMM checkpoint "
                f"of the same family"
            )
        self.say(
            "initialised from "
            + str(path)
            + ": "
            + ", ".join(
                f"{part} {report[part]['loaded']}/{report[part]['of']} tensors"
                for part in ("kp_detector", "generator", "discriminator")
            )
        )
        return report

    def _load_state(self, data: dict) -> None:
        m = self.model
        for part in ("generator", "kp_detector", "discriminator"):
            if isinstance(data.get(part), dict):
                getattr(m, part).load_state_dict(data[part])
        for name, opt in self.optimizers.items():
            key = "optimizer_" + name
            if isinstance(data.get(key), dict):
                opt.load_state_dict(data[key])
        for name, sched in self.schedulers.items():
            state = data.get("schedulers", {}).get(name)
            if state:
                sched.load_state_dict(state)
        for name, scaler in (("scaler_g", self.scaler_g), ("scaler_d", self.scaler_d)):
            if self.amp and data.get(name):
                scaler.load_state_dict(data[name])
        self.step = int(data["step"])
        self.epoch = int(data.get("epoch", 0))
        self.epoch_step = int(data.get("epoch_step", 0))
        self.loss_window.extend(float(v) for v in data.get("loss_window", []))
        self.best_metric = float(data.get("best_metric", math.inf))
        self.best_step = int(data.get("best_step", -1))
        rng = data.get("rng") or []
        if self.dist.rank < len(rng):
            restore_rng(rng[self.dist.rank], self.transform_generator)
        else:
            self.say("note: the checkpoint has no RNG state for this process; the warp noise is re-seeded")
        old_world = int(data.get("train_meta", {}).get("world_size", self.dist.world_size))
        if (
            old_world != self.dist.world_size
            or int(data.get("train_meta", {}).get("batch_size", self.cfg.train_params.batch_size))
            != self.cfg.train_params.batch_size
        ):
            self.say(
                "note: the process count or batch size changed since the checkpoint; the run continues but "
                "is not an exact continuation"
            )
        self.saved_step = self.step
        self.last_checkpoint = self.resume_path

    # -- data loading ---------------------------------------------------------------------------
    def _loader(self, epoch: int, skip_batches: int) -> DataLoader:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        sampler = DistributedSampler(
            self.dataset,
            num_replicas=self.dist.world_size,
            rank=self.dist.rank,
            shuffle=True,
            seed=int(self.options.seed),
            drop_last=True,
        )
        sampler.set_epoch(epoch)
        indices = list(sampler)[: self.steps_per_epoch * self.batch_per_rank]
        indices = indices[skip_batches * self.batch_per_rank :]
        workers = int(self.options.workers)
        return DataLoader(
            self.dataset,
            batch_size=self.batch_per_rank,
            sampler=_ListSampler(indices),
            num_workers=workers,
            drop_last=True,
            collate_fn=_collate,
            pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(int(self.options.seed) + epoch),
            persistent_workers=False,
        )

    # -- checkpoints ----------------------------------------------------------------------------
    def _best_metric_value(self) -> float:
        return float(np.mean(self.loss_window)) if self.loss_window else math.inf

    def save(self, reason: str) -> Path | None:
        """Write a step checkpoint (rank 0), rotate old ones and update ``best.pt``."""
        rngs = D.gather_objects(capture_rng(self.transform_generator), self.dist)
        if self.step == self.saved_step:
            return self.last_checkpoint
        finite = all(bool(torch.isfinite(p).all()) for p in self.model.parameters())
        if not D.all_true(finite, self.dist, self.device):
            raise FommError(self._nan_message("the weights", self.step))
        metric = self._best_metric_value()
        is_best = metric < self.best_metric
        if is_best:
            self.best_metric, self.best_step = metric, self.step
        path = checkpoint_dir(self.run_dir) / f"step-{self.step:08d}.pt"
        if self.dist.is_main:
            extra = {
                "optimizer_generator": self.optimizers["generator"].state_dict(),
                "optimizer_discriminator": self.optimizers["discriminator"].state_dict(),
                "optimizer_kp_detector": self.optimizers["kp_detector"].state_dict(),
                "schedulers": {k: _scheduler_state(s) for k, s in self.schedulers.items()},
                "epoch": int(self.epoch),
                "epoch_step": int(self.epoch_step),
                "step": int(self.step),
                "rng": rngs,
                "loss_window": [float(v) for v in self.loss_window],
                "best_metric": float(self.best_metric),
                "best_step": int(self.best_step),
                "train_meta": {
                    "world_size": self.dist.world_size,
                    "batch_size": int(self.cfg.train_params.batch_size),
                    "seed": int(self.options.seed),
                    "steps_per_epoch": self.steps_per_epoch,
                    "reason": reason,
                    "running_loss": float(metric) if math.isfinite(metric) else None,
                    "vgg19": self.vgg_status.get("source", ""),
                },
            }
            if self.amp:
                extra["scaler_g"] = self.scaler_g.state_dict()
                extra["scaler_d"] = self.scaler_d.state_dict()
            freq = int(self.cfg.train_params.checkpoint_freq or 0)
            keep_as = (
                f"epoch-{self.epoch:04d}.pt" if reason == "epoch-end" and freq > 0 and self.epoch % freq == 0 else None
            )  # the original's checkpoint every checkpoint_freq epochs, kept for good
            write_checkpoint(self.run_dir, self.step, self.model, extra, int(self.options.keep), is_best, keep_as)
        D.barrier(self.dist)
        self.saved_step = self.step
        self.last_checkpoint = path
        self._write_run_json("running")  # current step, best and last checkpoint for anyone watching
        return path

    def _nan_message(self, what: str, step: int | None = None) -> str:
        last = self.last_checkpoint
        keep = f"the last good checkpoint is {last}" if last else "no checkpoint was written yet"
        step = self.step + 1 if step is None else step
        return (
            f"{what} became NaN/inf at step {step} (epoch {self.epoch + 1}); training stopped and {keep}; "
            f"lower the learning rate (e.g. --lr-scale 0.5) and continue with --resume, or check the data"
        )

    # -- logging --------------------------------------------------------------------------------
    def _open_logs(self) -> None:
        self.writer = None
        self.csv_path = self.run_dir / "log.csv"
        if not self.dist.is_main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        lw = self.cfg.train_params.loss_weights
        active = []
        if sum(lw.perceptual):
            active.append("perceptual")
        if lw.pixel:
            active.append("pixel")
        if self.use_gan:
            active.append("gen_gan")
            if sum(lw.feature_matching):
                active.append("feature_matching")
        if lw.equivariance_value:
            active.append("equivariance_value")
        if lw.equivariance_jacobian and self.cfg.model_params.common_params.estimate_jacobian:
            active.append("equivariance_jacobian")
        if self.use_gan:
            active.append("disc_gan")
        self.loss_names = active
        self.csv_fields = (
            ["step", "epoch", "lr_generator", "lr_kp_detector"]
            + active
            + ["loss_generator", "running_loss", "seconds", "samples_per_s"]
        )
        # keep rows up to the resumed step only (a killed run may have logged past its checkpoint)
        rows = []
        if self.csv_path.is_file() and self.step > 0:
            with open(self.csv_path, newline="") as fh:
                rows = [r for r in csv.DictReader(fh) if r.get("step", "").isdigit() and int(r["step"]) <= self.step]
        buf = io.StringIO()
        wr = csv.DictWriter(buf, fieldnames=self.csv_fields, extrasaction="ignore")
        wr.writeheader()
        wr.writerows(rows)
        atomic_write_bytes(self.csv_path, buf.getvalue().encode())
        if self.options.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(
                    str(self.run_dir / "tensorboard"), purge_step=self.step + 1 if self.step > 0 else None
                )
            except ImportError:  # pragma: no cover - tensorboard missing
                self.say("note: tensorboard is not installed; TensorBoard logging is off")

    def _write_run_json(self, status: str, extra: dict | None = None) -> None:
        if not self.dist.is_main:
            return
        path = self.run_dir / "run.json"
        previous = {}
        if path.is_file():
            try:
                previous = json.loads(path.read_text())
            except (OSError, ValueError):
                previous = {}
        runs = previous.get("runs", [])
        if extra and extra.get("new_run"):
            runs.append(
                {
                    "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                    "start_step": self.step,
                    "resumed_from": str(self.resume_path) if self.resume_path else None,
                    "command": list(self.options.command if self.options.command is not None else sys.argv),
                    "world_size": self.dist.world_size,
                }
            )
        elif runs and status != "running":
            runs[-1].update({"ended": time.strftime("%Y-%m-%dT%H:%M:%S"), "end_step": self.step})
        opts = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self.options).items()}
        info = {
            "status": status,
            "step": self.step,
            "epoch": self.epoch,
            "total_steps": self.total_steps,
            "config_name": self.cfg.name,
            "config": self.cfg.to_dict(),
            "command": list(self.options.command if self.options.command is not None else sys.argv),
            "seed": int(self.options.seed),
            "options": opts,
            "versions": _versions(),
            "device": str(self.device),
            "world_size": self.dist.world_size,
            "backend": self.dist.backend,
            "amp": self.amp,
            "compile": bool(self.options.compile),
            "threads": torch.get_num_threads(),
            "vgg19": self.vgg_status,
            "data": self.data_info,
            "init_from": self.init_report,
            "best_checkpoint_rule": f"lowest mean over the last {BEST_WINDOW} steps of the non-adversarial "
            f"generator loss (perceptual, pixel and equivariance terms; all generator "
            f"terms when the perceptual weights are 0)",
            "best": {
                "step": self.best_step,
                "running_loss": self.best_metric if math.isfinite(self.best_metric) else None,
            },
            "last_checkpoint": str(self.last_checkpoint) if self.last_checkpoint else None,
            "runs": runs,
        }
        atomic_write_bytes(path, (json.dumps(info, indent=2, default=str) + "\n").encode())

    def _log_row(self, sums: dict, count: int, seconds: float) -> dict:
        names = list(sums)
        vec = torch.tensor([sums[n] for n in names] + [float(count)], dtype=torch.float64, device=self.device)
        vec = D.sum_tensor(vec, self.dist).cpu()
        n = max(1.0, float(vec[-1]))
        means = {name: float(vec[i]) / n for i, name in enumerate(names)}
        row = {
            "step": self.step,
            "epoch": self.epoch + 1,
            "lr_generator": self.optimizers["generator"].param_groups[0]["lr"],
            "lr_kp_detector": self.optimizers["kp_detector"].param_groups[0]["lr"],
            **means,
            "running_loss": self._best_metric_value(),
            "seconds": round(seconds, 4),
            "samples_per_s": round(count * self.batch_per_rank / max(seconds, 1e-9), 3),
        }
        if self.dist.is_main:
            with open(self.csv_path, "a", newline="") as fh:
                csv.DictWriter(fh, fieldnames=self.csv_fields, extrasaction="ignore").writerow(
                    {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
                )
            if self.writer is not None:
                for name, v in means.items():
                    self.writer.add_scalar(f"loss/{name}", v, self.step)
                self.writer.add_scalar("loss/running", row["running_loss"], self.step)
                self.writer.add_scalar("lr/generator", row["lr_generator"], self.step)
                self.writer.add_scalar("speed/samples_per_s", row["samples_per_s"], self.step)
        return means

    def _visualize(self, batch: dict, generated: dict) -> None:
        if not self.dist.is_main:
            return
        from fomm.training.visualize import make_visualization, save_png

        kp_size = (self.cfg.visualizer_params or {}).get("kp_size")
        image = make_visualization(batch, generated, kp_size=None if kp_size is None else max(2, int(kp_size) // 2))
        save_png(self.run_dir / "vis" / f"step-{self.step:08d}.png", image)
        if self.writer is not None:
            self.writer.add_image("visualization", image, self.step, dataformats="HWC")

    # -- the loop -------------------------------------------------------------------------------
    def _train_step(self, batch: dict) -> tuple[dict, dict]:
        x = {
            "source": batch["source"].to(self.device, non_blocking=True),
            "driving": batch["driving"].to(self.device, non_blocking=True),
        }
        opt_g, opt_kp, opt_d = (self.optimizers[k] for k in ("generator", "kp_detector", "discriminator"))
        if not self.norms_calibrated:
            calibrate_norms(self.model, self.frozen_norms, lambda: self.gen_full(x))
            self.norms_calibrated = True
        with torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.amp):
            losses_g, generated = self.gen_full(x)
        if not losses_g:
            raise FommError("every generator loss weight is 0; set perceptual, equivariance or generator_gan weights")
        loss = sum(v.mean().float() for v in losses_g.values())
        if not D.all_true(bool(torch.isfinite(loss.detach())), self.dist, self.device):
            raise FommError(self._nan_message("the generator loss " + _fmt_losses(losses_g)))
        opt_g.zero_grad(set_to_none=True)
        opt_kp.zero_grad(set_to_none=True)
        self.scaler_g.scale(loss).backward()
        self.scaler_g.step(opt_g)
        self.scaler_g.step(opt_kp)
        self.scaler_g.update()
        opt_g.zero_grad(set_to_none=True)
        opt_kp.zero_grad(set_to_none=True)

        values = {k: float(v.detach().mean()) for k, v in losses_g.items()}
        if self.use_gan:
            opt_d.zero_grad(set_to_none=True)
            with torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.amp):
                losses_d = self.disc_full(x, generated)
            loss_d = sum(v.mean().float() for v in losses_d.values())
            if not D.all_true(bool(torch.isfinite(loss_d.detach())), self.dist, self.device):
                raise FommError(self._nan_message("the discriminator loss"))
            self.scaler_d.scale(loss_d).backward()
            self.scaler_d.step(opt_d)
            self.scaler_d.update()
            opt_d.zero_grad(set_to_none=True)
            values.update({k: float(v.detach().mean()) for k, v in losses_d.items()})
        return values, generated

    def _metric(self, values: dict) -> float:
        gen_terms = {k: v for k, v in values.items() if k != "disc_gan"}
        if "perceptual" in gen_terms:
            return sum(v for k, v in gen_terms.items() if k not in ADVERSARIAL)
        return sum(gen_terms.values())

    def run(self) -> TrainResult:
        try:
            self.setup()
            return self._run()
        finally:
            writer = getattr(self, "writer", None)
            if writer is not None:
                writer.close()
            if getattr(self, "dist", None) is not None:
                D.shutdown_distributed(self.dist)

    def _run(self) -> TrainResult:
        from tqdm import tqdm

        opts, tp = self.options, self.cfg.train_params
        self._open_logs()
        self._write_run_json("running", {"new_run": True})
        if self.dist.is_main:
            what = "resuming from " + str(self.resume_path) if self.resume_path else "starting"
            self.say(
                f"{what}: step {self.step}/{self.total_steps}, epoch {self.epoch + 1}/{tp.num_epochs}, "
                f"{self.steps_per_epoch} steps per epoch, batch {tp.batch_size}"
                f"{f' ({self.dist.world_size} processes)' if self.dist.enabled else ''}, device {self.device}"
                f"{', amp' if self.amp else ''}"
            )
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            disable=not (opts.progress and self.dist.is_main),
            dynamic_ncols=True,
            desc="train",
            file=sys.stderr,
        )
        sums: dict[str, float] = {}
        count, t_log = 0, time.perf_counter()
        status = "finished"
        last_values: dict = {}
        batch = generated = None
        stop = _StopSignal()  # SIGTERM (a scheduler's preemption, kill): checkpoint and stop cleanly
        try:
            while self.epoch < int(tp.num_epochs) and self.step < self.total_steps and not stop.seen:
                loader = self._loader(self.epoch, self.epoch_step)
                for batch in loader:
                    if self.step >= self.total_steps or stop.check(self.dist, self.device):
                        break
                    values, generated = self._train_step(batch)
                    self.last_batch, self.last_generated = batch, generated
                    self.step += 1
                    self.epoch_step += 1
                    last_values = values
                    self.loss_window.append(self._metric(values))
                    for k, v in values.items():
                        sums[k] = sums.get(k, 0.0) + v
                    sums["loss_generator"] = sums.get("loss_generator", 0.0) + sum(
                        v for k, v in values.items() if k != "disc_gan"
                    )
                    count += 1
                    bar.update(1)
                    if opts.log_every and self.step % opts.log_every == 0:
                        means = self._log_row(sums, count, time.perf_counter() - t_log)
                        bar.set_postfix({k: f"{v:.3g}" for k, v in means.items()}, refresh=False)
                        sums, count, t_log = {}, 0, time.perf_counter()
                    if opts.vis_every and self.step % opts.vis_every == 0:
                        self._visualize(batch, generated)
                    if opts.checkpoint_every and self.step % opts.checkpoint_every == 0:
                        self.save("interval")
                    hook = self.hooks.get("after_step")
                    if hook is not None:
                        hook(self, values)
                if self.epoch_step >= self.steps_per_epoch:
                    with warnings.catch_warnings():  # the discriminator's optimizer never steps without GAN
                        warnings.filterwarnings("ignore", message=".*lr_scheduler.step.*")
                        for s in self.schedulers.values():
                            s.step()
                    self.epoch += 1
                    self.epoch_step = 0
                    self.saved_step = -1 if self.saved_step == self.step else self.saved_step
                    self.save("epoch-end")
            if stop.seen:
                status = f"stopped by {stop.name}"
            elif self.step >= self.total_steps and self.epoch < int(tp.num_epochs):
                status = "stopped at --max-steps"
            if count:
                self._log_row(sums, count, time.perf_counter() - t_log)
            if self.step != self.saved_step:
                self.save("end")
            if batch is not None and generated is not None and opts.vis_every and self.step % opts.vis_every:
                self._visualize(batch, generated)
        except FommError:
            status = "failed"
            bar.close()
            self._write_run_json(status)
            raise
        except KeyboardInterrupt:
            status = "interrupted"
            bar.close()
            self._write_run_json(status)
            raise
        finally:
            stop.restore()
        bar.close()
        self._write_run_json(status)
        best = checkpoint_dir(self.run_dir) / "best.pt"
        self.say(
            f"{status} at step {self.step} ({self.epoch} of {tp.num_epochs} epochs done); last checkpoint {self.last_checkpoint}"
            f"{f', best {best} (step {self.best_step})' if best.is_file() else ''}"
            f"{f'; continue with: fomm train --out {self.run_dir} --resume' if stop.seen else ''}"
        )
        return TrainResult(
            self.run_dir,
            self.step,
            self.epoch,
            self.last_checkpoint,
            best if best.is_file() else None,
            status,
            last_values,
        )


class _StopSignal:
    """Turns SIGTERM into a request to stop after the current step (main thread only). Under
    torchrun every process checks every step whether any process got it, so all stop together."""

    def __init__(self):
        self.name: str | None = None
        self.seen = False
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handler)

    def _handler(self, signum, frame) -> None:
        self.name = signal.Signals(signum).name

    def check(self, info, device) -> bool:
        self.seen = self.seen or not D.all_true(self.name is None, info, device)
        if self.seen and self.name is None:
            self.name = "SIGTERM (another process)"
        return self.seen

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None


def _fmt_losses(losses: dict) -> str:
    return "(" + ", ".join(f"{k}={float(v.detach().mean()):.4g}" for k, v in losses.items()) + ")"


def train(config, data=None, out=None, **options: Any) -> TrainResult:
    """Train a model: ``train('puppet-64', data='data/puppet64', out='runs/p64', max_steps=1000)``.

    ``config``: a preset name, YAML path, dict or :class:`~fomm.config.Config` (may be None with
    ``resume=True`` and an existing run). Other keyword arguments are :class:`TrainOptions` fields.
    """
    if out is None:
        raise FommError("train() needs out=RUN_DIR")
    opts = TrainOptions(out=out, data=data, **options)
    return Trainer(config, opts).run()
