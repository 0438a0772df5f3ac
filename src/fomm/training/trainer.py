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
  the data (:mod:`fomm.training.loader`); only rank 0 writes.
* **Mixed precision** on CUDA (autocast float16 + GradScaler; ``--no-amp`` turns it off) and
  optional ``torch.compile`` of the keypoint detector and generator (slow to compile on a CPU).
* **Checkpoints** in our format (the config is embedded, ``fomm.load_model(path)`` needs nothing
  else), with the optimizers, schedulers, the number of finished epochs (``epoch``), the position
  inside the current epoch (``epoch_step``), the global ``step`` and every process's RNG states,
  every ``checkpoint_every`` steps, at each epoch end and when training stops. The run folder's
  files (checkpoint rotation, ``best.pt``, ``epoch-EEEE.pt``, ``run.json``, ``log.csv``,
  TensorBoard) are described in :mod:`fomm.training.run_dir`.
* **Best checkpoint**: the lowest running mean, over the last :data:`BEST_WINDOW` steps, of the
  non-adversarial generator loss (perceptual, pixel and equivariance terms; the whole generator loss when
  the perceptual weights are all zero). Adversarial terms are left out because they measure the
  current discriminator, not the reconstruction, and are not comparable over time.
* **Exact resume** (``resume=True``): the run continues as if it had never stopped (the batch
  order of :mod:`fomm.training.loader`, the warp noise from its own generator, the RNG states of
  the checkpoint); so N steps straight and N/2 + N/2 give the same weights (bitwise on the CPU).
* **Bad data / divergence**: no usable video, frames of another size than ``frame_shape``
  (unless ``allow_resize``), a dataset smaller than one batch, and a non-finite loss stop with a
  :class:`~fomm.errors.FommError`; a divergence never overwrites the last good checkpoint.
* **SIGTERM** finishes the current step, checkpoints it and stops (status ``stopped by SIGTERM``).
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
import warnings
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from fomm.config import Config, resolve_config
from fomm.cpu import allocator_info, tune_allocator
from fomm.errors import FommError, plural
from fomm.training import distributed as D
from fomm.training import model_setup as M
from fomm.training import run_dir as R
from fomm.training import speed as S
from fomm.training.generator_init import calibrate_norms
from fomm.training.loader import build_dataset, epoch_loader
from fomm.training.options import TrainOptions, TrainResult, effective_config
from fomm.training.run_dir import (  # noqa: F401 - re-exported: the public API of this module
    capture_rng,
    checkpoint_dir,
    latest_checkpoint,
    list_checkpoints,
    restore_rng,
    write_checkpoint,
)
from fomm.training.visualize import make_visualization, save_png

__all__ = ["BEST_WINDOW", "TrainOptions", "TrainResult", "Trainer", "effective_config", "train"]

BEST_WINDOW = 100
ADVERSARIAL = ("gen_gan", "feature_matching")


