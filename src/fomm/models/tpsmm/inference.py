"""A TPSMM model prepared for animation: the same three calls as
:class:`fomm.models.inference.InferenceModel` (``keypoints``, ``encode_source`` once per source,
``animate`` per batch), so the animation engine, and every tool on it, drives either model.

Keypoints travel through the engine under FOMM's key, ``{'value': (B, 5K, 2)}`` (relative motion
then moves them exactly as TPSMM's ``relative_kp``: there are no Jacobians); the networks see
``{'fg_kp': ...}``. What depends only on the source (its keypoints, the inpainting encoder's
feature maps and the dense motion network's down-sampled copy) is computed once.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from fomm.errors import FommError
from fomm.models.inference import resolve_precision
from fomm.models.tpsmm.model import TpsmmModel


@dataclass
class TpsmmSource:
    """What :meth:`TpsmmInference.encode_source` computes once per source image."""

    kp: dict[str, torch.Tensor]  # value (1, 5K, 2), fp32
    image: torch.Tensor  # (1, C, H, W)
    small: torch.Tensor  # (1, C, h, w): the dense motion network's input size
    encoder_maps: list[torch.Tensor]  # the inpainting encoder's maps, finest first


def expand(x: torch.Tensor, batch: int) -> torch.Tensor:
    return x.expand(batch, *x.shape[1:])


class TpsmmInference:
    """``keypoints`` / ``encode_source`` / ``animate`` / ``avd`` for a :class:`TpsmmModel`.

    ``precision='fast'`` runs the convolutions under bf16/fp16 autocast where the device has native
    kernels (a GPU, an AVX-512 BF16 / AMX CPU), else fp32 with one warning (FOMM's int8 path is
    not ported to TPSMM); the keypoints and the TPS solve stay fp32.
    """

    backend = "torch"

    def __init__(self, model: TpsmmModel, precision: str = "exact", device=None, **_options):
        self.model = model.eval()
        self.device = torch.device(device) if device is not None else model.device
        self.precision = precision
        self.low_dtype, int8 = resolve_precision(precision, self.device)
        if int8:  # FOMM's int8 path has no TPSMM port
            warnings.warn(
                "precision 'fast': no native bf16 here and no int8 path for TPSMM; running in fp32", stacklevel=3
            )
        self.frame_shape = tuple(model.frame_shape)
        self.calibrating = False

    def _autocast(self):
        if self.low_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.low_dtype)

    def to_input(self, frames_bhwc: np.ndarray) -> torch.Tensor:
        """``(B, H, W, 3)`` float32 -> ``(B, 3, H, W)`` on the device."""
        return torch.from_numpy(np.ascontiguousarray(frames_bhwc)).to(self.device).permute(0, 3, 1, 2).contiguous()

    @torch.inference_mode()
    def keypoints(self, frames_bhwc: np.ndarray) -> dict[str, torch.Tensor]:
        """``{'value': (B, 5K, 2)}`` of model-sized frames, fp32."""
        return {"value": self.model.kp_detector(self.to_input(frames_bhwc))["fg_kp"].float()}

    @torch.inference_mode()
    def encode_source(self, source_hwc: np.ndarray) -> TpsmmSource:
        x = self.to_input(source_hwc[None])
        kp = self.keypoints(source_hwc[None])
        dense = self.model.dense_motion_network
        with self._autocast():
            small = dense.down(x) if dense.scale_factor != 1 else x
            maps = self.model.inpainting_network.encode(x)
        return TpsmmSource(kp, x, small, maps)

    @torch.inference_mode()
    def animate(self, source: TpsmmSource, kp_driving: dict, outputs=("prediction",)) -> dict[str, torch.Tensor]:
        """Animate ``source`` to a batch of driving keypoints ``{'value': (B, 5K, 2)}``: the
        requested ``outputs`` (``prediction``, ``deformed``, ``occlusion_map`` (the finest mask),
        ``deformation``, ``contribution_maps``) as fp32 tensors."""
        b = kp_driving["value"].shape[0]
        kp_d = {"fg_kp": kp_driving["value"].float()}
        kp_s = {"fg_kp": expand(source.kp["value"], b)}
        dense = self.model.dense_motion_network
        h, w = source.small.shape[2:]
        transformations = dense.transformations(kp_d["fg_kp"], kp_s["fg_kp"], (h, w))  # fp32 TPS solve
        with self._autocast():
            motion = dense.from_transformations(expand(source.small, b), kp_d, kp_s, transformations, False, 0.0)
            maps = [expand(m, b) for m in source.encoder_maps]
            out = self.model.inpainting_network.decode(maps, expand(source.image, b), motion)
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
