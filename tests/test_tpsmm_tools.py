"""Every fomm tool with a Thin-Plate Spline Motion Model checkpoint (original layout, tiny sizes):
``fomm animate`` in its three modes, the one-line error for ``--avd`` with a FOMM model."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
import yaml

from fomm.cli import main
from fomm.data.video_io import VideoWriter
from fomm.testing import TINY_TPSMM, moving_square_video, random_checkpoint, random_tpsmm_model

PARTS = ("inpainting_network", "kp_detector", "dense_motion_network", "avd_network", "bg_predictor")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A tiny TPSMM checkpoint in the original layout, its config, a source photo and a clip."""
    d = tmp_path_factory.mktemp("tpsmm")
    model = random_tpsmm_model()
    torch.save({**{p: getattr(model, p).state_dict() for p in PARTS}, "epoch": 0}, d / "tiny.pth.tar")
    (d / "tiny.yaml").write_text(yaml.safe_dump(TINY_TPSMM))
    rng = np.random.default_rng(0)
    frames = list(moving_square_video(64, 5, seed=0))
    imageio.imwrite(d / "source.png", (rng.random((64, 64, 3)) * 255).astype(np.uint8))
    imageio.mimwrite(d / "driving.gif", frames, duration=0.1)
    with VideoWriter(d / "camera.mp4", fps=25) as writer:  # OpenCV (live's camera) reads one GIF frame
        for frame in frames:
            writer.write(frame)
    return {
        "camera": d / "camera.mp4",
        "dir": d,
        "ckpt": d / "tiny.pth.tar",
        "config": d / "tiny.yaml",
        "source": d / "source.png",
        "driving": d / "driving.gif",
    }


def animate_cli(files, out: Path, *extra: str, checkpoint: Path | None = None) -> int:
    """``fomm animate`` of the source by the clip: the TPSMM checkpoint and its config, or ``checkpoint``."""
    model = ["--checkpoint", str(files["ckpt"]), "--config", str(files["config"])]
    if checkpoint is not None:
        model = ["--checkpoint", str(checkpoint)]
    inputs = ["--source", str(files["source"]), "--driving", str(files["driving"])]
    return main(["animate", *inputs, *model, "--out", str(out), "--no-progress", *extra])


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["standard", "relative", "avd"])
def test_animate_modes(files, mode, capsys):
    out = files["dir"] / f"{mode}.gif"
    assert animate_cli(files, out, "--mode", mode) == 0
    frames = imageio.mimread(out)
    assert len(frames) == 5 and frames[0].shape[:2] == (64, 64)
    assert "wrote" in capsys.readouterr().out


@pytest.mark.slow
def test_animate_side_by_side_with_keypoints_and_best_frame(files):
    out = files["dir"] / "sbs.gif"
    assert animate_cli(files, out, "--layout", "side-by-side", "--show-keypoints", "--best-frame", "auto") == 0
    assert imageio.mimread(out)[0].shape[1] > 3 * 64


def test_avd_with_a_fomm_checkpoint_is_one_line(files, tmp_path, capsys):
    ckpt = random_checkpoint(tmp_path / "fomm.pth.tar")
    code = animate_cli(files, tmp_path / "x.gif", "--avd", checkpoint=ckpt)
    err = capsys.readouterr().err
    assert code != 0 and "Thin-Plate Spline Motion Model checkpoint" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.gif").exists()


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--avd"]])
def test_live_with_a_tpsmm_checkpoint(files, tmp_path, capsys, monkeypatch, extra):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    out = tmp_path / "live.gif"
    args = ["live", "--checkpoint", str(files["ckpt"]), "--config", str(files["config"]), "--source"]
    args += [str(files["source"]), "--camera", str(files["camera"]), "--out", str(out), "--no-realtime", *extra]
    assert main(args) == 0
    assert "5 frames processed" in capsys.readouterr().out
    assert len(imageio.mimread(out)) == 5


def test_app_menu_and_loader_take_a_tpsmm_checkpoint(tmp_path):
    from fomm.apps.app import ModelCache, checkpoint_choices
    from fomm.models.tpsmm.checkpoint import tpsmm_checkpoint_dict

    labels = dict((value, label) for label, value in checkpoint_choices())
    assert "tpsmm-vox" in labels and "by hand" in labels["tpsmm-vox"]
    torch.save(tpsmm_checkpoint_dict(random_tpsmm_model()), tmp_path / "upload.pth.tar")
    model = ModelCache().get(tmp_path / "upload.pth.tar")  # an upload: recognised by its layout
    assert model.kind == "tpsmm"


