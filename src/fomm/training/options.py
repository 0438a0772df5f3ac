"""The settings and the result of one ``fomm train`` run, and the config it trains with."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from fomm.config import Config, resolve_config
from fomm.errors import FommError
from fomm.training.speed import MEMORY_FORMATS, PRECISIONS


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
    # CPU autocast: fp32 | bf16 | auto (bf16 where the CPU has it natively); None: speed.DEFAULT_PRECISION (auto)
    # for a new run, the run's own on resume
    precision: str | None = None
    memory_format: str = "auto"  # contiguous | channels_last | auto (channels_last on the CPU)
    allow_resize: bool = False
    threads: int | None = None
    progress: bool = True
    tensorboard: bool = True
    command: list[str] | None = None  # recorded in run.json (default: sys.argv)

    def check(self) -> None:
        """Check the numeric options (text that is a whole number or a number becomes one), the
        choices and ``out``; a FommError names the option, the value and what is allowed."""
        minimum = dict(max_steps=1, batch_size=1, epochs=1, num_repeats=1, keep=1, seed=0)
        minimum.update(checkpoint_every=0, vis_every=0, log_every=0, workers=0)
        for name, low in minimum.items():
            if getattr(self, name) is not None:
                setattr(self, name, _whole(name, getattr(self, name), low))
        if self.lr_scale is not None:
            self.lr_scale = _positive_number("lr_scale", self.lr_scale)
        if self.precision is not None and self.precision not in PRECISIONS:
            raise FommError(f"--precision is {self.precision!r}; use one of {', '.join(PRECISIONS)}")
        if self.memory_format not in MEMORY_FORMATS:
            raise FommError(f"--memory-format is {self.memory_format!r}; use one of {', '.join(MEMORY_FORMATS)}")
        if Path(self.out).exists() and not Path(self.out).is_dir():
            raise FommError(f"--out {self.out} is a file; give a folder for the run (it is created when missing)")


def options_from_args(cls, args, **others):
    """``cls`` (:class:`TrainOptions`, or TPSMM's) from parsed ``fomm train`` arguments: each field
    from the argument of its name; ``others``: the fields that no flag gives as they are."""
    names = [f.name for f in fields(cls) if f.name not in others]
    return cls(**{name: getattr(args, name) for name in names}, **others)


def _bad_option(name: str, value, allowed: str) -> FommError:
    flag = "--" + name.replace("_", "-")
    return FommError(f"{name} is {value!r}; expected {allowed} ({flag} on the command line)")


def _whole(name: str, value, low: int) -> int:
    """``value`` as an int >= ``low`` (also from text such as ``"8"``), else a FommError."""
    try:
        number = float(value) if isinstance(value, str) else value
        ok = not isinstance(value, bool) and float(number).is_integer() and int(number) >= low
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise _bad_option(name, value, f"a whole number >= {low}")
    return int(number)


def _positive_number(name: str, value) -> float:
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not (number > 0 and math.isfinite(number)):
        raise _bad_option(name, value, "a finite number > 0")
    return number


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    epoch: int
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    status: str
    losses: dict = field(default_factory=dict)


def effective_config(config, options: TrainOptions) -> Config:
    """The config with the run's overrides applied (data root, batch size, epochs, repeats, lr)."""
    cfg = resolve_config(config).copy()
    if options.data is not None:
        cfg.dataset_params.root_dir = str(options.data)
    if cfg.dataset_params.root_dir:  # absolute, so that --resume works from any working directory
        cfg.dataset_params.root_dir = os.path.abspath(cfg.dataset_params.root_dir)
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
