"""Animation: move a source image with the motion of a driving video.

Keypoints of the source, of the first (or best) driving frame and of each driving frame give the
motion; in relative mode the driving motion since its first frame is applied to the source
keypoints, optionally scaled by the ratio of the keypoint convex hulls (``normalize_kp``).

The :class:`AnimationEngine` computes everything that depends only on the source once per clip
(source keypoints, encoder features, the downsampled source), processes driving frames in
batches under ``torch.inference_mode``, and streams: frames go in and out one batch at a time, so
memory does not grow with the clip's length.

``precision="fast"`` trades exact rounding for speed: on GPUs and on CPUs with native bf16
(AVX-512 BF16 / AMX) the generator runs in bf16 (fp16 on GPUs without bf16), its weights converted
once, the geometry kept in fp32 (``fomm.models.inference``); on other x86 CPUs (AVX2) bf16 is
emulated and slower than fp32, so the per-frame convolutions of the generator run in int8 instead,
calibrated on the first driving frame of each source (see ``fomm.models.quantized``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch

from fomm.cpu import tune_allocator
from fomm.errors import FommError
from fomm.models.exported import ExportedModel
from fomm.models.first_order_model import FirstOrderModel
from fomm.models.geometry import convex_hull_area
from fomm.models.inference import InferenceModel, cpu_has_fast_bf16  # noqa: F401
from fomm.models.precision import BACKENDS, PRECISIONS, check_precision  # noqa: F401 (re-exported)


# ----------------------------------------------------------------------------------------------
# Keypoint normalisation
# ----------------------------------------------------------------------------------------------
def movement_scale(kp_source: dict, kp_driving_initial: dict) -> float:
    """sqrt(area(hull(source kp)) / area(hull(first driving kp))), on batch element 0."""
    source_area = convex_hull_area(kp_source["value"][0].detach().float().cpu().numpy())
    driving_area = convex_hull_area(kp_driving_initial["value"][0].detach().float().cpu().numpy())
    if driving_area <= 0:
        return 1.0
    return float(np.sqrt(source_area) / np.sqrt(driving_area))


def normalize_kp(
    kp_source: dict,
    kp_driving: dict,
    kp_driving_initial: dict,
    adapt_movement_scale: bool | float = False,
    use_relative_movement: bool = False,
    use_relative_jacobian: bool = False,
) -> dict:
    """Keypoints to drive the source with.

    Relative: ``value = (d - d0) * scale + s`` and ``jacobian = J_d @ J_d0^-1 @ J_s``; absolute:
    the driving keypoints unchanged. ``adapt_movement_scale`` may be a precomputed float scale.
    Values ``(B, K, 2)``, jacobians ``(B, K, 2, 2)``; a model without Jacobians works in relative
    mode too (only the values move).
    """
    if adapt_movement_scale is True:
        scale = movement_scale(kp_source, kp_driving_initial)
    elif adapt_movement_scale is False:
        scale = 1.0
    else:
        scale = float(adapt_movement_scale)
    kp_new = dict(kp_driving)
    if use_relative_movement:
        kp_new["value"] = (kp_driving["value"] - kp_driving_initial["value"]) * scale + kp_source["value"]
        if use_relative_jacobian and "jacobian" in kp_driving:
            jacobian_diff = torch.matmul(kp_driving["jacobian"], torch.inverse(kp_driving_initial["jacobian"]))
            kp_new["jacobian"] = torch.matmul(jacobian_diff, kp_source["jacobian"])
    return kp_new


# ----------------------------------------------------------------------------------------------
# Input handling
# ----------------------------------------------------------------------------------------------
def prepare_frames(frames, frame_shape: tuple[int, int], what: str, ndim: int) -> np.ndarray:
    """Validate and convert to float32 ``(..., H, W, 3)`` in [0, 1] at the model's ``frame_shape``.

    ``ndim`` is 3 for one image ``(H, W, C)`` and 4 for a clip ``(T, H, W, C)``. Values, gray and
    alpha follow :func:`fomm.data.image_ops.to_rgb_float01` (alpha composited over white, NaN/inf
    rejected); frames of another size are resized with :func:`fomm.data.image_ops.resize_frames`.
    """
    from fomm.data.image_ops import resize_frames, to_rgb_float01

    arr = frames.detach().cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if ndim == 4 and arr.ndim == 4 and arr.shape[0] == 0:
        raise FommError(f"{what} has no frames; pass a video with at least one frame")
    arr = to_rgb_float01(arr, what, ndim=ndim)
    return np.ascontiguousarray(resize_frames(arr, frame_shape))


def to_tensor(frames: np.ndarray, device) -> torch.Tensor:
    """``(T, H, W, 3)`` float32 -> ``(T, 3, H, W)`` on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2).contiguous()


