"""``fomm train`` dispatching to the TPSMM trainer: a ``tpsmm-*`` preset or TPSMM YAML, ``--stage
avd``, or ``--resume`` of a TPSMM run."""

from __future__ import annotations

import os
import signal
import sys
import warnings

from fomm.errors import FommError
from fomm.models.tpsmm.config import is_tpsmm_config
from fomm.training.options import options_from_args
from fomm.training.tpsmm.records import latest_tpsmm_checkpoint, resume_command
from fomm.training.tpsmm.trainer import TpsmmTrainer, TpsmmTrainOptions

# fomm train options that TPSMM runs do not use: said in one warning line when given
FOMM_ONLY = {
    "--lr-scale": lambda a: a.lr_scale is not None,
    "--memory-format": lambda a: a.memory_format != "auto",  # TPSMM runs keep PyTorch's layout
}


def is_tpsmm_run(args) -> bool:
    if args.stage == "avd" or (args.config is not None and is_tpsmm_config(args.config)):
        return True
    if args.resume and args.config is None:
        return latest_tpsmm_checkpoint(args.out) is not None
    return False


def run_tpsmm_train(args) -> int:
    if args.config is None and not args.resume and args.stage == "main":
        raise FommError("no config: pass --config (e.g. tpsmm-vox-256), or --resume an existing RUN_DIR")
    ignored = [flag for flag, on in FOMM_ONLY.items() if on(args)]
    if ignored:
        warnings.warn(
            f"{', '.join(ignored)}: not used by Thin-Plate Spline Motion Model runs (FOMM only)", stacklevel=2
        )
    opts = options_from_args(TpsmmTrainOptions, args, progress=not args.quiet)
    trainer = TpsmmTrainer(args.config, opts)
    try:
        path = trainer.run()
    except KeyboardInterrupt:  # a second Ctrl-C: stopped at once
        last = trainer.last_checkpoint
        kept = f"the last checkpoint is {last}; continue with: {resume_command(trainer)}"
        print(f"fomm train: interrupted at once; {kept if last else 'no checkpoint was written'}", file=sys.stderr)
        return 130
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, the first process speaks
        print(f"fomm train: {opts.stage} stage checkpoint {path}")
    if trainer.status.startswith("interrupted"):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run is saved and reported: a late Ctrl-C changes nothing
        return 130
    return 0
