"""The driving frame relative motion is measured from: the first, a given index, or ``'auto'``
(the frame posed most like the source, by face landmarks or by the model's keypoints)."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from fomm.animation.driving import DrivingVideo
from fomm.animation.engine import best_frame_index, closest_pose_index, prepare_frames
from fomm.animation.options import AnimateOptions
from fomm.animation.progress import ProgressReporter
from fomm.animation.sources import Source
from fomm.data.image_ops import resize_frame
from fomm.errors import FommError

#: Face landmarks for the best frame are found on frames enlarged to at least this many pixels.
LANDMARK_SIZE = 256


def set_initial(engine, driving: DrivingVideo, o: AnimateOptions, src: Source, kp_batches, poses: dict) -> tuple:
    """Measure relative motion from the best frame; returns ``(index or None, method or None)``
    (``method``: how ``'auto'`` chose it, ``'landmarks'`` or ``'keypoints'``). ``kp_batches``: the
    cached driving keypoints (many sources) or None; ``poses``: a cache of the driving video's face
    poses, filled by the first source that needs them."""
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


def _source_face_pose(src: Source, method: str, shape) -> np.ndarray | None:
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


def _best_frame_auto(engine, driving: DrivingVideo, o: AnimateOptions, src: Source, kp_batches, poses: dict) -> tuple:
    """``(index, method)`` of the driving frame posed most like the source: by face landmarks
    (:func:`fomm.faces.landmarks.closest_landmark_pose`, frames at :func:`landmark_shape`; the driving
    video's poses are found once and kept in ``poses`` for the next source) when the source has a
    face and ``fomm[faces]`` is installed, else by the model's keypoints (the cached
    ``kp_batches`` when given: no decode)."""
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
