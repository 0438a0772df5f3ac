"""The whole workflow at 512 x 512, with small seeded random vox-512 models of both kinds (29 x 29
and 13 x 13 anti-alias kernels, one config file for both): ``--crop`` and paste-back, the
side-by-side layout, ``fomm live``, the app, ONNX export and the ONNX Runtime backend,
``fomm evaluate``, and streaming (the pipeline decodes the driving video as it writes)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

import fomm
from fomm.cli import main
from fomm.data import video_io
from fomm.testing import random_checkpoint, small_config

SIZE, PHOTO = 512, 600


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Original-format checkpoints of both kinds with the one YAML that loads them, and ours (config inside)."""
    root = tmp_path_factory.mktemp("hires")
    config = small_config()
    config.to_yaml(root / "vox-512-small.yaml")
    community = small_config(anti_alias_sigma=1.5)
    return {
        "yaml": root / "vox-512-small.yaml",
        "k29": random_checkpoint(root / "k29.pth.tar", config, seed=0, original_format=True),
        "k13": random_checkpoint(root / "k13.pth.tar", community, seed=1, original_format=True),
        "ours-k13": random_checkpoint(root / "k13.pth", community, seed=1),
    }


@pytest.fixture(scope="module")
def face(tmp_path_factory):
    """A 600 x 600 photo of a real face and a 4-frame 320 x 240 clip of it moving."""
    face_clips = pytest.importorskip("face_clips")
    root = tmp_path_factory.mktemp("hires-face")
    photo = cv2.resize(face_clips.astronaut(), (PHOTO, PHOTO), interpolation=cv2.INTER_AREA)
    source = video_io.write_image(root / "astronaut.png", photo)
    driving = video_io.write_video(root / "face.mp4", face_clips.moving_clip(4)[0], 10)
    return source, driving


def animate_cli(models, kind, source, driving, out, *extra) -> int:
    args = ["animate", "--no-progress", "--source", str(source), "--driving", str(driving)]
    return main([*args, "--checkpoint", str(models[kind]), "--config", str(models["yaml"]), "--out", str(out), *extra])


def test_the_kernel_size_comes_from_each_checkpoint(models):
    for kind, size in (("k29", 29), ("k13", 13)):
        model = fomm.load_model(models[kind], config=models["yaml"])
        assert model.kp_detector.down.weight.shape[-1] == size
        assert model.generator.dense_motion_network.down.weight.shape[-1] == size
        assert model.frame_shape == (SIZE, SIZE)


@pytest.mark.slow
def test_crop_pastes_the_512_face_back_into_the_photo(models, face, tmp_path, capsys):
    source, driving = face
    assert animate_cli(models, "k13", source, driving, tmp_path / "pasted.mp4", "--crop") == 0
    info = video_io.probe(tmp_path / "pasted.mp4")
    assert (info.width, info.height, info.num_frames) == (PHOTO, PHOTO, 4)
    assert "pasted back into the photo" in capsys.readouterr().out
    assert animate_cli(models, "k29", source, driving, tmp_path / "crop.mp4", "--crop", "--no-paste-back") == 0
    info = video_io.probe(tmp_path / "crop.mp4")
    assert (info.width, info.height, info.num_frames) == (SIZE, SIZE, 4)


@pytest.mark.slow
def test_side_by_side_at_512(models, face, tmp_path):
    source, driving = face
    assert animate_cli(models, "k29", source, driving, tmp_path / "side.mp4", "--layout", "side-by-side") == 0
    info = video_io.probe(tmp_path / "side.mp4")
    assert info.num_frames == 4 and info.width == 3 * SIZE and info.height >= SIZE


