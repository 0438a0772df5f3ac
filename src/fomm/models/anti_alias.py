"""Which anti-alias blur a checkpoint was trained with, read from the kernels it stores.

The original code blurs with sigma = (1/s - 1)/2 before downsampling by s (29 x 29 kernels at
s = 0.125); the community's 512 x 512 models hard-code sigma 1.5 (13 x 13). Both store the kernel
as a buffer (``down.weight`` in the keypoint detector, ``dense_motion_network.down.weight`` in the
generator), so the checkpoint itself says which kind it is: :func:`fit_anti_alias` sets the
config's ``anti_alias_sigma`` to match, and one config (e.g. ``vox-512``) loads both kinds. The
loaded kernel is then the checkpoint's own, so the model computes what the original code built
with that sigma computes.

Recognising a checkpoint that carries no config (:func:`known_kind`) takes a preset's own kernels
and the other kinds it is known in (:data:`KNOWN_SIGMAS`) only: the community's vox-512 kind has
every tensor of vox-256, so such a checkpoint fits both and only a name or a registered sha256
tells which (:func:`fomm.models.shapes.preset_for`).
"""

from __future__ import annotations

from typing import Any

from fomm.config import Config
from fomm.models.blocks import anti_alias_kernel_size, anti_alias_sigma, sigma_for_kernel_size

# (model part, state-dict key of its kernel) for each anti-aliased downsampling the config sets
KERNELS = (("kp_detector", "down.weight"), ("generator", "dense_motion_network.down.weight"))
#: The sigmas a preset's checkpoints are known to come with besides its own: the community's
#: 512 x 512 vox models keep the 256 models' sigma 1.5 (13 x 13 kernels) at scale 0.125.
KNOWN_SIGMAS = {"vox-512": (1.5,)}


def _sections(cfg: Config) -> dict[str, Any]:
    """The config sections that own each kernel (a generator without a dense motion network has none)."""
    mp = cfg.model_params
    out: dict[str, Any] = {"kp_detector": mp.kp_detector_params}
    if mp.generator_params.dense_motion_params is not None:
        out["generator"] = mp.generator_params.dense_motion_params
    return out


def configured_kernel_size(section) -> int | None:
    """The kernel size a config section builds (None when it does not downsample)."""
    if section.scale_factor == 1:
        return None
    sigma = section.anti_alias_sigma
    return anti_alias_kernel_size(anti_alias_sigma(section.scale_factor) if sigma is None else sigma)


def stored_kernel_size(states: dict[str, dict], part: str, key: str) -> int | None:
    """The size of the square, odd kernel a checkpoint stores at ``part``/``key``, else None
    (absent, or a shape no blur has: left for the shape check to report)."""
    tensor = (states.get(part) or {}).get(key)
    if tensor is None or tensor.dim() != 4:
        return None
    k = tensor.shape[-1]
    return k if tensor.shape[-2] == k and k % 2 == 1 else None


def fit_anti_alias(cfg: Config, states: dict[str, dict]) -> Config:
    """``cfg``, or a copy whose ``anti_alias_sigma`` values give the kernel sizes ``states`` store."""
    out = cfg
    for part, key in KERNELS:
        section = _sections(out).get(part)
        stored = stored_kernel_size(states, part, key)
        if section is None or stored is None or stored == configured_kernel_size(section):
            continue
        out = cfg.copy() if out is cfg else out
        _sections(out)[part].anti_alias_sigma = sigma_for_kernel_size(stored)
    return out


def known_kind(cfg: Config, states: dict[str, dict]) -> Config:
    """``cfg`` fitted to the kernels ``states`` store when they are one of the kinds the preset is
    known in (its own, or a sigma of :data:`KNOWN_SIGMAS` for both kernels), else ``cfg``."""
    fitted = fit_anti_alias(cfg, states)
    if fitted is cfg:
        return cfg
    known = {anti_alias_kernel_size(sigma) for sigma in KNOWN_SIGMAS.get(cfg.name, ())}
    sizes = {configured_kernel_size(section) for section in _sections(fitted).values()}
    return fitted if len(sizes) == 1 and sizes <= known else cfg
