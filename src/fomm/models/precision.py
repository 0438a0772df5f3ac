"""The precisions animation runs in (their names and their one check), and the backends that run
the networks (:data:`BACKENDS`: torch, or ONNX Runtime on exported graphs).

``exact``: float32. ``fast``: bf16/fp16 autocast where the device has native kernels, int8
per-frame convolutions on other x86 CPUs (how each is applied: :mod:`fomm.models.inference`).
Training has its own choices (:mod:`fomm.training.speed`). Light (no torch): command lines
import it to list the choices.
"""

from __future__ import annotations

from fomm.errors import FommError

PRECISIONS = ("exact", "fast")
BACKENDS = ("torch", "onnxruntime")


def check_precision(precision) -> str:
    """``precision`` when it is one of :data:`PRECISIONS`, else a FommError naming the choices."""
    if precision not in PRECISIONS:
        raise FommError(f"unknown precision '{precision}'; use one of {', '.join(PRECISIONS)} (--precision)")
    return precision
