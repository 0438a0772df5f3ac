"""Which torch device a ``--device`` value means (``auto``: CUDA, then MPS, then the CPU), checked."""

from __future__ import annotations

import torch

from fomm.errors import FommError


def resolve_device(device: str | torch.device = "cpu") -> torch.device:
    """``'auto'`` picks CUDA, then MPS, then CPU; other names are checked to exist."""
    name = str(device)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise FommError("device 'cuda' was asked for but PyTorch sees no CUDA GPU; use --device cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise FommError("device 'mps' was asked for but it is not available here; use --device cpu or auto")
    try:
        return torch.device(name)
    except RuntimeError:
        raise FommError(f"unknown device '{name}'; use cpu, cuda, mps or auto") from None
