"""The animation API and engine: input handling, batching, caching, precision, best frame."""

import numpy as np
import pytest
import torch

import fomm
from fomm.animation.engine import AnimationEngine, best_frame_index, closest_pose_index, prepare_frames
from fomm.errors import FommError
from fomm.testing import random_model


@pytest.fixture(scope="module")
def model():
    return random_model(seed=0)


@pytest.fixture(scope="module")
def clip():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64] / 63.0
    frames = []
    for t in range(9):
        phase = 0.3 * t
        frame = np.stack(
            [
                0.5 + 0.4 * np.sin(6 * xx + phase),
                0.5 + 0.4 * np.cos(5 * yy - phase),
                0.5 + 0.3 * np.sin(4 * (xx + yy) + phase),
            ],
            axis=-1,
        )
        frames.append(frame)
    source = np.clip(np.stack(frames)[0] + 0.05 * rng.standard_normal((64, 64, 3)), 0, 1)
    return source.astype(np.float32), np.stack(frames).astype(np.float32)


def reference_loop(model, source, driving, relative=True, adapt=True):
    """A plain per-frame loop following the original make_animation."""
    with torch.no_grad():
        src = torch.from_numpy(source).permute(2, 0, 1)[None]
        kp_source = model.kp_detector(src)
        kp_initial = model.kp_detector(torch.from_numpy(driving[0]).permute(2, 0, 1)[None])
        out = []
        for frame in driving:
            kp = model.kp_detector(torch.from_numpy(frame).permute(2, 0, 1)[None])
            kp_norm = fomm.normalize_kp(
                kp_source,
                kp,
                kp_initial,
                adapt_movement_scale=adapt,
                use_relative_movement=relative,
                use_relative_jacobian=relative,
            )
            out.append(model.generator(src, kp_driving=kp_norm, kp_source=kp_source)["prediction"][0])
    return torch.stack(out).permute(0, 2, 3, 1).numpy()


@pytest.mark.slow
@pytest.mark.parametrize("relative", [True, False])
def test_batched_equals_per_frame_loop(model, clip, relative):
    source, driving = clip
    expected = reference_loop(model, source, driving, relative=relative)
    for batch_size in (1, 4, 16):
        out = fomm.animate(model, source, driving, relative=relative, batch_size=batch_size)
        assert out.shape == driving.shape and out.dtype == np.float32
        assert np.abs(out - expected).max() < 1e-5


def test_source_caching_gives_the_same_frames(model, clip):
    source, driving = clip
    engine = AnimationEngine(model, batch_size=3)
    engine.set_source(source)
    first = np.concatenate([o["prediction"] for o in engine.run(iter(driving))])
    engine.set_source(source)  # reset the initial frame, keep everything else cached
    second = np.concatenate([o["prediction"] for o in engine.run(iter(driving))])
    assert np.array_equal(first, second)
    assert np.abs(first - reference_loop(model, source, driving)).max() < 1e-5


@pytest.mark.slow
def test_fast_precision_psnr(model, clip):
    source, driving = clip
    exact = fomm.animate(model, source, driving, precision="exact")
    engine = AnimationEngine(model, precision="fast", fast_dtype=torch.bfloat16)  # emulated where no bf16 units
    engine.set_source(source)
    fast = np.concatenate([o["prediction"] for o in engine.run(driving)])
    psnr = 10 * np.log10(1.0 / np.mean((exact - fast) ** 2))
    assert psnr >= 35


@pytest.mark.slow
def test_uint8_gray_rgba_and_other_sizes(model, clip):
    source, driving = clip
    as_uint8 = fomm.animate(model, (source * 255).round().astype(np.uint8), (driving * 255).round().astype(np.uint8))
    assert as_uint8.shape == driving.shape
    gray = fomm.animate(model, source[..., 0], driving)
    gray_rgb = fomm.animate(model, np.repeat(source[..., :1], 3, axis=-1), driving)
    assert np.abs(gray - gray_rgb).max() < 1e-6
    # RGBA: composited over white, as for image files (fomm.data.image_ops)
    from fomm.data.image_ops import reset_warn_once

    reset_warn_once()
    alpha = np.full_like(source[..., :1], 0.5)
    with pytest.warns(UserWarning, match="white"):
        out = fomm.animate(model, np.concatenate([source, alpha], axis=-1), driving)
    assert np.abs(out - fomm.animate(model, source * 0.5 + 0.5, driving)).max() < 1e-6
    big = prepare_frames(np.zeros((100, 80, 3), np.uint8), (64, 64), "image", ndim=3)
    assert big.shape == (64, 64, 3)
    resized = fomm.animate(model, np.repeat(np.repeat(source, 2, 0), 2, 1), driving)
    assert resized.shape == driving.shape


def test_bad_inputs(model, clip):
    source, driving = clip
    with pytest.raises(FommError, match="no frames"):
        fomm.animate(model, source, driving[:0])
    with pytest.raises(FommError, match="shape"):
        fomm.animate(model, source[None, None], driving)
    with pytest.raises(FommError, match="channels"):
        fomm.animate(model, np.zeros((64, 64, 5), np.float32), driving)
    with pytest.raises(FommError, match="outside \\[0, 1\\]"):
        fomm.animate(model, source * 255, driving)
    with pytest.raises(FommError, match="precision"):
        fomm.animate(model, source, driving, precision="half")


def test_best_frame_equals_backward_plus_forward(model, clip):
    """The original animates backward and forward from the best frame; same frames here."""
    source, driving = clip
    index = 4
    forward = reference_loop(model, source, driving[index:])
    backward = reference_loop(model, source, driving[: index + 1][::-1].copy())
    expected = np.concatenate([backward[::-1], forward[1:]])
    out = fomm.animate(model, source, driving, best_frame=index)
    assert np.abs(out - expected).max() < 1e-5


def test_best_frame_auto_picks_the_matching_pose(model, clip):
    source, driving = clip
    engine = AnimationEngine(model, batch_size=4)
    engine.set_source(driving[6])
    assert best_frame_index(engine, driving) == 6
    out = fomm.animate(model, driving[6], driving, best_frame="auto")
    assert out.shape == driving.shape


def test_closest_pose_ignores_translation_and_scale_and_takes_cached_batches():
    torch.manual_seed(0)
    source = torch.rand(5, 2) * 2 - 1
    poses = torch.rand(7, 5, 2) * 2 - 1
    poses[4] = source * 0.5 + torch.tensor([0.3, -0.2])  # the source's pose, moved and shrunk
    assert closest_pose_index(source, [poses]) == 4
    assert closest_pose_index(source, [poses[:3], poses[3:6], poses[6:]]) == 4  # batches in order
    poses[1] = poses[4]
    assert closest_pose_index(source, [poses]) == 1  # the first of equals


def test_best_frame_index_is_the_closest_pose_of_the_driving_keypoints(model, clip):
    source, driving = clip
    engine = AnimationEngine(model, batch_size=4)
    engine.set_source(source)
    kp = engine.keypoints(prepare_frames(driving, model.frame_shape, "driving video", ndim=4))["value"]
    assert best_frame_index(engine, driving) == closest_pose_index(engine.kp_source["value"][0], [kp])
