"""The inference stack: a trained model turned, for one precision and device, into the two calls
animation needs (:class:`InferenceModel`: ``encode_source`` once per source, ``animate`` per batch).
This is the one place that prepares a model for a precision, once, when it is built.

Precisions:

- ``exact``: fp32 with BatchNorm folded and sub-pixel up-sampling (:mod:`fomm.models.fused`):
  the original's function up to float rounding.
- ``fast`` where the device computes bf16 natively (GPUs, AVX-512 BF16 / AMX CPUs): the same
  rewrites with the weights converted once to bf16 (fp16 on GPUs without bf16, and on MPS) in
  channels-last memory (:func:`fomm.models.fused.to_low_precision`); activations stay bf16 and
  channels-last through the encoder, the dense-motion hourglass and the decoder, while keypoint and
  Jacobian algebra, the 2x2 inverses, soft-argmax, the sampling grids and warps, the mask softmax
  and the final sigmoid run in fp32. The keypoint detector stays fp32 (see
  :data:`KP_DETECTOR_LOW_PRECISION`).
- ``fast`` on other x86 CPUs: int8 per-frame convolutions calibrated on the first driving frame
  of each source (:mod:`fomm.models.quantized`), else fp32 with one warning.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from fomm.cpu import native_bf16
from fomm.models import quantized
from fomm.models.compiled import compile_call
from fomm.models.fused import optimize_for_inference, to_low_precision
from fomm.models.generator import SourceState
from fomm.models.precision import PRECISIONS, check_precision  # noqa: F401 (PRECISIONS re-exported)
from fomm.models.quantized import is_calibrating, quantize_per_frame_convs, set_calibration

# Whether ``fast`` runs the keypoint detector in bf16 too. Measured on the parity inputs
# (tests/models/test_inference.py::test_bf16_keypoint_detector_decision): bf16 moves keypoints by
# more than 0.05 px at 256 px, so the detector keeps fp32 weights (it is 1/4 of a frame's work).
KP_DETECTOR_LOW_PRECISION = False


def cpu_has_fast_bf16() -> bool:
    """Whether the CPU computes bf16 natively (AVX-512 BF16 / AMX / Arm BF16); emulated bf16 is
    slower than fp32, e.g. on AVX2-only CPUs. The same answer as training's ``--precision auto``
    (:func:`fomm.cpu.native_bf16`)."""
    return native_bf16()


def fast_dtype(device: torch.device) -> torch.dtype | None:
    """The low-precision dtype ``fast`` uses on ``device`` (None: no fast kernels there)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu":
        return torch.bfloat16 if cpu_has_fast_bf16() else None
    return torch.float16 if device.type == "mps" else None


def resolve_precision(precision: str, device: torch.device, low_dtype: torch.dtype | None = None):
    """``(low-precision dtype or None, int8: bool)`` for ``precision`` on ``device``.

    ``fast`` without native low-precision kernels uses int8 on a CPU whose PyTorch runs them
    (:func:`fomm.models.quantized.int8_supported`), else fp32 with one warning. ``low_dtype``
    forces a dtype (tests: bf16 where it is emulated).
    """
    check_precision(precision)
    if precision == "exact":
        return None, False
    device = torch.device(device)
    low_dtype = low_dtype or fast_dtype(device)
    if low_dtype is not None:
        return low_dtype, False
    if device.type == "cpu":
        if quantized.int8_supported():  # looked up at call time: tests replace it
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
    up-sampling (always on for int8 and low precision); ``compile`` wraps the networks in
    ``torch.compile`` (the int8 generator stays eager). In int8 mode the first frame animated after
    ``encode_source`` runs in fp32 while every int8 conv records its output range (calibration).
    ``fast_dtype`` forces the low-precision dtype of ``fast``.
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
        self.kp_detector, self.generator = self._prepare(model, optimize)
        self._keypoints = self.kp_detector
        self._animate = self.generator.animate
        if compile:
            self._compile()

    def _prepare(self, model, optimize: bool):
        """The two networks for this precision and device: rewritten copies (the caller's model is
        never changed), on the device, with low-precision or int8 weights made here, once."""
        kp_detector, generator = model.kp_detector.eval(), model.generator.eval()
        if optimize or self.int8 or self.low_dtype is not None:
            kp_detector, generator = optimize_for_inference(kp_detector), optimize_for_inference(generator)
        elif self.device != model.device:
            kp_detector, generator = copy.deepcopy(kp_detector), copy.deepcopy(generator)
        kp_detector.to(self.device)
        generator.to(self.device)
        if self.int8:
            quantize_per_frame_convs(generator)
        if self.low_dtype is not None:
            to_low_precision(generator, self.low_dtype, self.channels_last)
            if KP_DETECTOR_LOW_PRECISION:
                to_low_precision(kp_detector, self.low_dtype, self.channels_last)
        return kp_detector, generator

    def _compile(self) -> None:
        """inductor with frozen weights and an on-disk cache (:mod:`fomm.models.compiled`)."""
        self._keypoints = compile_call(self.kp_detector, "keypoint detector")
        if self.int8:  # quantized ops and per-batch ranges do not trace; int8 is the CPU speed-up
            warnings.warn(
                "compile: the int8 generator runs eagerly; only the keypoint detector is compiled", stacklevel=3
            )
        else:
            self._animate = compile_call(self.generator.animate, "generator")

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
        state = self.generator.encode_source(x)
        if self.int8:
            set_calibration(self.generator, True)  # the next frame runs fp32 and sets the int8 ranges
        return EncodedSource(kp, state)

    @property
    def calibrating(self) -> bool:
        """Whether the next frame calibrates the int8 ranges."""
        return self.int8 and is_calibrating(self.generator)

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
            out = self._animate(source.state.expand(batch), kp_driving=kp_driving, kp_source=kp_source)
        return {k: out[k].float() for k in outputs if k in out}

    def _animate_calibrating(self, state: SourceState, kp_norm: dict, kp_source: dict, batch: int) -> dict:
        """int8 mode, first batch of a source: frame 0 in fp32 while the int8 convs record their
        ranges (its result is kept), the rest of the batch in int8."""

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
