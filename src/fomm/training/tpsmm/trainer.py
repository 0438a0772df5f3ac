"""``fomm train`` for a Thin-Plate Spline Motion Model: the original's ``train.py`` (stage ``main``)
and ``train_avd.py`` (stage ``avd``), resumable.

Stage main, as the original: one Adam (``lr_generator``, betas (0.5, 0.999), weight decay 1e-4)
over the keypoint detector, dense motion and inpainting networks, another for the background
predictor (stepped from ``bg_start``), gradients of the keypoint detector, dense motion network
(and background predictor) clipped to an infinity norm of 10, ``MultiStepLR(epoch_milestones,
0.1)`` stepped at each epoch end, the objective of :mod:`fomm.training.tpsmm.losses`.

Stage avd: the AVD network alone learns to rebuild the driving keypoints from the source's
(identity) and the driving's randomly scaled ones (pose): L1 times ``lambda_shift``, Adam (``lr``),
``MultiStepLR`` over ``train_avd_params``; the other networks stay frozen.

Checkpoints (``RUN_DIR/checkpoints/step-XXXXXXXX.pt``, the newest ``keep``, and ``best.pt`` ->
the newest) hold the parts in the original layout (the original code loads them), the config,
and the optimizers, schedulers, epoch, position in the epoch, step and RNG states: ``--resume``
continues the batch order, the warps and the dropout draws where the run stopped.

Multi-process (``torchrun --nproc_per_node=N -m fomm.cli train ...``), as FOMM runs: gloo on the
CPU, NCCL on CUDA; ``batch_size`` is the global batch, split evenly over the processes; a
distributed sampler shards the data; the BatchNorm statistics of the keypoint detector, the
background predictor and the AVD network cover the global batch; the gradients are averaged over the processes after
each backward (:func:`fomm.training.distributed.average_gradients`, DDP's arithmetic: the parts are
called through other methods than ``forward``); every process has its own warp and dropout
streams, all saved in the checkpoint; only the first process writes files.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.utils import clip_grad_norm_

from fomm.errors import FommError, plural
from fomm.models.checkpoint import read_checkpoint
from fomm.models.tpsmm.checkpoint import load_tpsmm_model
from fomm.models.tpsmm.config import TpsmmConfig, resolve_tpsmm_config
from fomm.models.tpsmm.model import TpsmmModel
from fomm.training import distributed as D
from fomm.training import run_dir as R
from fomm.training import speed as S
from fomm.training.loader import build_dataset, epoch_loader
from fomm.training.tpsmm.losses import TpsmmObjective, random_scale
from fomm.training.tpsmm.records import (
    CsvLog,
    latest_tpsmm_checkpoint,
    loss_columns,
    read_tpsmm,
    resume_command,
    write_run_json,
    write_tpsmm_checkpoint,
    write_visualization,
)
from fomm.training.vgg import build_vgg19

STAGES = ("main", "avd")
RANK_STRIDE = 1_000_003  # seed offset of each process's warp and dropout streams


@dataclass
class TpsmmTrainOptions:
    """The ``fomm train`` options a TPSMM run reads (the others are FOMM-only)."""

    out: str
    data: str | None = None
    stage: str = "main"
    resume: bool = False
    init_from: str | None = None
    max_steps: int | None = None
    batch_size: int | None = None
    epochs: int | None = None
    num_repeats: int | None = None
    seed: int | None = None
    device: str = "auto"
    checkpoint_every: int = 500
    vis_every: int = 250
    log_every: int = 10
    keep: int = 3
    vgg19_weights: str | None = None
    workers: int = 0
    threads: int | None = None
    compile: bool = False
    allow_resize: bool = False
    precision: str | None = None  # None: speed.TPSMM_DEFAULT_PRECISION, or the run's own on resume
    progress: bool = True


class TpsmmTrainer:
    """One stage of TPSMM training in ``opts.out``; :meth:`run` returns the last checkpoint."""

    def __init__(self, config, opts: TpsmmTrainOptions):
        if opts.stage not in STAGES:
            raise FommError(f"unknown stage '{opts.stage}'; use main or avd")
        self.opts = opts
        self.run_dir = Path(os.path.abspath(opts.out))
        self.dist, self.device = D.training_device(opts.device, opts.threads)
        self.last_checkpoint: Path | None = None
        self.saved_step = -1
        self.state = self._start_state(config)
        self.cfg: TpsmmConfig = self.state["config"]
        self._apply_overrides()
        self.model: TpsmmModel = self.state["model"].to(self.device)
        D.broadcast_state(self.model, self.dist)  # e.g. an AVD network a checkpoint leaves out
        if self.dist.enabled:  # statistics over the global batch; before the optimizers see the parameters
            for name in ("kp_detector", "bg_predictor", "avd_network"):
                if getattr(self.model, name) is not None:
                    setattr(self.model, name, D.convert_sync_batchnorm(getattr(self.model, name), self.device.type))
        self.precision = self._precision()
        self.cpu_autocast = S.autocast_dtype(self.precision, self.device.type)
        offset = RANK_STRIDE * self.dist.rank  # 0 for a single process: its streams as before
        self.transform_generator = torch.Generator().manual_seed(self.seed + 1 + offset)
        if offset:
            torch.manual_seed(self.seed + offset)  # the dropout draws (a resume restores them)
        self._build_optimizers()

    # -- setup --------------------------------------------------------------------------------------
    def _start_state(self, config) -> dict:
        """The config, model, and (resuming) the checkpoint to continue from."""
        latest = latest_tpsmm_checkpoint(self.run_dir)
        if self.opts.resume:
            if latest is None:
                raise FommError(
                    f"nothing to resume in {self.run_dir}: no checkpoints/step-*.pt; start it with --config"
                )
            path, _ = latest
            self.resume_path = path
            data = read_checkpoint(path)
            if data.get("stage", "main") != self.opts.stage:
                stage = data.get("stage", "main")
                raise FommError(f"{path} is from stage {stage}; resume it with --stage {stage}")
            model = load_tpsmm_model(data, path=path)
            return {"config": model.config, "model": model, "resume": data}
        self.resume_path = None
        if R.list_checkpoints(self.run_dir):
            raise FommError(f"{self.run_dir} already holds a run; pass --resume to continue it or choose another --out")
        if self.opts.stage == "avd":
            source = self.opts.init_from
            if source is None:
                raise FommError("--stage avd trains the AVD network of a trained model: pass --init-from CKPT")
            model = load_tpsmm_model(read_tpsmm(source), config, path=source)
            return {"config": model.config, "model": model, "resume": None}
        cfg = resolve_tpsmm_config(config).copy()
        torch.manual_seed(int(self.opts.seed or 0))  # the same seed, the same initial weights
        model = TpsmmModel(cfg)
        if self.opts.init_from:
            init = load_tpsmm_model(read_tpsmm(self.opts.init_from), cfg, path=self.opts.init_from)
            model.load_state_dict(init.state_dict(), strict=False)
        return {"config": cfg, "model": model, "resume": None}

    def _apply_overrides(self) -> None:
        o, tp, dp = self.opts, self.cfg.train_params, self.cfg.dataset_params
        params = self.cfg.train_avd_params if o.stage == "avd" else tp
        if o.data:
            dp.root_dir = str(o.data)
        if dp.frame_shape is None:
            dp.frame_shape = [*self.cfg.frame_shape, 3]
        for name in ("batch_size", "num_repeats"):
            if getattr(o, name) is not None:
                setattr(params, name, int(getattr(o, name)))
        if o.epochs is not None:
            params.num_epochs = int(o.epochs)
        tp.num_repeats = params.num_repeats  # the loader reads train_params
        resumed = self.state["resume"]
        self.seed = int(resumed["seed"]) if resumed else int(o.seed or 0)

    def _precision(self) -> str:
        """As FOMM runs (:func:`fomm.training.speed.resolve_precision`): ``--precision``, else the
        default for a new run and the run's own on ``--resume``."""
        resumed = self.state["resume"]
        stored = resumed.get("precision") if resumed else None
        precision, note = S.resolve_precision(
            self.opts.precision, stored, resuming=resumed is not None, default=S.TPSMM_DEFAULT_PRECISION
        )
        if note:
            self.say(note)
        return precision

    def _autocast(self):
        """bf16 autocast on the CPU when the precision asks for it, else a no-op region."""
        return torch.autocast("cpu", dtype=self.cpu_autocast or torch.bfloat16, enabled=self.cpu_autocast is not None)

    def _build_optimizers(self) -> None:
        m, o = self.model, self.opts
        if o.stage == "avd":
            for p in m.parameters():
                p.requires_grad_(False)
            for p in m.avd_network.parameters():
                p.requires_grad_(True)
            ap = self.cfg.train_avd_params
            self.optimizers = {"avd": torch.optim.Adam(m.avd_network.parameters(), lr=ap.lr, betas=(0.5, 0.999))}
            milestones = ap.epoch_milestones
        else:
            tp = self.cfg.train_params
            parts = list(m.inpainting_network.parameters()) + list(m.dense_motion_network.parameters())
            parts += list(m.kp_detector.parameters())
            adam = dict(lr=tp.lr_generator, betas=(0.5, 0.999), weight_decay=1e-4)
            self.optimizers = {"generator": torch.optim.Adam(parts, **adam)}
            if m.bg_predictor is not None:
                self.optimizers["bg_predictor"] = torch.optim.Adam(m.bg_predictor.parameters(), **adam)
            milestones = tp.epoch_milestones
        self.schedulers = {
            k: torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma=0.1) for k, opt in self.optimizers.items()
        }
        self.epoch, self.epoch_step, self.step = 0, 0, 0
        resumed = self.state["resume"]
        if resumed:
            for k, opt in self.optimizers.items():
                opt.load_state_dict(resumed["optimizers"][k])
                self.schedulers[k].load_state_dict(
                    {**resumed["schedulers"][k], "milestones": self.schedulers[k].milestones}
                )
            self.epoch, self.epoch_step, self.step = resumed["epoch"], resumed["epoch_step"], resumed["step"]
            self.saved_step, self.last_checkpoint = self.step, self.resume_path
            self._restore_rng(resumed)

    def _restore_rng(self, resumed: dict) -> None:
        """This process's RNG states from the checkpoint (one per process; a dict before torchrun runs)."""
        states = resumed["rng"] if isinstance(resumed["rng"], list) else [resumed["rng"]]
        if self.dist.rank < len(states):
            R.restore_rng(states[self.dist.rank], self.transform_generator)
        if int(resumed.get("world_size", 1)) != self.dist.world_size:
            self.say(
                f"note: the run had {plural(int(resumed.get('world_size', 1)), 'process', 'processes')}, now "
                f"{self.dist.world_size}; it continues but is not an exact continuation"
            )

    # -- the loop -----------------------------------------------------------------------------------
    def run(self) -> Path:
        """Train until the last epoch, ``--max-steps`` or a stop signal, holding the run folder's
        lock (one run at a time, as FOMM runs); the last checkpoint. ``self.status`` says how it ended."""
        lock = R.RunLock(self.run_dir) if self.dist.is_main else None
        self.status, self.started = "running", False  # started: past the setup, run.json written
        try:
            if lock is not None:
                lock.acquire()
                R.clean_temporaries(self.run_dir)
            return self._run()
        except BaseException as exc:
            if self.started:
                write_run_json(self, R.ended_by(exc))
            raise
        finally:
            if lock is not None:  # a new folder that failed during setup is removed
                lock.release(remove_empty=not self.started)
            D.shutdown_distributed(self.dist)

    def _run(self) -> Path:
        params = self.cfg.train_avd_params if self.opts.stage == "avd" else self.cfg.train_params
        dataset, steps_per_epoch = self._dataset(params.batch_size)
        objective = self._objective()
        name = "log.csv" if self.opts.stage == "main" else "log-avd.csv"
        log = CsvLog(self.run_dir / name, loss_columns(self.cfg, self.opts.stage))
        log = log if self.dist.is_main else None
        self.started = True
        write_run_json(self, "running", new_run=True)
        self._say_start()
        trained, stop = None, D.StopSignal()  # SIGTERM and Ctrl-C: finish the step, checkpoint, stop
        try:
            while self.epoch < params.num_epochs and not self._done() and not stop.seen:
                for batch in self._loader(dataset, steps_per_epoch):
                    if self._done() or stop.check(self.dist, self.device):
                        break
                    losses, generated = self._step(objective, batch)
                    self.step += 1
                    self.epoch_step += 1
                    trained = (batch, generated)
                    self._after_step(losses, trained, log)
                if self.epoch_step >= steps_per_epoch:  # a whole epoch: the schedules move on
                    self.epoch, self.epoch_step = self.epoch + 1, 0
                    for scheduler in self.schedulers.values():
                        scheduler.step()
            return self._finish(trained, stop, params.num_epochs)
        finally:
            stop.restore()

    def _objective(self) -> TpsmmObjective | None:
        """The main stage's objective (None for the AVD stage), its parts compiled with ``--compile``."""
        self.detect = self.model.kp_detector  # the AVD stage's keypoints
        if self.opts.stage == "avd":
            if self.opts.compile:
                self.detect = torch.compile(self.model.kp_detector)
            return None
        objective = TpsmmObjective(self.model, self.cfg.train_params, self._vgg(), self.transform_generator)
        objective.to(self.device)
        if self.opts.compile:
            objective.compile_parts()
        return objective

    def _finish(self, trained: tuple | None, stop: D.StopSignal, num_epochs: int) -> Path:
        """The last checkpoint and picture, run.json's status, and how to continue a stopped run."""
        last = self._checkpoint() if self.saved_step != self.step else self.last_checkpoint
        if trained is not None and self.opts.vis_every and self.step % self.opts.vis_every:
            self._visualize(*trained)  # the last step's picture too
        self.status = "finished" if self.epoch >= num_epochs else "stopped at --max-steps"
        if stop.seen:
            self.status = "interrupted (Ctrl-C)" if stop.interrupted else f"stopped by {stop.name}"
            self.say(f"{self.status} at step {self.step}; continue with: {resume_command(self)}")
        write_run_json(self, self.status)
        return last

    def _dataset(self, batch_size: int):
        """The training dataset and the steps per epoch of each process."""
        world = self.dist.world_size
        if batch_size % world:
            raise FommError(
                f"batch_size {batch_size} is not divisible by the {world} processes; pass --batch-size as a "
                f"multiple of --nproc_per_node"
            )
        self.batch_per_rank = batch_size // world
        dataset, _ = build_dataset(self.cfg, self.seed, self.opts.allow_resize)
        steps_per_epoch = len(dataset) // world // self.batch_per_rank
        if steps_per_epoch == 0:
            raise FommError(
                f"the dataset has {plural(len(dataset), 'item')}, fewer than one batch of {batch_size}; "
                f"lower --batch-size or raise --num-repeats"
            )
        return dataset, steps_per_epoch

    def _loader(self, dataset, steps_per_epoch: int):
        return epoch_loader(
            dataset,
            epoch=self.epoch,
            skip_batches=self.epoch_step,
            seed=self.seed,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            batch_per_rank=self.batch_per_rank,
            steps_per_epoch=steps_per_epoch,
            workers=self.opts.workers,
            pin_memory=self.device.type == "cuda",
        )

    def _after_step(self, losses: dict, trained: tuple, log: CsvLog | None) -> None:
        """The log row (the mean over the processes), the picture and the checkpoint of a step."""
        o = self.opts
        if (o.log_every and self.step % o.log_every == 0) or self.step == 1:
            names = list(losses)
            values = torch.tensor([losses[n] for n in names], dtype=torch.float64, device=self.device)
            total = D.sum_tensor(values, self.dist).cpu()
            if log is not None:
                log.write(self.step, self.epoch, {n: float(v) / self.dist.world_size for n, v in zip(names, total)})
        if o.vis_every and self.step % o.vis_every == 0:
            self._visualize(*trained)
        if o.checkpoint_every and self.step % o.checkpoint_every == 0:
            self._checkpoint()

    def _say_start(self) -> None:
        what = f"resuming from {self.resume_path}" if self.resume_path else "starting"
        fast = (", bfloat16 autocast" if self.cpu_autocast else "") + (", compiled" if self.opts.compile else "")
        self.say(f"TPSMM stage {self.opts.stage}, {what} at step {self.step}, device {self.device}{fast}")

    def say(self, message: str) -> None:
        """One line on stderr (the first process only)."""
        if self.dist.is_main:
            print(f"fomm train: {message}", file=sys.stderr)

    def _visualize(self, batch: dict, generated: dict | None) -> None:
        """``vis/step-XXXXXXXX.png`` of a main-stage step (the AVD stage has no picture)."""
        if generated is not None and self.dist.is_main:
            kp_size = (self.cfg.visualizer_params or {}).get("kp_size")
            write_visualization(
                self.run_dir, self.step, batch, generated, None if kp_size is None else max(2, int(kp_size) // 2)
            )

    def _done(self) -> bool:
        return self.opts.max_steps is not None and self.step >= self.opts.max_steps

    def _step(self, objective, batch: dict) -> tuple[dict[str, float], dict | None]:
        """One optimisation step: the loss terms, and the generated outputs (None for the AVD stage)."""
        x = {k: batch[k].to(self.device) for k in ("source", "driving")}
        if self.opts.stage == "avd":
            return self._avd_step(x), None
        self.model.train()
        with self._autocast():
            losses, generated = objective(x, self.epoch)
        loss = sum(v.float() for v in losses.values())
        if not D.all_true(bool(torch.isfinite(loss)), self.dist, self.device):
            raise FommError(
                f"the loss is not finite at step {self.step + 1} ({float(loss):.4g} here); lower the learning "
                f"rate (the last checkpoint is kept)"
            )
        loss.backward()
        m = self.model
        D.average_gradients(m.parameters(), self.dist)
        clip_grad_norm_(m.kp_detector.parameters(), max_norm=10, norm_type=math.inf)
        clip_grad_norm_(m.dense_motion_network.parameters(), max_norm=10, norm_type=math.inf)
        bg_active = m.bg_predictor is not None and self.epoch >= self.cfg.train_params.bg_start
        if bg_active:
            clip_grad_norm_(m.bg_predictor.parameters(), max_norm=10, norm_type=math.inf)
        self.optimizers["generator"].step()
        self.optimizers["generator"].zero_grad()
        if "bg_predictor" in self.optimizers:
            if bg_active:
                self.optimizers["bg_predictor"].step()
            self.optimizers["bg_predictor"].zero_grad()
        return {k: float(v.detach()) for k, v in losses.items()}, generated

    def _avd_step(self, x: dict) -> dict[str, float]:
        m, ap = self.model, self.cfg.train_avd_params
        m.eval()
        m.avd_network.train()
        with torch.no_grad(), self._autocast():  # the detector's convolutions; the AVD network stays fp32
            kp_source = self.detect(x["source"])
            kp_driving = self.detect(x["driving"])["fg_kp"]
            kp_random = random_scale(kp_driving, ap.random_scale, self.transform_generator)
        rec = m.avd_network(kp_source, {"fg_kp": kp_random})["fg_kp"]
        loss = ap.lambda_shift * torch.abs(kp_driving - rec).mean()
        loss.backward()
        D.average_gradients(m.avd_network.parameters(), self.dist)
        self.optimizers["avd"].step()
        self.optimizers["avd"].zero_grad()
        m.has_avd = True
        return {"rec_kp": float(loss.detach())}

    def _vgg(self):
        if not sum(self.cfg.train_params.loss_weights.perceptual):
            return None
        vgg, status = build_vgg19(self.opts.vgg19_weights)
        if not status["pretrained"]:
            self.say(status["note"])
        return vgg

    def _checkpoint(self) -> Path:
        """``step-XXXXXXXX.pt`` with every process's RNG states (written by the first process)."""
        rngs = D.gather_objects(R.capture_rng(self.transform_generator), self.dist)
        path = R.checkpoint_dir(self.run_dir) / f"step-{self.step:08d}.pt"
        if self.dist.is_main:
            extra = {
                "stage": self.opts.stage,
                "epoch": self.epoch,
                "epoch_step": self.epoch_step,
                "step": self.step,
                "seed": self.seed,
                "precision": self.precision,
                "world_size": self.dist.world_size,
                "optimizers": {k: opt.state_dict() for k, opt in self.optimizers.items()},
                "schedulers": {k: R.scheduler_state(s) for k, s in self.schedulers.items()},
                "rng": rngs,
            }
            write_tpsmm_checkpoint(self.run_dir, self.step, self.model, extra, self.opts.keep)
        D.barrier(self.dist)
        self.last_checkpoint, self.saved_step = path, self.step
        write_run_json(self, "running")
        return path
