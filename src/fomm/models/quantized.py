"""Int8 convolutions for ``precision="fast"`` on CPUs without native bf16 (AVX2 machines).

There bf16 is emulated and slower than fp32, while int8 convolutions (PyTorch's x86/fbgemm
quantized kernels) run about 1.9x faster than fp32 ones. :func:`quantize_per_frame_convs`
rewrites, in a generator already passed through ``optimize_for_inference``, the convolutions that
run for every driving frame and carry most of the work: the residual bottleneck, the decoder's
up-sampling blocks and the dense motion hourglass. The source encoder (run once per clip), the
keypoint detector (keypoints stay fp32) and the thin 7x7 heads (masks, occlusion, final image)
stay fp32.

Scheme:
- weights: symmetric int8, one scale per output channel (BatchNorm already folded in);
- inputs: uint8 (7-bit range, see ``ACTIVATION_LEVELS``) with the scale and zero point of the
  batch's own range (``aminmax``, one pass);
- outputs: uint8 (7-bit) with a range calibrated once per source: the first driving frame runs in fp32
  while every rewritten conv records its output range, widened by ``margin`` for later frames,
  mapped to 127 levels; uint8 leaves as much headroom again above it, beyond which values saturate;
- residual additions, BatchNorm on the residual stream, pooling and up-sampling stay fp32.

:func:`set_calibration` switches every rewritten conv between recording (fp32 forward) and int8.

Everything here uses PyTorch's quantized ops (``torch.ops.quantized``, quantized tensors), which
PyTorch has deprecated. They are used nowhere else; :func:`int8_supported` checks at run time that
they still work, and :class:`fomm.models.inference.InferenceModel` runs ``fast`` in fp32 (one
warning) where they do not.
"""

from __future__ import annotations

import functools
import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from fomm.models.fused import FusedConvReLU, FusedResBlock, SubPixelUpConvReLU, interleave_phases

DEFAULT_MARGIN = 0.25
# Activations use 7 of the 8 bits: the AVX2 kernels add pairs of uint8 x int8 products in int16
# (vpmaddubsw), which saturates for 255 * 127 * 2; PyTorch's "reduce_range" avoids it the same way.
ACTIVATION_LEVELS = 127


@functools.lru_cache(maxsize=1)
def int8_supported() -> bool:
    """Whether this PyTorch has x86 int8 convolution kernels that work.

    The path uses ``torch.ops.quantized`` and quantized tensors, which PyTorch has deprecated: a
    release may drop or break them. So this runs one tiny int8 conv and checks its result; any
    error (or a wrong answer) means no int8, and ``precision="fast"`` falls back to fp32.
    """
    engines = torch.backends.quantized.supported_engines
    if not any(e in engines for e in ("x86", "fbgemm")):
        return False
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            weight = torch.linspace(-1, 1, 2 * 3 * 9).view(2, 3, 3, 3)
            conv = Int8Conv(weight, torch.zeros(2), (1, 1), relu=False)
            x = torch.linspace(0, 1, 3 * 8 * 8).view(1, 3, 8, 8)
            expected = conv(x)
            conv.finish_calibration(DEFAULT_MARGIN)
            got = conv.forward_q(_quantize_dynamic(x)).dequantize()
        return bool((got - expected).abs().max() < 0.05 * expected.abs().max())
    except Exception:  # noqa: BLE001 - any failure of the deprecated ops means "not supported"
        return False


# PyTorch 2.13 marks quantized-tensor creation as deprecated; the pinned version has it. One filter
# for the process, set once: a catch_warnings() around every activation would swap the process's
# filters while other threads (other app requests) issue their own warnings.
warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")


def _flat(x: torch.Tensor) -> torch.Tensor:
    """A 1-D view of ``x`` without a copy when its memory is dense (NCHW or channels-last)."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return x.permute(0, 2, 3, 1).reshape(-1)
    return x.reshape(-1)


def _quantize_dynamic(x: torch.Tensor, relu: bool = False) -> torch.Tensor:
    """``x`` (``relu(x)`` with ``relu``) as quint8 over its own range (0 included, so zero padding
    stays exact). With ``relu`` the zero point is 0 and quantisation clamps negatives to it."""
    if relu:
        lo, hi = 0.0, max(float(_flat(x).max()), 0.0)
    else:
        lo, hi = (float(v) for v in torch.aminmax(_flat(x)))
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max(hi - lo, 1e-8) / ACTIVATION_LEVELS
    return torch.quantize_per_tensor(x, scale, int(round(-lo / scale)), torch.quint8)


class Int8Conv(nn.Module):
    """One conv (+ optional fused ReLU) with fp32 weights for calibration and packed int8 ones.

    ``forward(x_float)`` in calibration mode returns the fp32 result and records its range;
    ``forward_q(x_quint8)`` returns a quint8 tensor in the calibrated output range.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, padding, relu: bool):
        super().__init__()
        self.register_buffer("weight", weight.detach().clone())
        self.register_buffer("bias", bias.detach().clone())
        self.padding = tuple(padding)
        self.relu = relu
        w = self.weight.float()
        w_scale = w.abs().amax(dim=(1, 2, 3)).clamp_min(1e-12) / 127
        qweight = torch.quantize_per_channel(
            w, w_scale.double(), torch.zeros(len(w_scale), dtype=torch.long), 0, torch.qint8
        )
        self.packed = torch.ops.quantized.conv2d_prepack(
            qweight, self.bias.float(), [1, 1], list(self.padding), [1, 1], 1
        )
        self.calibrating = True
        self.reset()

    def reset(self) -> None:
        self.lo, self.hi = math.inf, -math.inf
        self.out_scale, self.out_zero_point = None, None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(x, self.weight, self.bias, padding=self.padding)
        y = F.relu(y) if self.relu else y
        if self.calibrating:
            lo, hi = (float(v) for v in torch.aminmax(_flat(y)))
            self.lo, self.hi = min(self.lo, lo), max(self.hi, hi)
        return y

    def finish_calibration(self, margin: float) -> None:
        lo, hi = min(self.lo, 0.0), max(self.hi, 0.0)
        if not math.isfinite(lo) or not math.isfinite(hi):
            raise RuntimeError("int8 conv used before calibration")
        lo, hi = lo * (1 + margin), hi * (1 + margin)
        self.out_scale = max(hi - lo, 1e-8) / ACTIVATION_LEVELS
        self.out_zero_point = int(round(-lo / self.out_scale))
        self.calibrating = False

    def forward_q(self, qx: torch.Tensor) -> torch.Tensor:
        op = torch.ops.quantized.conv2d_relu if self.relu else torch.ops.quantized.conv2d
        return op(qx, self.packed, self.out_scale, self.out_zero_point)


