"""Speed settings of ``fomm train`` on the CPU: memory layout and bfloat16 autocast.

Neither changes the objective (the same losses, the same gradients up to float32 rounding for the
memory layout; bfloat16 rounds convolutions to 8 mantissa bits, so it is an opt-in):

* **channels_last** (``TrainOptions.memory_format``): the input frames, the weights of the keypoint
  detector and generator, and the frozen VGG19 of the perceptual loss are stored NHWC, so that
  oneDNN's convolutions skip their layout reorders (measured: about 10% less time per step on
  this AMD EPYC). The same numbers: in float64 the two layouts give the same losses and gradients
  to 1e-13 (tests/training/test_speed.py). ``auto`` (default) picks it on the CPU.
* **bfloat16 autocast** (``TrainOptions.precision``): ``bf16`` always, ``auto`` only when the CPU
  computes bfloat16 natively (``avx512_bf16`` or ``amx_bf16`` in ``/proc/cpuinfo``): without those
  instructions bfloat16 is emulated and slower than float32. ``fp32`` (default) keeps float32.
  On CUDA the ``amp`` option (float16 with a gradient scaler) applies instead.
"""

from __future__ import annotations

from pathlib import Path

import torch

from fomm.errors import FommError

PRECISIONS = ("fp32", "bf16", "auto")
MEMORY_FORMATS = ("contiguous", "channels_last", "auto")
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
REPORTED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The CPU feature flags of the first ``flags`` line of ``/proc/cpuinfo`` (empty elsewhere)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The ``model name`` line of ``/proc/cpuinfo`` ("unknown" when there is none)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return "unknown"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return value.strip()
    return "unknown"


def native_bf16(flags: set[str]) -> bool:
    """True when the CPU has bfloat16 dot-product instructions (AVX512-BF16 or AMX-BF16)."""
    return any(f in flags for f in NATIVE_BF16_FLAGS)


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
    return torch.bfloat16 if native_bf16(cpu_flags() if flags is None else flags) else None


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


def describe_cpu() -> dict:
    """CPU model, the flags that matter for speed, thread count and load average (benchmarks, run.json)."""
    import os

    flags = cpu_flags()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - no load average on this OS
        load = None
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "flags": {f: f in flags for f in REPORTED_FLAGS},
        "native_bf16": native_bf16(flags),
        "torch_threads": torch.get_num_threads(),
        "load_average": load,
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
