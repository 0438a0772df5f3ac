"""fomm.cpu: the CPU's model and flags, one answer to "native bf16?" for training and animation,
and the glibc allocator setting (kept memory with it, trimmed without it; a no-op where it must be)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from fomm import cpu
from fomm.errors import FommError
from fomm.models import inference
from fomm.training import speed

GLIBC = cpu.glibc_version() is not None

# Allocates one block from C, frees it, and reports glibc's mallinfo2 while held and after the
# free: 48 MiB, the size of a vox-256 activation, which glibc's defaults serve with mmap.
PROBE = """
import ctypes, json, sys
from fomm import cpu
tuned = cpu.tune_allocator() if sys.argv[1] == "tuned" else None
libc = ctypes.CDLL(None)
names = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in names]
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
size = 48 << 20
before = libc.mallinfo2()
block = libc.malloc(size)
ctypes.memset(block, 1, size)
held = libc.mallinfo2()
libc.free(block)
freed = libc.mallinfo2()
released = cpu.release_memory()
trimmed = libc.mallinfo2()
info = lambda m: {n: getattr(m, n) for n in names}
print(json.dumps({"tuned": tuned, "before": info(before), "held": info(held), "freed": info(freed),
                  "released": released, "trimmed": info(trimmed), "state": cpu.allocator_info()}))
"""


def _probe(mode: str, **env) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != cpu.ALLOCATOR_ENV}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


@pytest.fixture
def fresh(monkeypatch):
    """A fresh allocator decision in this process, with mallopt itself replaced by a counter."""
    calls = []
    monkeypatch.setattr(cpu, "_allocator_state", None)
    monkeypatch.setattr(cpu, "_mallopt_all", lambda: calls.append(1) or True)
    for k in [k for k in os.environ if k.startswith("MALLOC_")] + [cpu.ALLOCATOR_ENV, "GLIBC_TUNABLES", "LD_PRELOAD"]:
        monkeypatch.delenv(k, raising=False)
    return calls


# -- the allocator ---------------------------------------------------------------------------------
@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_tuned_allocator_keeps_freed_memory_default_trims_it():
    """glibc's defaults serve a 48 MiB block with mmap and hand it back on free; tuned, it comes
    from the heap and stays there (free in the arena) for the next allocation."""
    size = 48 << 20
    default, tuned = _probe("default"), _probe("tuned")
    mapped = {k: v["held"]["hblkhd"] - v["before"]["hblkhd"] for k, v in (("default", default), ("tuned", tuned))}
    assert mapped["default"] >= size and default["freed"]["hblkhd"] == default["before"]["hblkhd"]
    assert default["freed"]["arena"] < size // 4  # returned to the kernel
    assert tuned["tuned"] is True and tuned["state"]["settings"]["M_MMAP_MAX"] == 0
    assert mapped["tuned"] == 0 and tuned["held"]["arena"] >= size  # from the heap
    assert tuned["freed"]["arena"] >= size and tuned["freed"]["fordblks"] >= size  # kept, free for reuse


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_release_memory_hands_the_kept_memory_back():
    """Between the app's jobs, release_memory() returns what the tuned heap kept; untuned it does nothing."""
    size = 48 << 20
    default, tuned = _probe("default"), _probe("tuned")
    assert tuned["released"] is True and tuned["trimmed"]["arena"] < size // 4
    assert default["released"] is False


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_opt_out_env_leaves_glibc_alone():
    size = 48 << 20
    for env in ({cpu.ALLOCATOR_ENV: "default"}, {"MALLOC_ARENA_MAX": "2"}):
        out = _probe("tuned", **env)
        assert out["tuned"] is False and out["held"]["hblkhd"] - out["before"]["hblkhd"] >= size, env
        assert out["freed"]["arena"] < size // 4, env


def test_tune_allocator_is_idempotent(fresh, monkeypatch):
    monkeypatch.setattr(cpu, "glibc_version", lambda: "2.36")
    assert cpu.tune_allocator() and cpu.tune_allocator() and fresh == [1]
    assert cpu.allocator_info()["tuned"] and "FOMM_ALLOCATOR=default" in cpu.allocator_info()["reason"]


