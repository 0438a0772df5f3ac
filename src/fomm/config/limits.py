"""Sizes the networks need, computed from the frame size when a config is loaded, so that a config
the networks cannot run stops with one line naming the setting, the size it reaches and the fix,
before any model is built (not with a PyTorch traceback in the middle of training).

Both model families (FOMM's :class:`~fomm.config.Config`, TPSMM's
:class:`~fomm.models.tpsmm.config.TpsmmConfig`) check:

- **an hourglass against its input**: the keypoint detector's and dense motion network's
  hourglass (:class:`fomm.models.blocks.Hourglass`) works on the frame downsampled by
  ``scale_factor`` (:class:`fomm.models.blocks.AntiAliasInterpolation2d`: a side of
  ``ceil(side / int(1 / scale))`` pixels). Each of its ``num_blocks`` encoder blocks normalises its
  input and halves it with a 2x2 pooling; the decoder doubles back and joins each level to the
  encoder's of the same size. So the input must be a multiple of ``2 ** num_blocks``: otherwise a
  block meets a 1x1 input (an InstanceNorm, TPSMM's, needs more than one spatial element, and the
  pooling of a single pixel is empty) or an odd side that the decoder cannot join back.
- **the image pyramid against VGG-19**: the perceptual loss runs VGG-19
  (:class:`fomm.training.vgg.Vgg19`) on every pyramid level (``train_params.scales``, each level
  downsampled as above) up to the deepest slice with a non-zero weight; slice ``i`` (relu1_1 ...
  relu5_1) follows ``i`` 2x2 max poolings, and a pooling needs at least 2 pixels, so the smallest
  level needs ``2 ** i`` pixels.

The networks are not imported here (this module is below them); ``tests/test_config_limits.py``
checks these limits against the real modules on both sides of each boundary.
"""

from __future__ import annotations

import math

from fomm.config.sections import Invalid

# The VGG-19 slices the perceptual loss reads; slice i follows i 2x2 max poolings
VGG19_SLICES = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
POWERS_OF_TWO = (1, 0.5, 0.25, 0.125, 0.0625, 0.03125)  # the scales the original configs use


def downsampled(side: int, scale: float) -> int:
    """The side of an image after the anti-aliased downsampling by ``scale`` (a blur, then every
    ``int(1 / scale)``-th pixel)."""
    return side if scale == 1 else math.ceil(side / int(1 / scale))


def check_hourglass(path: str, frame: tuple[int, int], scale_factor: float, num_blocks: int, norm: str) -> None:
    """Raise :class:`Invalid` when the hourglass at ``path`` (``scale_factor``, ``num_blocks``) does
    not fit ``frame`` (H, W); ``norm`` is ``'InstanceNorm'`` or ``'BatchNorm'`` (for the message)."""
    fixes = lambda: _hourglass_fixes(frame, scale_factor, num_blocks)  # noqa: E731
    for side in sorted(set(frame)):
        exact = side * scale_factor
        if abs(exact - round(exact)) > 1e-6:
            raise Invalid(
                path,
                line=f"{path}: scale_factor {scale_factor:g} x {side} px = {exact:g} px is not a whole "
                f"number of pixels; {fixes()}",
            )
        size = downsampled(side, scale_factor)
        head = f"{path}: scale_factor {scale_factor:g} x {side} px = {size} px"
        for block in range(num_blocks):
            at = size // 2**block  # the input of block ``block`` (each pooling halves, rounding down)
            if at < 2:
                why = "InstanceNorm needs at least 2x2" if norm == "InstanceNorm" else "its 2x2 pooling needs 2x2"
                raise Invalid(
                    path,
                    line=f"{head} halved by {num_blocks} hourglass blocks reaches 1x1 at block {block + 1} ({why}); "
                    f"{fixes()}",
                )
            if at % 2:
                raise Invalid(
                    path,
                    line=f"{head} is not divisible by 2**num_blocks = {2**num_blocks} (block {block + 1} halves an odd "
                    f"{at} px that the hourglass decoder cannot join back); {fixes()}",
                )


def _hourglass_fixes(frame: tuple[int, int], scale_factor: float, num_blocks: int) -> str:
    """``use num_blocks <= n or scale_factor s`` with the values that fit (the cheapest first)."""
    fits = lambda scale, blocks: all(  # noqa: E731
        side * scale == downsampled(side, scale) and downsampled(side, scale) % 2**blocks == 0 for side in frame
    )
    most = max((n for n in range(1, num_blocks) if fits(scale_factor, n)), default=None)
    scale = min((s for s in POWERS_OF_TWO if s > scale_factor and fits(s, num_blocks)), default=None)
    options = ([f"num_blocks <= {most}"] if most else []) + ([f"scale_factor {scale:g}"] if scale else [])
    if options:
        return "use " + " or ".join(options)
    return f"use a scale_factor of 1, 0.5, 0.25, ... that gives a multiple of {2**num_blocks} px, or fewer blocks"


def perceptual_depth(weights) -> int:
    """How many VGG-19 slices the perceptual loss runs: up to the last non-zero weight (0: none)."""
    used = [i for i, w in enumerate(list(weights)[: len(VGG19_SLICES)]) if w]
    return max(used) + 1 if used else 0


def check_pyramid(frame: tuple[int, int], scales, perceptual_weights) -> None:
    """Raise :class:`Invalid` when the smallest pyramid level is too small for the VGG-19 poolings
    the perceptual loss runs (``train_params.scales`` x ``loss_weights.perceptual``)."""
    depth = perceptual_depth(perceptual_weights)
    if not depth:
        return
    pools = depth - 1
    need = 2**pools
    side = min(frame)
    for scale in sorted(scales):
        size = downsampled(side, scale)
        if size >= need:
            continue
        ok = [s for s in scales if downsampled(side, s) >= need]
        smallest = min((s for s in POWERS_OF_TWO if downsampled(side, s) >= need), default=1)
        keep = f"scales [{', '.join(f'{s:g}' for s in ok)}]" if ok else f"scales >= {smallest:g}"
        reach = min(size.bit_length() - 1, len(VGG19_SLICES) - 1)  # the deepest slice ``size`` px allow
        raise Invalid(
            "train_params.scales",
            line=f"train_params.scales: scale {scale:g} x {side} px = {size} px is too small for the perceptual "
            f"loss: VGG-19 up to {VGG19_SLICES[depth - 1]} (the last slice with a non-zero "
            f"loss_weights.perceptual) pools {pools} times and needs at least {need} px; use {keep} or "
            f"perceptual weights of 0 after {VGG19_SLICES[reach]}",
        )
