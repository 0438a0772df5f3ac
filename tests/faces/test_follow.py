"""fomm.faces.follow and track.CausalSmoother: a face followed live, from past frames only."""

from __future__ import annotations

import numpy as np
import pytest

from fomm.faces.detect import CallableTracker, Face
from fomm.faces.follow import FaceFollower
from fomm.faces.plan import SCALE, crop_box
from fomm.faces.track import CausalSmoother, smooth_track

H, W = 120, 160


def noisy_track(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(truth, measured)`` ``(n, 3)``: a face sliding right at 1.5 px/frame, noise of 2 px."""
    t = np.arange(n)
    truth = np.stack([40 + 1.5 * t, 60 + 0 * t, 40 + 0 * t], 1).astype(float)
    return truth, truth + np.random.default_rng(seed).normal(0, 2, truth.shape)


def run(smoother: CausalSmoother, rows) -> np.ndarray:
    return np.asarray([smoother.update(r) for r in rows])


def test_causal_smoother_is_causal_and_reduces_the_noise():
    truth, measured = noisy_track()
    full = run(CausalSmoother(4), measured)
    assert np.array_equal(run(CausalSmoother(4), measured[:25]), full[:25])  # no look-ahead
    error = np.sqrt(((full - truth)[20:] ** 2).mean(0))
    noise = np.sqrt(((measured - truth)[20:] ** 2).mean(0))
    assert np.all(error < 0.6 * noise), (error, noise)
    assert abs((full - truth)[20:, 0].mean()) < 1.0  # follows the motion: no lasting lag at constant speed
    # the offline smoother (forwards and backwards) is steadier, as it may look ahead
    offline = smooth_track(measured, 4)
    assert np.sqrt(((offline - truth)[20:] ** 2).mean()) < np.sqrt(((full - truth)[20:] ** 2).mean())


def test_causal_smoother_gaps_and_no_smoothing():
    smoother = CausalSmoother(4)
    assert smoother.update(None) is None  # nothing measured yet
    assert np.allclose(smoother.update((10.0, 20.0, 30.0)), (10, 20, 30))
    bridged = smoother.update(None)  # a missing frame: the prediction
    assert bridged is not None and np.allclose(bridged, (10, 20, 30))
    smoother.reset()
    assert smoother.update([np.nan] * 3) is None
    raw = CausalSmoother(0)
    _, measured = noisy_track(10)
    assert np.array_equal(run(raw, measured), measured)
    assert np.array_equal(raw.update(None), measured[-1])  # holds the last measurement


def synthetic(centres: dict[int, tuple[float, float, float]]):
    """A tracker whose face in frame ``i`` (the frame's first pixel value) is ``centres.get(i)``
    ``(cx, cy, size)``, with frames ``(H, W, 3)`` carrying their index."""

    def detector(frame):
        face = centres.get(int(frame[0, 0, 0]))
        if face is None:
            return []
        cx, cy, size = face
        return [(cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2)]

    frames = [np.full((H, W, 3), i, np.uint8) for i in range(max(centres) + 6)]
    return CallableTracker(detector), frames


def test_follower_centre_crops_until_a_face_then_follows_it():
    faces = {i: (50 + 2 * i, 60, 40) for i in range(5, 30)}  # a face appears on frame 5
    tracker, frames = synthetic(faces)
    follower = FaceFollower(64, tracker=tracker, smoothing=0, detect_every=5, max_lost=3)
    crops = [follower(f) for f in frames[:5]]
    assert follower.box is None and all(c.shape == (64, 64, 3) for c in crops)  # centre crop
    follower(frames[5])  # a whole-frame search (every 5th frame) finds it
    assert follower.box == crop_box(Face(60, 60, 40), (H, W), SCALE, tracker.shift_up)
    assert follower.found == 1


def test_follower_loses_the_face_and_finds_it_again():
    faces = {i: (60.0, 60.0, 40.0) for i in range(0, 10)}
    faces.update({i: (100.0, 60.0, 40.0) for i in range(20, 26)})
    tracker, frames = synthetic(faces)
    follower = FaceFollower((64, 64), tracker=tracker, smoothing=2, detect_every=5, max_lost=3)
    boxes = []
    for frame in frames[:26]:
        follower(frame)
        boxes.append(follower.box)
    assert follower.face is not None and follower.found == 10 + 6  # frame 20 is a whole-frame search
    held = boxes[9]
    assert boxes[10:20] == [held] * 10  # missing, then lost: the box stays where the face was seen last
    centre = [(b[0] + b[2]) / 2 for b in boxes]
    assert centre[9] == pytest.approx(60, abs=1) and centre[25] == pytest.approx(100, abs=1)  # a new track


def test_follower_is_causal():
    faces = {i: (50 + 2 * i + (i % 3), 60 + (i % 2), 40 + (i % 4)) for i in range(30)}
    tracker, frames = synthetic(faces)

    def boxes(n):
        follower = FaceFollower(64, tracker=tracker, smoothing=4)
        out = []
        for frame in frames[:n]:
            follower(frame)
            out.append(follower.box)
        return out

    assert boxes(12) == boxes(30)[:12]


def test_follower_on_a_real_face():
    """The astronaut sliding 80 px over a background (tests/face_clips.py): the box follows her."""
    face_clips = pytest.importorskip("face_clips")
    frames, centres = face_clips.moving_clip(16)
    follower = FaceFollower(64, tracker="haar")
    xs = []
    for frame in frames:
        crop = follower(frame)
        assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8
        xs.append((follower.box[0] + follower.box[2]) / 2)
    assert follower.found == 16 and follower.name == "OpenCV Haar cascade"
    assert np.abs(np.asarray(xs) - centres[:, 0]).max() < 4  # within 4 px of the face centre, every frame
