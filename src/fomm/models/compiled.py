"""``torch.compile`` for inference (``InferenceModel(compile=True)``, ``fomm animate --compile``):
inductor with frozen weights, its compiled code cached on disk so that the next process loads it
instead of compiling again, and the compile time printed once.

Off by default on the CPU: measured on a 2-core AMD EPYC (AVX-512 BF16, no AMX; docs/deploy.md,
"Speed"), the convolutions are oneDNN's with or without compile and they are ~95% of a frame, so
compiling gains a few percent of a frame for minutes of compiling on 2 cores.

The cache: ``$TORCHINDUCTOR_CACHE_DIR`` when set, else ``$FOMM_HOME/inductor`` or the user cache
folder (``platformdirs.user_cache_dir("fomm")/inductor``).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch


def inductor_cache_dir() -> Path:
    """Where compiled code is kept between runs (see the module doc)."""
    if os.environ.get("TORCHINDUCTOR_CACHE_DIR"):
        return Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
    home = os.environ.get("FOMM_HOME")
    if home:
        return Path(home).expanduser() / "inductor"
    import platformdirs

    return Path(platformdirs.user_cache_dir("fomm")) / "inductor"


def configure_inductor() -> Path:
    """Frozen weights (constants folded into the graph: inference only) and the on-disk caches.
    Process-wide settings, made before the first compile; returns the cache folder."""
    import torch._inductor.config as inductor_config

    cache = inductor_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache))  # read when inductor first compiles
    inductor_config.freezing = True
    inductor_config.fx_graph_cache = True
    return cache


class CompiledCall:
    """``torch.compile(fn)`` whose first call (where compiling happens, or loading from the cache)
    prints its time once on stderr."""

    def __init__(self, fn, name: str, cache: Path):
        self.fn = torch.compile(fn)
        self.name = name
        self.cache = cache
        self.first = True

    def __call__(self, *args, **kwargs):
        if not self.first:
            return self.fn(*args, **kwargs)
        start = time.perf_counter()
        out = self.fn(*args, **kwargs)
        self.first = False
        print(
            f"fomm: torch.compile of the {self.name}: {time.perf_counter() - start:.1f} s "
            f"(cached in {self.cache}; later runs load it)",
            file=sys.stderr,
        )
        return out


def compile_call(fn, name: str) -> CompiledCall:
    """``fn`` compiled with inductor and frozen weights (see the module doc)."""
    return CompiledCall(fn, name, configure_inductor())
