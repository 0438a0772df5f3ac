"""Speed settings of ``fomm train`` on the CPU: memory layout, bfloat16 autocast, the allocator.

None changes the objective (the same losses, the same gradients up to float32 rounding for the
memory layout; bfloat16 rounds convolutions to 8 mantissa bits):

* **channels_last** (``TrainOptions.memory_format``): the input frames, the weights of the keypoint
  detector and generator, and the frozen VGG19 of the perceptual loss are stored NHWC, so that
  oneDNN's convolutions skip their layout reorders (measured: about 10% less time per step on
  this AMD EPYC). The same numbers: in float64 the two layouts give the same losses and gradients
  to 1e-13 (tests/training/test_speed.py). ``auto`` (default) picks it on the CPU.
* **bfloat16 autocast** (``TrainOptions.precision``): ``bf16`` always, ``auto`` only when the CPU
  computes bfloat16 natively (:func:`fomm.cpu.native_bf16`, the answer animation's ``fast`` uses
  too): without those instructions bfloat16 is emulated and slower than float32. ``fp32`` keeps
  float32. A new FOMM run takes :data:`DEFAULT_PRECISION` (``auto``: a 2,000-step record on
  puppet-64 ended within 2% of fp32's held-out L1 and AKD, experiments/bf16-check); a TPSMM run
  keeps fp32 until it has such a record. A resumed run keeps the precision its checkpoint records
  (:func:`resolve_precision`). On CUDA the ``amp`` option (float16 with a
  gradient scaler) applies instead.
* **the memory allocator** (:func:`fomm.cpu.tune_allocator`, applied by the trainer on the CPU and
  recorded in run.json's ``cpu_allocator``): freed activations stay in glibc's heap instead of
  being returned to the kernel and faulted back every step. Same numbers bit for bit.
"""

from __future__ import annotations

import contextlib

import torch

from fomm.cpu import native_bf16
from fomm.errors import FommError

PRECISIONS = ("fp32", "bf16", "auto")
DEFAULT_PRECISION = "auto"  # of a new FOMM run when --precision is not given
TPSMM_DEFAULT_PRECISION = "fp32"  # no convergence record of TPSMM in bf16 yet
LEGACY_PRECISION = "fp32"  # of a checkpoint that does not record one (runs before the record)
MEMORY_FORMATS = ("contiguous", "channels_last", "auto")


def autocast_dtype(precision: str, device_type: str, flags: set[str] | None = None) -> torch.dtype | None:
    """The CPU autocast dtype for ``precision`` (None: float32). ``flags`` default to this CPU's.

    ``fp32`` -> None; ``bf16`` -> bfloat16; ``auto`` -> bfloat16 when :func:`native_bf16`, else None.
    Only the CPU is concerned: on other devices the ``amp`` option decides, so this returns None.
    """
    if precision not in PRECISIONS:
        raise FommError(f"--precision is {precision!r}; use one of {', '.join(PRECISIONS)}")
    if device_type != "cpu" or precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    return torch.bfloat16 if native_bf16(flags) else None


def resolve_precision(
    given: str | None, stored: str | None, resuming: bool, default: str = DEFAULT_PRECISION
) -> tuple[str, str | None]:
    """The precision a run trains with and, when it differs from the run's own, a note saying so.

    ``given``: ``--precision`` (None when not given); ``stored``: what the resumed checkpoint records
    (None when it records nothing). A new run takes ``given`` or ``default``; a
    resumed run keeps its own (:data:`LEGACY_PRECISION` for checkpoints from before the record)
    unless ``--precision`` names another, which the note reports.
    """
    if given is not None and given not in PRECISIONS:
        raise FommError(f"--precision is {given!r}; use one of {', '.join(PRECISIONS)}")
    if not resuming:
        return given or default, None
    own = stored or LEGACY_PRECISION
    if given is None or given == own:
        return own, None
    return given, f"note: --precision {given} on --resume; the run trained with {own} until now"


def no_autocast(device_type: str):
    """A region where autocast is off: the geometry and the loss algebra stay fp32 under
    ``--precision bf16`` (matrix products would otherwise round to bf16)."""
    try:
        return torch.autocast(device_type=device_type, enabled=False)
    except RuntimeError:  # pragma: no cover - device type without autocast
        return contextlib.nullcontext()


def use_channels_last(memory_format: str, device_type: str) -> bool:
    """Whether activations go NHWC: ``channels_last`` yes, ``contiguous`` no, ``auto`` on the CPU."""
    if memory_format not in MEMORY_FORMATS:
        raise FommError(f"--memory-format is {memory_format!r}; use one of {', '.join(MEMORY_FORMATS)}")
    if memory_format == "auto":
        return device_type == "cpu"
    return memory_format == "channels_last"


def to_layout(x: dict[str, torch.Tensor], channels_last: bool) -> dict[str, torch.Tensor]:
    """The 4-D tensors of a batch in NHWC when ``channels_last`` (same values, other strides)."""
    if not channels_last:
        return dict(x)
    return {
        k: v.contiguous(memory_format=torch.channels_last) if isinstance(v, torch.Tensor) and v.dim() == 4 else v
        for k, v in x.items()
    }


def prepare_model(model: torch.nn.Module, channels_last: bool) -> torch.nn.Module:
    """Store the 4-D weights of the keypoint detector and the generator NHWC (in place, before the
    optimizers are built) when ``channels_last``: their convolutions then run NHWC even after a
    ``grid_sample``, whose output is NCHW. The discriminator keeps its layout (spectral norm reshapes
    its weight). Values are unchanged; checkpoints hold the same numbers in NHWC strides, which
    ``load_state_dict`` copies into a model of any layout."""
    if channels_last:
        for name in ("kp_detector", "generator"):
            part = getattr(model, name, None)
            if part is not None:
                part.to(memory_format=torch.channels_last)
    return model
