"""``fomm train`` (``fomm export`` lives in :mod:`fomm.export.cli`)."""

from __future__ import annotations

import signal
import sys

from fomm.cli_args import add_command, positive_float, positive_int
from fomm.errors import FommError

TRAIN_EPILOG = """\
examples:
  fomm synth --category puppet --out data/puppet64            # 200 training videos at 64x64
  fomm train --config puppet-64 --data data/puppet64 --out runs/puppet64
  fomm train --out runs/puppet64 --resume                     # continue exactly where it stopped
  torchrun --nproc_per_node=2 -m fomm.cli train --config face-64 --data data/face64 --out runs/face64
  fomm train --config my.yaml --data data/mine --out runs/ft --init-from vox-cpk.pth.tar   # fine-tune

RUN_DIR gets checkpoints/step-XXXXXXXX.pt (the last --keep), checkpoints/best.pt and
checkpoints/epoch-EEEE.pt every train_params.checkpoint_freq epochs (load with
fomm.load_model(path); convert with fomm export), log.csv, run.json, vis/*.png and tensorboard/
(tensorboard --logdir RUN_DIR/tensorboard). Without VGG19 ImageNet weights (torchvision's
vgg19-*.pth via --vgg19-weights, train_params.vgg19_weights, FOMM_VGG19_WEIGHTS or the torch hub
cache) the perceptual loss uses a fixed random-weight VGG19 and says so.

Thin-Plate Spline Motion Model: --config tpsmm-vox-256 (or any tpsmm-* preset or TPSMM YAML)
trains it with its own objective; --stage avd --init-from CKPT then trains its AVD network
(docs/tpsmm.md); --precision, --vis-every, --compile and multi-process runs (torchrun) apply
to both models; --lr-scale and --memory-format are FOMM only.

Ctrl-C finishes the current step, checkpoints it, prints the command that continues the run and
exits with status 130 (a second Ctrl-C stops at once); SIGTERM does the same and exits 0. One run
at a time per RUN_DIR: a second fomm train there is refused, naming the PID that holds it.
"""


def register(subparsers) -> None:
    p = add_command(
        subparsers,
        "train",
        description="Train the First Order Motion Model (keypoint detector, generator, discriminator) with\n"
        "the original losses: multi-scale VGG19 perceptual, equivariance, and the GAN terms when\n"
        "the config enables them. Resumable (--resume), and multi-process with torchrun.",
        epilog=TRAIN_EPILOG,
    )
    _add_train_arguments(p)
    p.set_defaults(func=run_train)


def _add_train_arguments(p) -> None:
    p.add_argument(
        "--config",
        help="preset name (e.g. puppet-64, face-64, vox-256) or YAML path; optional with "
        "--resume (the run's stored config is used)",
    )
    p.add_argument("--data", help="dataset folder (root/train/<video>...); overrides dataset_params.root_dir")
    p.add_argument(
        "--out",
        required=True,
        metavar="RUN_DIR",
        help="run folder (checkpoints, logs, images; missing folders are created)",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR from its latest checkpoint")
    p.add_argument(
        "--stage",
        choices=("main", "avd"),
        default="main",
        help="Thin-Plate Spline Motion Model runs: main (the networks) or avd (the AVD network of the "
        "model given with --init-from, as the original's train_avd)",
    )
    p.add_argument("--max-steps", type=positive_int, metavar="N", help="stop when the global step count reaches N")
    p.add_argument("--batch-size", type=positive_int, metavar="B", help="global batch size (split over processes)")
    p.add_argument("--epochs", type=positive_int, metavar="E", help="number of epochs (train_params.num_epochs)")
    p.add_argument("--num-repeats", type=positive_int, metavar="R", help="passes over the videos per epoch")
    p.add_argument("--lr-scale", type=positive_float, metavar="X", help="multiply the three learning rates by X")
    p.add_argument(
        "--seed",
        type=int,
        help="seed for initialisation, shuffling and augmentation (default 0; a resumed run keeps its own)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="W",
        help="DataLoader worker processes (default 0: load in the training process, best on 2 cores)",
    )
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--threads", type=positive_int, help="CPU threads for PyTorch (default: cores / local processes)")
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=500,
        metavar="N",
        help="also write a checkpoint every N steps (epoch ends always; 0: epoch ends only)",
    )
    p.add_argument(
        "--vis-every", type=int, default=250, metavar="N", help="write a visualisation image every N steps (0: never)"
    )
    p.add_argument("--log-every", type=int, default=10, metavar="N", help="log losses every N steps")
    p.add_argument("--keep", type=positive_int, default=3, metavar="K", help="step checkpoints kept (best.pt is extra)")
    p.add_argument("--vgg19-weights", metavar="PATH", help="torchvision vgg19-*.pth for the perceptual loss")
    p.add_argument(
        "--init-from",
        metavar="CKPT",
        help="start a new run from the weights of CKPT (ours or the original's; every tensor whose "
        "name and shape match; optimizers start fresh), e.g. to fine-tune",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the keypoint detector and generator (TPSMM: keypoint detector and inpainting "
        "network); for GPUs: compiling takes minutes on a CPU",
    )
    p.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16", "auto"),
        default=None,
        help="CPU arithmetic: fp32 (exact losses), bf16 autocast, or auto (bf16 where the CPU has it natively); "
        "default: auto for a new run (fp32 for TPSMM), the run's own on --resume",
    )
    p.add_argument(
        "--memory-format",
        choices=("auto", "channels_last", "contiguous"),
        default="auto",
        help="tensor layout: auto (channels_last on the CPU, same losses, ~10%% faster), channels_last or contiguous",
    )
    p.add_argument(
        "--allow-resize", action="store_true", help="resize frames of another size than frame_shape instead of stopping"
    )
    p.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard events")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run_train(args) -> int:
    from fomm.training.options import TrainOptions, options_from_args
    from fomm.training.tpsmm.cli import is_tpsmm_run, run_tpsmm_train
    from fomm.training.trainer import Trainer

    if is_tpsmm_run(args):  # a Thin-Plate Spline Motion Model (fomm.training.tpsmm)
        return run_tpsmm_train(args)
    if args.config is None and not args.resume:
        raise FommError("no config: pass --config NAME_OR_YAML (e.g. puppet-64), or --resume an existing RUN_DIR")
    opts = options_from_args(
        TrainOptions,
        args,
        amp=False if args.no_amp else None,
        progress=not args.quiet,
        tensorboard=not args.no_tensorboard,
        command=list(sys.argv),
    )
    trainer = Trainer(args.config, opts)
    try:
        result = trainer.run()
    except KeyboardInterrupt:  # a second Ctrl-C (or one during setup): stopped at once
        from fomm.training.run_dir import resume_command

        last = getattr(trainer, "last_checkpoint", None)
        world = getattr(getattr(trainer, "dist", None), "world_size", 1)
        kept = f"the last checkpoint is {last}; continue with: {resume_command(trainer.run_dir, opts, world)}"
        print(f"fomm train: interrupted at once; {kept if last else 'no checkpoint was written'}", file=sys.stderr)
        return 130
    if result.status.startswith("interrupted"):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run is saved and reported: a late Ctrl-C changes nothing
        return 130
    return 0