@pytest.mark.slow
def test_live_at_512(models, face, tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    source, driving = face
    args = ["live", "--checkpoint", str(models["k13"]), "--config", str(models["yaml"]), "--source", str(source)]
    assert main([*args, "--camera", str(driving), "--out", str(tmp_path / "live.mp4"), "--no-realtime"]) == 0
    assert video_io.read_frames(tmp_path / "live.mp4")[0].shape == (4, SIZE, SIZE, 3)


@pytest.mark.slow
def test_app_with_an_uploaded_512_checkpoint(models, face, tmp_path):
    from fomm.apps.app import Animator, Options

    source, driving = face
    out, text = Animator(device="cpu", workdir=tmp_path).animate(
        str(source), str(driving), Options(crop=True), choice=None, uploaded=str(models["ours-k13"])
    )
    info = video_io.probe(out)
    assert (info.width, info.height, info.num_frames) == (PHOTO, PHOTO, 4)


@pytest.mark.slow
def test_onnx_runtime_matches_torch_at_512(models, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from fomm.animation.engine import AnimationEngine

    monkeypatch.setenv("FOMM_HOME", str(tmp_path))
    model = fomm.load_model(models["k13"], config=models["yaml"])
    rng = np.random.default_rng(0)
    source = cv2.GaussianBlur(rng.random((SIZE, SIZE, 3), dtype=np.float32), (0, 0), 8)
    driving = np.stack([np.roll(source, 6 * t, axis=1) for t in range(2)])
    frames = {}
    for backend in ("torch", "onnxruntime"):
        engine = AnimationEngine(model, batch_size=2, backend=backend)
        engine.set_source(source)
        frames[backend] = np.concatenate([o["prediction"] for o in engine.run(driving)])
    assert frames["torch"].shape == (2, SIZE, SIZE, 3)
    assert np.abs(frames["onnxruntime"] - frames["torch"]).max() < 1e-4


@pytest.mark.slow
def test_evaluate_at_512(models, tmp_path, synthetic_dataset):
    data = synthetic_dataset("face", num_train=0, num_test=2, num_frames=3, size=SIZE, seed=3, num_cross_pairs=1)
    out = tmp_path / "report.json"
    args = ["evaluate", "--checkpoint", str(models["ours-k13"]), "--data", str(data), "--out", str(out)]
    assert main([*args, "--no-progress", "--max-videos", "1"]) == 0
    report = json.loads(out.read_text())
    assert report["frame_shape"] == [SIZE, SIZE] and report["dataset"]["size"] == SIZE
    for task in ("reconstruction", "cross_identity"):
        assert all(np.isfinite(v) for v in report[task]["model"].values() if isinstance(v, float)), report[task]


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["result", "side-by-side"])
def test_the_pipeline_decodes_as_it_writes(models, tmp_path, monkeypatch, layout):
    """Peak memory does not grow with the video's length because no more than a batch of frames
    is ever decoded ahead of what has been written (counted, with the networks stubbed)."""
    from fomm.models.generator import OcclusionAwareGenerator
    from fomm.models.keypoint_detector import KPDetector

    def cheap_keypoints(self, image):
        b = image.shape[0]
        value = torch.linspace(-0.5, 0.5, self.num_kp * 2).view(1, self.num_kp, 2).expand(b, -1, -1)
        return {"value": value.clone(), "jacobian": torch.eye(2).expand(b, self.num_kp, 2, 2).clone()}

    def cheap_animate(self, source, kp_driving, kp_source, outputs=None):
        return {"prediction": source.image.expand(kp_driving["value"].shape[0], -1, -1, -1) * 0.5}

    frames = [np.full((SIZE, SIZE, 3), 10 * t, np.uint8) for t in range(12)]
    driving = video_io.write_video(tmp_path / "drive.mp4", frames, 10)
    source = video_io.write_image(tmp_path / "source.png", frames[0])
    decoded, seen = [0], []
    real_iter, real_write = video_io.iter_frames, video_io.VideoWriter.write

    def counting_iter(*args, **kwargs):
        for frame in real_iter(*args, **kwargs):
            decoded[0] += 1
            yield frame

    def counting_write(self, frame):
        seen.append(decoded[0])
        return real_write(self, frame)

    monkeypatch.setattr(KPDetector, "forward", cheap_keypoints)
    monkeypatch.setattr(OcclusionAwareGenerator, "animate", cheap_animate)
    monkeypatch.setattr(video_io, "iter_frames", counting_iter)
    monkeypatch.setattr(video_io.VideoWriter, "write", counting_write)
    out = tmp_path / "out.mp4"
    assert animate_cli(models, "k29", source, driving, out, "--layout", layout, "--batch-size", "2") == 0
    assert len(seen) == 12 and decoded[0] == 12
    ahead = [count - written for written, count in enumerate(seen)]
    assert max(ahead) <= 2, ahead  # one batch (2 frames) decoded ahead, never the whole clip
