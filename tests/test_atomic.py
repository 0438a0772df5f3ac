"""Atomic writes: no partial output on failure; temporary files of killed writers are removed by the
next write into the same folder (only ours, only when their writer is gone or they are old)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from fomm import atomic
from fomm.atomic import atomic_path, atomic_write_bytes, make_temp_dir, remove_stale_temps

WRITER = """
import sys, time
from fomm.atomic import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    with open(tmp, "wb") as fh:
        fh.write(b"partial" * 1000)
        fh.flush()
        print(tmp, flush=True)
        time.sleep(60)
"""


@pytest.fixture(autouse=True)
def _fresh_sweeps(monkeypatch):
    monkeypatch.setattr(atomic, "_last_sweep", {})


def _ours(folder):
    return sorted(p.name for p in folder.iterdir() if ".fomm-" in p.name)


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_temp_file_of_a_sigkilled_writer_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "out.bin"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    try:
        tmp = proc.stdout.readline().strip()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert (
        tmp
        and os.path.basename(tmp).startswith(f".out.fomm-{atomic.HOST_MARK}-{proc.pid}-")
        and tmp.endswith(".tmp.bin")
    )
    assert os.path.isfile(tmp) and not target.exists()  # killed: the temporary is left, no output
    atomic_write_bytes(tmp_path / "other.bin", b"ok")
    assert not os.path.exists(tmp)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.bin"]


def test_only_our_stale_temporaries_are_removed(tmp_path):
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait(timeout=30)
        names = {
            "dead": f".a.fomm-{atomic.HOST_MARK}-{dead.pid}-x1y2z3.tmp.mp4",
            "dead_unmarked_host": f".h.fomm-{dead.pid}-x1y2z3.tmp.mp4",  # named before the host mark
            "live_young": f".b.fomm-{atomic.HOST_MARK}-{live.pid}-abc123.tmp.png",
            # another machine's writer: its process id says nothing here, so only age removes it
            "other_host_young": f".i.fomm-0badc0de-{dead.pid}-pqr678.tmp.mp4",
            "other_host_old": f".j.fomm-0badc0de-{dead.pid}-stu901.tmp.mp4",
            "live_old": f".c.fomm-{live.pid}-def456.tmp",
            "mine": f".d.fomm-{os.getpid()}-ghi789.tmp.pt",
            "foreign": ".e.tmp.mp4",
            "unmarked": f".f.{dead.pid}.tmp",
            "visible": f"g.fomm-{dead.pid}-jkl012.tmp",
        }
        for name in names.values():
            (tmp_path / name).write_bytes(b"x")
        old = time.time() - atomic.STALE_AFTER_S - 60
        os.utime(tmp_path / names["live_old"], (old, old))
        os.utime(tmp_path / names["other_host_old"], (old, old))
        dead_dir = tmp_path / f".frames.fomm-{dead.pid}-mno345.tmp"
        (dead_dir / "sub").mkdir(parents=True)
        (dead_dir / "sub" / "000.png").write_bytes(b"x")
        removed = remove_stale_temps(tmp_path)
        gone = ("dead", "dead_unmarked_host", "live_old", "other_host_old")
        assert sorted(p.name for p in removed) == sorted([names[k] for k in gone] + [dead_dir.name])
        left = {p.name for p in tmp_path.iterdir()}
        assert left == {names[k] for k in ("live_young", "other_host_young", "mine", "foreign", "unmarked", "visible")}
    finally:
        live.kill()
        live.wait(timeout=30)


def test_failed_write_leaves_nothing_and_temp_names_are_marked(tmp_path):
    target = tmp_path / "clip.mp4"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            assert tmp.name.startswith(f".clip.fomm-{atomic.HOST_MARK}-{os.getpid()}-") and tmp.name.endswith(
                ".tmp.mp4"
            )
            tmp.write_bytes(b"half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    folder = make_temp_dir(tmp_path / "frames")
    assert folder.is_dir() and folder.name.startswith(f".frames.fomm-{atomic.HOST_MARK}-{os.getpid()}-")
    atomic_write_bytes(target, b"done")
    assert target.read_bytes() == b"done" and folder.is_dir()  # this process's own: kept