# ----------------------------------------------------------------------------------------------
# Engine
# ----------------------------------------------------------------------------------------------
def default_batch_size(device: torch.device) -> int:
    """Frames per batch when none is given: 4 on a CPU (measured fastest for vox-256 on 2 cores:
    the activations of larger batches fall out of cache), 16 on a GPU."""
    return 4 if torch.device(device).type == "cpu" else 16


def make_inference_model(model, backend: str, precision: str, **kwargs):
    """The backend that runs the networks: :class:`fomm.models.inference.InferenceModel` (torch)
    or :class:`fomm.export.runtime.OnnxInferenceModel` (ONNX Runtime: an export folder's graphs,
    or the model exported on the fly)."""
    if backend not in BACKENDS:
        raise FommError(f"unknown backend '{backend}'; use one of {', '.join(BACKENDS)}")
    if isinstance(model, ExportedModel) and backend != "onnxruntime":
        raise FommError(f"{model.folder} is an ONNX export folder; run it with --backend onnxruntime")
    if getattr(model, "kind", "fomm") == "tpsmm":  # fomm.models.tpsmm
        return _tpsmm_inference_model(model, backend, precision, **kwargs)
    if backend == "torch":
        return InferenceModel(model, precision, **kwargs)
    from fomm.export.runtime import OnnxInferenceModel  # optional extra: onnxruntime

    if isinstance(model, ExportedModel):
        return OnnxInferenceModel(model.folder, precision=precision)
    return OnnxInferenceModel.from_model(model, precision=precision)


def _tpsmm_inference_model(model, backend: str, precision: str, **kwargs):
    """The same three calls for a Thin-Plate Spline Motion Model (torch or ONNX Runtime)."""
    if backend == "torch":
        from fomm.models.tpsmm.inference import TpsmmInference

        return TpsmmInference(model, precision, **kwargs)  # fast_dtype, channels_last; the rest is FOMM's
    from fomm.export.tpsmm import OnnxTpsmmInference

    if isinstance(model, ExportedModel):  # a TPSMM export folder
        return OnnxTpsmmInference(model.folder, precision=precision)
    return OnnxTpsmmInference.from_model(model, precision=precision)


