"""The README's Python example runs as pasted, and its commands name real sub-commands and presets."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from fomm.cli_args import COMMANDS
from fomm.config import preset_names
from fomm.data import video_io
from fomm.models.tpsmm.config import tpsmm_preset_names

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


@pytest.mark.slow
def test_python_example_runs_as_pasted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (block,) = _python_blocks()
    exec(compile(block, "README.md", "exec"), {})
    frames, _ = video_io.read_frames(tmp_path / "result.mp4")
    assert frames.ndim == 4 and frames.shape[1:] == (64, 64, 3) and len(frames) > 1
    side, _ = video_io.read_frames(tmp_path / "result-side.mp4")
    assert len(side) == len(frames) and side.shape[2] > 3 * 64
    assert np.isfinite(frames).all()


def test_every_command_and_preset_in_the_readme_exists():
    text = README.read_text()
    commands = {name for name, *_ in COMMANDS}
    used = set(re.findall(r"^\s*fomm ([a-z][a-z-]*)", text, flags=re.M))
    assert used and used <= commands, used - commands
    presets = set(re.findall(r"`([a-z]+(?:-[a-z]+)*-(?:64|256|384|512))`", text))
    known = set(preset_names()) | set(tpsmm_preset_names())  # the TPSMM configs too
    assert known <= presets | {"tiny-64"}, known - presets
    assert presets <= known, presets - known