@pytest.mark.parametrize(
    "env, glibc, reason",
    [
        ({}, None, "not glibc"),  # macOS, Windows, musl
        ({"FOMM_ALLOCATOR": "default"}, "2.36", "FOMM_ALLOCATOR=default"),
        ({"MALLOC_MMAP_THRESHOLD_": "65536"}, "2.36", "MALLOC_MMAP_THRESHOLD_"),
        ({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"}, "2.36", "GLIBC_TUNABLES"),
        ({"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"}, "2.36", "preloaded"),
    ],
)
def test_tune_allocator_no_op_cases(fresh, monkeypatch, env, glibc, reason):
    monkeypatch.setattr(cpu, "glibc_version", lambda: glibc)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert cpu.tune_allocator() is False and fresh == []  # mallopt never called
    assert "settings" not in cpu.allocator_info()
    assert reason in cpu.allocator_info()["reason"]


def test_bad_allocator_env_is_one_clear_error(fresh, monkeypatch):
    monkeypatch.setenv(cpu.ALLOCATOR_ENV, "jemalloc")
    with pytest.raises(FommError, match="FOMM_ALLOCATOR='jemalloc'.*'tuned'.*'default'"):
        cpu.tune_allocator()


def test_glibc_version_here():
    assert cpu.glibc_version() is None or cpu.glibc_version()[0].isdigit()


# -- one native-bf16 answer ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "flags, native",
    [
        ({"avx2", "fma"}, False),  # AVX2 only: bf16 emulated
        ({"avx2", "avx512f", "avx512bw"}, False),  # AVX-512 without BF16
        ({"avx2", "avx512f", "avx512_bf16"}, True),  # Zen 4/5, Cooper Lake
        ({"amx_tile", "amx_bf16"}, True),  # Sapphire Rapids
        ({"fp", "asimd", "bf16"}, True),  # Arm with FEAT_BF16
    ],
)
def test_training_and_animation_share_the_bf16_answer(monkeypatch, flags, native):
    monkeypatch.setattr(cpu, "cpu_flags", lambda cpuinfo="/proc/cpuinfo": set(flags))
    monkeypatch.setattr(cpu, "_onednn_bf16", lambda: pytest.fail("flags are known: oneDNN not asked"))
    assert cpu.native_bf16() is native
    assert inference.cpu_has_fast_bf16() is native
    assert (speed.autocast_dtype("auto", "cpu") is torch.bfloat16) is native
    assert (inference.fast_dtype(torch.device("cpu")) is torch.bfloat16) is native


def test_without_cpuinfo_oneDNN_answers(monkeypatch):
    monkeypatch.setattr(cpu, "cpu_flags", lambda cpuinfo="/proc/cpuinfo": set())
    for answer in (True, False):
        monkeypatch.setattr(cpu, "_onednn_bf16", lambda a=answer: a)
        assert cpu.native_bf16() is answer and inference.cpu_has_fast_bf16() is answer


def test_cpu_flags_parse_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu avx2 avx512f avx512_bf16\n\n"
        "processor\t: 1\nflags\t\t: fpu avx2 avx512f avx512_bf16\n"
    )
    flags = cpu.cpu_flags(info)
    assert {"avx2", "avx512f", "avx512_bf16"} <= flags and "amx_bf16" not in flags
    assert cpu.native_bf16(flags) and not cpu.native_bf16({"avx2", "avx512f"})
    assert cpu.cpu_model(info) == "Test CPU 9000"
    assert cpu.cpu_flags(tmp_path / "missing") == set() and cpu.cpu_model(tmp_path / "missing") == "unknown"
    described = cpu.describe_cpu()
    assert set(described["flags"]) == set(cpu.REPORTED_FLAGS) and described["torch_threads"] >= 1
    assert "tuned" in described["allocator"]
