"""Tests for fomm.faces: face detection, square boxes, face tracking and smoothing, shot cuts,
file and CLI crops.

Most test images are drawn here: a synthetic cartoon face (light oval, dark brows and eyes, nose
shading, mouth, blurred) that OpenCV's frontal Haar cascade detects reliably, pasted at known boxes
on a blurred-noise background on which it detects nothing; those tests use ``tracker="haar"``.
The real-face tests move scikit-image's astronaut photo (see ``face_clips``) and run with both
trackers (dlib landmarks only when ``fomm[faces]`` is installed).
"""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from face_clips import astronaut, background, moving_clip, needs_faces, place, write_video
from fomm import faces as crop
from fomm.errors import FommError
from fomm.faces import CropPlan, crop_image, crop_inputs, detect_faces, plan_video_crop, smooth_track, square_box
from fomm.faces.track import ShotCutDetector

HAAR = {"tracker": "haar"}
TRACKERS = [pytest.param("landmarks", marks=needs_faces), "haar"]

FACE = 80  # side of the synthetic face in the videos


def make_face(side: int) -> np.ndarray:
    """A (side, side, 3) uint8 cartoon face filling its square like a Haar detection box."""
    s = side
    img = np.full((s, s), 60, np.float32)
    c = s / 2
    cv2.ellipse(img, (int(c), int(c * 1.05)), (int(s * 0.36), int(s * 0.46)), 0, 0, 360, 200, -1)
    for sx in (-1, 1):
        ex = int(c + sx * s * 0.17)
        cv2.ellipse(img, (ex, int(s * 0.31)), (int(s * 0.10), int(s * 0.025)), 0, 0, 360, 70, -1)  # brow
        cv2.ellipse(img, (ex, int(s * 0.40)), (int(s * 0.085), int(s * 0.045)), 0, 0, 360, 50, -1)  # eye
    cv2.ellipse(img, (int(c), int(s * 0.62)), (int(s * 0.06), int(s * 0.03)), 0, 0, 360, 120, -1)  # nostrils
    cv2.line(img, (int(c - s * 0.03), int(s * 0.45)), (int(c - s * 0.04), int(s * 0.6)), 150, max(1, int(s * 0.02)))
    cv2.ellipse(img, (int(c), int(s * 0.76)), (int(s * 0.14), int(s * 0.035)), 0, 0, 360, 60, -1)  # mouth
    img = cv2.GaussianBlur(img, (0, 0), s * 0.015)
    g = np.clip(img, 0, 255)
    return np.stack([g, g * 0.85, g * 0.7], axis=-1).astype(np.uint8)


def make_background(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    bg = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3)).astype(np.uint8), (0, 0), 4)
    return cv2.normalize(bg, None, 40, 180, cv2.NORM_MINMAX)


