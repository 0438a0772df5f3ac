"""File to file: animate photos with the motion of a driving video and write the results.

:func:`animate_video` (also ``fomm.animate_video``) is the Python entry point; ``fomm animate``,
``fomm demo`` and ``fomm app`` call it. The driving video is streamed (decode -> batch -> animate
-> encode), never held in memory, so long videos need no more memory than short ones. The result
keeps the driving video's frame count and frame rate and, for .mp4/.mov/.mkv outputs, its audio.
Outputs (and ``save_frames`` folders) are written atomically: an error or Ctrl-C leaves nothing
behind.

Inputs, as the rest of fomm reads them (:mod:`fomm.data.image_ops`): uint8 or float in [0, 1],
gray replicated, alpha composited over white; NaN/inf anywhere is an error naming how many and
where. A source far smaller than the model's input or far from square is warned about; a
driving video that is not square is centre-cropped (``driving_fit='crop'``), letterboxed
(``'pad'``) or squashed (``'stretch'``), and the choice is warned once.

Many sources (a list, a folder or a glob pattern) share one model and one pass of driving
keypoints: the driving video is decoded and its keypoints computed once, cached, and each
source only runs the generator; ``best_frame='auto'`` compares each source with those cached
keypoints, or, by face landmarks, with the driving video's face poses (found once, with one more
decode, for the first source that has a face). The driving panels
of ``layout='side-by-side'`` are spooled, at the model's size, to an unlinked temporary file
during that one decode and replayed from it for each source (memory: one frame; disk:
``T x H x W x 3`` bytes; if the file cannot be written, each source decodes the video again).
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fomm.atomic import same_file
from fomm.data.image_ops import FIT_MODES, check_finite, fit_aspect, resize_frame, to_rgb_float01, to_uint8
from fomm.errors import FommError

LAYOUTS = ("result", "side-by-side")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("exact", "fast")
BACKENDS = ("torch", "onnxruntime")
DRIVING_FITS = FIT_MODES
#: ``best_frame='auto'``: face landmarks (``fomm[faces]``, on a source with a face) or the model's keypoints.
BEST_FRAME_METHODS = ("auto", "landmarks", "keypoints")
#: Face landmarks for the best frame are found on frames enlarged to at least this many pixels.
LANDMARK_SIZE = 256
#: Side-by-side panels are enlarged to at least this height, so that a 64-pixel model's result
#: and the panel labels can be seen.
PANEL_SIZE = 256
PANEL_LABELS = ("source", "driving", "result")
CONTAINER_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")

#: ``progress``: ``True`` (tqdm bars), ``False``, or ``callback(done, total_or_None, desc)``.
Progress = bool | Callable[[int, int | None, str], None]


# ----------------------------------------------------------------------------------------------
# Progress
# ----------------------------------------------------------------------------------------------
class ProgressReporter:
    """One task's progress: a tqdm bar (``progress=True``), ``progress(done, total, desc)`` after
    each step (a callable), or nothing (``False``). A context manager."""

    def __init__(self, progress: Progress, total: int | None, desc: str, unit: str = "frame", leave: bool = True):
        self.callback = progress if callable(progress) else None
        self.total, self.desc, self.done = total, desc, 0
        self.bar = None
        if progress is True:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=leave)
        if self.callback is not None:
            self.callback(0, total, desc)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        if self.callback is not None:
            self.callback(self.done, self.total, self.desc)

    def wrap(self, items: Iterable) -> Iterator:
        for item in items:
            yield item
            self.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> ProgressReporter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ----------------------------------------------------------------------------------------------
# Argument checks
# ----------------------------------------------------------------------------------------------
def output_kind(out: Path) -> str:
    """'container', 'gif', 'strip' or 'folder', or a FommError for an unsupported path."""
    raw = os.fspath(out)
    if raw.endswith(("/", os.sep)) or out.is_dir() or out.suffix == "":
        return "folder"
    suffix = out.suffix.lower()
    if suffix in CONTAINER_SUFFIXES:
        return "container"
    if suffix == ".gif":
        return "gif"
    if suffix == ".png":
        return "strip"
    raise FommError(
        f"cannot write the result to {out}: unsupported extension '{out.suffix}'; use .mp4 "
        f"(or .mov/.mkv), .gif, .png (a strip), or a folder path without extension for PNG frames"
    )


def check_best_frame(best_frame):
    """``None``, ``'auto'`` or a frame index >= 0 (a numeric string is accepted)."""
    if best_frame is None or best_frame == "auto":
        return best_frame
    if isinstance(best_frame, str):
        try:
            best_frame = int(best_frame)
        except ValueError:
            raise FommError(
                f"best frame '{best_frame}' is not 'auto' or a frame number; "
                f"use --best-frame auto or e.g. --best-frame 0"
            ) from None
    if isinstance(best_frame, bool) or not isinstance(best_frame, (int, np.integer)) or best_frame < 0:
        raise FommError(
            f"best frame {best_frame!r} is not 'auto' or a frame number >= 0; "
            f"use --best-frame auto or e.g. --best-frame 0"
        )
    return int(best_frame)


def _check_choice(value, choices, what: str, flag: str) -> None:
    if value not in choices:
        raise FommError(f"unknown {what} '{value}'; use one of {', '.join(choices)} ({flag})")


def _check_input(path, what: str, hint: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise FommError(f"{what} {p} not found; {hint}")
    return p


@dataclass
class Options:
    """What to do with each source (the keyword arguments of :func:`animate_video`)."""

    relative: bool = True
    adapt_movement_scale: bool = True
    best_frame: int | str | None = None
    best_frame_method: str = "auto"
    crop: bool = False
    crop_options: dict = field(default_factory=dict)
    paste_back: bool = False
    color_match: bool = False
    layout: str = "result"
    show_keypoints: bool = False
    labels: bool = True
    panel_size: int = PANEL_SIZE
    audio: bool = True
    driving_fit: str = "crop"
    progress: Progress = True


def _check_options(o: Options, precision: str, backend: str, batch_size) -> None:
    """Cheap checks, before anything is loaded."""
    _check_choice(o.layout, LAYOUTS, "layout", "--layout")
    _check_choice(precision, PRECISIONS, "precision", "--precision")
    _check_choice(backend, BACKENDS, "backend", "--backend")
    _check_choice(o.driving_fit, DRIVING_FITS, "driving fit", "--driving-fit")
    if batch_size is not None and (isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1):
        raise FommError(f"batch size must be a whole number >= 1 (got {batch_size}); use e.g. --batch-size 8")
    if isinstance(o.panel_size, bool) or int(o.panel_size) != o.panel_size or o.panel_size < 1:
        raise FommError(f"panel size must be a whole number of pixels >= 1 (got {o.panel_size}); use e.g. 256")
    if o.crop_options and not o.crop:
        raise FommError("crop options were given without --crop; add --crop or drop the --crop-* options")
    if o.color_match and not o.paste_back:
        raise FommError("--color-match needs the crop pasted back; use it with --crop (and without --no-paste-back)")
    o.best_frame = check_best_frame(o.best_frame)
    _check_choice(o.best_frame_method, BEST_FRAME_METHODS, "best-frame method", "--best-frame-method")
    if o.best_frame_method != "auto" and o.best_frame != "auto":
        raise FommError(
            f"--best-frame-method {o.best_frame_method} is used only with --best-frame auto; add it or drop the method"
        )


def _check_save_frames(save_frames, out: Path, kind: str) -> Path | None:
    if save_frames is None:
        return None
    save_frames = Path(save_frames)
    if save_frames.exists() and not save_frames.is_dir():
        raise FommError(f"--save-frames {save_frames} exists and is not a folder; choose a folder path")
    if kind == "folder" and save_frames.resolve() == out.resolve():
        raise FommError("--save-frames is the same folder as --out; drop --save-frames or choose another folder")
    return save_frames


# ----------------------------------------------------------------------------------------------
# Sources
# ----------------------------------------------------------------------------------------------
def source_list(source) -> list | None:
    """The sources when ``source`` names many (a list or tuple, a folder, a glob pattern that
    matches no file itself), else ``None`` (one image path or one array)."""
    from fomm.data import video_io

    if isinstance(source, (list, tuple)):
        if not source:
            raise FommError("the list of sources is empty; pass at least one image")
        return list(source)
    if not isinstance(source, (str, os.PathLike)):
        return None
    p = Path(source)
    if p.is_dir():
        files = video_io.list_frame_files(p)
        if not files:
            raise FommError(f"folder {p} holds no images (.png/.jpg); put the photos to animate there")
        return files
    if not p.exists() and glob.has_magic(os.fspath(source)):
        files = sorted(Path(f) for f in glob.glob(os.fspath(source)) if video_io.is_image_path(f))
        if not files:
            raise FommError(f"no image matches {source}; check the pattern (e.g. 'photos/*.jpg', quoted)")
        return files
    return None


def _source_name(source, index: int | None = None) -> str:
    if isinstance(source, (str, os.PathLike)):
        return f"source image {source}"
    return "the source image" if index is None else f"source image {index}"


def load_source(source, index: int | None = None) -> tuple[np.ndarray, str, Path | None]:
    """``(image, name, path)``: uint8 RGB from a file, float32 RGB in [0, 1] from an array."""
    from fomm.data import video_io

    name = _source_name(source, index)
    if not isinstance(source, (str, os.PathLike)):
        arr = np.asarray(source.detach().cpu().numpy() if hasattr(source, "detach") else source)
        check_finite(arr, name)
        return to_rgb_float01(arr, name, ndim=3), name, None
    path = _check_input(source, "source image", "check the path of the photo to animate")
    if path.is_dir() or video_io.is_video_path(path):
        raise FommError(
            f"source {path} is a video, not an image; pass one photo (.png/.jpg), e.g. a frame exported from the video"
        )
    return video_io.read_image(path), name, path


def source_notes(shape_hw, frame_shape, name: str) -> None:
    """Warn (one line each) when the source is far smaller than the model input or far from square."""
    h, w = int(shape_hw[0]), int(shape_hw[1])
    fh, fw = frame_shape
    if min(h, w) * 4 < min(fh, fw):
        warnings.warn(
            f"{name} is {w}x{h}, far smaller than the model's {fw}x{fh} input: it was enlarged "
            f"{min(fh, fw) / min(h, w):.3g}x, expect a blurry result",
            UserWarning,
            stacklevel=3,
        )
    if max(h, w) > 2 * min(h, w):
        warnings.warn(
            f"{name} is {w}x{h} (aspect {max(h, w) / min(h, w):.3g}:1), far from square: it was squashed "
            f"to {fw}x{fh}; crop it to a square first (or use --crop on faces)",
            UserWarning,
            stacklevel=3,
        )


# ----------------------------------------------------------------------------------------------
# Driving video
# ----------------------------------------------------------------------------------------------
class DrivingVideo:
    """The driving video (a file, or a ``(T, H, W, C)`` array) as frames at the model's size.

    :meth:`frames` decodes it again on each call (one pass). ``plan``: a
    :class:`fomm.faces.CropPlan` (square face crops); without one, frames are brought to the
    model's aspect ratio by ``fit`` (:func:`fomm.data.image_ops.fit_aspect`), then resized.
    """

    def __init__(self, driving, frame_shape=None, fit: str = "crop", fps: float | None = None):
        from fomm.data import video_io

        self.frame_shape = None if frame_shape is None else tuple(int(s) for s in frame_shape)
        self.fit, self.plan, self.array, self.path = fit, None, None, None
        if isinstance(driving, (str, os.PathLike)):
            self.path = _check_input(driving, "driving video", "check the path of the video whose motion to copy")
            info = video_io.probe(self.path)  # a video without frames, a corrupt file: a FommError here
            self.fps, self.total, self.has_audio = float(info.fps), info.num_frames, info.has_audio
            self.size_hw = (info.height, info.width)
            self.name = self.path.name
        else:
            arr = np.asarray(driving.detach().cpu().numpy() if hasattr(driving, "detach") else driving)
            if arr.ndim == 4 and len(arr) == 0:
                raise FommError("driving video has no frames; pass a video with at least one frame")
            check_finite(arr, "driving video")
            self.array = to_rgb_float01(arr, "driving video", ndim=4)
            self.fps, self.total, self.has_audio = float(fps or 25.0), len(self.array), False
            self.size_hw = self.array.shape[1:3]
            self.name = "the driving frames"

    def set_plan(self, plan) -> None:
        self.plan = plan
        self.total = plan.num_frames

    def fit_note(self) -> None:
        """Warn once when the frames are not of the model's aspect ratio and say what is done."""
        h, w = self.size_hw
        fh, fw = self.frame_shape
        if self.plan is not None or abs(w * fh / (h * fw) - 1) < 0.01:
            return
        done = {
            "crop": "centre-cropped to the model's aspect ratio",
            "pad": "letterboxed (black bands) to the model's aspect ratio",
            "stretch": "squashed (aspect ratio not kept)",
        }[self.fit]
        other = ", ".join(m for m in DRIVING_FITS if m != self.fit)
        warnings.warn(
            f"driving video is {w}x{h}, not {'square' if fh == fw else f'{fw}x{fh}'}: {done}, then resized "
            f"to {fw}x{fh} (--driving-fit {other} to change)",
            UserWarning,
            stacklevel=3,
        )

    def raw_frames(self) -> Iterator[np.ndarray]:
        from fomm.data import video_io

        return iter(self.array) if self.array is not None else video_io.iter_frames(self.path)

    def frames(self, shape: tuple[int, int] | None = None) -> Iterator[np.ndarray]:
        """One pass over the frames, each ``frame_shape`` (or ``shape``, ``(H, W)``: the same
        crop at another size); uint8 from files, float from arrays."""
        shape = self.frame_shape if shape is None else (int(shape[0]), int(shape[1]))
        frames = self.raw_frames()
        if self.plan is not None:
            plan = self.plan if self.plan.size == max(shape) else dataclasses.replace(self.plan, size=max(shape))
            frames = plan.crop_frames(frames)
        else:
            frames = (fit_aspect(f, shape, self.fit) for f in frames)
        return (resize_frame(f, shape) for f in frames)

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` (decoding stops there), or a FommError naming the valid range."""
        frames, count = self.frames(), 0
        try:
            for count, frame in enumerate(frames, start=1):
                if count - 1 == index:
                    return frame
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()
        raise FommError(
            f"best frame {index} is outside the driving video ({count} frames: 0..{count - 1}); "
            "pass --best-frame auto or a smaller index"
        )


def _crop_driving(driving: DrivingVideo, crop_size: int, options: dict, progress: Progress) -> None:
    from fomm.faces import CropPlan

    if driving.path is not None:
        plan = CropPlan.from_video(driving.path, crop_size, progress=progress is True, **options)
    else:
        plan = CropPlan.from_frames(to_uint8(driving.array), crop_size, **options)
    if not plan.found:
        raise FommError(f"no face found in driving video {driving.name}; pass an already cropped video or drop --crop")
    driving.set_plan(plan)


# ----------------------------------------------------------------------------------------------
# Model and engine
# ----------------------------------------------------------------------------------------------
def _load_model(model, checkpoint, config, device):
    if model is not None:
        return model
    if checkpoint is None:
        raise FommError("no model given; pass --checkpoint (e.g. vox-cpk.pth.tar)")
    from fomm.hub.registry import resolve_checkpoint
    from fomm.models.checkpoint import load_model, resolve_device

    checkpoint = resolve_checkpoint(checkpoint)  # a published name: its downloaded file
    if isinstance(checkpoint, (str, os.PathLike)):
        _check_input(checkpoint, "checkpoint", "check the path (e.g. vox-cpk.pth.tar) or run fomm models")
    return load_model(checkpoint, config=config, device=resolve_device(device))


def _make_engine(model, o: Options, batch_size, precision: str, compile: bool, backend: str):
    from fomm.animation.engine import AnimationEngine

    extra = {} if backend == "torch" else {"backend": backend}
    return AnimationEngine(
        model,
        relative=o.relative,
        adapt_movement_scale=o.adapt_movement_scale,
        batch_size=None if batch_size is None else int(batch_size),
        precision=precision,
        compile=compile,
        **extra,
    )


def driving_keypoints(engine, driving: DrivingVideo, progress: Progress, spool: FrameSpool | None = None) -> list[dict]:
    """The driving keypoints, one dict of tensors per batch of ``engine.batch_size`` frames (one
    decode of the video; reused for every source). ``spool``: also record the frames there."""
    import torch

    from fomm.animation.engine import batched, prepare_frames

    batches = []
    stream = driving.frames() if spool is None else spool.record(driving.frames())
    with ProgressReporter(progress, driving.total, f"driving keypoints of {driving.name}", leave=False) as bar:
        with torch.inference_mode():
            for chunk in batched(stream, engine.batch_size):
                frames = prepare_frames(np.stack(chunk), driving.frame_shape, "driving video", ndim=4)
                batches.append(engine.keypoints(frames))
                bar.update(len(chunk))
    if not batches:
        raise FommError(f"driving video {driving.name} has no frames; pass a video with at least one frame")
    return batches


class FrameSpool:
    """Frames recorded once into an unlinked temporary file and replayed from it in order, as often
    as needed: one frame in memory at a time. If the file cannot be written (a full disk), the
    spool turns itself off (:attr:`ok` False) and the frames still flow through :meth:`record`."""

    def __init__(self) -> None:
        self.ok, self.count, self._spec = True, 0, None  # _spec: (shape, dtype, bytes) of every frame
        try:
            self._file = tempfile.TemporaryFile(prefix="fomm-frames-")
        except OSError:
            self.ok, self._file = False, None

    def record(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Pass ``frames`` (each ``(H, W, C)``, all of one shape and dtype) through, writing each."""
        for frame in frames:
            if self.ok:
                self._write(np.ascontiguousarray(frame))
            yield frame

    def _write(self, frame: np.ndarray) -> None:
        if self._spec is None:
            self._spec = (frame.shape, frame.dtype, frame.nbytes)
        if (frame.shape, frame.dtype) != self._spec[:2]:
            self.close()  # cannot happen for one DrivingVideo; decode again rather than replay wrongly
            return
        try:
            self._file.write(frame.tobytes())
            self.count += 1
        except OSError:
            self.close()

    def replay(self) -> Iterator[np.ndarray]:
        """The recorded frames, in order (each read at its own offset: replays may interleave)."""
        if not self.ok:
            raise RuntimeError("the frame spool is off; decode the frames again")
        shape, dtype, size = self._spec if self._spec else ((0,), np.uint8, 0)
        self._file.flush()
        for i in range(self.count):
            self._file.seek(i * size)
            yield np.frombuffer(self._file.read(size), dtype).reshape(shape)

    def close(self) -> None:
        """Delete the file (it has no name: closing frees its space) and turn the spool off."""
        self.ok = False
        if self._file is not None:
            self._file.close()
            self._file = None


def _animate_cached(engine, kp_batches: list[dict]) -> Iterator[dict]:
    """``engine.run``'s batches, from cached driving keypoints (the generator only)."""
    import torch

    for kp_driving in kp_batches:
        with torch.inference_mode():
            kp_norm = engine.normalized_keypoints(kp_driving)
            out = engine.inference.animate(engine.source, kp_norm, ("prediction",))
            prediction = out["prediction"].permute(0, 2, 3, 1).float().cpu().numpy()
        yield {"prediction": prediction, "kp_driving": kp_driving, "kp_norm": kp_norm}


def _set_initial(engine, driving: DrivingVideo, o: Options, src: _Source, kp_batches, poses: dict) -> tuple:
    """Measure relative motion from the best frame; returns ``(index or None, method or None)``
    (``method``: how ``'auto'`` chose it, ``'landmarks'`` or ``'keypoints'``). ``kp_batches``: the
    cached driving keypoints (many sources) or None; ``poses``: a cache of the driving video's face
    poses, filled by the first source that needs them."""
    import torch

    from fomm.animation.engine import prepare_frames

    best, method = o.best_frame, None
    if best is None:
        return None, None
    if not o.relative:
        warnings.warn(
            "--best-frame has no effect with absolute motion (--no-relative); it is ignored", UserWarning, stacklevel=3
        )
        return None, None
    if best == "auto":
        best, method = _best_frame_auto(engine, driving, o, src, kp_batches, poses)
    if kp_batches is not None and best < sum(len(kp["value"]) for kp in kp_batches):
        b, i = divmod(best, engine.batch_size)
        engine.set_initial({k: v[i : i + 1] for k, v in kp_batches[b].items()})
        return best, method
    frame = driving.frame(best)
    with torch.inference_mode():
        engine.set_initial(engine.keypoints(prepare_frames(frame[None], driving.frame_shape, "driving video", ndim=4)))
    return best, method


def landmark_shape(frame_shape) -> tuple[int, int]:
    """The model's ``(H, W)`` enlarged so that its shorter side is at least :data:`LANDMARK_SIZE`."""
    fh, fw = (int(s) for s in frame_shape)
    k = max(1.0, LANDMARK_SIZE / min(fh, fw))
    return int(round(fh * k)), int(round(fw * k))


def _source_face_pose(src: _Source, method: str, shape) -> np.ndarray | None:
    """The normalised landmarks of the source's face as the landmark choice compares them (the
    source at ``shape``, cropped as the model sees it), or None where the model's keypoints choose:
    ``keypoints``, or ``auto`` without ``fomm[faces]`` or without a face on the source."""
    from fomm.faces.landmarks import FaceModels, faces_available, normalize_landmarks, require_faces

    if method == "keypoints" or (method == "auto" and not faces_available()):
        return None
    require_faces("--best-frame-method landmarks")
    image = src.full
    if src.box is not None:
        x0, y0, x1, y1 = src.box
        image = image[y0:y1, x0:x1]
    points = FaceModels.shared().landmarks(resize_frame(image, shape))
    if points is None:
        if method == "landmarks":
            raise FommError(
                f"no face found in {src.name} for --best-frame-method landmarks; use --best-frame-method keypoints"
            )
        return None
    return normalize_landmarks(points)


def _best_frame_auto(engine, driving: DrivingVideo, o: Options, src: _Source, kp_batches, poses: dict) -> tuple:
    """``(index, method)`` of the driving frame posed most like the source: by face landmarks
    (:func:`fomm.faces.landmarks.closest_landmark_pose`, frames at :func:`landmark_shape`; the driving
    video's poses are found once and kept in ``poses`` for the next source) when the source has a
    face and ``fomm[faces]`` is installed, else by the model's keypoints (the cached
    ``kp_batches`` when given: no decode)."""
    from fomm.animation.engine import best_frame_index, closest_pose_index

    shape = landmark_shape(driving.frame_shape)
    ref = _source_face_pose(src, o.best_frame_method, shape)
    if ref is None and kp_batches is not None:
        return closest_pose_index(engine.kp_source["value"][0], (kp["value"] for kp in kp_batches)), "keypoints"
    if ref is None:
        with ProgressReporter(o.progress, driving.total, "finding the best frame", leave=False) as bar:
            return best_frame_index(engine, bar.wrap(driving.frames())), "keypoints"
    from fomm.faces.landmarks import closest_landmark_pose, landmark_poses

    if "landmarks" not in poses:
        with ProgressReporter(o.progress, driving.total, "face poses of the driving video", leave=False) as bar:
            poses["landmarks"] = landmark_poses(bar.wrap(driving.frames(shape)))
    return closest_landmark_pose(ref, poses["landmarks"]), "landmarks"


# ----------------------------------------------------------------------------------------------
# Rendering and writing
# ----------------------------------------------------------------------------------------------
@dataclass
class _Panels:
    """What side-by-side frames and paste-back need besides the animated batch."""

    source_panel: np.ndarray | None = None
    paster: object | None = None  # fomm.faces.paste_back.PasteBack


def _source_panel(engine, source_img, o: Options, photo=None) -> np.ndarray:
    from fomm.animation.engine import prepare_frames
    from fomm.data.drawing import draw_keypoints

    if photo is not None:  # pasted back: the full photo is the source panel
        return to_uint8(photo)
    panel = to_uint8(prepare_frames(source_img, engine.model.frame_shape, "source image", ndim=3))
    if o.show_keypoints:
        panel = draw_keypoints(_enlarge(panel, o.panel_size), engine.kp_source["value"][0])
    return panel


def _enlarge(image: np.ndarray, height: int) -> np.ndarray:
    h, w = image.shape[:2]
    if h >= height:
        return image
    return resize_frame(image, (height, max(1, int(round(w * height / h)))))


def _compose(batch: dict, drivers, o: Options, panels: _Panels) -> list[np.ndarray]:
    """The output frames of one animated batch (uint8)."""
    from fomm.data.drawing import draw_keypoints, labelled_row, side_by_side

    results = to_uint8(batch["prediction"])
    if o.show_keypoints and panels.paster is None:
        size = o.panel_size if o.layout == "side-by-side" else 0
        results = draw_keypoints(np.stack([_enlarge(r, size) for r in results]), batch["kp_norm"]["value"])
    if panels.paster is not None:
        results = [panels.paster(r) for r in results]
    if o.layout != "side-by-side":
        return list(results)
    drivers = to_uint8(np.stack(drivers))
    if o.show_keypoints:
        drivers = draw_keypoints(np.stack([_enlarge(d, o.panel_size) for d in drivers]), batch["kp_driving"]["value"])
    rows = []
    for d, r in zip(drivers, results):
        row = [panels.source_panel, d, r]
        if o.labels:
            rows.append(labelled_row(row, PANEL_LABELS, min_height=o.panel_size))
        else:
            rows.append(side_by_side([_enlarge(p, o.panel_size) for p in row]))
    return rows


def _render(
    engine, driving: DrivingVideo, o: Options, panels: _Panels, kp_batches, spool: FrameSpool | None = None
) -> Iterator[list[np.ndarray]]:
    """Output frames, one list per batch, streaming; the driving panels come from ``spool`` when
    it holds them, else from a new decode."""
    side = o.layout == "side-by-side"
    if kp_batches is None:
        pending: list = []

        def tee() -> Iterator[np.ndarray]:
            for frame in driving.frames():
                if side:
                    pending.append(frame)
                yield frame

        for batch in engine.run(tee(), outputs=("prediction",)):
            n = len(batch["prediction"])
            drivers, pending[:n] = pending[:n], []
            yield _compose(batch, drivers, o, panels)
        return
    from fomm.animation.engine import batched

    if side:
        drivers = spool.replay() if spool is not None and spool.ok else driving.frames()
    chunks = batched(drivers, engine.batch_size) if side else None
    for batch in _animate_cached(engine, kp_batches):
        yield _compose(batch, next(chunks) if chunks is not None else None, o, panels)


def _write(frames: Iterator[list[np.ndarray]], out: Path, fps: float, audio_from, save_frames, bar) -> tuple:
    """Write every frame to ``out`` (and ``save_frames``); ``(count, (width, height))``."""
    from fomm.data import video_io

    count, size = 0, None
    with contextlib.ExitStack() as stack:
        # Writers are atomic: an exception (or Ctrl-C) below removes their temporary output.
        frames_writer = None
        if save_frames is not None:
            frames_writer = stack.enter_context(video_io.VideoWriter(os.fspath(save_frames) + os.sep, fps))
        writer = stack.enter_context(video_io.VideoWriter(out, fps, audio_from=audio_from))
        for batch in frames:
            for frame in batch:
                writer.write(frame)
                if frames_writer is not None:
                    frames_writer.write(frame)
            count += len(batch)
            size = (batch[0].shape[1], batch[0].shape[0])
            bar.update(len(batch))
        if count == 0:
            raise FommError("the driving video has no frames; pass a video with at least one frame")
    return count, size


def _output_notes(kind: str, driving: DrivingVideo, audio: bool) -> None:
    if kind == "gif" and audio and driving.has_audio:
        warnings.warn("the driving video's audio is dropped: GIF has no audio (write .mp4 to keep it)", stacklevel=3)


# ----------------------------------------------------------------------------------------------
# One source
# ----------------------------------------------------------------------------------------------
@dataclass
class _Source:
    """One loaded source: ``image`` as the model gets it (the face crop with ``--crop``), the
    ``full`` photo, the crop ``box`` in it and the ``tracker`` that found the face (or None)."""

    image: np.ndarray
    name: str
    full: np.ndarray
    box: tuple | None = None
    tracker: str | None = None


def _prepare_source(source, index, o: Options, frame_shape, crop_size: int) -> _Source:
    """Load (and with ``--crop`` crop) one source."""
    image, name, _path = load_source(source, index)
    if not o.crop:
        source_notes(image.shape[:2], frame_shape, name)
        return _Source(image, name, image)
    from fomm.faces import crop_image, make_tracker

    tracker = make_tracker(o.crop_options.get("tracker", "auto"), confirm=1)
    scale = {"scale": o.crop_options["scale"]} if "scale" in o.crop_options else {}
    cropped, box = crop_image(image, crop_size, required=True, name=name, tracker=tracker, **scale)
    return _Source(cropped, name, image, box, tracker.name)


def _animate_one(engine, source, index, driving: DrivingVideo, out: Path, kind: str, o: Options, extra: dict) -> dict:
    """Animate one source into ``out``; the result dict of :func:`animate_video`."""
    src = extra.get("prepared") or _prepare_source(source, index, o, driving.frame_shape, extra["crop_size"])
    engine.set_source(src.image)
    panels = _Panels()
    if o.paste_back and src.box is not None:
        from fomm.faces.paste_back import PasteBack

        panels.paster = PasteBack(src.full, src.box, color_match=o.color_match)
    best, method = _set_initial(engine, driving, o, src, extra.get("kp_batches"), extra.setdefault("poses", {}))
    if o.layout == "side-by-side":
        panels.source_panel = _source_panel(engine, src.image, o, src.full if panels.paster is not None else None)
    audio_from = driving.path if (o.audio and driving.has_audio and kind == "container") else None
    _output_notes(kind, driving, o.audio)
    start = time.perf_counter()
    desc = f"animating {Path(source).name if isinstance(source, (str, os.PathLike)) else driving.name}"
    with ProgressReporter(o.progress, driving.total, desc) as bar:
        frames = _render(engine, driving, o, panels, extra.get("kp_batches"), extra.get("spool"))
        count, size = _write(frames, out, driving.fps, audio_from, extra.get("save_frames"), bar)
    seconds = time.perf_counter() - start
    return {
        "out": out,
        "frames": count,
        "fps": driving.fps,
        "seconds": seconds,
        "frames_per_second": count / seconds if seconds > 0 else float("inf"),
        "best_frame": best,
        "best_frame_method": method,
        "size": size,
        "audio": audio_from is not None,
        "save_frames": extra.get("save_frames"),
        "kind": kind,
        "source": source if isinstance(source, (str, os.PathLike)) else src.name,
        "crop_box": src.box,
        "tracker": None if driving.plan is None else {"source": src.tracker, "driving": driving.plan.tracker},
        "pasted_back": panels.paster is not None,
    }


# ----------------------------------------------------------------------------------------------
# Many sources
# ----------------------------------------------------------------------------------------------
def _many_outputs(sources: list, out: Path, save_frames: Path | None) -> list[tuple[Path, Path | None]]:
    if out.suffix and not out.is_dir():
        raise FommError(
            f"--out {out} is a file, but {len(sources)} sources give one video each; pass a folder, e.g. --out results/"
        )
    names = [Path(s).stem if isinstance(s, (str, os.PathLike)) else f"source-{i:03d}" for i, s in enumerate(sources)]
    seen: dict[str, int] = {}
    for i, n in enumerate(names):
        if n in seen:
            raise FommError(
                f"sources {sources[seen[n]]} and {sources[i]} would both be written to {n}.mp4; rename one of them"
            )
        seen[n] = i
    return [(out / f"{n}.mp4", None if save_frames is None else save_frames / n) for n in names]


def _animate_many(engine, sources: list, driving: DrivingVideo, out: Path, o: Options, crop_size: int, save) -> dict:
    targets = _many_outputs(sources, out, save)
    out.mkdir(parents=True, exist_ok=True)
    # a decoded file's frames are spooled for the panels; an array's are in memory already
    spool = FrameSpool() if o.layout == "side-by-side" and driving.path is not None else None
    with contextlib.closing(spool) if spool is not None else contextlib.nullcontext():
        kp_batches = driving_keypoints(engine, driving, o.progress, spool)
        start = time.perf_counter()
        results, poses = [], {}  # the driving video's face poses, found for the first source that needs them
        for i, (source, (target, frames_dir)) in enumerate(zip(sources, targets)):
            extra = {
                "crop_size": crop_size,
                "kp_batches": kp_batches,
                "poses": poses,
                "save_frames": frames_dir,
                "spool": spool,
            }
            results.append(_animate_one(engine, source, i, driving, target, "container", o, extra))
    seconds = time.perf_counter() - start
    frames = sum(r["frames"] for r in results)
    return {
        "out": out,
        "outputs": results,
        "sources": len(results),
        "frames": frames,
        "fps": driving.fps,
        "seconds": seconds,
        "frames_per_second": frames / seconds if seconds > 0 else float("inf"),
    }


# ----------------------------------------------------------------------------------------------
# Python API
# ----------------------------------------------------------------------------------------------
def animate_video(
    source,
    driving,
    checkpoint=None,
    model=None,
    out=None,
    config=None,
    relative: bool = True,
    adapt_movement_scale: bool = True,
    best_frame=None,
    best_frame_method: str = "auto",
    crop: bool = False,
    layout: str = "result",
    show_keypoints: bool = False,
    save_frames=None,
    audio: bool = True,
    device: str = "cpu",
    batch_size: int | None = None,
    precision: str = "exact",
    progress: Progress = True,
    compile: bool = False,
    backend: str = "torch",
    crop_options: dict | None = None,
    paste_back: bool | None = None,
    color_match: bool = False,
    driving_fit: str = "crop",
    labels: bool = True,
    panel_size: int = PANEL_SIZE,
    fps: float | None = None,
) -> dict:
    """Animate the image ``source`` with the video ``driving`` and write the result to ``out``.

    ``source``: an image path or an ``(H, W, C)`` array; or many: a list of them, a folder of
    images or a glob pattern (``out`` is then a folder, one ``<source stem>.mp4`` each; the model
    is loaded and the driving keypoints computed once). ``driving``: a video, GIF or frame
    folder, or a ``(T, H, W, C)`` array (``fps``, default 25). Any size: frames are resized to
    the model's; a non-square driving video is brought to the model's aspect by
    ``driving_fit`` (``crop`` centre crop, ``pad`` letterbox, ``stretch``), warned once. The
    model comes from ``checkpoint`` (+ ``config``: a preset name or YAML, needed only when the
    checkpoint does not say) on ``device``, or is passed as ``model``; ``backend``:
    ``torch`` or ``onnxruntime``. ``out``: .mp4/.mov/.mkv (H.264, with the driving audio unless
    ``audio=False``), .gif (no audio), .png (all frames side by side in one strip) or a folder
    path for PNG frames.

    ``relative``/``adapt_movement_scale``: the original's relative motion and movement scaling.
    ``best_frame``: ``'auto'`` or a driving frame index to measure relative motion from;
    ``best_frame_method`` says how ``'auto'`` chooses: ``'landmarks'`` (face landmark alignment
    as the original's ``--find_best_frame``, needs ``fomm[faces]``), ``'keypoints'`` (the
    model's keypoints, any category) or ``'auto'`` (landmarks when installed and the source
    has a face, else keypoints).
    ``crop``: crop both inputs around the face (an error where none is found; ``crop_options``:
    ``scale``, ``smoothing``, ``boxes_json``, ``tracker``, see :class:`fomm.faces.CropPlan`);
    ``paste_back`` (default: on with ``crop``) puts the animated crop back into the full photo
    (:mod:`fomm.faces.paste_back`, ``color_match`` optional). ``layout='side-by-side'``: labelled
    source | driving | result panels (``labels``), each at least ``panel_size`` pixels high;
    ``show_keypoints`` draws source, driving and transferred keypoints.
    ``save_frames``: also write every output frame as PNG into this folder. ``progress``: tqdm
    bars (``True``), none, or ``progress(done, total, desc)``.

    Returns ``{'out', 'frames', 'fps', 'seconds', 'frames_per_second', 'best_frame',
    'best_frame_method', 'size', 'audio', 'save_frames', 'kind', 'source', 'crop_box', 'tracker',
    'pasted_back'}`` (``size`` is the output frames' ``(width, height)``; ``best_frame_method``:
    ``'landmarks'`` or ``'keypoints'`` when ``best_frame='auto'``, else None; ``tracker``: with
    ``crop``, ``{'source': name, 'driving': name}`` of the face trackers used, e.g. ``'dlib
    landmarks'`` or ``'OpenCV Haar cascade'``, else None); for many sources ``{'out', 'outputs' (one such dict
    each), 'sources', 'frames', 'fps', 'seconds', 'frames_per_second'}``.
    """
    o = Options(
        relative=relative,
        adapt_movement_scale=adapt_movement_scale,
        best_frame=best_frame,
        best_frame_method=best_frame_method,
        crop=crop,
        crop_options=dict(crop_options or {}),
        paste_back=bool(crop if paste_back is None else paste_back and crop),
        color_match=color_match,
        layout=layout,
        show_keypoints=show_keypoints,
        labels=labels,
        panel_size=panel_size,
        audio=audio,
        driving_fit=driving_fit,
        progress=progress,
    )
    if out is None:
        raise FommError("no output path given; pass --out result.mp4 (or .gif, or a folder for PNG frames)")
    _check_options(o, precision, backend, batch_size)
    sources = source_list(source)
    out = Path(out)
    kind = "folder" if sources is not None else output_kind(out)
    save = _check_save_frames(save_frames, out, kind)
    if sources is None and isinstance(source, (str, os.PathLike)):
        source = _check_input(source, "source image", "check the path of the photo to animate")
    if isinstance(driving, (str, os.PathLike)):
        driving = _check_input(driving, "driving video", "check the path of the video whose motion to copy")
    for name, path in (("source image", source), ("driving video", driving)):
        if isinstance(path, Path) and same_file(path, out):
            raise FommError(f"--out {out} is the {name}; choose another output path")
    if model is None and checkpoint is None:
        raise FommError("no model given; pass --checkpoint (e.g. vox-cpk.pth.tar)")
    drv = DrivingVideo(driving, None, driving_fit, fps)  # probed before the (slow) model load
    model = _load_model(model, checkpoint, config, device)
    frame_shape = drv.frame_shape = tuple(int(s) for s in model.frame_shape)
    crop_size = max(frame_shape)
    prepared = None if sources is not None else _prepare_source(source, None, o, frame_shape, crop_size)
    if o.crop:
        _crop_driving(drv, crop_size, o.crop_options, progress)
    drv.fit_note()
    engine = _make_engine(model, o, batch_size, precision, compile, backend)
    if sources is not None:
        return _animate_many(engine, sources, drv, out, o, crop_size, save)
    extra = {"crop_size": crop_size, "save_frames": save, "prepared": prepared}
    return _animate_one(engine, source, None, drv, out, kind, o, extra)
