"""The inference stack: a trained model turned, for one precision and device, into the two calls
animation needs (:class:`InferenceModel`: ``encode_source`` once per source, ``animate`` per batch).

Rewrites that compute the same function with less work:

- **BatchNorm folding**: in eval mode, ``BN(conv(x))`` is one conv with rescaled weights and bias.
  Applied to every conv -> BN pair (the same/down/up blocks, and ``conv1 -> norm2`` inside the
  residual blocks; ``norm1`` acts on the residual stream and stays).
- **Sub-pixel up-sampling**: a 3x3 conv after nearest x2 up-sampling equals four 2x2 convs on the
  low-resolution input, one per output phase, with summed taps: 4/9 of the multiply-adds.

Results equal the original modules up to float rounding (a few 1e-7 relative). The rewritten
copies are for inference only: they have no BatchNorm to train and different state-dict keys.

Precisions: ``exact`` (fp32, the rewrites above); ``fast``: bf16 autocast where the device has
native bf16 (GPUs, AVX-512 BF16 / AMX CPUs), else int8 per-frame convolutions calibrated on the
first driving frame of each source (:mod:`fomm.models.quantized`, x86 CPUs with working int8
kernels), else fp32 with one warning.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fomm.models.blocks import DownBlock2d, ResBlock2d, SameBlock2d, UpBlock2d
from fomm.models.generator import SourceState
from fomm.models.precision import PRECISIONS, check_precision  # noqa: F401 (PRECISIONS re-exported)


def fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A conv equal to ``bn(conv(x))`` for a BatchNorm in eval mode."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    fused = copy.deepcopy(conv)
    fused.weight.data = conv.weight.data * scale.view(-1, 1, 1, 1)
    bias = conv.bias.data if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
    return fused


class FusedConvReLU(nn.Module):
    """conv (with BN folded in), ReLU, then an optional 2x2 average pool."""

    def __init__(self, conv: nn.Conv2d, pool: bool = False):
        super().__init__()
        self.conv = conv
        self.pool = pool

    def forward(self, x):
        out = F.relu(self.conv(x))
        return F.avg_pool2d(out, 2) if self.pool else out


class SubPixelUpConvReLU(nn.Module):
    """``relu(bn(conv3x3(nearest_up2(x))))`` computed as four 2x2 convs at low resolution.

    For output row phase ``a`` (0: even rows, 1: odd rows) the three kernel rows collapse to two
    low-resolution taps: phase 0 reads rows ``i-1, i`` with weights ``w0, w1 + w2``; phase 1 reads
    rows ``i, i+1`` with ``w0 + w1, w2``; columns likewise. The four phases run as one conv with
    ``4 * out`` channels and padding 1 (output ``(H+1, W+1)``); phase ``(a, b)`` is its window at
    offset ``(a, b)``, and :func:`interleave_phases` puts them in place.
    """

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        w = conv.weight.data  # (out, in, 3, 3)
        rows = [
            torch.stack([w[:, :, 0], w[:, :, 1] + w[:, :, 2]], 2),
            torch.stack([w[:, :, 0] + w[:, :, 1], w[:, :, 2]], 2),
        ]  # each (out, in, 2, 3)
        kernels = []
        for a in range(2):
            r = rows[a]
            cols = [
                torch.stack([r[..., 0], r[..., 1] + r[..., 2]], -1),
                torch.stack([r[..., 0] + r[..., 1], r[..., 2]], -1),
            ]
            kernels.extend(cols)  # phase (a, 0), (a, 1): (out, in, 2, 2)
        self.weight = nn.Parameter(torch.cat(kernels, 0))  # (4*out, in, 2, 2)
        self.bias = nn.Parameter(conv.bias.data.repeat(4))
        self.out_channels = conv.out_channels

    def forward(self, x):
        phases = F.conv2d(x, self.weight, self.bias, padding=1)  # (B, 4C, H+1, W+1)
        return interleave_phases(phases, self.out_channels).relu_()


def interleave_phases(phases: torch.Tensor, channels: int) -> torch.Tensor:
    """``(B, 4C, H+1, W+1)`` -> ``(B, C, 2H, 2W)`` (channels-last memory): output pixel
    ``(2i+a, 2j+b)`` is phase ``k = 2a+b`` (channels ``kC .. kC+C-1``) at ``(i+a, j+b)``."""
    b, _, h1, w1 = phases.shape
    h, w, c = h1 - 1, w1 - 1, channels
    out = phases.new_empty(b, h, 2, w, 2, c)
    for k in range(4):
        a, bb = divmod(k, 2)
        out[:, :, a, :, bb, :] = phases[:, k * c : (k + 1) * c, a : a + h, bb : bb + w].permute(0, 2, 3, 1)
    return out.view(b, 2 * h, 2 * w, c).permute(0, 3, 1, 2)


class FusedResBlock(nn.Module):
    """Pre-activation residual block with ``norm2`` folded into ``conv1``."""

    def __init__(self, block: ResBlock2d):
        super().__init__()
        self.norm1 = block.norm1
        self.conv1 = fold_bn(block.conv1, block.norm2)
        self.conv2 = block.conv2

    def forward(self, x):
        out = F.relu(self.conv1(F.relu(self.norm1(x))))
        return self.conv2(out) + x


def _rewrite(module: nn.Module, subpixel: bool) -> nn.Module:
    if isinstance(module, SameBlock2d):
        return FusedConvReLU(fold_bn(module.conv, module.norm))
    if isinstance(module, DownBlock2d):
        return FusedConvReLU(fold_bn(module.conv, module.norm), pool=True)
    if isinstance(module, UpBlock2d):
        fused = fold_bn(module.conv, module.norm)
        if subpixel and fused.kernel_size == (3, 3) and fused.padding == (1, 1):
            return SubPixelUpConvReLU(fused)
        return nn.Sequential(nn.Upsample(scale_factor=2), FusedConvReLU(fused))
    if isinstance(module, ResBlock2d):
        return FusedResBlock(module)
    for name, child in module.named_children():
        setattr(module, name, _rewrite(child, subpixel))
    return module


@torch.no_grad()
def optimize_for_inference(module: nn.Module, subpixel: bool = True) -> nn.Module:
    """An eval-mode copy of ``module`` with BatchNorm folded and sub-pixel up-sampling."""
    module = copy.deepcopy(module).eval()
    module = _rewrite(module, subpixel)
    for p in module.parameters():
        p.requires_grad_(False)
    return module


# ----------------------------------------------------------------------------------------------
# Precision
# ----------------------------------------------------------------------------------------------
def cpu_has_fast_bf16() -> bool:
    """Whether the CPU computes bf16 natively (AVX-512 BF16 / AMX / Arm BF16); emulated bf16 is
    slower than fp32, e.g. on AVX2-only CPUs. The same answer as training's ``--precision auto``
    (:func:`fomm.cpu.native_bf16`)."""
    from fomm.cpu import native_bf16

    return native_bf16()


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The low-precision dtype ``fast`` mode uses on ``device`` (None: no fast kernels, stay fp32)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu":
        return torch.bfloat16 if cpu_has_fast_bf16() else None
    return torch.float16 if device.type == "mps" else None


def resolve_precision(precision: str, device: torch.device, fast_dtype: torch.dtype | None = None):
    """``(autocast dtype or None, int8: bool)`` for ``precision`` on ``device``.

    ``fast`` without native low-precision kernels uses int8 on a CPU whose PyTorch runs them
    (:func:`fomm.models.quantized.int8_supported`), else fp32 with one warning.
    """
    check_precision(precision)
    if precision == "exact":
        return None, False
    device = torch.device(device)
    low_dtype = fast_dtype or autocast_dtype(device)
    if low_dtype is not None:
        return low_dtype, False
    if device.type == "cpu":
        from fomm.models.quantized import int8_supported

        if int8_supported():
            return None, True
        warnings.warn(
            "precision 'fast': this CPU has no native bf16 and this PyTorch no working int8 convolutions; "
            "running in fp32",
            stacklevel=3,
        )
        return None, False
    warnings.warn(f"precision 'fast' has no faster kernels on this {device.type}; running in fp32", stacklevel=3)
    return None, False


# ----------------------------------------------------------------------------------------------
# The inference model
# ----------------------------------------------------------------------------------------------
@dataclass
class EncodedSource:
    """What :meth:`InferenceModel.encode_source` computes once per source image."""

    kp: dict[str, torch.Tensor]  # value (1, K, 2), jacobian (1, K, 2, 2) when estimated; fp32
    state: SourceState  # encoder features, the source and its dense-motion-size copy


class InferenceModel:
    """A :class:`~fomm.models.first_order_model.FirstOrderModel` prepared for animation.

    >>> im = InferenceModel(model, precision="exact")
    >>> source = im.encode_source(source_hwc)          # (H, W, 3) float32 at the model size
    >>> kp = im.keypoints(driving_bhwc)                # {'value': (B, K, 2), 'jacobian': (B, K, 2, 2)}
    >>> out = im.animate(source, kp_norm)              # {'prediction': (B, 3, H, W), ...}

    The relative-motion normalisation between ``keypoints`` and ``animate`` is the caller's
    (:func:`fomm.animation.engine.normalize_kp`). ``optimize`` folds BatchNorm and uses sub-pixel
    up-sampling (always on for int8); ``compile`` wraps the networks in ``torch.compile`` (the int8
    generator stays eager). In int8 mode the first frame animated after ``encode_source`` runs in
    fp32 while every int8 conv records its output range (calibration).
    """

    backend = "torch"

    def __init__(
        self,
        model,
        precision: str = "exact",
        device=None,
        *,
        optimize: bool = True,
        channels_last: bool = True,
        compile: bool = False,
        fast_dtype: torch.dtype | None = None,
    ):
        self.device = torch.device(device) if device is not None else model.device
        self.precision = precision
        self.low_dtype, self.int8 = resolve_precision(precision, self.device, fast_dtype)
        self.channels_last = channels_last
        self.frame_shape = tuple(model.frame_shape)
        self.kp_detector, self.generator = model.kp_detector.eval(), model.generator.eval()
        if optimize or self.int8:
            self.kp_detector = optimize_for_inference(model.kp_detector)
            self.generator = optimize_for_inference(model.generator)
        elif self.device != model.device:
            self.kp_detector, self.generator = copy.deepcopy(self.kp_detector), copy.deepcopy(self.generator)
        self.kp_detector.to(self.device)
        self.generator.to(self.device)
        if self.int8:
            from fomm.models.quantized import quantize_per_frame_convs

            quantize_per_frame_convs(self.generator)
        self._keypoints = self.kp_detector
        self._animate = self.generator.animate
        if compile:
            self._compile()

    def _compile(self) -> None:
        self._keypoints = torch.compile(self.kp_detector)
        if self.int8:  # quantized ops and per-batch ranges do not trace; int8 is the CPU speed-up
            warnings.warn(
                "compile: the int8 generator runs eagerly; only the keypoint detector is compiled", stacklevel=3
            )
        else:
            self._animate = torch.compile(self.generator.animate)

    def _autocast(self):
        if self.low_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.low_dtype)

    def to_input(self, frames_bhwc: np.ndarray) -> torch.Tensor:
        """``(B, H, W, 3)`` float32 -> ``(B, 3, H, W)`` on the device (channels-last memory)."""
        x = torch.from_numpy(np.ascontiguousarray(frames_bhwc)).to(self.device).permute(0, 3, 1, 2)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x.contiguous()

    @torch.inference_mode()
    def keypoints(self, frames_bhwc: np.ndarray) -> dict[str, torch.Tensor]:
        """Keypoints of ``(B, H, W, 3)`` model-sized frames, always fp32."""
        return {k: v.float() for k, v in self._keypoints(self.to_input(frames_bhwc)).items()}

    @torch.inference_mode()
    def encode_source(self, source_hwc: np.ndarray) -> EncodedSource:
        """Keypoints and generator encoding of one ``(H, W, 3)`` source; restarts int8 calibration."""
        x = self.to_input(source_hwc[None])
        kp = self.keypoints(source_hwc[None])
        with self._autocast():
            state = self.generator.encode_source(x)
        if self.int8:
            from fomm.models.quantized import set_calibration

            set_calibration(self.generator, True)  # the next frame runs fp32 and sets the int8 ranges
        return EncodedSource(kp, state)

    @property
    def calibrating(self) -> bool:
        """Whether the next frame calibrates the int8 ranges."""
        if not self.int8:
            return False
        from fomm.models.quantized import is_calibrating

        return is_calibrating(self.generator)

    @torch.inference_mode()
    def animate(
        self, source: EncodedSource, kp_driving: dict[str, torch.Tensor], outputs=("prediction",)
    ) -> dict[str, torch.Tensor]:
        """Animate ``source`` to a batch of normalised driving keypoints (values ``(B, K, 2)``).

        Returns the requested ``outputs`` present in the model (``prediction``, ``occlusion_map``,
        ``deformed``, ...) as fp32 tensors ``(B, C, H, W)``.
        """
        batch = kp_driving["value"].shape[0]
        kp_source = {k: v.expand(batch, *v.shape[1:]) for k, v in source.kp.items()}
        if self.calibrating:
            out = self._animate_calibrating(source.state, kp_driving, kp_source, batch)
        else:
            with self._autocast():
                out = self._animate(source.state.expand(batch), kp_driving=kp_driving, kp_source=kp_source)
        return {k: out[k].float() for k in outputs if k in out}

    def _animate_calibrating(self, state: SourceState, kp_norm: dict, kp_source: dict, batch: int) -> dict:
        """int8 mode, first batch of a source: frame 0 in fp32 while the int8 convs record their
        ranges (its result is kept), the rest of the batch in int8."""
        from fomm.models.quantized import set_calibration

        def frames(kp, sl):
            return {k: v[sl] for k, v in kp.items()}

        first = self._animate(state, kp_driving=frames(kp_norm, slice(0, 1)), kp_source=frames(kp_source, slice(0, 1)))
        set_calibration(self.generator, False)
        if batch == 1:
            return first
        rest = self._animate(
            state.expand(batch - 1),
            kp_driving=frames(kp_norm, slice(1, None)),
            kp_source=frames(kp_source, slice(1, None)),
        )
        return {k: torch.cat([first[k], rest[k]]) for k in first if k in rest}
