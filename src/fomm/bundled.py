"""The model and demo inputs shipped inside the package.

The bundled model is a small FOMM (preset ``puppet-64``) that the project trains itself on its
procedural puppet videos (``fomm synth``), so a fresh machine with no checkpoint and no internet
can see the system work. How it was made is recorded in ``training/bundled/`` of the repository.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fomm.errors import FommError

BUNDLED_MODEL = "puppet-64.pth"


def assets_dir() -> Path:
    return Path(str(resources.files("fomm") / "assets"))


def bundled_checkpoint_path() -> Path:
    """Path of the bundled checkpoint (our format, config embedded)."""
    path = assets_dir() / "bundled" / BUNDLED_MODEL
    if not path.is_file():
        raise FommError(
            f"the bundled model is missing from this installation ({path}); reinstall fomm or pass --checkpoint"
        )
    return path


def demo_inputs() -> tuple[Path, Path]:
    """The bundled demo source image and driving video."""
    demo = assets_dir() / "demo"
    source, driving = demo / "source.png", demo / "driving.mp4"
    if not (source.is_file() and driving.is_file()):
        raise FommError(f"the bundled demo inputs are missing ({demo}); reinstall fomm")
    return source, driving


def load_bundled_model(device: str = "cpu"):
    from fomm.models.checkpoint import load_model

    return load_model(bundled_checkpoint_path(), device=device)
