"""The measuring sticks of :mod:`fomm.evaluation.evaluate`: what measures keypoints and identity on
procedural data (the shipped landmark detector against exact ground truth) and on real videos (the
face models of ``fomm[faces]``, or the caller's hooks), and the metrics of candidate clips against
one target clip."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from fomm.errors import FommError
from fomm.evaluation.landmarks import LandmarkDetector, load_landmark_detector
from fomm.evaluation.metrics import aed_from_embeddings, akd, akd_l1, akd_per_keypoint, frame_metrics


@dataclass
class Stick:
    """What measures keypoints and identity: ``detector`` (compared with exact ground truth on
    procedural data), ``keypoint_fn`` (compared with itself on the real frames), ``embedding_fn``."""

    detector: Callable | None = None
    keypoint_fn: Callable | None = None
    embedding_fn: Callable | None = None
    info: dict | None = None
    notes: list = field(default_factory=list)


def procedural_stick(meta: dict, frame_hw, keypoint_fn, embedding_fn, landmark_detector, device) -> Stick:
    stick = Stick(embedding_fn=embedding_fn)
    if keypoint_fn is not None:  # the user's detector replaces the shipped one, compared with ground truth
        stick.detector = keypoint_fn
        stick.info = {"keypoint_fn": getattr(keypoint_fn, "__name__", type(keypoint_fn).__name__)}
        return stick
    detector = landmark_detector if isinstance(landmark_detector, LandmarkDetector) else None
    if detector is None:
        try:
            detector = load_landmark_detector(meta["category"], frame_hw[0], path=landmark_detector, device=device)
        except FommError as exc:
            stick.notes.append(f"AKD not computed: {exc}")
            return stick
    if detector.num_keypoints != len(meta.get("keypoint_names") or []) or detector.category != meta["category"]:
        raise FommError(
            f"the landmark detector is for {detector.category} ({detector.num_keypoints} "
            f"keypoints) but the dataset is {meta['category']}; pass a matching detector"
        )
    stick.detector = detector
    stick.info = {
        "category": detector.category,
        "size": detector.size,
        "weights": detector.meta.get("weights_file"),
        "test_akd_px": detector.meta.get("test_akd_px"),
        "trained_on": "training split ground-truth keypoints (fomm.evaluation.landmarks)",
    }
    return stick


def video_stick(first_frame, keypoint_fn, embedding_fn, face_metrics: str) -> Stick:
    """Real videos: the given hooks, else the face models of fomm[faces] when the videos show faces."""
    stick = Stick(keypoint_fn=keypoint_fn, embedding_fn=embedding_fn)
    if keypoint_fn is None and embedding_fn is None and face_metrics != "off":
        from fomm.faces.landmarks import INSTALL, faces_available

        if faces_available() or face_metrics == "on":
            from fomm.evaluation.face_metrics import FaceMetricFns

            fns = FaceMetricFns()
            if face_metrics == "on" or (first_frame is not None and fns.finds_face(first_frame)):
                stick.keypoint_fn, stick.embedding_fn = fns.keypoints, fns.embeddings
                stick.info = {"faces": "AKD: dlib 68-point landmarks; AED: dlib 128-d face embedding (fomm[faces])"}
                return stick
            stick.notes.append("face metrics off: no face found in the first frame of the first test video")
        else:
            stick.notes.append(f"AKD and AED on face videos need the face models: {INSTALL}")
    if stick.keypoint_fn is None:
        stick.notes.append(
            "AKD not computed: it needs a keypoint detector (fomm[faces] for faces; any other: keypoint_fn in the Python API)"
        )
    else:
        stick.notes.append(
            "AKD: keypoint_fn on the generated frames vs keypoint_fn on the real frames (paper protocol); "
            "global_affine uses keypoint_fn's keypoints of the real frames"
        )
    if stick.embedding_fn is None:
        stick.notes.append(
            "AED not computed: it needs an identity-embedding network (fomm[faces] for faces; any other: "
            "embedding_fn in the Python API)"
        )
    return stick


class Measure:
    """Metrics of candidate clips against one target clip (with its exact keypoints, if known)."""

    def __init__(self, target: np.ndarray, gt_kp: np.ndarray | None, stick: Stick):
        self.target, self.gt_kp, self.stick = target, gt_kp, stick
        self.kp_fn = stick.detector if gt_kp is not None else stick.keypoint_fn
        self.ref_kp = gt_kp  # keypoints AKD compares with
        self.detector_akd = np.nan
        self.ref_missed = np.nan
        if gt_kp is not None and stick.detector is not None:
            self.detector_akd = akd(self.detect(target), gt_kp)
        elif gt_kp is None and stick.keypoint_fn is not None:
            self.ref_kp = self.detect(target)
            self.ref_missed = missed(self.ref_kp)
        self.ref_emb = None if stick.embedding_fn is None else np.asarray(stick.embedding_fn(target), np.float64)

    def detect(self, frames) -> np.ndarray:
        kp = np.asarray(self.kp_fn(frames), np.float64)
        if kp.ndim != 3 or kp.shape[0] != len(frames) or kp.shape[-1] != 2:
            raise FommError(
                f"keypoint_fn returned shape {kp.shape}; it must return (T={len(frames)}, K, 2) pixel coordinates"
            )
        return kp

    def __call__(self, frames: np.ndarray, same_frame: bool = False) -> dict:
        """Metrics of ``frames``; ``same_frame``: they are one frame repeated (detect it once)."""
        rec = frame_metrics(frames, self.target)
        n = len(frames)
        if self.ref_kp is not None and self.kp_fn is not None:
            kp = np.repeat(self.detect(frames[:1]), n, axis=0) if same_frame else self.detect(frames)
            if kp.shape != self.ref_kp.shape:
                raise FommError(
                    f"detected keypoints {kp.shape} do not match the reference {self.ref_kp.shape}; "
                    "keypoint_fn must return the dataset's keypoints in order"
                )
            rec["akd"] = akd(kp, self.ref_kp)
            rec["akd_l1"] = akd_l1(kp, self.ref_kp)  # the paper's cmp.py definition
            if self.gt_kp is not None:  # named ground-truth keypoints: the table per keypoint
                rec["akd_per_keypoint"] = akd_per_keypoint(kp, self.ref_kp).tolist()
            if self.gt_kp is None:
                rec["missed"] = missed(kp)
        if self.ref_emb is not None:
            fn = self.stick.embedding_fn
            emb = np.repeat(np.asarray(fn(frames[:1])), n, axis=0) if same_frame else fn(frames)
            rec["aed"] = aed_from_embeddings(emb, self.ref_emb, n)
        return rec


def missed(kp: np.ndarray) -> float:
    """Share of frames in which the detector found nothing (all keypoints NaN)."""
    return float(np.mean(np.all(~np.isfinite(kp), axis=(1, 2))))


def affine_keypoints(measure: Measure, source: np.ndarray):
    """Real videos: source keypoints ``(K, 2)`` and target keypoints ``(T, K, 2)`` from the keypoint
    detector for the global affine baseline, or None. Frames where it found nothing keep the
    source's keypoints (no motion)."""
    if measure.ref_kp is None or measure.kp_fn is None:
        return None
    src = measure.detect(source[None])[0]
    if not np.isfinite(src).all():
        return None
    tgt = measure.ref_kp.copy()
    tgt[~np.isfinite(tgt).all(axis=(1, 2))] = src
    return src, tgt