class Int8ResBlock(nn.Module):
    """:class:`FusedResBlock` with int8 convs: ``conv2(relu(conv1(relu(norm1(x))))) + x``."""

    def __init__(self, block: FusedResBlock):
        super().__init__()
        self.norm1 = block.norm1
        self.conv1 = Int8Conv(block.conv1.weight, block.conv1.bias, block.conv1.padding, relu=True)
        self.conv2 = Int8Conv(block.conv2.weight, block.conv2.bias, block.conv2.padding, relu=False)

    def forward(self, x):
        h = self.norm1(x)
        if self.conv1.calibrating:
            return self.conv2(self.conv1(F.relu(h))) + x
        return self.conv2.forward_q(self.conv1.forward_q(_quantize_dynamic(h, relu=True))).dequantize() + x


class Int8ConvReLU(nn.Module):
    """:class:`FusedConvReLU` (conv, ReLU, optional 2x2 average pool) with an int8 conv."""

    def __init__(self, block: FusedConvReLU):
        super().__init__()
        self.conv = Int8Conv(block.conv.weight, block.conv.bias, block.conv.padding, relu=True)
        self.pool = block.pool

    def forward(self, x):
        out = self.conv(x) if self.conv.calibrating else self.conv.forward_q(_quantize_dynamic(x)).dequantize()
        return F.avg_pool2d(out, 2) if self.pool else out


class Int8SubPixelUp(nn.Module):
    """:class:`SubPixelUpConvReLU` (its four phases as one 2x2 conv) in int8."""

    def __init__(self, block: SubPixelUpConvReLU):
        super().__init__()
        self.out_channels = block.out_channels
        self.conv = Int8Conv(block.weight, block.bias, (1, 1), relu=True)

    def forward(self, x):
        if self.conv.calibrating:
            return interleave_phases(self.conv(x), self.out_channels)
        phases = self.conv.forward_q(_quantize_dynamic(x))
        # interleave the uint8 codes (a quarter of the memory traffic), then dequantise once
        codes = interleave_phases(phases.int_repr(), self.out_channels)
        return torch._make_per_tensor_quantized_tensor(codes, phases.q_scale(), phases.q_zero_point()).dequantize()


def _rewrite(module: nn.Module) -> nn.Module:
    if isinstance(module, FusedResBlock):
        return Int8ResBlock(module)
    if isinstance(module, FusedConvReLU):
        return Int8ConvReLU(module)
    if isinstance(module, SubPixelUpConvReLU):
        return Int8SubPixelUp(module)
    for name, child in module.named_children():
        setattr(module, name, _rewrite(child))
    return module


@torch.no_grad()
def quantize_per_frame_convs(generator: nn.Module) -> nn.Module:
    """Rewrite, in place, the per-frame convs of an optimised generator (see the module doc).

    The result starts in calibration mode: run one driving frame, then
    ``set_calibration(generator, False)``.
    """
    generator.bottleneck = _rewrite(generator.bottleneck)
    generator.up_blocks = _rewrite(generator.up_blocks)
    if generator.dense_motion_network is not None:
        generator.dense_motion_network.hourglass = _rewrite(generator.dense_motion_network.hourglass)
    return generator


def int8_convs(module: nn.Module) -> list[Int8Conv]:
    return [m for m in module.modules() if isinstance(m, Int8Conv)]


def set_calibration(module: nn.Module, calibrating: bool, margin: float = DEFAULT_MARGIN) -> None:
    """``True``: reset the recorded ranges and run fp32 while recording; ``False``: fix the output
    ranges (widened by ``margin``) and run int8 from now on."""
    for conv in int8_convs(module):
        if calibrating:
            conv.reset()
            conv.calibrating = True
        else:
            conv.finish_calibration(margin)


def is_calibrating(module: nn.Module) -> bool:
    return any(conv.calibrating for conv in int8_convs(module))
