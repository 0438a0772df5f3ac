"""What this CPU can do, and the process settings that make long CPU work faster.

* :func:`cpu_flags`, :func:`cpu_model`, :func:`describe_cpu`: the CPU as ``/proc/cpuinfo`` describes
  it (benchmarks, run.json).
* :func:`usable_cores`: the cores this process may run on (how many workers to start by default).
* :func:`native_bf16`: the one answer to "does this CPU compute bfloat16 natively?", used by
  training (``--precision auto``) and animation (``--precision fast``). From the flags
  (``avx512_bf16`` / ``amx_bf16`` on x86, ``bf16`` on Arm) where ``/proc/cpuinfo`` exists, else from
  oneDNN (macOS, Windows). Without those instructions bfloat16 is emulated and slower than float32.
* :func:`tune_allocator`: keeps freed memory inside glibc's heap instead of handing it back to the
  kernel. A vox-256 training step allocates and frees several GB of activations; with glibc's
  default settings every big block is returned to the OS on ``free`` and page-faulted back (zeroed
  by the kernel) the next step, which costs about as much system time as the convolutions.
  Measured on a 2-core AMD EPYC (docs/training.md, "Speed"). The numbers computed are
  the same bit for bit; only where the memory comes from changes. Opt out with
  ``FOMM_ALLOCATOR=default`` (or by setting glibc's own ``MALLOC_*`` variables, which are then left
  alone).
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # x86 AVX512-BF16, AMX-BF16; Arm FEAT_BF16
REPORTED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")

# glibc mallopt parameters (malloc.h) and the values tune_allocator sets
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -2, -3, -4
ALLOCATOR_SETTINGS = {
    # no block is served by its own mmap (glibc's default for blocks from 128 KiB up, unmapped again
    # on free): all come from the heap and are reused. vox-256 activations reach 32-100 MB.
    "M_MMAP_MAX": (M_MMAP_MAX, 0),
    # (and should mmap be used anyway: the largest threshold glibc accepts on 64-bit, 32 MiB)
    "M_MMAP_THRESHOLD": (M_MMAP_THRESHOLD, 32 << 20),
    # free memory at the top of the heap is returned to the OS only beyond 1 GiB (default 128 KiB)
    "M_TRIM_THRESHOLD": (M_TRIM_THRESHOLD, 1 << 30),
    # grow the heap 256 MiB at a time (address space only; pages are touched when used)
    "M_TOP_PAD": (M_TOP_PAD, 256 << 20),
}
ALLOCATOR_ENV = "FOMM_ALLOCATOR"
ALLOCATOR_CHOICES = ("tuned", "default")
_PRELOADED_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")

_allocator_state: dict | None = None  # set by the first tune_allocator() call


# ------------------------------------------------------------------------------------------------
# CPU facts
# ------------------------------------------------------------------------------------------------
def _cpuinfo_value(keys: tuple[str, ...], cpuinfo: str | Path) -> str | None:
    """The value of the first ``/proc/cpuinfo`` line whose key is in ``keys`` (None: none/unreadable)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in keys:
            return value
    return None


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The CPU feature flags of the first ``flags`` (x86) or ``Features`` (Arm) line of
    ``/proc/cpuinfo``; empty where there is none (macOS, Windows)."""
    value = _cpuinfo_value(("flags", "Features"), cpuinfo)
    return set(value.split()) if value else set()


def cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The ``model name`` line of ``/proc/cpuinfo`` ("unknown" when there is none)."""
    value = _cpuinfo_value(("model name",), cpuinfo)
    return value.strip() if value else "unknown"


def _onednn_bf16() -> bool:
    """oneDNN's own check, for systems without ``/proc/cpuinfo``."""
    try:
        import torch

        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (ImportError, AttributeError, RuntimeError):
        return False


def native_bf16(flags: set[str] | None = None) -> bool:
    """True when the CPU has bfloat16 dot-product instructions (AVX512-BF16, AMX-BF16, Arm BF16).

    ``flags``: a set of CPU flags (tests inject them); None reads this CPU's from ``/proc/cpuinfo``
    and, where that file does not exist, asks oneDNN.
    """
    if flags is None:
        flags = cpu_flags()
        if not flags:
            return _onednn_bf16()
    return any(f in flags for f in NATIVE_BF16_FLAGS)


