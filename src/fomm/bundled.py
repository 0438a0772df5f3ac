"""The models and demo inputs shipped inside the package, one per procedural category.

The bundled models are small FOMMs (presets ``face-64`` and ``puppet-64``) that the project trains
itself on its procedural videos (``fomm synth``), so a fresh machine with no checkpoint and no
internet can see the system work. How each was made is recorded in ``experiments/bundled-face/`` and
``experiments/bundled/`` of the repository. :data:`BUNDLED_MODELS` maps a category to its file; a
category whose file is not shipped has no bundled model (:func:`bundled_categories`).

Each bundled model is also a checkpoint name (``face-64``, ``puppet-64``) that every command
taking ``--checkpoint`` accepts; the names live with the other checkpoint names in
:mod:`fomm.models.registry`. This module adds the categories and the demo inputs.
"""

from __future__ import annotations

from pathlib import Path

from fomm.errors import FommError
from fomm.models import registry
from fomm.models.registry import BUNDLED_MODELS

# kept for callers of the single-model API: the puppet model's file
BUNDLED_MODEL = BUNDLED_MODELS["puppet"]


def assets_dir() -> Path:
    """The package's data folder (see :func:`fomm.models.registry.assets_dir`)."""
    return registry.assets_dir()


def bundled_categories() -> list[str]:
    """Categories with a bundled model in this installation, default first."""
    return [c for c, name in BUNDLED_MODELS.items() if (assets_dir() / "bundled" / name).is_file()]


def default_category() -> str:
    """The category ``fomm demo`` and the bundled-model API use when none is given."""
    shipped = bundled_categories()
    if not shipped:
        raise FommError("no bundled model is installed (src/fomm/assets/bundled); reinstall fomm or pass --checkpoint")
    return shipped[0]


def _category(category: str | None) -> str:
    if category is None:
        return default_category()
    if category not in BUNDLED_MODELS:
        raise FommError(
            f"no bundled model for category {category!r}; use one of: {', '.join(BUNDLED_MODELS)} or pass --checkpoint"
        )
    return category


def bundled_checkpoint_path(category: str | None = None) -> Path:
    """Path of the bundled checkpoint of ``category`` (``face``, ``puppet``; None: the default)."""
    category = _category(category)
    path = assets_dir() / "bundled" / BUNDLED_MODELS[category]
    if not path.is_file():
        raise FommError(
            f"the bundled {category} model is missing from this installation ({path}); "
            f"reinstall fomm, use --category {' or '.join(bundled_categories()) or '?'}, or pass --checkpoint"
        )
    return path


def demo_inputs(category: str | None = None) -> tuple[Path, Path]:
    """The bundled demo source image and driving video of ``category`` (None: the default):
    ``assets/demo/`` holds the puppet's, ``assets/demo/<category>/`` the others'."""
    category = _category(category)
    demo = assets_dir() / "demo"
    if category != "puppet":
        demo = demo / category
    source, driving = demo / "source.png", demo / "driving.mp4"
    if not (source.is_file() and driving.is_file()):
        raise FommError(f"the bundled {category} demo inputs are missing ({demo}); reinstall fomm")
    return source, driving


def bundled_name(category: str | None = None) -> str:
    """The checkpoint name of the bundled model of ``category`` (``face`` -> ``face-64``)."""
    return Path(bundled_checkpoint_path(category)).stem


def load_bundled_model(device: str = "cpu", category: str | None = None):
    """The bundled model of ``category`` (None: the default), through :func:`fomm.load_model`."""
    from fomm.models.checkpoint import load_model  # torch: only when a model is loaded

    return load_model(bundled_name(category), device=device)