class Trainer:
    """One training run in ``options.out``; :meth:`run` trains and returns a :class:`TrainResult`.

    ``hooks``: optional callables for tests and tools, ``after_step(trainer, losses)``; the step's
    batch and generator outputs are ``trainer.last_batch`` / ``trainer.last_generated``.
    """

    def __init__(self, config, options: TrainOptions, log: Callable[[str], None] | None = None):
        options.check()
        self.options = options
        self.run_dir = Path(os.path.abspath(options.out))
        self._log_fn = log
        self.hooks: dict[str, Callable] = {}
        self.config_in = config
        self.logs: R.RunLog | None = None

    def say(self, message: str) -> None:
        if self.dist.is_main:
            if self._log_fn is not None:
                self._log_fn(message)
            else:
                tqdm.write(f"fomm train: {message}", file=sys.stderr)

    # -- setup ----------------------------------------------------------------------------------
    def setup(self) -> None:
        """Everything before the first step: processes, config, seeds, data, model, optimizers."""
        self._setup_device()
        resume_data = self._resolve_run()
        self._resolve_precision(resume_data)
        # seeds: model init is the same on every rank; data/warp streams differ per rank
        seed = int(self.options.seed)
        random.seed(seed + self.dist.rank)
        np.random.seed((seed + self.dist.rank) % 2**32)
        torch.manual_seed(seed)
        self.transform_generator = torch.Generator().manual_seed(seed * 1_000_003 + 7919 * (self.dist.rank + 1))
        self._setup_data()
        self._build_model(resume_data)
        self.step = self.epoch = self.epoch_step = 0
        self.loss_window: deque = deque(maxlen=BEST_WINDOW)
        self.best_metric = math.inf
        self.best_step = -1
        self.last_checkpoint: Path | None = None
        self.saved_step = -1
        if resume_data is not None:
            R.restore_training_state(self, resume_data)
        # statistics come with the weights of --init-from; otherwise they are measured on the first batch
        self.norms_calibrated = bool(self.step > 0 or not self.frozen_norms or self.init_report)
        self.total_steps = int(self.cfg.train_params.num_epochs) * self.steps_per_epoch
        if self.options.max_steps is not None:
            self.total_steps = min(self.total_steps, int(self.options.max_steps))

    def _setup_device(self) -> None:
        opts = self.options
        self.dist, self.device = D.training_device(opts.device, opts.threads)
        # glibc keeps freed activations for the next step (fomm.cpu; FOMM_ALLOCATOR=default opts out)
        self.cpu_allocator = None  # run.json: what tune_allocator decided (CPU runs only)
        if self.device.type == "cpu":
            tune_allocator()
            self.cpu_allocator = allocator_info()
        self.amp = (self.device.type == "cuda") if opts.amp is None else bool(opts.amp and self.device.type == "cuda")
        # CPU speed settings (fomm.training.speed): bfloat16 autocast and NHWC activations
        self.channels_last = S.use_channels_last(opts.memory_format, self.device.type)

    def _resolve_run(self) -> dict | None:
        """Find the checkpoint to resume (its data, or None for a new run) and set ``self.cfg``."""
        opts = self.options
        self.resume_path, resume_data = None, None
        if self.dist.is_main:
            R.clean_temporaries(checkpoint_dir(self.run_dir))
        existing = list_checkpoints(self.run_dir)
        if existing and not opts.resume:
            raise FommError(
                f"{self.run_dir} already holds a training run ({existing[-1][1].name}); pass --resume "
                f"to continue it or choose another --out"
            )
        found = latest_checkpoint(self.run_dir) if opts.resume else None
        if opts.resume and found is not None:
            self.resume_path, resume_data = found
            self.cfg = effective_config(self._stored_config(resume_data), opts)
        else:
            if self.config_in is None:
                if opts.resume:
                    raise FommError(R.describe_missing_run(self.run_dir))
                raise FommError("no config: pass --config NAME_OR_YAML (e.g. puppet-64)")
            if opts.resume:
                self.say(f"--resume: no checkpoint in {self.run_dir}; starting a new run")
            self.cfg = effective_config(self.config_in, opts)
        if opts.seed is None:
            opts.seed = 0
        return resume_data

    def _resolve_precision(self, resume_data: dict | None) -> None:
        """``--precision`` of a new run, or the resumed run's own; then the CPU autocast dtype."""
        stored = (resume_data or {}).get("train_meta", {}).get("precision")
        precision, note = S.resolve_precision(self.options.precision, stored, resume_data is not None)
        if note:
            self.say(note)
        self.options.precision = precision
        self.cpu_autocast = S.autocast_dtype(precision, self.device.type)

    def _stored_config(self, data: dict) -> Config:
        """The config of the checkpoint to resume, after checking the options against it."""
        opts = self.options
        stored = Config.from_dict(data["config"])
        stored.name = data.get("config_name")
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
        stored_seed = data.get("train_meta", {}).get("seed")
        if stored_seed is not None:
            if opts.seed is not None and int(opts.seed) != int(stored_seed):
                self.say(f"note: --seed {opts.seed} is ignored on --resume; the run's seed {stored_seed} is kept")
            opts.seed = int(stored_seed)
        if opts.data is None:
            stored_root = stored.dataset_params.root_dir
            if stored_root is None or not Path(stored_root).exists():
                raise FommError(f"the data folder of the run ({stored_root}) is gone; pass --data DIR")
        return stored

    def _setup_data(self) -> None:
        tp = self.cfg.train_params
        if tp.batch_size % self.dist.world_size:
            raise FommError(
                f"batch_size {tp.batch_size} is not divisible by the {self.dist.world_size} processes; "
                f"pass --batch-size as a multiple of --nproc_per_node"
            )
        self.batch_per_rank = tp.batch_size // self.dist.world_size
        self.dataset, self.data_info = build_dataset(self.cfg, int(self.options.seed), self.options.allow_resize)
        self.say(self.data_info["split"])
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
                "workers": int(self.options.workers),
            }
        )

    def _build_model(self, resume_data: dict | None) -> None:
        """The model (initialised, or from --init-from), the loss models and the optimizers."""
        opts, tp = self.options, self.cfg.train_params
        self.model = M.build_model(self.cfg, self.device)
        self.init_report = None
        if opts.init_from is not None:
            if resume_data is not None:
                self.say(f"note: --init-from is ignored on --resume (the run's checkpoint {self.resume_path} is used)")
            else:
                self.init_report = M.init_from(self.model, Path(opts.init_from))
                counts = ", ".join(f"{p} {self.init_report[p]['loaded']}/{self.init_report[p]['of']}" for p in M.PARTS)
                new = [f"{p} {k}" for p in M.PARTS for k in self.init_report[p]["kept_new"]]
                # e.g. a 256 checkpoint into vox-512: everything but the anti-alias kernels (the config's own)
                shown = f"; kept new: {', '.join(new)}" if 0 < len(new) <= 4 else ""
                self.say(f"initialised from {opts.init_from}: {counts} tensors{shown}")
        self.use_gan = tp.loss_weights.generator_gan != 0
        S.prepare_model(self.model, self.channels_last)  # before the optimizers see the parameters
        vgg, self.vgg_status = M.perceptual_vgg(self.cfg, opts.vgg19_weights, self.device, self.say)
        if vgg is not None and self.channels_last:  # frozen and never saved: its weights may go NHWC too
            vgg = vgg.to(memory_format=torch.channels_last)
        self.gen_full, self.disc_full, self.frozen_norms = M.loss_models(
            self.model,
            self.cfg,
            self.dist,
            self.device,
            vgg=vgg,
            transform_generator=self.transform_generator,
            compile=opts.compile,
        )
        self.optimizers, self.schedulers = M.optimizers(self.model, self.cfg)
        self.scaler_g = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.scaler_d = torch.amp.GradScaler("cuda", enabled=self.amp)

    def _check_model_config(self) -> None:
        M.check_model_config(self.cfg)

    def _loader(self, epoch: int, skip_batches: int) -> DataLoader:
        return epoch_loader(
            self.dataset,
            epoch=epoch,
            skip_batches=skip_batches,
            seed=int(self.options.seed),
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            batch_per_rank=self.batch_per_rank,
            steps_per_epoch=self.steps_per_epoch,
            workers=int(self.options.workers),
            pin_memory=self.device.type == "cuda",
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
        if self.dist.is_main:
            freq = int(self.cfg.train_params.checkpoint_freq or 0)
            keep_as = (
                f"epoch-{self.epoch:04d}.pt" if reason == "epoch-end" and freq > 0 and self.epoch % freq == 0 else None
            )  # the original's checkpoint every checkpoint_freq epochs, kept for good
            extra = R.training_state(self, reason, metric, rngs)
            write_checkpoint(self.run_dir, self.step, self.model, extra, int(self.options.keep), is_best, keep_as)
        D.barrier(self.dist)
        self.saved_step = self.step
        self.last_checkpoint = checkpoint_dir(self.run_dir) / f"step-{self.step:08d}.pt"
        self._write_run_json("running")  # current step, best and last checkpoint for anyone watching
        return self.last_checkpoint

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
        if self.dist.is_main:
            self.logs = R.RunLog(self.run_dir, R.log_fields(self.cfg), self.step, self.options.tensorboard, self.say)

    def _write_run_json(self, status: str, new_run: bool = False) -> None:
        if not self.dist.is_main:
            return
        start = None
        if new_run:
            start = {
                "started": R.now(),
                "start_step": self.step,
                "resumed_from": str(self.resume_path) if self.resume_path else None,
                "command": list(self.options.command if self.options.command is not None else sys.argv),
                "world_size": self.dist.world_size,
            }
        R.write_run_json(self.run_dir, status, R.run_info(self), start)

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
        if self.logs is not None:
            self.logs.write(row, means)
        return means

    def _visualize(self, batch: dict, generated: dict) -> None:
        if not self.dist.is_main:
            return
        kp_size = (self.cfg.visualizer_params or {}).get("kp_size")
        image = make_visualization(batch, generated, kp_size=None if kp_size is None else max(2, int(kp_size) // 2))
        save_png(self.run_dir / "vis" / f"step-{self.step:08d}.png", image)
        if self.logs is not None:
            self.logs.image("visualization", image, self.step)

    # -- the loop -------------------------------------------------------------------------------
    def _train_step(self, batch: dict) -> tuple[dict, dict]:
        x = {
            "source": batch["source"].to(self.device, non_blocking=True),
            "driving": batch["driving"].to(self.device, non_blocking=True),
        }
        x = S.to_layout(x, self.channels_last)
        set_step = getattr(self.gen_full, "set_step", None)
        if set_step is not None:  # loss schedules (warm-ups) follow the global step
            set_step(self.step)
        opt_g, opt_kp, opt_d = (self.optimizers[k] for k in ("generator", "kp_detector", "discriminator"))
        if not self.norms_calibrated:
            calibrate_norms(self.model, self.frozen_norms, lambda: self.gen_full(x))
            self.norms_calibrated = True
        with self._autocast():
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
            with self._autocast():
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

    def _autocast(self):
        """float16 autocast on CUDA with ``amp``, bfloat16 on the CPU with ``precision``, else none."""
        if self.cpu_autocast is not None:
            return torch.autocast(device_type="cpu", dtype=self.cpu_autocast)
        return torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.amp)

    def _metric(self, values: dict) -> float:
        gen_terms = {k: v for k, v in values.items() if k != "disc_gan"}
        if "perceptual" in gen_terms:
            return sum(v for k, v in gen_terms.items() if k not in ADVERSARIAL)
        return sum(gen_terms.values())

    def run(self) -> TrainResult:
        """Train (holding the run folder's lock) and return how it ended."""
        lock = R.RunLock(self.run_dir) if int(os.environ.get("RANK", "0")) == 0 else None
        started = False
        try:
            if lock is not None:
                lock.acquire()
                R.clean_temporaries(self.run_dir)
            self.setup()
            started = True
            return self._run()
        finally:
            if self.logs is not None:
                self.logs.close()
            if getattr(self, "dist", None) is not None:
                D.shutdown_distributed(self.dist)
            if lock is not None:
                lock.release(remove_empty=not started)

    def _run(self) -> TrainResult:
        self._open_logs()
        self._write_run_json("running", new_run=True)
        self._say_start()
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            disable=not (self.options.progress and self.dist.is_main),
            dynamic_ncols=True,
            desc="train",
            file=sys.stderr,
        )
        stop = D.StopSignal()  # SIGTERM (preemption, kill) and Ctrl-C: checkpoint the step and stop cleanly
        try:  # a second Ctrl-C, even during the last checkpoint, still marks run.json
            status, last_values = self._epochs(bar, stop)
            bar.close()
            self._write_run_json(status)
            return self._finish(status, last_values, stop)
        except BaseException as exc:
            bar.close()
            self._write_run_json(R.ended_by(exc))
            raise
        finally:
            stop.restore()

    def _say_start(self) -> None:
        tp = self.cfg.train_params
        what = "resuming from " + str(self.resume_path) if self.resume_path else "starting"
        procs = f" ({self.dist.world_size} processes)" if self.dist.enabled else ""
        self.say(
            f"{what}: step {self.step}/{self.total_steps}, epoch {self.epoch + 1}/{tp.num_epochs}, "
            f"{plural(self.steps_per_epoch, 'step')} per epoch, batch {tp.batch_size}{procs}, device {self.device}"
            f"{', amp' if self.amp else ''}{', bfloat16 autocast' if self.cpu_autocast else ''}"
            f"{', channels_last' if self.channels_last else ''}"
        )

    def _epochs(self, bar, stop: D.StopSignal) -> tuple[str, dict]:
        """Train until the last epoch, ``--max-steps`` or a stop signal; returns the status and the
        last step's losses."""
        opts, num_epochs = self.options, int(self.cfg.train_params.num_epochs)
        self._sums: dict[str, float] = {}
        self._count, self._t_log = 0, time.perf_counter()
        last_values: dict = {}
        # The batch trained last and its outputs: on a break the loop variable already holds the
        # loader's next batch, which no prediction was made from.
        trained: tuple[dict, dict] | None = None
        while self.epoch < num_epochs and self.step < self.total_steps and not stop.seen:
            for batch in self._loader(self.epoch, self.epoch_step):
                if self.step >= self.total_steps or stop.check(self.dist, self.device):
                    break
                values, generated = self._train_step(batch)
                last_values, trained = values, (batch, generated)
                self._after_step(batch, generated, values, bar)
            if self.epoch_step >= self.steps_per_epoch:
                with warnings.catch_warnings():  # the discriminator's optimizer never steps without GAN
                    warnings.filterwarnings("ignore", message=".*lr_scheduler.step.*")
                    for s in self.schedulers.values():
                        s.step()
                self.epoch += 1
                self.epoch_step = 0
                self.saved_step = -1 if self.saved_step == self.step else self.saved_step
                self.save("epoch-end")
        status = "finished"
        if stop.seen:
            status = "interrupted (Ctrl-C)" if stop.interrupted else f"stopped by {stop.name}"
        elif self.step >= self.total_steps and self.epoch < num_epochs:
            status = "stopped at --max-steps"
        if self._count:
            self._log_row(self._sums, self._count, time.perf_counter() - self._t_log)
        if self.step != self.saved_step:
            self.save("end")
        if trained is not None and opts.vis_every and self.step % opts.vis_every:
            self._visualize(*trained)
        return status, last_values

    def _after_step(self, batch: dict, generated: dict, values: dict, bar) -> None:
        """Counters, running loss, log row, visualisation, checkpoint and the hook after a step."""
        opts = self.options
        self.last_batch, self.last_generated = batch, generated
        self.step += 1
        self.epoch_step += 1
        self.loss_window.append(self._metric(values))
        for k, v in values.items():
            self._sums[k] = self._sums.get(k, 0.0) + v
        self._sums["loss_generator"] = self._sums.get("loss_generator", 0.0) + sum(
            v for k, v in values.items() if k != "disc_gan"
        )
        self._count += 1
        bar.update(1)
        if opts.log_every and self.step % opts.log_every == 0:
            means = self._log_row(self._sums, self._count, time.perf_counter() - self._t_log)
            bar.set_postfix({k: f"{v:.3g}" for k, v in means.items()}, refresh=False)
            self._sums, self._count, self._t_log = {}, 0, time.perf_counter()
        if opts.vis_every and self.step % opts.vis_every == 0:
            self._visualize(batch, generated)
        if opts.checkpoint_every and self.step % opts.checkpoint_every == 0:
            self.save("interval")
        hook = self.hooks.get("after_step")
        if hook is not None:
            hook(self, values)

    def _finish(self, status: str, last_values: dict, stop: D.StopSignal) -> TrainResult:
        tp = self.cfg.train_params
        best = checkpoint_dir(self.run_dir) / "best.pt"
        self.say(
            f"{status} at step {self.step} ({self.epoch} of {plural(tp.num_epochs, 'epoch')} done); last checkpoint {self.last_checkpoint}"
            f"{f', best {best} (step {self.best_step})' if best.is_file() else ''}"
            f"{f'; continue with: {R.resume_command(self.run_dir, self.options, self.dist.world_size)}' if stop.seen else ''}"
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
