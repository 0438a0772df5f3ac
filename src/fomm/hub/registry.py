"""Kept for callers of ``fomm.hub.registry``: the checkpoint names, the bundled models and the
download cache belong to the model layer now (:mod:`fomm.models.registry`), where
:func:`fomm.load_model` looks them up; this module only re-exports them."""

from fomm.models.registry import (  # noqa: F401 (re-exported)
    BUILTIN,
    BUNDLED_MODELS,
    GITHUB_MIRROR,
    HF_MIRROR,
    HF_SPACE_MIRROR,
    Checkpoint,
    by_hand,
    cache_dir,
    cached_path,
    is_cached,
    normalise_sha256,
    registry,
    resolve_checkpoint,
)
