"""A TPSMM model prepared for animation: the same three calls as
:class:`fomm.models.inference.InferenceModel` (``keypoints``, ``encode_source`` once per source,
``animate`` per batch), so the animation engine, and every tool on it, drives either model.

Keypoints travel through the engine under FOMM's key, ``{'value': (B, 5K, 2)}`` (relative motion
then moves them exactly as TPSMM's ``relative_kp``: there are no Jacobians); the networks see
``{'fg_kp': ...}``. What depends only on the source (its keypoints, the inpainting encoder's
feature maps and the dense motion network's down-sampled copy) is computed once.

``precision='fast'`` works as FOMM's (:mod:`fomm.models.inference`): where the device computes
bf16 natively, copies of the inpainting network and of the dense motion network's occlusion heads
get their weights converted once to bf16 (fp16 on GPUs without bf16) in channels-last memory
(:func:`fomm.models.fused.to_low_precision`), and their convolutions and activations run in it;
their InstanceNorms normalise the bf16 activations in fp32 (:class:`ChannelNorm`, fp32 affine
parameters). The dense motion hourglass and its contribution head stay fp32
(:data:`DENSE_LOW_PRECISION_PARTS` says why), as do the TPS solve, the heatmaps, the sampling
grids and warps, the contribution softmax, the mask sigmoids, the final sigmoid and the blend, and
the encoder's maps (they are warped). The keypoint detector (a ResNet-18: bf16 weights would move
the parity keypoints by 2.2 px at 256 px, where issue 26 allows 0.05 px) and the AVD network stay
fp32.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fomm.errors import FommError
from fomm.models.fused import to_low_precision
from fomm.models.inference import resolve_precision
from fomm.models.tpsmm.model import TpsmmModel

# The dense motion network's parts that run in low precision in ``fast``: the occlusion heads and
# their up-sampling blocks. Its hourglass and contribution head stay fp32 (under 4% of a frame's
# FLOPs at vox-256: they run at 1/4 size): the flow mixes the K + 1 transformations by the
# contribution maps, so where those reach far outside the frame (to |x| = 11 in the parity fixture's
# avd mode, whose frame is [-1, 1]) a bf16 hourglass's small change of the maps (0.005) moves the
# flow by up to 1.3 px: 39.0 dB against exact there, 51.7 dB with these two in fp32.
DENSE_LOW_PRECISION_PARTS = ("up", "occlusion")


@dataclass
class TpsmmSource:
    """What :meth:`TpsmmInference.encode_source` computes once per source image."""

    kp: dict[str, torch.Tensor]  # value (1, 5K, 2), fp32
    image: torch.Tensor  # (1, C, H, W)
    small: torch.Tensor  # (1, C, h, w): the dense motion network's input size
    encoder_maps: list[torch.Tensor]  # the inpainting encoder's maps, finest first


class ChannelNorm(nn.Module):
    """An affine InstanceNorm without running statistics computed as a GroupNorm of one channel
    per group (the same function): unlike ``F.instance_norm``, which reshapes its input to
    channels-first, it keeps channels-last memory, and it normalises a bf16 input with fp32
    statistics and affine parameters (about 3 times faster than the InstanceNorm there)."""

    def __init__(self, norm: nn.InstanceNorm2d):
        super().__init__()
        self.weight, self.bias, self.eps = norm.weight, norm.bias, norm.eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(x, x.shape[1], self.weight, self.bias, self.eps)


def expand(x: torch.Tensor, batch: int) -> torch.Tensor:
    return x.expand(batch, *x.shape[1:])


class TpsmmInference:
    """``keypoints`` / ``encode_source`` / ``animate`` / ``avd`` for a :class:`TpsmmModel`.

    ``precision='fast'`` converts the inpainting network and the occlusion heads to bf16/fp16
    weights once where the device has native kernels (a GPU, an AVX-512 BF16 / AMX CPU; module doc), else
    runs fp32 with one warning (FOMM's int8 path is not ported to TPSMM). ``fast_dtype`` forces the
    low-precision dtype (tests: bf16 where it is emulated); ``channels_last`` the memory layout of
    the low-precision path. The caller's model is never changed.
    """

    backend = "torch"

    def __init__(
        self,
        model: TpsmmModel,
        precision: str = "exact",
        device=None,
        *,
        channels_last: bool = True,
        fast_dtype: torch.dtype | None = None,
        **_options,
    ):
        self.model = model.eval()
        self.device = torch.device(device) if device is not None else model.device
        self.precision = precision
        self.low_dtype, int8 = resolve_precision(precision, self.device, fast_dtype)
        if int8:  # FOMM's int8 path has no TPSMM port
            warnings.warn(
                "precision 'fast': no native bf16 here and no int8 path for TPSMM; running in fp32", stacklevel=3
            )
        self.channels_last = channels_last and self.low_dtype is not None
        self.dense, self.inpainting = model.dense_motion_network, model.inpainting_network
        if self.low_dtype is not None:  # converted copies, once
            self.dense = self._low_precision(self.dense, parts=DENSE_LOW_PRECISION_PARTS)
            self.inpainting = self._low_precision(self.inpainting)
        self.frame_shape = tuple(model.frame_shape)
        self.calibrating = False

    def _low_precision(self, network: nn.Module, parts: tuple[str, ...] | None = None) -> nn.Module:
        """A copy of ``network`` whose children named in ``parts`` (all of it when None) have
        low-precision weights, their InstanceNorms as :class:`ChannelNorm` with fp32 affine
        parameters (normalising in fp32 and rounding once: 49.0 dB against exact on the parity
        clip instead of 45.4 dB with bf16 ones); the other children stay fp32, shared with
        ``network`` rather than copied (the dense hourglass holds 38 M parameters at vox-256)."""
        shared = {} if parts is None else {id(c): c for n, c in network.named_children() if n not in parts}
        network = copy.deepcopy(network, shared).eval()  # the memo maps each shared child to itself
        for part in [network] if parts is None else [getattr(network, p) for p in parts if hasattr(network, p)]:
            for module in list(part.modules()):
                for name, child in module.named_children():
                    if isinstance(child, nn.InstanceNorm2d):
                        setattr(module, name, ChannelNorm(child))
            to_low_precision(part, self.low_dtype, self.channels_last, keep=(ChannelNorm,))
        return network

    def to_input(self, frames_bhwc: np.ndarray) -> torch.Tensor:
        """``(B, H, W, 3)`` float32 -> ``(B, 3, H, W)`` on the device (channels-last memory in the
        low-precision path)."""
        x = torch.from_numpy(np.ascontiguousarray(frames_bhwc)).to(self.device).permute(0, 3, 1, 2)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x.contiguous()

    @torch.inference_mode()
    def keypoints(self, frames_bhwc: np.ndarray) -> dict[str, torch.Tensor]:
        """``{'value': (B, 5K, 2)}`` of model-sized frames, fp32."""
        return {"value": self.model.kp_detector(self.to_input(frames_bhwc))["fg_kp"].float()}

    @torch.inference_mode()
    def encode_source(self, source_hwc: np.ndarray) -> TpsmmSource:
        x = self.to_input(source_hwc[None])
        kp = self.keypoints(source_hwc[None])
        small = self.dense.down(x) if self.dense.scale_factor != 1 else x  # the blur stays fp32
        return TpsmmSource(kp, x, small, self.inpainting.encode(x))

    @torch.inference_mode()
    def animate(self, source: TpsmmSource, kp_driving: dict, outputs=("prediction",)) -> dict[str, torch.Tensor]:
        """Animate ``source`` to a batch of driving keypoints ``{'value': (B, 5K, 2)}``: the
        requested ``outputs`` (``prediction``, ``deformed``, ``occlusion_map`` (the finest mask),
        ``deformation``, ``contribution_maps``) as fp32 tensors."""
        b = kp_driving["value"].shape[0]
        kp_d = {"fg_kp": kp_driving["value"].float()}
        kp_s = {"fg_kp": expand(source.kp["value"], b)}
        dense = self.dense
        h, w = source.small.shape[2:]
        transformations = dense.transformations(kp_d["fg_kp"], kp_s["fg_kp"], (h, w))  # fp32 TPS solve
        motion = dense.from_transformations(expand(source.small, b), kp_d, kp_s, transformations, False, 0.0)
        maps = [expand(m, b) for m in source.encoder_maps]
        out = self.inpainting.decode(maps, expand(source.image, b), motion)
        out["occlusion_map"] = out["occlusion_map"][-1]
        out["deformation"] = motion["deformation"]
        return {k: out[k].float() for k in outputs if k in out}

    @torch.inference_mode()
    def avd(self, kp_source: dict, kp_driving: dict) -> dict[str, torch.Tensor]:
        """TPSMM's ``avd`` mode: the driving pose in the source's shape, ``{'value': (B, 5K, 2)}``."""
        if not self.model.has_avd:
            raise FommError(
                "this TPSMM checkpoint has no avd_network; animate without --avd, or train one with "
                "fomm train --stage avd"
            )
        b = kp_driving["value"].shape[0]
        out = self.model.avd_network({"fg_kp": expand(kp_source["value"], b)}, {"fg_kp": kp_driving["value"]})
        return {"value": out["fg_kp"].float()}


@torch.inference_mode()
def reconstruct(model: TpsmmModel, frames_thwc: np.ndarray, batch_size: int = 4) -> np.ndarray:
    """The original's ``reconstruction.py``: frame 0 is the source and every frame is rebuilt from
    it with its own keypoints (standard mode) and, when the model has one, the background
    predictor's affine (``bg_predictor(source, driving)``). ``(T, H, W, 3)`` model-sized float
    frames in, the same out."""
    inference = TpsmmInference(model)
    source = inference.to_input(frames_thwc[:1])
    kp_source = model.kp_detector(source)
    out = []
    for i in range(0, len(frames_thwc), batch_size):
        driving = inference.to_input(frames_thwc[i : i + batch_size])
        b = driving.shape[0]
        sources = expand(source, b)
        bg_param = model.bg_predictor(sources, driving) if model.bg_predictor is not None else None
        kp_s = {"fg_kp": expand(kp_source["fg_kp"], b)}
        dense = model.dense_motion_network(sources, model.kp_detector(driving), kp_s, bg_param=bg_param)
        out.append(model.inpainting_network(sources, dense)["prediction"].permute(0, 2, 3, 1).cpu().numpy())
    return np.concatenate(out)
