"""fomm.animation.pipeline: bad values, size and aspect notes, driving fit, many sources, the original's flags.

Inputs are made here (tiny random model, short clips); every check is a few seconds.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import fomm
from fomm.animation.pipeline import animate_video
from fomm.cli import main
from fomm.data import video_io
from fomm.data.image_ops import fit_aspect, resize_frame, to_float01, to_uint8
from fomm.errors import FommError
from fomm.models.checkpoint import load_model

T = 6


def frame(i: int, h: int = 64, w: int = 64) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    img = np.stack([20 + xx * 60 // w, 20 + yy * 60 // h, np.full_like(xx, 50)], -1).astype(np.uint8)
    cv2.circle(img, (int(w / 2 + w / 5 * np.sin(i / 2)), h // 2), max(3, min(h, w) // 5), (230, 180, 60), -1)
    return img


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_checkpoint):
    root = tmp_path_factory.mktemp("pipeline")
    ns = type("Files", (), {})()
    ns.checkpoint = tiny_checkpoint
    ns.driving = root / "driving"  # a folder of PNG frames: lossless, 25 fps
    video_io.write_video(ns.driving, np.stack([frame(i) for i in range(T)]), fps=25)
    photos = root / "photos"
    photos.mkdir()
    for k, name in enumerate(["anna", "bob"]):
        src = frame(3 + k)
        src[40:56, 8:24] = (40 + 100 * k, 200, 220)
        video_io.write_image(photos / f"{name}.png", src)
    ns.photos = photos
    return ns


@pytest.fixture(scope="module")
def model(files):
    return load_model(files.checkpoint)


def test_non_finite_values_are_rejected_for_source_and_driving(model, tmp_path):
    source = np.full((64, 64, 3), 0.5, np.float32)
    driving = np.full((T, 64, 64, 3), 0.5, np.float32)
    bad_source = source.copy()
    bad_source[10, 20, 1] = np.nan
    with pytest.raises(FommError, match=r"source image has 1 NaN or infinite value \(first at index \(10, 20, 1\)\)"):
        animate_video(bad_source, driving, model=model, out=tmp_path / "a.mp4", progress=False)
    bad_driving = driving.copy()
    bad_driving[4, 1, 2, 0] = np.inf  # frame 4: the index counts frames of the whole clip
    bad_driving[5, 0, 0, 0] = -np.inf
    with pytest.raises(
        FommError, match=r"driving video has 2 NaN or infinite values \(first at index \(4, 1, 2, 0\)\)"
    ):
        animate_video(source, bad_driving, model=model, out=tmp_path / "b.mp4", progress=False)
    assert not list(tmp_path.iterdir())  # nothing written


def test_small_or_far_from_square_source_is_warned(model, tmp_path):
    driving = np.stack([frame(i) for i in range(T)])
    with pytest.warns(
        UserWarning, match=r"source image is 8x8, far smaller than the model's 64x64 input: it was enlarged 8x"
    ):
        animate_video(np.zeros((8, 8, 3), np.uint8), driving, model=model, out=tmp_path / "a.mp4", progress=False)
    with pytest.warns(UserWarning, match=r"source image is 200x20 \(aspect 10:1\), far from square: it was squashed"):
        animate_video(np.zeros((20, 200, 3), np.uint8), driving, model=model, out=tmp_path / "b.mp4", progress=False)


@pytest.mark.parametrize("fit", ["crop", "pad", "stretch"])
def test_driving_fit(model, tmp_path, fit):
    wide = np.stack([frame(i, 48, 96) for i in range(T)])
    words = {"crop": "centre-cropped", "pad": "letterboxed", "stretch": "squashed"}[fit]
    with pytest.warns(UserWarning, match=f"driving video is 96x48, not square: {words}"):
        result = animate_video(
            frame(2),
            wide,
            model=model,
            out=tmp_path / "frames",
            layout="side-by-side",
            labels=False,
            panel_size=64,
            driving_fit=fit,
            progress=False,
        )
    assert result["frames"] == T and result["size"] == (192, 64)
    panel = video_io.read_frames(tmp_path / "frames")[0][0][:, 64:128].astype(int)
    # arrays are converted to float first (fomm.data.image_ops), then fitted and resized
    expected = to_uint8(resize_frame(fit_aspect(to_float01(wide[0]), (64, 64), fit), (64, 64))).astype(int)
    assert np.abs(panel - expected).max() <= 1
    if fit == "pad":
        assert (panel[:12] == 0).all() and (panel[-12:] == 0).all()  # black bands above and below


@pytest.mark.slow
def test_many_sources_share_the_model_and_the_driving_keypoints(files, model, tmp_path, monkeypatch):
    from fomm.animation.engine import AnimationEngine

    seen = []
    original = AnimationEngine.keypoints
    monkeypatch.setattr(AnimationEngine, "keypoints", lambda self, f: seen.append(len(f)) or original(self, f))
    out = tmp_path / "results"
    result = animate_video(
        files.photos, files.driving, model=model, out=out, save_frames=tmp_path / "png", progress=False
    )
    assert sorted(p.name for p in out.iterdir()) == ["anna.mp4", "bob.mp4"]
    assert result["sources"] == 2 and [r["frames"] for r in result["outputs"]] == [T, T]
    assert sum(seen) == T  # the driving keypoints computed once for both sources (T frames, not 2 T)
    # the same frames as one source at a time
    single = animate_video(files.photos / "bob.png", files.driving, model=model, out=tmp_path / "bob", progress=False)
    assert single["frames"] == T
    many_bob = video_io.read_frames(tmp_path / "png" / "bob")[0].astype(int)
    assert np.abs(many_bob - video_io.read_frames(tmp_path / "bob")[0]).max() <= 1
    # a glob pattern, and a list, work the same way; a file --out is refused
    glob_result = animate_video(
        str(files.photos / "a*.png"), files.driving, model=model, out=tmp_path / "g", progress=False
    )
    assert glob_result["sources"] == 1 and (tmp_path / "g" / "anna.mp4").is_file()
    with pytest.raises(FommError, match="pass a folder"):
        animate_video([files.photos / "anna.png", frame(1)], files.driving, model=model, out=tmp_path / "x.mp4")


@pytest.mark.parametrize(
    ("name", "data", "expect"),
    [
        ("zz-broken.png", b"\x89PNG\r\n\x1a\n" + bytes(range(200)), "cannot decode image"),
        ("zz-empty.png", b"", "is an empty file"),
    ],
    ids=["corrupt", "empty"],
)
def test_many_sources_are_all_read_before_any_is_animated(files, tmp_path, capsys, name, data, expect):
    """A bad photo last in the folder: one line, and no result for the good photos before it."""
    import shutil

    photos = tmp_path / "photos"
    shutil.copytree(files.photos, photos)
    (photos / name).write_bytes(data)
    out = tmp_path / "results"
    argv = ["animate", "--source", photos, "--driving", files.driving, "--checkpoint", files.checkpoint]
    assert main([*map(str, argv), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fomm animate: error: ") and f"image {photos / name}" in err and expect in err
    assert err.count("\n") == 1 and not out.exists()


@pytest.mark.slow
def test_many_sources_find_their_best_frames_from_the_cached_keypoints(files, model, tmp_path, monkeypatch):
    from fomm.animation.engine import AnimationEngine

    singles = [
        animate_video(files.photos / f"{n}.png", files.driving, model=model, out=tmp_path / n, best_frame="auto",
                      best_frame_method="keypoints", progress=False)["best_frame"]
        for n in ("anna", "bob")
    ]  # fmt: skip
    seen = []
    original = AnimationEngine.keypoints
    monkeypatch.setattr(AnimationEngine, "keypoints", lambda self, f: seen.append(len(f)) or original(self, f))
    result = animate_video(files.photos, files.driving, model=model, out=tmp_path / "many", best_frame="auto",
                           best_frame_method="keypoints", progress=False)  # fmt: skip
    assert [r["best_frame"] for r in result["outputs"]] == singles
    assert {r["best_frame_method"] for r in result["outputs"]} == {"keypoints"}
    assert sum(seen) == T  # one pass over the driving video for both sources, the best frames included


@pytest.mark.slow
def test_many_sources_side_by_side_decode_the_driving_video_once(files, model, tmp_path, monkeypatch):
    """The driving panels of every source are replayed from the spool filled by the one decode for
    the keypoints; with no temporary file to spool to, each source decodes again: same frames."""
    import tempfile

    calls = []
    real = video_io.iter_frames
    monkeypatch.setattr(video_io, "iter_frames", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    options = {"model": model, "layout": "side-by-side", "show_keypoints": True, "progress": False}
    animate_video(files.photos, files.driving, out=tmp_path / "a", save_frames=tmp_path / "png-a", **options)
    assert len(calls) == 1

    def no_temp_file(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "TemporaryFile", no_temp_file)
    calls.clear()
    animate_video(files.photos, files.driving, out=tmp_path / "b", save_frames=tmp_path / "png-b", **options)
    assert len(calls) == 3  # keypoints, then the panels of anna and of bob
    for name in ("anna", "bob"):
        spooled, decoded = (
            video_io.read_frames(tmp_path / "png-a" / name)[0],
            video_io.read_frames(tmp_path / "png-b" / name)[0],
        )
        assert spooled.shape[0] == T and np.array_equal(spooled, decoded)


def test_frame_spool_replays_in_order_and_turns_off_on_a_write_error():
    from fomm.animation.pipeline import FrameSpool

    frames = [np.full((4, 5, 3), i, np.uint8) for i in range(5)]
    spool = FrameSpool()
    assert [int(f[0, 0, 0]) for f in spool.record(iter(frames))] == list(range(5))
    first, second = spool.replay(), spool.replay()  # interleaved replays each keep their place
    assert int(next(first)[0, 0, 0]) == 0 and int(next(second)[0, 0, 0]) == 0 and int(next(first)[0, 0, 0]) == 1
    assert all(np.array_equal(a, b) for a, b in zip(spool.replay(), frames))
    spool.close()
    assert not spool.ok
    broken = FrameSpool()
    broken._file.write = lambda data: (_ for _ in ()).throw(OSError(28, "No space left on device"))
    assert len(list(broken.record(iter(frames)))) == 5 and not broken.ok  # frames still flow


@pytest.mark.slow
def test_cli_many_sources_and_the_originals_flags(files, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["animate", "--source_image", str(files.photos), "--driving_video", str(files.driving)]
    argv += ["--checkpoint", str(files.checkpoint), "--result_video", str(out), "--no-progress"]
    argv += ["--cpu", "--find_best_frame", "--relative", "--adapt_scale", "--audio"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "animated 2 photos with one driving video" in printed and "motion from frame" in printed
    assert sorted(p.name for p in out.iterdir()) == ["anna.mp4", "bob.mp4"]
    assert main(["animate", "--source_image", str(files.photos / "anna.png"), "--driving_video", str(files.driving),
                 "--checkpoint", str(files.checkpoint), "--result_video", str(tmp_path / "one.mp4"),
                 "--no-progress", "--best_frame", "2"]) == 0  # fmt: skip
    assert "motion from frame 2" in capsys.readouterr().out


@pytest.mark.slow
def test_backend_and_progress_callback_are_forwarded(files, model, tmp_path, monkeypatch):
    import fomm.animation.engine

    calls = []
    result = animate_video(
        files.photos / "anna.png",
        files.driving,
        model=model,
        out=tmp_path / "a.mp4",
        progress=lambda done, total, desc: calls.append((done, total, desc)),
    )
    assert result["frames"] == T
    assert calls[-1][:2] == (T, T) and calls[-1][2].startswith("animating")
    kwargs = {}

    class Recorder(fomm.animation.engine.AnimationEngine):
        def __init__(self, *args, **kw):
            kwargs.update(kw)
            kw.pop("backend", None)
            super().__init__(*args, **kw)

    monkeypatch.setattr(fomm.animation.engine, "AnimationEngine", Recorder)
    argv = ["animate", "--source", str(files.photos / "anna.png"), "--driving", str(files.driving)]
    argv += ["--checkpoint", str(files.checkpoint), "--out", str(tmp_path / "b.mp4"), "--no-progress"]
    assert main([*argv, "--backend", "onnxruntime"]) == 0
    assert kwargs["backend"] == "onnxruntime"
    kwargs.clear()
    assert main(argv) == 0
    assert "backend" not in kwargs  # torch: not passed at all


def test_top_level_name():
    assert fomm.animate_video is animate_video


def test_checkpoint_by_published_name(files, tmp_path, monkeypatch, capsys):
    """``--checkpoint vox`` (here a tiny-64 registered as 'vox') in fomm animate and fomm evaluate."""
    import json

    (tmp_path / "models.json").write_text(
        json.dumps({"vox": {"preset": "tiny-64", "file": "vox-cpk.pth.tar", "urls": ["http://127.0.0.1:9/x"]}})
    )
    monkeypatch.setenv("FOMM_MODELS", str(tmp_path / "models.json"))
    monkeypatch.setenv("FOMM_HOME", str(tmp_path / "home"))
    data = tmp_path / "data"
    video_io.write_video(data / "test" / "clip", np.stack([frame(i) for i in range(T)]), fps=25)
    animate = ["animate", "--source", str(files.photos / "anna.png"), "--driving", str(files.driving)]
    animate += ["--checkpoint", "vox", "--out", str(tmp_path / "a.mp4"), "--no-progress"]
    evaluate = ["evaluate", "--checkpoint", "vox", "--data", str(data), "--out", str(tmp_path / "r.json")]
    evaluate += ["--no-progress", "--face-metrics", "off"]
    for argv in (animate, evaluate):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"fomm {argv[0]}: error: checkpoint 'vox' is not downloaded; run: fomm download vox"]
    assert not (tmp_path / "a.mp4").exists() and not (tmp_path / "r.json").exists()
    (tmp_path / "home" / "checkpoints").mkdir(parents=True)
    (tmp_path / "home" / "checkpoints" / "vox-cpk.pth.tar").write_bytes(files.checkpoint.read_bytes())
    assert main(animate) == 0 and video_io.probe(tmp_path / "a.mp4").num_frames == T
    assert main(evaluate) == 0
    assert json.loads((tmp_path / "r.json").read_text())["checkpoint"] == "vox (vox-cpk.pth.tar)"


@pytest.mark.slow
def test_best_frame_method_checks(model, tmp_path):
    driving = np.stack([frame(i) for i in range(T)])
    out = tmp_path / "a.mp4"
    with pytest.raises(FommError, match=r"unknown best-frame method 'dlib'; use one of auto, landmarks, keypoints"):
        animate_video(frame(0), driving, model=model, out=out, best_frame="auto", best_frame_method="dlib")
    with pytest.raises(FommError, match="--best-frame-method keypoints is used only with --best-frame auto"):
        animate_video(frame(0), driving, model=model, out=out, best_frame=2, best_frame_method="keypoints")
    # no face on the source: auto falls back to the model's keypoints
    result = animate_video(frame(3), driving, model=model, out=out, best_frame="auto", progress=False)
    assert result["best_frame_method"] == "keypoints" and result["tracker"] is None
    assert animate_video(frame(3), driving, model=model, out=out, progress=False)["best_frame_method"] is None
    assert not list(tmp_path.glob(".*"))  # no temporaries left


@pytest.fixture(scope="module")
def face_inputs(tmp_path_factory):
    """A real face (scikit-image's astronaut) moving over 8 frames, and one of its frames as the source."""
    face_clips = pytest.importorskip("face_clips")
    root = tmp_path_factory.mktemp("faces")
    frames, _ = face_clips.moving_clip(8)
    driving = video_io.write_video(root / "face", np.stack(frames), fps=25)  # PNG frames: lossless
    source = video_io.write_image(root / "photo.png", frames[5])
    return source, driving


def crop_best_frame_argv(files, face_inputs, out) -> list[str]:
    """fomm animate of the face clip with --crop --best-frame auto."""
    source, driving = face_inputs
    argv = ["animate", "--source", str(source), "--driving", str(driving), "--checkpoint", str(files.checkpoint)]
    return argv + ["--crop", "--best-frame", "auto", "--out", str(out), "--no-progress"]


@pytest.mark.skipif(
    not __import__("fomm.faces.landmarks").faces.faces_available(), reason="needs pip install 'fomm[faces]'"
)
@pytest.mark.slow
def test_crop_says_which_tracker_and_best_frame_by_landmarks(files, face_inputs, tmp_path, capsys):
    source, driving = face_inputs
    argv = crop_best_frame_argv(files, face_inputs, tmp_path / "a.mp4")
    assert main(argv) == 0
    printed = capsys.readouterr().out.splitlines()
    assert "tracker: dlib landmarks (driving video and source photo)" in printed
    assert "best frame: 5, chosen by face landmarks (dlib)" in printed  # the source is driving frame 5
    model = load_model(files.checkpoint)
    kw = dict(model=model, crop=True, best_frame="auto", progress=False)
    result = animate_video(source, driving, out=tmp_path / "b.mp4", best_frame_method="keypoints", **kw)
    assert result["best_frame_method"] == "keypoints"
    assert result["tracker"] == {"source": "dlib landmarks", "driving": "dlib landmarks"}


@pytest.mark.skipif(
    not __import__("fomm.faces.landmarks").faces.faces_available(), reason="needs pip install 'fomm[faces]'"
)
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:driving video is 320x240")
def test_many_sources_find_the_driving_face_poses_once(face_inputs, model, tmp_path, monkeypatch):
    import fomm.faces.landmarks

    source, driving = face_inputs
    frames = video_io.read_frames(driving)[0]
    photos = tmp_path / "photos"
    photos.mkdir()
    video_io.write_image(photos / "a.png", frames[2])
    video_io.write_image(photos / "b.png", frames[5])
    calls = []
    real = fomm.faces.landmarks.landmark_poses
    monkeypatch.setattr(fomm.faces.landmarks, "landmark_poses", lambda f, **k: calls.append(1) or real(f, **k))
    result = animate_video(photos, driving, model=model, out=tmp_path / "many", best_frame="auto", progress=False)
    assert [(r["best_frame"], r["best_frame_method"]) for r in result["outputs"]] == [
        (2, "landmarks"),
        (5, "landmarks"),
    ]
    assert len(calls) == 1


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:driving video is 320x240")
def test_many_sources_with_crop_find_every_face_first_and_once(face_inputs, model, tmp_path, monkeypatch):
    """--crop: a photo without a face anywhere in the folder is one error before any result; each
    face is found once (its box kept from the check, not searched for again)."""
    import shutil

    import fomm.animation.sources

    source, driving = face_inputs
    photos, out = tmp_path / "photos", tmp_path / "many"
    photos.mkdir()
    shutil.copy(source, photos / "a.png")
    video_io.write_image(photos / "b.png", frame(0))  # no face
    with pytest.raises(FommError, match=r"no face found in source image .*b\.png"):
        animate_video(photos, driving, model=model, out=out, crop=True, progress=False)
    assert not out.exists()
    video_io.write_image(photos / "b.png", video_io.read_image(source)[:, ::-1])  # mirrored: a face
    calls = []
    real = fomm.animation.sources.crop_image
    monkeypatch.setattr(fomm.animation.sources, "crop_image", lambda *a, **k: calls.append(1) or real(*a, **k))
    many = animate_video(photos, driving, model=model, out=out, crop=True, progress=False)
    assert len(calls) == 2  # one search per photo
    single = animate_video(source, driving, model=model, out=tmp_path / "a.mp4", crop=True, progress=False)
    assert many.outputs[0].crop_box == single.crop_box and many.outputs[0].tracker == single.tracker
    first = video_io.read_frames(out / "a.mp4")[0].astype(int)
    assert np.abs(first - video_io.read_frames(tmp_path / "a.mp4")[0]).max() <= 2  # the same crop animated


@pytest.mark.slow
def test_without_the_face_extra_haar_and_keypoints_are_used(files, face_inputs, tmp_path, monkeypatch, capsys):
    import fomm.faces.landmarks

    monkeypatch.setattr(fomm.faces.landmarks, "faces_available", lambda: False)
    argv = crop_best_frame_argv(files, face_inputs, tmp_path / "a.mp4")
    assert main(argv) == 0
    printed = capsys.readouterr().out.splitlines()
    assert "tracker: OpenCV Haar cascade (driving video and source photo)" in printed
    assert any(line.startswith("best frame: ") and line.endswith("chosen by the model's keypoints") for line in printed)
    assert main([*argv, "--best-frame-method", "landmarks"]) == 2
    assert "--best-frame-method landmarks needs the face models: pip install 'fomm[faces]'" in capsys.readouterr().err


def test_python_api_animate_names_the_non_finite_frame_of_the_whole_clip(model):
    import torch

    driving = np.full((T, 64, 64, 3), 0.5, np.float32)
    driving[4, 1, 2, 0] = np.nan  # in the third batch of 2: still frame 4
    for clip in (driving, torch.from_numpy(driving)):
        with pytest.raises(
            FommError, match=r"driving video has 1 NaN or infinite value \(first at index \(4, 1, 2, 0\)\)"
        ):
            fomm.animate(model, driving[0], clip, batch_size=2)
