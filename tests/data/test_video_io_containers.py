"""fomm.data.video_io.containers: every frame conversion in fomm runs swscale in one thread.

PyAV 17+ scales with a thread pool per process by default; one hung in a forked DataLoader worker
(PyAV 18.1.1). The helpers ask for one thread; a scan of fomm's source checks that every
conversion goes that way.
"""

from __future__ import annotations

import ast
from pathlib import Path

import av
import numpy as np

import fomm
from fomm.data.video_io.containers import DECODE_FLAGS, frame_to_ndarray, swscale

SRC = Path(fomm.__file__).resolve().parent
CONVERSIONS = {"reformat", "to_ndarray", "to_image"}  # the PyAV frame methods that run swscale
HELPERS = {"swscale", "frame_to_ndarray"}


class Recorder:
    """A frame that records what it is asked."""

    def __init__(self):
        self.calls = []

    def reformat(self, **kwargs):
        self.calls.append(("reformat", kwargs))
        return self

    def to_ndarray(self, **kwargs):
        self.calls.append(("to_ndarray", kwargs))
        return np.zeros((2, 2, 3), np.uint8)


def test_the_helpers_ask_for_one_thread_and_convert_as_pyav_does():
    frame = Recorder()
    swscale(frame, format="yuv420p")
    frame_to_ndarray(frame, format="rgb24", width=4)
    assert frame.calls == [
        ("reformat", {"threads": 1, "format": "yuv420p"}),
        ("to_ndarray", {"threads": 1, "format": "rgb24", "width": 4}),
    ]
    yy, xx = np.mgrid[:16, :24]
    rgb = np.stack([8 * xx, 12 * yy, np.full_like(xx, 128)], -1).astype(np.uint8)  # smooth: chroma survives 4:2:0
    yuv = swscale(av.VideoFrame.from_ndarray(rgb, format="rgb24"), format="yuv420p")
    assert (yuv.format.name, yuv.width, yuv.height) == ("yuv420p", 24, 16)
    ours = frame_to_ndarray(yuv, format="rgb24", interpolation=DECODE_FLAGS)
    np.testing.assert_array_equal(ours, yuv.to_ndarray(format="rgb24", interpolation=DECODE_FLAGS))
    assert np.abs(ours.astype(int) - rgb).mean() < 2


def _fallbacks(tree: ast.Module) -> set[int]:
    """The calls in the helpers' ``except TypeError`` branches (PyAV < 17 has no threads argument)."""
    return {
        id(node)
        for func in ast.walk(tree)
        if isinstance(func, ast.FunctionDef) and func.name in HELPERS
        for handler in ast.walk(func)
        if isinstance(handler, ast.ExceptHandler)
        for node in ast.walk(handler)
    }


def test_every_frame_conversion_in_fomm_uses_one_swscale_thread():
    found, unsafe = 0, []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        skip = _fallbacks(tree) if path.name == "containers.py" else set()
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr not in CONVERSIONS or id(node) in skip:
                continue
            found += 1
            threads = [k.value for k in node.keywords if k.arg == "threads"]
            if not (threads and isinstance(threads[0], ast.Constant) and threads[0].value == 1):
                unsafe.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert found >= 2 and not unsafe, unsafe