def usable_cores() -> int:
    """The cores this process may run on (its affinity, else all): default worker counts."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def describe_cpu() -> dict:
    """CPU model, the flags that matter for speed, thread count, load average and the allocator
    setting (benchmarks, run.json)."""
    import torch

    flags = cpu_flags()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - no load average on this OS
        load = None
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "flags": {f: f in flags for f in REPORTED_FLAGS},
        "native_bf16": native_bf16(flags or None),
        "torch_threads": torch.get_num_threads(),
        "load_average": load,
        "allocator": allocator_info(),
    }


# ------------------------------------------------------------------------------------------------
# Memory allocator
# ------------------------------------------------------------------------------------------------
def glibc_version() -> str | None:
    """``"2.36"`` on glibc, None elsewhere (macOS, Windows, musl)."""
    try:
        value = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):
        return None
    if not value or not value.startswith("glibc"):
        return None
    return value.split()[-1]


def _opt_out_reason() -> str | None:
    """Why the allocator must be left as it is (None: it may be tuned)."""
    from fomm.errors import FommError

    choice = os.environ.get(ALLOCATOR_ENV, "").strip().lower() or "tuned"
    if choice not in ALLOCATOR_CHOICES:
        raise FommError(f"{ALLOCATOR_ENV}={choice!r} is not understood; use 'tuned' (the default) or 'default'")
    if choice == "default":
        return f"{ALLOCATOR_ENV}=default"
    if glibc_version() is None:
        return "not glibc"
    own = sorted(k for k in os.environ if k.startswith("MALLOC_"))
    if own or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return "the user's own " + (", ".join(own) or "GLIBC_TUNABLES")
    preload = os.environ.get("LD_PRELOAD", "")
    if any(name in preload for name in _PRELOADED_ALLOCATORS):
        return "another allocator is preloaded"
    return None


def _mallopt_all() -> bool:
    """Apply :data:`ALLOCATOR_SETTINGS` with glibc's ``mallopt`` (True when every call succeeded)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    results = [mallopt(param, value) == 1 for param, value in ALLOCATOR_SETTINGS.values()]  # each one tried
    return all(results)


def tune_allocator() -> bool:
    """Make glibc keep freed memory for reuse (see the module docstring); True when it is tuned.

    Process-wide and idempotent: the first call decides, later calls return the same answer. A
    silent no-op returning False outside glibc (macOS, musl, Windows), with ``FOMM_ALLOCATOR=default``,
    when the user set glibc's ``MALLOC_*`` variables or ``GLIBC_TUNABLES`` for malloc, or when
    another allocator is preloaded. :func:`allocator_info` says which.
    """
    global _allocator_state
    if _allocator_state is None:
        reason = _opt_out_reason()
        tuned = reason is None and _mallopt_all()
        if reason is None and not tuned:
            reason = "mallopt refused the settings"
        _allocator_state = {"tuned": tuned, "reason": reason or "tuned by fomm (FOMM_ALLOCATOR=default to opt out)"}
        if tuned:
            _allocator_state["settings"] = {k: v for k, (_, v) in ALLOCATOR_SETTINGS.items()}
    return bool(_allocator_state["tuned"])


def release_memory() -> bool:
    """Hand the heap's free memory back to the kernel now (glibc ``malloc_trim(0)``); True when
    some was. For long-running processes (the app) between jobs: with :func:`tune_allocator`'s
    settings a large freed block (a whole video) otherwise stays resident until it is reused. Does
    nothing (False) when the allocator was not tuned or outside glibc."""
    if not (_allocator_state or {}).get("tuned"):
        return False
    try:
        malloc_trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    malloc_trim.argtypes, malloc_trim.restype = (ctypes.c_size_t,), ctypes.c_int
    return malloc_trim(0) == 1


def allocator_info() -> dict:
    """``{"tuned": bool, "reason": str[, "settings": {...}]}`` of :func:`tune_allocator`'s decision
    (``tuned`` False with reason "not tuned" before the first call)."""
    if _allocator_state is None:
        return {"tuned": False, "reason": "not tuned (glibc defaults)"}
    return dict(_allocator_state)