def no_face(h: int, w: int) -> np.ndarray:
    """A smooth colour gradient: nothing a face detector could fire on."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 200 // max(w, 1), yy * 200 // max(h, 1), np.full_like(xx, 90)], -1).astype(np.uint8)


def paste(bg: np.ndarray, face: np.ndarray, x: int, y: int) -> tuple[np.ndarray, tuple]:
    out = bg.copy()
    out[y : y + face.shape[0], x : x + face.shape[1]] = face
    return out, (x, y, x + face.shape[1], y + face.shape[0])


def moving_face_frames(n: int, jump_at: int | None, seed: int = 1, h: int = 240, w: int = 320):
    """Frames with the face jittering by up to 3 px around one place, jumping once at ``jump_at``."""
    rng = np.random.default_rng(seed)
    bg, face = make_background(h, w), make_face(FACE)
    frames, truth = [], []
    for i in range(n):
        x, y = (40, 60) if jump_at is None or i < jump_at else (190, 90)
        f, box = paste(bg, face, x + int(rng.integers(-3, 4)), y + int(rng.integers(-3, 4)))
        frames.append(f)
        truth.append(box)
    return frames, truth


def contains(outer, inner, slack: int = 0) -> bool:
    return (
        outer[0] <= inner[0] + slack
        and outer[1] <= inner[1] + slack
        and outer[2] >= inner[2] - slack
        and outer[3] >= inner[3] - slack
    )


def box_centres(boxes) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64)
    return (b[:, :2] + b[:, 2:]) / 2


# ------------------------------------------------------------------------------------------------
# Detection and boxes
# ------------------------------------------------------------------------------------------------
def test_synthetic_face_is_detected_where_pasted():
    image, box = paste(make_background(360, 480), make_face(120), 250, 90)
    faces = detect_faces(image)
    assert len(faces) == 1
    assert crop.iou(faces[0], box) > 0.7
    assert detect_faces(make_background(360, 480)) == []


def test_detect_faces_on_a_large_frame_uses_a_downscaled_copy():
    image, box = paste(make_background(1080, 1440, seed=3), make_face(400), 700, 300)
    faces = detect_faces(image)
    assert len(faces) == 1 and crop.iou(faces[0], box) > 0.7
    # float input in [0, 1] and grey input are accepted
    assert len(detect_faces(image.astype(np.float32) / 255)) == 1
    assert len(detect_faces(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))) == 1


def test_square_box_enlarges_shifts_up_and_clamps():
    x0, y0, x1, y1 = square_box((100, 100, 200, 200), (1000, 1000), scale=1.8, shift_up=0.1)
    assert x1 - x0 == y1 - y0 == 180
    assert (x0 + x1) / 2 == 150 and (y0 + y1) / 2 == 140  # shifted up by 0.1 face
    # near the corner: moved inside, same size
    assert square_box((0, 0, 100, 100), (1000, 1000)) == (0, 0, 180, 180)
    assert square_box((900, 900, 1000, 1000), (1000, 1000)) == (820, 820, 1000, 1000)
    # larger than the frame: shrunk to the frame's shorter side
    box = square_box((50, 20, 250, 220), (240, 320))
    assert box[2] - box[0] == box[3] - box[1] == 240
    assert 0 <= box[0] and box[2] <= 320 and box[1] == 0 and box[3] == 240


def test_crop_image_contains_face_with_sensible_fraction():
    image, box = paste(make_background(360, 480), make_face(120), 250, 90)
    cropped, crop_box = crop_image(image, size=256, **HAAR)
    assert cropped.shape == (256, 256, 3) and cropped.dtype == np.uint8
    assert contains(crop_box, box, slack=4)
    side = crop_box[2] - crop_box[0]
    assert 0.45 < 120 / side < 0.65  # the face is about 1 / 1.8 of the crop side
    # the crop shows the face: detection in the crop finds it roughly centred
    faces = detect_faces(cropped)
    assert faces and abs((faces[0][0] + faces[0][2]) / 2 - 128) < 20
    wide, wide_box = crop_image(image, size=64, scale=2.4, **HAAR)
    assert wide.shape == (64, 64, 3) and wide_box[2] - wide_box[0] > side


@pytest.mark.parametrize("tracker", TRACKERS)
def test_crop_image_astronaut(tracker):
    image = astronaut()  # face at about x 177-272, y 66-161
    t = crop.make_tracker(tracker, confirm=1)
    cropped, box = crop_image(image, size=128, tracker=t)
    assert cropped.shape == (128, 128, 3)
    assert t.name == {"landmarks": "dlib landmarks", "haar": "OpenCV Haar cascade"}[tracker]
    assert contains(box, (177, 66, 272, 161), slack=4)
    assert 150 < box[2] - box[0] < 200


@pytest.mark.parametrize("tracker", ["auto", "haar"])
def test_crop_image_without_face(tracker):
    image = no_face(200, 300)
    out, box = crop_image(image, size=64, tracker=tracker)
    assert box is None and out is not None and np.array_equal(out, image)
    with pytest.raises(FommError, match=r"no face found in photo\.jpg; pass an already cropped image or drop --crop"):
        crop_image(image, required=True, name="photo.jpg", tracker=tracker)


def test_tracker_choice_and_option_errors(monkeypatch):
    with pytest.raises(FommError, match="unknown tracker 'dlib'; use one of auto, landmarks, haar"):
        CropPlan.from_frames([no_face(20, 20)], 16, tracker="dlib")
    with pytest.raises(FommError, match="--crop-scale must be a number in"):
        crop_image(no_face(20, 20), 16, scale=0)
    with pytest.raises(FommError, match="--crop-smoothing must be a number of frames >= 0"):
        CropPlan.from_frames([no_face(20, 20)], 16, smoothing=-1)
    with pytest.raises(TypeError, match="unexpected crop option"):
        CropPlan.from_frames([no_face(20, 20)], 16, margin=0.8)
    # without the extra: auto is the Haar cascade, landmarks says what to install
    import fomm.faces.landmarks

    monkeypatch.setattr(fomm.faces.landmarks, "faces_available", lambda: False)
    assert crop.make_tracker("auto").name == "OpenCV Haar cascade"
    with pytest.raises(FommError, match=r"^--tracker landmarks needs the face models: pip install 'fomm\[faces\]'$"):
        crop.make_tracker("landmarks")


@needs_faces
def test_auto_tracker_falls_back_to_haar_where_dlib_sees_no_face(monkeypatch):
    from fomm.faces.detect import AutoTracker, LandmarkTracker

    monkeypatch.setattr(LandmarkTracker, "detect", lambda self, frame: [])
    image, box = paste(make_background(240, 320), make_face(90), 100, 60)
    tracker = AutoTracker(confirm=2)
    assert tracker.name == "dlib landmarks" and tracker.detect(image) == []  # one Haar hit: not yet
    (face,) = tracker.detect(image)
    assert tracker.name == "OpenCV Haar cascade" and tracker.shift_up == crop.detect.HAAR_SHIFT_UP
    assert crop.iou(face.box, box) > 0.7


# ------------------------------------------------------------------------------------------------
# Smoothing and shot cuts
# ------------------------------------------------------------------------------------------------
def test_smooth_track_keeps_steady_motion_and_removes_noise():
    t = np.arange(60, dtype=np.float64)
    truth = np.stack([100 + 1.5 * t, 80 + 0.5 * t, np.full_like(t, 50.0)], axis=1)
    # a constant-velocity track is kept exactly (no lag)
    np.testing.assert_allclose(smooth_track(truth, 4.0), truth, atol=1e-6)
    noisy = truth + np.random.default_rng(0).normal(0, 2.0, truth.shape)
    smooth = smooth_track(noisy, 4.0)
    assert np.sqrt(((smooth - truth) ** 2).mean()) < 0.5 * np.sqrt(((noisy - truth) ** 2).mean())
    assert np.abs(np.diff(smooth[:, 0], 2)).max() < 0.25 * np.abs(np.diff(noisy[:, 0], 2)).max()
    np.testing.assert_array_equal(smooth_track(noisy, 0), noisy)  # 0: as measured
    # gaps are bridged, and the ends hold the first / last value
    gappy = truth.copy()
    gappy[:5] = gappy[20:30] = gappy[50:] = np.nan
    filled = smooth_track(gappy, 4.0)
    np.testing.assert_allclose(filled[5:50], truth[5:50], atol=1e-6)
    np.testing.assert_allclose(filled[:5], np.repeat(truth[5:6], 5, axis=0), atol=1e-6)
    np.testing.assert_allclose(filled[50:], np.repeat(truth[49:50], 10, axis=0), atol=1e-6)


def test_shot_cut_detector():
    photo = astronaut()
    frames, _ = moving_clip(12, photo)
    other = [place(photo[:, ::-1].copy(), background(seed=7), 200, 120, 0.6, 3) for _ in range(3)]
    det = ShotCutDetector()
    assert [i for i, f in enumerate(frames + other) if det.is_cut(f)] == [12]
    # a pan over one scene is not a cut
    scene = make_background(240, 320, seed=4)
    det = ShotCutDetector()
    assert not any(det.is_cut(np.roll(scene, 12 * i, axis=1)) for i in range(10))


# ------------------------------------------------------------------------------------------------
# Tracking (synthetic face, Haar cascade)
# ------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_face_jump_gives_two_segments_cut_on_the_right_frame():
    frames, truth = moving_face_frames(40, jump_at=23)
    plan = CropPlan.from_frames(iter(frames), 64, detect_every=5, **HAAR)
    assert [(s.start, s.end) for s in plan.segments] == [(0, 23), (23, 40)]
    assert plan_video_crop(iter(frames[:20]), tracker="haar") == CropPlan.from_frames(frames[:20], 64, **HAAR).segments
    assert plan.tracker == "OpenCV Haar cascade" and len(plan.boxes) == 40
    for i, box in enumerate(plan.boxes):
        assert box[2] - box[0] == box[3] - box[1]
        assert contains(box, truth[i]), (i, box, truth[i])


def test_small_jitter_gives_one_steady_segment():
    frames, truth = moving_face_frames(30, jump_at=None, seed=2)
    plan = CropPlan.from_frames(frames, 64, **HAAR)
    assert [(s.start, s.end) for s in plan.segments] == [(0, 30)]
    assert all(contains(b, t) for b, t in zip(plan.boxes, truth))
    # the face jitters by up to 3 px each way; the box moves far less
    assert np.abs(np.diff(box_centres(plan.boxes), axis=0)).max() <= 1.5


def test_plan_from_detections_ignores_stray_boxes_and_gaps():
    a, b = (10, 10, 60, 60), (200, 100, 250, 150)
    dets = [a, a, None, [], [a, (0, 0, 5, 5)], b, a, a, None, b, b, b, None]
    segments = plan_video_crop(detections=dets, frame_hw=(240, 320))
    # the lone b on frame 5 is ignored; b from frame 9 on takes over once a does not come back
    assert [(s.start, s.end) for s in segments] == [(0, 9), (9, 13)]
    assert segments[0].face == a and segments[1].face == b
    assert plan_video_crop(detections=[None, []], frame_hw=(10, 10)) == []


def test_face_lost_for_longer_than_max_lost_starts_a_new_segment():
    a = (100, 60, 160, 120)
    dets = [a] * 5 + [None] * 30 + [a] * 5
    lost = plan_video_crop(detections=dets, frame_hw=(240, 320), max_lost=25)
    assert [(s.start, s.end) for s in lost] == [(0, 35), (35, 40)]
    kept = plan_video_crop(detections=dets, frame_hw=(240, 320), max_lost=40)
    assert [(s.start, s.end) for s in kept] == [(0, 40)]


def test_crop_plan_applies_boxes_and_streams():
    frames, truth = moving_face_frames(30, jump_at=12)
    plan = CropPlan.from_frames(iter(frames), size=64, **HAAR)
    assert plan.found and plan.num_frames == 30 and plan.frame_hw == (240, 320)
    assert [(s.start, s.end) for s in plan.segments] == [(0, 12), (12, 30)]
    out = list(plan.crop_frames(iter(frames)))
    assert len(out) == 30 and all(f.shape == (64, 64, 3) for f in out)
    assert plan.box_at(5) == plan.boxes[5] and plan.box_at(99) == plan.boxes[-1]
    x0, y0, x1, y1 = plan.boxes[20]
    np.testing.assert_array_equal(out[20], crop.plan.resize_frame(frames[20][y0:y1, x0:x1], (64, 64)))
    with pytest.raises(FommError, match="planned on 320x240"):
        plan.apply(0, frames[0][:100])
    empty = CropPlan([], (240, 320), 64)
    assert empty.apply(0, frames[0]).shape == (64, 64, 3) and not empty.found


def test_crop_inputs():
    frames, _ = moving_face_frames(10, jump_at=None)
    source, _ = paste(make_background(300, 300, seed=5), make_face(100), 120, 120)
    src, plan = crop_inputs(source, frames, size=64, **HAAR)
    assert src.shape == (64, 64, 3) and len(plan.segments) == 1
    with pytest.raises(TypeError, match="one-shot iterator"):
        crop_inputs(source, iter(frames), size=64, **HAAR)
    with pytest.raises(FommError, match="no face found in the source image"):
        crop_inputs(no_face(300, 300), frames, size=64, **HAAR)
    blank = [no_face(240, 320)] * 3
    with pytest.raises(FommError, match="no face found in the driving video"):
        crop_inputs(source, blank, size=64, **HAAR)
    src, plan = crop_inputs(no_face(300, 300), blank, size=64, required=False, **HAAR)
    assert src.shape == (64, 64, 3) and not plan.found


# ------------------------------------------------------------------------------------------------
# Tracking a real face (astronaut photo moved over a background)
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tracker", TRACKERS)
def test_real_face_moving_smoothly_is_one_segment_with_a_smooth_box(tracker):
    frames, centres = moving_clip(40)
    plan = CropPlan.from_frames(frames, 64, tracker=tracker)
    assert [(s.start, s.end) for s in plan.segments] == [(0, 40)]
    boxes = np.asarray(plan.boxes, dtype=np.float64)
    side = boxes[:, 2] - boxes[:, 0]
    c = box_centres(boxes)
    # the face moves at most 2.1 px per frame; the box follows it without jitter
    assert np.abs(np.diff(c, axis=0)).max() <= 3.0
    assert np.abs(np.diff(c, 2, axis=0)).max() <= 1.5
    assert np.abs(np.diff(side)).max() <= 1.0
    # the face grows by 18 %: so does the box, and it stays on the face
    assert 1.08 < side[-5:].mean() / side[:5].mean() < 1.3
    assert np.abs(c[:, 0] - centres[:, 0]).max() < 0.1 * side.min()


@pytest.mark.slow
def test_smoothing_removes_detector_jitter_on_a_real_face():
    frames, _ = moving_clip(40)
    sides = {}
    for smoothing in (0, 4):
        boxes = np.asarray(CropPlan.from_frames(frames, 64, smoothing=smoothing, **HAAR).boxes, dtype=np.float64)
        sides[smoothing] = np.abs(np.diff(boxes[:, 2] - boxes[:, 0])).max()
    assert sides[0] >= 4 and sides[4] <= 1  # Haar box sizes jump by several px; the smoothed box does not


@pytest.mark.parametrize("tracker", TRACKERS)
def test_hard_cut_to_another_photo_gives_two_segments(tracker):
    photo = astronaut()
    first, _ = moving_clip(20, photo)
    second, _ = moving_clip(20, np.ascontiguousarray(photo[:, ::-1]), seed=7)
    plan = CropPlan.from_frames(first + second, 64, tracker=tracker)
    assert [(s.start, s.end) for s in plan.segments] == [(0, 20), (20, 40)]


# ------------------------------------------------------------------------------------------------
# Files and command line
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def video_io():
    return pytest.importorskip("fomm.data.video_io")


def _write(video_io, path, frames, fps=25):
    video_io.write_video(path, np.stack(frames), fps)
    return path


@pytest.mark.slow
def test_crop_video_file_two_segments(video_io, tmp_path):
    frames, truth = moving_face_frames(30, jump_at=14)
    src = _write(video_io, tmp_path / "in.mp4", frames, fps=25)
    out = tmp_path / "out.mp4"
    plan = crop.crop_video_file(src, out, size=64, progress=False, split_dir=tmp_path / "segs", **HAAR)
    assert [(s.start, s.end) for s in plan.segments] == [(0, 14), (14, 30)]
    result, fps = video_io.read_frames(out)
    assert result.shape == (30, 64, 64, 3) and fps == pytest.approx(25)
    assert video_io.probe(out).fps == pytest.approx(video_io.probe(src).fps)
    parts = sorted(p.name for p in (tmp_path / "segs").iterdir())
    assert parts == ["out_000_0-13.mp4", "out_001_14-29.mp4"]
    assert len(video_io.read_frames(tmp_path / "segs" / parts[1])[0]) == 16
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4", "segs"]


def test_crop_video_file_is_atomic(video_io, tmp_path, monkeypatch):
    frames, _ = moving_face_frames(12, jump_at=None)
    src = _write(video_io, tmp_path / "in.mp4", frames)
    real_apply = CropPlan.apply

    def failing_apply(self, index, frame):
        if index == 6:
            raise RuntimeError("disk full")
        return real_apply(self, index, frame)

    monkeypatch.setattr(CropPlan, "apply", failing_apply)
    with pytest.raises(RuntimeError, match="disk full"):
        crop.crop_video_file(src, tmp_path / "out.mp4", size=64, progress=False, boxes_json=tmp_path / "b.json", **HAAR)
    assert sorted(os.listdir(tmp_path)) == ["in.mp4"]


def test_crop_video_file_without_face_copies_input(video_io, tmp_path):
    src = _write(video_io, tmp_path / "in.mp4", [no_face(120, 160)] * 6)
    out = tmp_path / "out.mp4"
    assert not crop.crop_video_file(src, out, size=64, progress=False, **HAAR).found
    assert out.read_bytes() == src.read_bytes()


@pytest.mark.slow
def test_cli_crop_video_with_boxes_json(video_io, tmp_path, capsys):
    import json

    from fomm.cli import main

    frames, _ = moving_face_frames(20, jump_at=10)
    src = _write(video_io, tmp_path / "in.mp4", frames, fps=10)
    out, boxes = tmp_path / "out.mp4", tmp_path / "boxes.json"
    argv = ["crop", str(src), "--out", str(out), "--size", "96", "--tracker", "haar", "--no-progress"]
    assert main([*argv, "--crop-scale", "2", "--crop-smoothing", "6", "--boxes-json", str(boxes)]) == 0
    text = capsys.readouterr().out
    assert "tracker: OpenCV Haar cascade" in text and f"wrote {out}" in text and "2 segments" in text
    assert "frames 0-9:" in text and "frames 10-19:" in text
    result, fps = video_io.read_frames(out)
    assert result.shape == (20, 96, 96, 3) and fps == pytest.approx(10)
    data = json.loads(boxes.read_text())
    assert data["frame_size"] == [320, 240] and data["num_frames"] == 20 and len(data["boxes"]) == 20
    assert [(s["start"], s["end"]) for s in data["segments"]] == [(0, 10), (10, 20)]
    assert data["tracker"] == "OpenCV Haar cascade" and data["options"]["scale"] == 2.0
    assert data["options"]["smoothing"] == 6.0
    assert all(b[2] - b[0] == b[3] - b[1] >= 150 for b in data["boxes"])  # 2 x an 80 px face


@pytest.mark.slow
@needs_faces
def test_cli_crop_real_face_uses_the_landmark_tracker(video_io, tmp_path, capsys):
    from fomm.cli import main

    frames, _ = moving_clip(12)
    src = _write(video_io, tmp_path / "face.mp4", frames)
    out = tmp_path / "crop.mp4"
    assert main(["crop", str(src), "--out", str(out), "--size", "64", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "tracker: dlib landmarks" in text and "1 segment)" in text
    assert video_io.read_frames(out)[0].shape == (12, 64, 64, 3)


def test_cli_crop_image_and_errors(video_io, tmp_path, capsys, monkeypatch):
    from fomm.cli import main

    image, box = paste(make_background(360, 480), make_face(120), 250, 90)
    src = tmp_path / "photo.png"
    video_io.write_image(src, image)
    out = tmp_path / "crop.png"
    assert main(["crop", "--source", str(src), "--out", str(out), "--size", "128", "--tracker", "haar"]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out}" in text and "tracker: OpenCV Haar cascade" in text
    assert video_io.read_image(out).shape == (128, 128, 3)

    blank = tmp_path / "blank.png"
    video_io.write_image(blank, no_face(100, 120))
    out2 = tmp_path / "blank_out.png"
    assert main(["crop", str(blank), "--out", str(out2)]) == 0
    assert "warning: no face found" in capsys.readouterr().err
    assert out2.read_bytes() == blank.read_bytes()

    assert main(["crop", str(tmp_path / "missing.mp4"), "--out", str(out)]) == 2
    assert "missing.mp4 not found" in capsys.readouterr().err
    assert main(["crop", "--out", str(out)]) == 2
    assert "no input given" in capsys.readouterr().err
    assert main(["crop", str(src), "--out", str(out), "--size", "0"]) == 2
    assert main(["crop", str(src), "--out", str(out), "--crop-scale", "0"]) == 2
    assert "--crop-scale must be a number in [0.5, 10], got 0.0" in capsys.readouterr().err
    assert main(["crop", str(src), "--out", str(out), "--boxes-json", str(tmp_path / "b.json")]) == 2
    assert "--boxes-json is for videos" in capsys.readouterr().err
    import fomm.faces.landmarks

    monkeypatch.setattr(fomm.faces.landmarks, "faces_available", lambda: False)
    assert main(["crop", str(src), "--out", str(out), "--tracker", "landmarks"]) == 2
    assert "--tracker landmarks needs the face models: pip install 'fomm[faces]'" in capsys.readouterr().err


@pytest.mark.slow
def test_crop_video_file_keeps_audio_and_shows_progress(video_io, tmp_path, capsys):
    frames, _ = moving_face_frames(25, jump_at=None)
    src = write_video(tmp_path / "talk.mp4", frames, 25, audio=True, crf=18, rate=44100)
    assert video_io.probe(src).has_audio
    out = tmp_path / "talk_crop.mp4"
    plan = crop.crop_video_file(src, out, size=64, progress=True, **HAAR)
    assert len(plan.segments) == 1
    info = video_io.probe(out)
    assert info.has_audio and (info.width, info.height) == (64, 64)
    assert len(video_io.read_frames(out)[0]) == 25
    assert "frame" in capsys.readouterr().err  # the tqdm bars
