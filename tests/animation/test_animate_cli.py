"""``fomm animate`` end to end: frame count, fps, audio, layouts, best frame, errors, atomicity, streaming.

Inputs are made here: a 64x64 source PNG, short driving clips written with PyAV (one with an AAC
track) and the shared tiny random checkpoint (``tiny_checkpoint`` in tests/conftest.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

import fomm
from fomm.animation.engine import AnimationEngine, best_frame_index
from fomm.animation.pipeline import animate_video
from fomm.cli import main
from fomm.config import resolve_config
from fomm.data import video_io
from fomm.data.drawing import keypoint_colors
from fomm.data.image_ops import fit_aspect, resize_frame
from fomm.errors import FommError
from fomm.models.checkpoint import load_model
from fomm.testing import random_checkpoint

N_FRAMES = 12
FPS = 20


# ------------------------------------------------------------------------------------------------
# Inputs
# ------------------------------------------------------------------------------------------------
def blob_frame(i: int, h: int = 64, w: int = 64) -> np.ndarray:
    """A warm disc moving left and right over a dark gradient (so keypoints move)."""
    yy, xx = np.mgrid[:h, :w]
    img = np.stack([20 + xx * 60 // w, 20 + yy * 60 // h, np.full_like(xx, 50)], -1).astype(np.uint8)
    cx = int(w / 2 + w / 4 * np.sin(i / 2.5))
    cy = int(h / 2 + h / 8 * np.cos(i / 3.0))
    cv2.circle(img, (cx, cy), max(3, min(h, w) // 5), (230, 180, 60), -1)
    return img


def write_clip(path: Path, frames, fps: int = FPS, audio: bool = False) -> Path:
    """An H.264 clip of ``frames`` (a list or a generator), with a 440 Hz AAC track if ``audio``."""
    frames = iter(frames)
    first = next(frames, None)
    out = av.open(str(path), "w")
    vs = out.add_stream("libx264", rate=fps)
    if first is not None:
        vs.height, vs.width = first.shape[:2]
    else:
        vs.height = vs.width = 64
    vs.pix_fmt = "yuv420p"
    vs.options = {"preset": "ultrafast"}
    if audio:
        stream = out.add_stream("aac", rate=44100)
        stream.codec_context.layout = "mono"
        fmt = stream.codec_context.format.name
        signal = (0.4 * np.sin(2 * np.pi * 440 * np.arange(int(44100 * N_FRAMES / fps)) / 44100)).astype(np.float32)
        for start in range(0, len(signal), 1024):
            chunk = signal[start : start + 1024]
            data = (chunk * 32767).astype(np.int16)[None] if fmt == "s16" else chunk[None]
            frame = av.AudioFrame.from_ndarray(data, format=fmt, layout="mono")
            frame.sample_rate, frame.pts = 44100, start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    if first is None:
        out.start_encoding()  # a header, no frames
    else:
        for img in _chain(first, frames):
            for packet in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in vs.encode(None):
            out.mux(packet)
    out.close()
    return path


def _chain(first, rest):
    yield first
    yield from rest


def cartoon_face(side: int) -> np.ndarray:
    """A grey cartoon face (oval, brows, eyes, nose, mouth) that the frontal Haar cascade finds."""
    s = side
    img = np.full((s, s), 55, np.float32)
    cv2.ellipse(img, (s // 2, int(s * 0.53)), (int(s * 0.37), int(s * 0.47)), 0, 0, 360, 205, -1)
    for side_x in (-1, 1):
        ex = int(s / 2 + side_x * s * 0.17)
        cv2.ellipse(img, (ex, int(s * 0.31)), (int(s * 0.10), int(s * 0.025)), 0, 0, 360, 70, -1)
        cv2.ellipse(img, (ex, int(s * 0.40)), (int(s * 0.085), int(s * 0.045)), 0, 0, 360, 45, -1)
    cv2.line(img, (int(s * 0.48), int(s * 0.45)), (int(s * 0.46), int(s * 0.60)), 150, max(1, s // 50))
    cv2.ellipse(img, (s // 2, int(s * 0.62)), (int(s * 0.06), int(s * 0.03)), 0, 0, 360, 120, -1)
    cv2.ellipse(img, (s // 2, int(s * 0.76)), (int(s * 0.14), int(s * 0.035)), 0, 0, 360, 60, -1)
    img = cv2.GaussianBlur(img, (0, 0), s * 0.015)
    return np.stack([img, img * 0.85, img * 0.7], -1).clip(0, 255).astype(np.uint8)


def face_scene(h: int, w: int, x: int, y: int, side: int = 80) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    img = np.stack([xx * 150 // w + 40, yy * 150 // h + 40, np.full_like(xx, 100)], -1).astype(np.uint8)
    img[y : y + side, x : x + side] = cartoon_face(side)
    return img


def run_cli(*args) -> int:
    return main(["animate", "--no-progress", "--device", "cpu", *map(str, args)])


def run_animate(inputs, out, *extra, driving=None) -> int:
    """``fomm animate`` of the module's source by ``driving`` (default: its driving clip) with its
    random checkpoint, to ``out``, with ``extra`` options."""
    driving = inputs.driving if driving is None else driving
    return run_cli(
        "--source", inputs.source, "--driving", driving, "--checkpoint", inputs.checkpoint, "--out", out, *extra
    )


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_checkpoint):
    root = tmp_path_factory.mktemp("animate_inputs")
    source = root / "source.png"
    src = blob_frame(7)
    src[40:56, 8:24] = (40, 200, 220)  # a different pose and an extra patch
    video_io.write_image(source, src)
    ns = type("Inputs", (), {})()
    ns.root = root
    ns.source = source
    ns.checkpoint = tiny_checkpoint
    ns.driving = write_clip(root / "driving.mp4", [blob_frame(i) for i in range(N_FRAMES)], audio=True)
    ns.driving_odd = write_clip(root / "driving_odd.mp4", [blob_frame(i, 80, 96) for i in range(N_FRAMES)])
    ns.empty = write_clip(root / "empty.mp4", [])
    return ns


@pytest.fixture(scope="module")
def model(inputs):
    return load_model(inputs.checkpoint)


def listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


# ------------------------------------------------------------------------------------------------
# Outputs
# ------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_mp4_keeps_frame_count_fps_and_audio(inputs, tmp_path, capsys):
    out = tmp_path / "result.mp4"
    assert run_animate(inputs, out) == 0
    info = video_io.probe(out)
    assert info.num_frames == N_FRAMES and info.fps == pytest.approx(FPS)
    assert (info.width, info.height) == (64, 64)
    assert info.has_audio
    assert listing(tmp_path) == ["result.mp4"]  # no temporary file left
    stdout = capsys.readouterr().out
    assert "wrote" in stdout and "12 frames" in stdout and "frames/s" in stdout


def test_one_frame_is_said_in_the_singular(inputs, tmp_path, capsys):
    one = write_clip(tmp_path / "one.mp4", [blob_frame(0)])
    assert run_animate(inputs, tmp_path / "out.mp4", "--save-frames", tmp_path / "png", driving=one) == 0
    printed = capsys.readouterr().out
    assert "(1 frame, 64x64," in printed and f"wrote 1 PNG frame to {tmp_path / 'png'}" in printed
    assert not re.search(r"(?<![\d.])1 frames", printed)  # a speed such as "11 frames/s" may be printed


def test_no_audio_and_motion_flags(inputs, tmp_path):
    out = tmp_path / "silent.mp4"
    assert (
        run_animate(
            inputs,
            out,
            "--no-audio",
            "--absolute",
            "--no-adapt-scale",
            "--batch-size",
            "5",
        )
        == 0
    )
    info = video_io.probe(out)
    assert info.num_frames == N_FRAMES and not info.has_audio


def test_side_by_side_keypoints_and_saved_frames(inputs, tmp_path):
    out, frames_dir = tmp_path / "compare.mp4", tmp_path / "frames"
    assert (
        run_animate(
            inputs,
            out,
            "--layout",
            "side-by-side",
            "--show-keypoints",
            "--save-frames",
            frames_dir,
            "--panel-size",
            "64",
            "--no-labels",
            driving=inputs.driving_odd,
        )
        == 0
    )
    info = video_io.probe(out)
    assert (info.width, info.height) == (3 * 64, 64)  # source | driving | result at the model size
    assert info.num_frames == N_FRAMES and not info.has_audio  # the driving clip has no audio
    saved = video_io.list_frame_files(frames_dir)
    assert len(saved) == N_FRAMES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compare.mp4", "frames"]
    first = video_io.read_image(saved[0])
    assert first.shape == (64, 192, 3)
    # The source panel is the source with coloured keypoint discs on it, nothing else changed.
    source = video_io.read_image(inputs.source)
    changed = np.any(first[:, :64] != source, axis=-1)
    assert 10 < changed.sum() < 64 * 64 // 3
    palette = {tuple(c) for c in np.rint(keypoint_colors(10) * 255).astype(np.uint8)}
    assert {tuple(c) for c in first[:, :64][changed]} <= palette
    # The driving panel shows the driving frame, centre-cropped to a square and resized.
    raw0 = video_io.read_frames_at(inputs.driving_odd, [0])[0]
    driving0 = resize_frame(fit_aspect(raw0, (64, 64), "crop"), (64, 64))
    assert np.mean(np.abs(first[:, 64:128].astype(int) - driving0)) < 20


@pytest.mark.slow
def test_best_frame_equals_backward_plus_forward(inputs, model, tmp_path):
    index = 5
    out = tmp_path / "best"  # a folder of PNG frames: lossless
    assert (
        run_animate(
            inputs,
            out,
            "--best-frame",
            index,
        )
        == 0
    )
    result, _ = video_io.read_frames(out)
    source = video_io.read_image(inputs.source)
    driving, _ = video_io.read_frames(inputs.driving)
    # The original: animate frames index..0 and index..end, each relative to its first frame.
    backward = fomm.animate(model, source, driving[: index + 1][::-1])
    forward = fomm.animate(model, source, driving[index:])
    expected = np.concatenate([backward[::-1], forward[1:]])
    expected = np.clip(np.rint(expected * 255), 0, 255).astype(np.uint8)
    assert result.shape == expected.shape == (N_FRAMES, 64, 64, 3)
    diff = np.abs(result.astype(int) - expected)
    assert diff.max() <= 1 and diff.mean() < 0.02  # equal up to float noise in batching
    # ... and not the plain animation from frame 0 (the random model moves little, but surely)
    plain = np.clip(np.rint(fomm.animate(model, source, driving) * 255), 0, 255)
    assert np.abs(result.astype(int) - plain).mean() > 0.1


@pytest.mark.slow
def test_python_api_best_frame_auto_and_gif(inputs, model, tmp_path):
    out = tmp_path / "result.gif"
    with pytest.warns(UserWarning, match="audio is dropped: GIF has no audio"):
        result = animate_video(
            inputs.source, inputs.driving, model=model, out=out, best_frame="auto", progress=False, batch_size=4
        )
    assert set(result) >= {"out", "frames", "fps", "seconds", "frames_per_second"}
    assert result["out"] == out and result["frames"] == N_FRAMES and result["fps"] == pytest.approx(FPS)
    assert result["seconds"] > 0 and result["frames_per_second"] > 0
    assert result["audio"] is False  # GIFs have no audio
    engine = AnimationEngine(model, batch_size=4)
    engine.set_source(video_io.read_image(inputs.source))
    assert result["best_frame"] == best_frame_index(engine, video_io.iter_frames(inputs.driving))
    info = video_io.probe(out)
    assert info.num_frames == N_FRAMES and (info.width, info.height) == (64, 64)


@pytest.mark.slow
def test_png_strip_and_one_line_warnings(inputs, tmp_path, capsys):
    """--out x.png says it wrote a strip; a squashed/cropped driving video is one warning line."""
    out = tmp_path / "strip.png"
    args = ("--source", inputs.source, "--driving", inputs.driving_odd, "--checkpoint", inputs.checkpoint)
    assert run_cli(*args, "--out", out) == 0
    captured = capsys.readouterr()
    assert "one PNG strip of 12 frames side by side, 64x64 each" in captured.out
    assert video_io.read_image(out).shape == (64, 12 * 64, 3)
    err = captured.err.strip().splitlines()
    assert err == [
        "fomm: warning: driving video is 96x80, not square: centre-cropped to the model's aspect ratio, "
        "then resized to 64x64 (--driving-fit pad, stretch to change)"
    ]
    assert run_cli(*args, "--out", tmp_path / "pad.mp4", "--driving-fit", "stretch") == 0
    assert "squashed (aspect ratio not kept)" in capsys.readouterr().err


@pytest.mark.slow
def test_crop_finds_faces_in_both_inputs(inputs, tmp_path):
    source = video_io.write_image(tmp_path / "photo.jpg", face_scene(200, 260, 90, 50, side=90))
    driving = write_clip(tmp_path / "talk.mp4", [face_scene(160, 208, 60 + i % 3, 30, side=80) for i in range(8)])
    out = tmp_path / "out" / "cropped.mp4"
    args = ("--source", source, "--driving", driving, "--checkpoint", inputs.checkpoint, "--out", out, "--crop")
    assert run_cli(*args, "--no-paste-back") == 0
    info = video_io.probe(out)
    assert info.num_frames == 8 and (info.width, info.height) == (64, 64)
    # Default: the animated face pasted back into the photo, at the photo's size (rounded to even).
    pasted = tmp_path / "out" / "pasted.mp4"
    assert run_cli(*args[:-2], pasted, "--crop", "--color-match", "--crop-scale", "1.6") == 0
    info = video_io.probe(pasted)
    assert info.num_frames == 8 and (info.width, info.height) == (260, 200)


def test_paste_back_keeps_the_photo_outside_the_crop(inputs, model, tmp_path, capsys):
    photo = face_scene(201, 261, 90, 50, side=90)  # odd sizes: the output drops the last row/column
    driving = write_clip(tmp_path / "talk.mp4", [face_scene(160, 208, 60 + i % 3, 30, side=80) for i in range(5)])
    result = animate_video(photo, driving, model=model, out=tmp_path / "frames", crop=True, progress=False)
    assert result["pasted_back"] and result["size"] == (260, 200)
    frames, _ = video_io.read_frames(tmp_path / "frames")
    x0, y0, x1, y1 = result["crop_box"]
    outside = np.ones((200, 260), bool)
    outside[y0:y1, x0:x1] = False
    for frame in frames:
        np.testing.assert_array_equal(frame[outside], photo[:200, :260][outside])
    assert np.abs(frames[:, y0:y1, x0:x1].astype(int) - photo[y0:y1, x0:x1]).max() > 0  # the face moved
    assert run_animate(inputs, tmp_path / "x.mp4", "--crop-scale", "2", driving=driving) == 2
    assert "--crop-scale: used only with --crop" in capsys.readouterr().err


@pytest.mark.slow
def test_show_keypoints_with_crop_draws_on_the_pasted_back_result(model, tmp_path):
    """--crop --show-keypoints: the keypoints are on the result too (the face pasted into the photo)."""
    photo = face_scene(200, 260, 90, 50, side=90)
    driving = write_clip(tmp_path / "talk.mp4", [face_scene(160, 208, 60 + i % 3, 30, side=80) for i in range(4)])
    frames = {}
    for show in (False, True):
        out = tmp_path / f"kp-{show}"
        result = animate_video(photo, driving, model=model, out=out, crop=True, show_keypoints=show, progress=False)
        frames[show] = video_io.read_frames(out)[0].astype(int)
    x0, y0, x1, y1 = result["crop_box"]
    changed = np.any(frames[True] != frames[False], axis=-1)
    assert changed[:, y0:y1, x0:x1].sum() > 20  # discs drawn in the face
    changed[:, y0:y1, x0:x1] = False
    assert not changed.any()  # and nowhere else


# ------------------------------------------------------------------------------------------------
# Errors and interruption
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def misfit_checkpoint(inputs):
    """An original-format checkpoint whose keypoint head has 7 outputs: it fits no preset."""
    path = random_checkpoint(inputs.root / "misfit.pth.tar", original_format=True)
    data = torch.load(path, weights_only=True)
    kp = data["kp_detector"]
    for key in list(kp):
        if key.startswith("kp."):
            kp[key] = kp[key][:7]
    torch.save(data, path)
    return path


@pytest.mark.parametrize(
    "case, expect",
    [
        ("missing-source", "source image"),
        ("missing-driving", "driving video"),
        ("missing-checkpoint", "checkpoint"),
        ("no-frames", "empty.mp4"),
        ("misfit-checkpoint", "misfit.pth.tar"),
        ("wrong-config", "face-64"),
        ("no-face", "source.png"),
        ("best-frame-range", "best frame 40"),
        ("bad-extension", ".avi"),
    ],
)
def test_bad_input_is_one_line_and_leaves_nothing(inputs, misfit_checkpoint, tmp_path, capsys, case, expect):
    args = {
        "--source": inputs.source,
        "--driving": inputs.driving,
        "--checkpoint": inputs.checkpoint,
        "--out": tmp_path / "out.mp4",
    }
    extra = []
    if case == "missing-source":
        args["--source"] = tmp_path / "nope.png"
    elif case == "missing-driving":
        args["--driving"] = tmp_path / "nope.mp4"
    elif case == "missing-checkpoint":
        args["--checkpoint"] = tmp_path / "nope.pth.tar"
    elif case == "no-frames":
        args["--driving"] = inputs.empty
    elif case == "misfit-checkpoint":
        args["--checkpoint"] = misfit_checkpoint
    elif case == "wrong-config":
        extra = ["--config", "face-64"]
    elif case == "no-face":
        extra = ["--crop"]
    elif case == "best-frame-range":
        extra = ["--best-frame", "40"]
    elif case == "bad-extension":
        args["--out"] = tmp_path / "out.avi"
    argv = [x for kv in args.items() for x in kv] + extra + ["--save-frames", tmp_path / "frames"]
    capsys.readouterr()
    assert run_cli(*argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("fomm animate: error:"), err
    assert expect in err and "Traceback" not in err
    assert listing(tmp_path) == []


def test_python_api_raises_fomm_error(inputs, tmp_path):
    with pytest.raises(FommError, match="no model given"):
        animate_video(inputs.source, inputs.driving, out=tmp_path / "x.mp4", progress=False)
    with pytest.raises(FommError, match="no output path"):
        animate_video(inputs.source, inputs.driving, checkpoint=inputs.checkpoint, progress=False)
    with pytest.raises(FommError, match="layout"):
        animate_video(
            inputs.source,
            inputs.driving,
            checkpoint=inputs.checkpoint,
            out=tmp_path / "x.mp4",
            layout="grid",
            progress=False,
        )
    assert listing(tmp_path) == []


def test_interrupt_mid_stream_leaves_no_output(inputs, tmp_path, monkeypatch, capsys):
    real_iter_frames = video_io.iter_frames

    def interrupted(path, *args, **kwargs):
        for i, frame in enumerate(real_iter_frames(path, *args, **kwargs)):
            if i == 7:  # after the first batch was animated and written
                raise KeyboardInterrupt
            yield frame

    monkeypatch.setattr(video_io, "iter_frames", interrupted)
    out = tmp_path / "result.mp4"
    assert (
        run_animate(
            inputs,
            out,
            "--batch-size",
            "4",
            "--save-frames",
            tmp_path / "frames",
            "--layout",
            "side-by-side",
        )
        == 130
    )
    assert "interrupted" in capsys.readouterr().err
    assert listing(tmp_path) == []


# ------------------------------------------------------------------------------------------------
# Streaming
# ------------------------------------------------------------------------------------------------
CHILD = textwrap.dedent("""
    import resource, sys
    import torch
    from fomm.models.generator import OcclusionAwareGenerator
    from fomm.models.keypoint_detector import KPDetector

    # The networks hold nothing between batches and are the slow part: cheap stand-ins let a long
    # clip run in seconds. Everything else (decoding, resizing, batching, relative motion, drawing,
    # encoding) is the real pipeline.
    def cheap_keypoints(self, image):
        b = image.shape[0]
        mean = image.mean(dim=(1, 2, 3)).view(b, 1, 1)
        value = torch.linspace(-0.5, 0.5, self.num_kp * 2).view(1, self.num_kp, 2) * (0.5 + mean)
        return {"value": value, "jacobian": torch.eye(2).expand(b, self.num_kp, 2, 2) * (1 + 0.1 * mean[..., None])}

    def cheap_animate(self, source, kp_driving, kp_source):
        b = kp_driving["value"].shape[0]
        shift = kp_driving["value"].mean(dim=(1, 2)).view(b, 1, 1, 1)
        return {"prediction": (source.image.expand(b, -1, -1, -1) * 0.8 + 0.1 + 0.1 * shift).clamp(0, 1)}

    KPDetector.forward = cheap_keypoints
    OcclusionAwareGenerator.animate = cheap_animate
    from fomm.cli import main

    source, checkpoint, outdir, *videos = sys.argv[1:]
    for video in videos:  # short first: the peak after the long one shows what length adds
        rc = main(["animate", "--no-progress", "--device", "cpu", "--batch-size", "16", "--source", source,
                   "--driving", video, "--checkpoint", checkpoint, "--out", f"{outdir}/out_{video.split('/')[-1]}"])
        print("RC", rc, "MAXRSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)
""")


@pytest.mark.slow
def test_long_video_streams_in_flat_memory(tmp_path):
    """Animating 1,000 frames peaks at about the memory of 100 frames.

    A 128x128 model (tiny-64's networks, stubbed in the child) makes holding the frames costly:
    1,000 frames would take ~49 MB as uint8 and 4x that as float. glibc's mmap threshold is pinned
    so that the allocator's adaptive heap growth (a few MB, once) does not blur the comparison.
    """
    config = resolve_config("tiny-64").copy()
    config.dataset_params.frame_shape = [128, 128, 3]
    checkpoint = random_checkpoint(tmp_path / "tiny128.pth.tar", config=config)
    source = video_io.write_image(tmp_path / "source.png", blob_frame(3, 128, 128))
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    lengths = (100, 1000)
    videos = [str(write_clip(tmp_path / f"long{n}.mp4", (blob_frame(i, 128, 128) for i in range(n)))) for n in lengths]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    proc = subprocess.run(
        [sys.executable, str(script), str(source), str(checkpoint), str(tmp_path), *videos],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line.split() for line in proc.stdout.splitlines() if line.startswith("RC")]
    assert [line[1] for line in lines] == ["0", "0"], proc.stdout + proc.stderr[-2000:]
    peaks_mb = [int(line[3]) / 1024 for line in lines]
    for n in lengths:
        info = video_io.probe(tmp_path / f"out_long{n}.mp4")
        assert info.num_frames == n and (info.width, info.height) == (128, 128)
    assert peaks_mb[1] - peaks_mb[0] < 20, peaks_mb


@pytest.mark.slow
def test_without_checkpoint_says_what_to_pass(inputs, tmp_path, capsys):
    """No --checkpoint (or an unknown name): one line naming the bundled models, fomm models and
    fomm download vox; a bundled model by name animates."""
    io = ["--source", str(inputs.source), "--driving", str(inputs.driving)]
    for extra in ([], ["--checkpoint", "no-such-model"]):
        assert run_cli(*io, "--out", str(tmp_path / "x.mp4"), *extra) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        for hint in ("face-64", "puppet-64", "fomm models", "fomm download vox"):
            assert hint in err, (hint, err)
    assert listing(tmp_path) == []
    assert run_cli(*io, "--out", str(tmp_path / "bundled.mp4"), "--checkpoint", "puppet-64") == 0
    assert (tmp_path / "bundled.mp4").is_file()
