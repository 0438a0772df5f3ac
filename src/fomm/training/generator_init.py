"""Two training-time options for the generator (our additions, off by default; the architecture and
the checkpoints are unchanged):

* ``train_params.generator_init: identity`` -- start the generator's own layers (not its dense
  motion network) as an image-to-image identity, so that the static parts of a frame, warped by an
  identity flow, come out sharp from the first step and training spends its steps on motion. The
  first 7x7 conv copies each colour channel, with both signs, into its centre tap; the block's
  BatchNorm shifts the copies by a few thresholds, so after the ReLU the features are a
  piecewise-linear basis of every colour; each bottleneck residual block starts as the identity
  (its second conv is zero); the final 7x7 conv adds back the two zero-threshold copies of each
  colour. Needs ``num_down_blocks: 0`` (down-sampling has no identity).
* ``train_params.generator_batchnorm: frozen`` -- the generator's own BatchNorm layers normalise with
  fixed statistics during training instead of the batch's: the statistics are measured on the first
  training batch and then kept. With small batches the batch statistics shift the colours of every
  frame from one step to the next (a ~0.03 L1 noise floor at batch 8 on the puppet data) and the
  decoder never settles; frozen, it learns a fixed mapping, and training and inference compute the
  same function. The kp detector and the dense motion network keep batch statistics.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from fomm.errors import FommError

__all__ = [
    "GENERATOR_INITS",
    "GENERATOR_BATCHNORMS",
    "identity_init",
    "generator_norms",
    "freeze_norms",
    "calibrate_norms",
]

GENERATOR_INITS = ("default", "identity")
GENERATOR_BATCHNORMS = ("batch", "frozen")
# BatchNorm shifts of the copied colour channels (in units of the batch's standard deviation)
IDENTITY_THRESHOLDS = (0.0, -1.0, 1.0, -0.5, 0.5)


def identity_init(generator: nn.Module) -> None:
    """Make ``generator.decode(generator.first(x))`` a smooth monotone function of each colour of
    ``x`` (B, C, H, W), pixel by pixel, in place (see the module docstring)."""
    if len(generator.down_blocks):
        raise FommError(
            "train_params.generator_init: identity needs generator_params.num_down_blocks: 0 "
            f"(this generator has {len(generator.down_blocks)}); use generator_init: default"
        )
    conv, norm, final = generator.first.conv, generator.first.norm, generator.final
    colours, features = conv.in_channels, conv.out_channels
    if features < 2 * colours:
        raise FommError(f"train_params.generator_init: identity needs block_expansion >= {2 * colours}")
    c_in, c_out = conv.kernel_size[0] // 2, final.kernel_size[0] // 2
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        final.weight.zero_()
        final.bias.zero_()
        channel = 0
        for threshold in IDENTITY_THRESHOLDS:
            for colour in range(colours):
                for sign in (1.0, -1.0):
                    if channel == features:
                        break
                    conv.weight[channel, colour, c_in, c_in] = sign
                    norm.weight[channel] = 1.0
                    norm.bias[channel] = threshold
                    if threshold == 0.0:  # relu(z) - relu(-z) = z
                        final.weight[colour, channel, c_out, c_out] = sign
                    channel += 1
        for block in generator.bottleneck:
            block.conv2.weight.zero_()
            block.conv2.bias.zero_()


def generator_norms(generator: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers of the generator outside its dense motion network."""
    dense = getattr(generator, "dense_motion_network", None)
    skip = {id(m) for m in dense.modules()} if dense is not None else set()
    return [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and id(m) not in skip]


def freeze_norms(norms: list[nn.Module]) -> None:
    """Put ``norms`` in eval mode (call after every ``model.train()``)."""
    for m in norms:
        m.eval()


def calibrate_norms(model: nn.Module, norms: list[nn.Module], forward: Callable[[], object]) -> None:
    """Set the running statistics of ``norms`` to those of one call of ``forward()`` (no gradients).

    Every other buffer of ``model`` (other BatchNorm statistics, spectral-norm vectors) is restored
    afterwards, so the calibration pass leaves no other trace. Under DistributedDataParallel the
    statistics cover the global batch when the layers are synchronised."""
    own = {id(b) for m in norms for b in m.buffers()}
    saved = [(b, b.detach().clone()) for b in model.buffers() if id(b) not in own]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = 1.0  # running statistics = this batch's
        m.train()
    try:
        with torch.no_grad():
            forward()
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        with torch.no_grad():
            for b, value in saved:
                b.copy_(value)
        freeze_norms(norms)
