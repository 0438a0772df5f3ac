"""The same clips whatever the number of workers, in one run or in shards, after a SIGKILL and a rerun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from prepare_videos import puppet_in_frame

from face_clips import write_video  # noqa: I001 - tests/face_clips.py
from fomm.cli import main
from fomm.data import video_io

ARGS = ["--category", "object", "--min-frames", "16", "--min-size", "32", "--size", "64", "--no-progress"]
ARGS += ["--test-fraction", "0.25"]


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raw")
    for k in range(4):
        frames, _ = puppet_in_frame(24, 120, 160, side=48, seed=k)
        write_video(root / f"clip{k}.mp4", frames)
    (root / "b").mkdir()
    frames, _ = puppet_in_frame(24, 120, 160, side=48, seed=9)
    write_video(root / "b" / "clip0.mp4", frames)  # same name in another folder: another id
    return root


def prepare(raw: Path, data: Path, *extra) -> dict:
    assert main(["prepare", str(raw), "--out", str(data), *ARGS, *extra]) == 0
    return json.loads((data / "prepare.json").read_text())


def clip_frames(data: Path) -> dict:
    """Each clip file's decoded frames (x264's bytes may differ between processes; the clips'
    frames before encoding do not: their SHA-1 is in prepare.json)."""
    return {p.relative_to(data).as_posix(): video_io.read_frames(p)[0] for p in sorted(data.glob("t*/*.mp4"))}


def same_clips(a: Path, b: Path) -> bool:
    fa, fb = clip_frames(a), clip_frames(b)
    assert fa.keys() == fb.keys()
    # the same frames went into x264 (their SHA-1s in prepare.json are equal); its output varies a
    # little from run to run (about 1 grey level on average at 64 x 64)
    return all(fa[k].shape == fb[k].shape and np.abs(fa[k].astype(int) - fb[k]).mean() < 2.5 for k in fa)


@pytest.fixture(scope="module")
def one_run(raw, tmp_path_factory) -> tuple[Path, dict]:
    data = tmp_path_factory.mktemp("one") / "data"
    return data, prepare(raw, data, "--workers", "1")


@pytest.mark.slow
def test_one_run(one_run):
    data, manifest = one_run
    assert not (data / ".prepare" / "staging").exists()
    assert manifest["complete"] and len(manifest["clips"]) == 5
    assert {c["split"] for c in manifest["clips"]} == {"train", "test"}
    assert sum(c["split"] == "test" for c in manifest["clips"]) == 1  # round(0.25 x 5)
    assert sorted(c["name"] for c in manifest["clips"]) == ["b_clip0#0", *(f"clip{k}#0" for k in range(4))]


@pytest.mark.slow
def test_two_workers_make_the_same_clips(raw, one_run, tmp_path):
    data = tmp_path / "data"
    assert prepare(raw, data, "--workers", "2") == one_run[1]
    assert same_clips(data, one_run[0])


@pytest.mark.slow
def test_shards_in_any_order_make_the_same_manifest(raw, one_run, tmp_path, capsys):
    data = tmp_path / "data"
    first = prepare(raw, data, "--workers", "1", "--shard", "1/2")
    assert not first["complete"] and 0 < first["counts"]["videos_done"] < 5
    assert "not prepared yet (other shards)" in capsys.readouterr().out
    env = {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "2"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the second part from Slurm's variables: task 1 of 1-2 is part 0
    try:
        second = prepare(raw, data, "--workers", "1")
    finally:
        for key, value in old.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)
    assert second == one_run[1]
    assert same_clips(data, one_run[0])


@pytest.mark.slow
def test_sigkill_then_rerun_ends_with_the_same_clips(raw, one_run, tmp_path):
    data = tmp_path / "data"
    command = [sys.executable, "-m", "fomm.cli", "prepare", str(raw), "--out", str(data), *ARGS, "--workers", "1"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = data / ".prepare" / "videos"
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if records.is_dir() and any(records.iterdir()):
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (data / "prepare.json").exists()  # killed before the end
    assert prepare(raw, data, "--workers", "1") == one_run[1]
    assert same_clips(data, one_run[0])
    # the killed process's unfinished files were in its staging folder, removed by the rerun
    assert not (data / ".prepare" / "staging").exists()
    assert not [p for p in data.glob("t*/.*")]  # nothing hidden beside the clips