class AnimationEngine:
    """Animates driving frames against one source image, batch by batch.

    The networks run in an inference model (``backend``: ``torch`` or ``onnxruntime``); the engine
    encodes the source once, measures relative motion and animates batches.

    >>> engine = AnimationEngine(model, relative=True, adapt_movement_scale=True)
    >>> engine.set_source(source_hwc)
    >>> for frame in engine.run(driving_frames_iterable): ...
    """

    def __init__(
        self,
        model: FirstOrderModel,
        relative: bool = True,
        adapt_movement_scale: bool = True,
        batch_size: int | None = None,
        precision: str = "exact",
        compile: bool = False,
        channels_last: bool = True,
        optimize: bool = True,
        fast_dtype: torch.dtype | None = None,
        backend: str = "torch",
        avd: bool = False,
    ):
        check_precision(precision)  # before the (slow) inference copy is made
        self.model = model.eval()
        self.device = model.device
        if self.device.type == "cpu":
            tune_allocator()  # keep freed frames' memory for the next batch (fomm.cpu; process-wide)
        batch_size = default_batch_size(self.device) if batch_size is None else batch_size
        if batch_size < 1:
            raise FommError(f"batch size must be at least 1 (got {batch_size})")
        if avd and getattr(model, "kind", "fomm") != "tpsmm":
            raise FommError(
                "avd (animation via disentanglement) needs a Thin-Plate Spline Motion Model checkpoint; "
                "this is a FOMM model: leave avd off"
            )
        self.avd = avd
        self.relative = relative and not avd
        self.adapt_movement_scale = adapt_movement_scale
        self.batch_size = batch_size
        self.precision = precision
        self.backend = backend
        options = dict(optimize=optimize, channels_last=channels_last, compile=compile, fast_dtype=fast_dtype)
        self.inference = make_inference_model(model, backend, precision, **options)
        self.source = None
        self.kp_initial = None
        self.scale = 1.0

    @property
    def kp_source(self) -> dict[str, torch.Tensor] | None:
        """Keypoints of the source, ``(1, K, 2)`` / ``(1, K, 2, 2)`` (None before ``set_source``)."""
        return None if self.source is None else self.source.kp

    def keypoints(self, frames_hwc: np.ndarray) -> dict[str, torch.Tensor]:
        """Keypoints of ``(T, H, W, 3)`` frames at the model size (always in fp32)."""
        out = [
            self.inference.keypoints(frames_hwc[i : i + self.batch_size])
            for i in range(0, len(frames_hwc), self.batch_size)
        ]
        return {k: torch.cat([o[k] for o in out]) for k in out[0]}

    # -- state -------------------------------------------------------------------------------------
    def set_source(self, source_image) -> None:
        """Cache everything that depends only on the source ``(H, W, C)`` image."""
        source = prepare_frames(source_image, self.model.frame_shape, "source image", ndim=3)
        self.source = self.inference.encode_source(source)
        self.kp_initial = None

    def set_initial(self, kp_initial: dict[str, torch.Tensor]) -> None:
        """The driving keypoints relative motion is measured from (the first or best frame)."""
        self.kp_initial = {k: v[:1] for k, v in kp_initial.items()}
        self.scale = (
            movement_scale(self.kp_source, self.kp_initial) if self.relative and self.adapt_movement_scale else 1.0
        )

    def reset_initial(self) -> None:
        """Measure relative motion from the next frame animated (e.g. on a key press in live mode)."""
        self.kp_initial = None

    # -- running -----------------------------------------------------------------------------------
    def normalized_keypoints(self, kp_driving: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The keypoints that drive the source for a batch of driving keypoints (``normalize_kp``
        with the engine's mode and the scale measured at ``set_initial``)."""
        if self.avd:  # TPSMM's avd mode: the AVD network gives the driving pose the source's shape
            return self.inference.avd(self.kp_source, kp_driving)
        if self.kp_initial is None:
            self.set_initial(kp_driving)
        batch = kp_driving["value"].shape[0]
        kp_source = {k: v.expand(batch, *v.shape[1:]) for k, v in self.kp_source.items()}
        kp_initial = {k: v.expand(batch, *v.shape[1:]) for k, v in self.kp_initial.items()}
        return normalize_kp(
            kp_source,
            kp_driving,
            kp_initial,
            adapt_movement_scale=self.scale,
            use_relative_movement=self.relative,
            use_relative_jacobian=self.relative,
        )

    @torch.inference_mode()
    def animate_batch(self, driving_hwc: np.ndarray, outputs: tuple[str, ...] = ("prediction",)) -> dict:
        """Animate a batch ``(B, H, W, 3)`` of model-sized float frames; returns tensors."""
        if self.source is None:
            raise FommError("no source image set; call set_source first")
        return self.animate_keypoints(self.keypoints(driving_hwc), outputs)

    @torch.inference_mode()
    def animate_keypoints(
        self, kp_driving: dict[str, torch.Tensor], outputs: tuple[str, ...] = ("prediction",)
    ) -> dict:
        """The second half of :meth:`animate_batch`, from the driving frames' keypoints (live mode
        times the two halves apart)."""
        if self.source is None:
            raise FommError("no source image set; call set_source first")
        kp_norm = self.normalized_keypoints(kp_driving)
        result = self.inference.animate(self.source, kp_norm, outputs)
        result["kp_driving"] = kp_driving
        result["kp_norm"] = kp_norm
        return result

    def run(self, driving_frames: Iterable, outputs: tuple[str, ...] = ("prediction",)) -> Iterator[dict]:
        """Stream driving frames (any size, uint8 or float) in, batches of results out.

        Yields dicts holding ``prediction`` as float32 ``(B, H, W, 3)`` numpy arrays and the
        keypoints used, one dict per batch.
        """
        for chunk in batched(driving_frames, self.batch_size):
            frames = prepare_frames(np.stack(chunk), self.model.frame_shape, "driving video", ndim=4)
            out = self.animate_batch(frames, outputs)
            yield {
                k: (v.permute(0, 2, 3, 1).cpu().numpy() if k in ("prediction", "deformed") else v)
                for k, v in out.items()
            }


def engine_for(model, options) -> AnimationEngine:
    """The engine that an :class:`~fomm.animation.options.AnimateOptions` asks for (motion, AVD,
    batch size, precision, backend, compile): the one of ``fomm animate``, ``fomm app`` and
    ``fomm live``. The torch backend and ``avd=False`` are the engine's defaults, left unsaid."""
    extra = {} if options.backend == "torch" else {"backend": options.backend}
    if options.avd:
        extra["avd"] = True
    return AnimationEngine(  # this module's name, looked up when called: tests may wrap it
        model,
        relative=options.relative,
        adapt_movement_scale=options.adapt_movement_scale,
        batch_size=options.batch_size,
        precision=options.precision,
        compile=options.compile,
        **extra,
    )


def batched(frames: Iterable, size: int) -> Iterator[list]:
    """Lists of up to ``size`` consecutive items of ``frames`` (the last one may be shorter)."""
    chunk: list = []
    for frame in frames:
        chunk.append(frame)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def normalized_pose(kp: torch.Tensor) -> torch.Tensor:
    """Keypoints ``(..., K, 2)`` centred on their mean and divided by their RMS radius: a pose that
    translation and scale do not change."""
    kp = kp - kp.mean(dim=-2, keepdim=True)
    return kp / kp.pow(2).sum(-1).mean(-1, keepdim=True).sqrt().clamp_min(1e-8).unsqueeze(-1)


def closest_pose_index(kp_source: torch.Tensor, kp_batches: Iterable[torch.Tensor]) -> int:
    """Index, over the concatenated batches ``(B_i, K, 2)`` of driving keypoints, of the frame whose
    :func:`normalized_pose` is nearest (mean squared distance) to the source's ``(K, 2)``; the first
    of equals."""
    source = normalized_pose(kp_source)
    best, best_dist, index = 0, float("inf"), 0
    for kp in kp_batches:
        dist = (normalized_pose(kp) - source).pow(2).sum(-1).mean(-1)
        i = int(torch.argmin(dist))
        if float(dist[i]) < best_dist:
            best, best_dist = index + i, float(dist[i])
        index += len(kp)
    return best


def best_frame_index(engine: AnimationEngine, driving_frames: Iterable) -> int:
    """Index of the driving frame whose pose best matches the source.

    Poses are compared with the model's own keypoints, each set normalised for translation (centred
    on its mean) and scale (divided by its RMS radius); the frame with the smallest mean squared
    distance wins (:func:`closest_pose_index`). Works for any category, no face-landmark library
    needed.
    """

    def keypoints() -> Iterator[torch.Tensor]:
        for chunk in batched(driving_frames, engine.batch_size):
            frames = prepare_frames(np.stack(chunk), engine.model.frame_shape, "driving video", ndim=4)
            yield engine.keypoints(frames)["value"]

    return closest_pose_index(engine.kp_source["value"][0], keypoints())


def animate(
    model: FirstOrderModel,
    source_image,
    driving_frames,
    relative: bool = True,
    adapt_movement_scale: bool = True,
    batch_size: int | None = None,
    precision: str = "exact",
    best_frame: int | str | None = None,
    compile: bool = False,
    backend: str = "torch",
    avd: bool = False,
) -> np.ndarray:
    """Animate ``source_image`` with ``driving_frames``; returns float32 ``(T, H, W, 3)`` in [0, 1].

    ``source_image``: ``(H, W, 3)`` (gray and RGBA accepted), ``driving_frames``: ``(T, H, W, 3)``
    or any iterable of frames; uint8 or float in [0, 1]. Inputs of another size are resized to the
    model's frame size, and the output has that size. ``relative`` applies the driving motion since
    the initial frame to the source keypoints (with ``adapt_movement_scale`` scaling it by the
    keypoint hull ratio); ``relative=False`` uses the driving keypoints as they are. ``best_frame``
    (``'auto'`` or an index) measures relative motion from that driving frame instead of the first,
    which equals the original's backward-then-forward animation from it. ``backend="onnxruntime"``
    runs the exported ONNX graphs (exported once into the cache, see :mod:`fomm.export`).

    A Thin-Plate Spline Motion Model (``fomm.models.tpsmm``) animates as the original's
    ``demo.make_animation``: ``relative=False`` is its ``standard`` mode, ``relative=True`` its
    ``relative`` mode (with ``adapt_movement_scale``, as the original always does), and ``avd=True``
    its ``avd`` mode (the AVD network's keypoints; ``relative`` is then ignored). ``avd=True`` with a
    FOMM model is an error.
    """
    engine = AnimationEngine(
        model,
        relative=relative,
        adapt_movement_scale=adapt_movement_scale,
        batch_size=batch_size,
        precision=precision,
        compile=compile,
        backend=backend,
        avd=avd,
    )
    engine.set_source(source_image)
    frames = driving_frames
    if isinstance(frames, (np.ndarray, torch.Tensor)) and len(frames) == 0:
        raise FommError("driving video has no frames; pass a video with at least one frame")
    if isinstance(frames, (np.ndarray, torch.Tensor)):  # NaN/inf: indices within the whole clip, not a batch
        from fomm.data.image_ops import check_finite

        check_finite(frames.detach().cpu().numpy() if isinstance(frames, torch.Tensor) else frames, "driving video")
    if best_frame is not None:
        if not isinstance(frames, (np.ndarray, list, tuple, torch.Tensor)):
            frames = list(frames)
        index = best_frame_index(engine, frames) if best_frame == "auto" else int(best_frame)
        if not 0 <= index < len(frames):
            raise FommError(f"best frame {index} is outside the driving video (0..{len(frames) - 1})")
        initial = prepare_frames(np.asarray(frames[index])[None], model.frame_shape, "driving video", ndim=4)
        engine.set_initial(engine.keypoints(initial))
    results = [out["prediction"] for out in engine.run(frames)]
    if not results:
        raise FommError("driving video has no frames; pass a video with at least one frame")
    return np.concatenate(results)