@pytest.mark.slow
def test_app_animates_an_uploaded_tpsmm_checkpoint_with_avd(files, tmp_path):
    from fomm.animation.options import AnimateOptions
    from fomm.apps import app
    from fomm.apps.animator import Animator
    from fomm.models.tpsmm.checkpoint import tpsmm_checkpoint_dict

    torch.save(tpsmm_checkpoint_dict(random_tpsmm_model()), tmp_path / "upload.pth.tar")
    values = {name: None for name in app.INPUT_NAMES}
    values.update(crop=False, paste_back=True, color_match=False, side=False, keypoints=False, driving_fit="crop")
    values.update(relative=True, adapt=True, precision="exact", best_mode="first frame", best_index=0, avd=True)
    options = app.options_from(values)
    assert options == AnimateOptions(avd=True)
    animator = Animator(device="cpu", workdir=tmp_path / "work")
    out, text = animator.animate(
        str(files["source"]), str(files["camera"]), options, None, str(tmp_path / "upload.pth.tar")
    )
    assert out.is_file() and text.startswith("5 frames, 64x64")


def test_models_lists_the_tpsmm_checkpoints_and_download_says_how_by_hand(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FOMM_HOME", str(tmp_path))
    assert main(["models", "--urls"]) == 0
    listing = capsys.readouterr().out
    assert "tpsmm-ted     tpsmm-ted-384" in listing and "MIT licence" in listing
    assert main(["download", "tpsmm-vox"]) != 0
    err = capsys.readouterr().err.strip()
    assert "download vox.pth.tar by hand from https://drive.google.com/" in err and len(err.splitlines()) == 1
    assert str(tmp_path / "checkpoints" / "tpsmm-vox.pth.tar") in err


def test_download_verifies_a_tpsmm_file_by_its_shapes(tmp_path):
    from fomm.hub.fetch import check_shapes
    from fomm.models.tpsmm.checkpoint import tpsmm_checkpoint_dict

    torch.save(tpsmm_checkpoint_dict(random_tpsmm_model()), tmp_path / "mine.pth.tar")
    assert check_shapes(tmp_path / "mine.pth.tar", None) is not None


@pytest.mark.slow
def test_reconstruction_uses_the_background_predictor():
    from fomm.models.tpsmm.inference import reconstruct

    model = random_tpsmm_model()
    frames = np.random.default_rng(1).random((3, 64, 64, 3), dtype=np.float32)
    with_bg = reconstruct(model, frames, batch_size=2)
    with torch.no_grad():
        model.bg_predictor.bg_encoder.fc.bias.add_(0.2)  # another background affine: other frames
    assert with_bg.shape == (3, 64, 64, 3) and np.abs(reconstruct(model, frames) - with_bg).max() > 1e-3
    model.bg_predictor = None  # without one: the standard mode of the animation engine
    np.testing.assert_allclose(reconstruct(model, frames), fomm_animate(model, frames[0], frames), atol=1e-5)


def fomm_animate(model, source, driving):
    import fomm

    return fomm.animate(model, source, driving, relative=False)


@pytest.mark.slow
def test_evaluate_reconstruction_with_a_tpsmm_checkpoint(tmp_path, synthetic_dataset):
    from fomm.models.tpsmm.checkpoint import tpsmm_checkpoint_dict

    data = synthetic_dataset("puppet", num_train=0, num_test=2, num_frames=4, size=64, seed=3, num_cross_pairs=1)
    torch.save(tpsmm_checkpoint_dict(random_tpsmm_model()), tmp_path / "tiny.pth.tar")
    out = tmp_path / "report.json"
    args = ["evaluate", "--checkpoint", str(tmp_path / "tiny.pth.tar"), "--data", str(data), "--out", str(out)]
    assert main([*args, "--no-progress", "--tasks", "reconstruction"]) == 0
    import json

    report = json.loads(out.read_text())
    assert 0 < report["reconstruction"]["model"]["l1"] < 1


def test_many_sources_with_one_driving_video(files, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.png", "b.png"):
        (photos / name).write_bytes(files["source"].read_bytes())
    out = tmp_path / "many"
    assert animate_cli({**files, "source": photos}, out, "--mode", "avd") == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "b.mp4"]


@pytest.mark.slow
def test_crop_paste_back_and_audio_with_a_tpsmm_model(tmp_path):
    """A real face (the astronaut clip of tests/face_clips.py) cropped, animated by a TPSMM model
    and pasted back into the full photo."""
    face_clips = pytest.importorskip("face_clips")
    from fomm.animation.pipeline import animate_video
    from fomm.data import video_io

    frames, _ = face_clips.moving_clip(6)
    driving = video_io.write_video(tmp_path / "face", np.stack(frames), fps=25)
    source = video_io.write_image(tmp_path / "photo.png", frames[3])
    result = animate_video(
        source, driving, model=random_tpsmm_model(), out=tmp_path / "out.mp4", crop=True, progress=False
    )
    assert result["pasted_back"] and result["frames"] == 6
    assert result["size"] == (frames[0].shape[1], frames[0].shape[0])  # the full photo's size
