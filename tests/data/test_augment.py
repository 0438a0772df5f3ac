from __future__ import annotations

import colorsys

import numpy as np
import pytest

from fomm.data.augment import (
    AllAugmentationTransform,
    ColorJitter,
    RandomCrop,
    RandomFlip,
    RandomResize,
    RandomRotation,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    hsv_to_rgb,
    rgb_to_hsv,
)
from fomm.errors import FommError

VOX = {
    "flip_param": {"horizontal_flip": True, "time_flip": True},
    "jitter_param": {"brightness": 0.1, "contrast": 0.1, "saturation": 0.1, "hue": 0.1},
}


def _clip(t=4, h=16, w=20, seed=0):
    return np.random.default_rng(seed).random((t, h, w, 3), dtype=np.float32)


def test_hsv_matches_colorsys_and_round_trips():
    rgb = np.random.default_rng(0).random((200, 3), dtype=np.float32)
    rgb[:5] = [[0, 0, 0], [1, 1, 1], [0.5, 0.5, 0.5], [1, 0, 0], [0, 0, 1]]  # gray and pure hues
    hsv = rgb_to_hsv(rgb)
    expected = np.array([colorsys.rgb_to_hsv(*p) for p in rgb.astype(np.float64)])
    np.testing.assert_allclose(hsv, expected, atol=1e-5)
    np.testing.assert_allclose(hsv_to_rgb(hsv), rgb, atol=1e-5)
    back = np.array([colorsys.hsv_to_rgb(*p) for p in expected])
    np.testing.assert_allclose(hsv_to_rgb(expected), back, atol=1e-5)


def test_adjust_functions_follow_torchvision_semantics():
    red = np.zeros((1, 2, 2, 3), np.float32)
    red[..., 0] = 0.8
    np.testing.assert_allclose(adjust_brightness(red, 0.5)[0, 0, 0], [0.4, 0, 0], atol=1e-6)
    np.testing.assert_allclose(adjust_brightness(red, 2.0)[0, 0, 0], [1.0, 0, 0], atol=1e-6)  # clipped
    gray = 0.299 * 0.8
    np.testing.assert_allclose(adjust_saturation(red, 0.0)[0, 0, 0], [gray] * 3, atol=1e-6)
    np.testing.assert_allclose(adjust_contrast(red, 0.0)[0, 0, 0], [gray] * 3, atol=1e-6)  # the mean gray
    np.testing.assert_allclose(adjust_hue(red, 0.5)[0, 0, 0], [0, 0.8, 0.8], atol=1e-6)  # red -> cyan
    np.testing.assert_allclose(adjust_hue(red, 1 / 3)[0, 0, 0], [0, 0.8, 0], atol=1e-6)  # red -> green


def test_jitter_parameter_ranges():
    jitter = ColorJitter(brightness=0.1, contrast=(0.5, 0.6), saturation=0, hue=0.2)
    rng = np.random.default_rng(0)
    for _ in range(200):
        order, b, c, s, h = jitter.get_params(rng)
        assert sorted(order) == [0, 1, 2, 3]
        assert 0.9 <= b <= 1.1 and 0.5 <= c <= 0.6 and s is None and -0.2 <= h <= 0.2
    assert ColorJitter(brightness=2.0).brightness == (0.0, 3.0)  # max(0, 1 - b)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"jitter_param": {"brightness": -0.1}}, "negative"),
        ({"jitter_param": {"hue": 0.7}}, "above 0.5"),
        ({"jitter_param": {"gamma": 0.1}}, "unknown key"),
        ({"flip_param": {"vertical_flip": True}}, "unknown key"),
        ({"crop_param": {"size": -5}}, "positive"),
        ({"crop_param": {}}, "incomplete"),
        ({"resize_param": {"ratio": [1.1, 0.9]}}, "min, max"),
        ({"resize_param": {"ratio": [0.9, 1.1], "interpolation": "cubic"}}, "bilinear"),
        ({"rotation_param": {"degrees": "x"}}, "number"),
        ({"jitter_param": {"contrast": "lots"}}, "not a number"),
    ],
)
def test_bad_parameters(kwargs, message):
    with pytest.raises(FommError, match=message):
        AllAugmentationTransform(**kwargs)


def test_no_parameters_is_identity():
    clip = _clip()
    out = AllAugmentationTransform()(clip, np.random.default_rng(0))
    np.testing.assert_array_equal(out, clip)


def test_shapes_ranges_and_determinism():
    transform = AllAugmentationTransform(**VOX)
    clip = _clip()
    a = transform(clip, np.random.default_rng(3))
    b = transform(list(clip), np.random.default_rng(3))  # a list of frames works too
    c = transform(clip, np.random.default_rng(4))
    assert a.shape == clip.shape and a.dtype == np.float32
    assert 0.0 <= a.min() and a.max() <= 1.0
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(clip, _clip())  # the input is not modified
    single = transform(clip[0], np.random.default_rng(3))
    assert single.shape == clip[0].shape


def test_same_transform_for_every_frame():
    frame = _clip(1)[0]
    clip = np.stack([frame] * 3)
    transform = AllAugmentationTransform(jitter_param=VOX["jitter_param"], flip_param={"horizontal_flip": True})
    for seed in range(5):
        out = transform(clip, np.random.default_rng(seed))
        np.testing.assert_array_equal(out[0], out[1])
        np.testing.assert_array_equal(out[0], out[2])
        assert np.abs(out[0] - frame).max() > 1e-4 or np.array_equal(out[0], frame[:, ::-1])


def test_flips_happen_half_the_time():
    clip = _clip(3)
    flip = RandomFlip(time_flip=True, horizontal_flip=True)
    rng = np.random.default_rng(0)
    time_flips = mirror_flips = 0
    for _ in range(400):
        out = flip(clip, rng)
        time_flipped = np.array_equal(out[0], clip[2]) or np.array_equal(out[0], clip[2][:, ::-1])
        mirrored = np.array_equal(out[1], clip[1][:, ::-1])
        assert np.array_equal(out[1], clip[1]) or mirrored
        time_flips += time_flipped
        mirror_flips += mirrored
    assert 160 < time_flips < 240 and 160 < mirror_flips < 240
    # disabled flips never change the clip
    still = RandomFlip()(clip, np.random.default_rng(0))
    np.testing.assert_array_equal(still, clip)


def test_mgif_style_resize_then_crop():
    # the original mgif config: resize by [0.9, 1.1] then crop back to the frame size
    transform = AllAugmentationTransform(
        flip_param={"horizontal_flip": True, "time_flip": True},
        resize_param={"ratio": [0.9, 1.1]},
        crop_param={"size": [32, 32]},
        jitter_param={"hue": 0.5},
    )
    clip = _clip(3, 32, 32)
    for seed in range(8):
        out = transform(clip, np.random.default_rng(seed))
        assert out.shape == (3, 32, 32, 3) and out.dtype == np.float32
        assert 0.0 <= out.min() and out.max() <= 1.0
    np.testing.assert_array_equal(transform(clip, np.random.default_rng(1)), transform(clip, np.random.default_rng(1)))


def test_resize_crop_rotation_details():
    clip = _clip(2, 20, 30)
    small = RandomResize(ratio=[0.5, 0.5])(clip, np.random.default_rng(0))
    assert small.shape == (2, 10, 15, 3)
    padded = RandomCrop(size=[24, 16])(small, np.random.default_rng(0))  # taller than 10: edge padding
    assert padded.shape == (2, 24, 16, 3)
    np.testing.assert_array_equal(padded[:, 0], padded[:, 7])  # (24 - 10) // 2 = 7 rows repeat the top
    crop = RandomCrop(size=8)(clip, np.random.default_rng(0))
    assert crop.shape == (2, 8, 8, 3)
    # the crop is a window of the clip, the same for every frame
    hits = [(y, x) for y in range(13) for x in range(23) if np.array_equal(clip[:, y : y + 8, x : x + 8], crop)]
    assert len(hits) == 1
    square = _clip(1, 9, 9)
    turned = RandomRotation(degrees=[90, 90])(square, np.random.default_rng(0))
    np.testing.assert_allclose(turned[0], np.rot90(square[0]), atol=1e-5)  # counter-clockwise
    assert RandomRotation(degrees=10).degrees == (-10.0, 10.0)


def test_resize_goes_through_image_ops():
    from fomm.data.image_ops import resize_frame

    clip = _clip(2, 10, 12)
    nearest = RandomResize(ratio=[2.0, 2.0], interpolation="nearest")(clip, np.random.default_rng(0))
    np.testing.assert_array_equal(nearest, clip.repeat(2, axis=1).repeat(2, axis=2))  # pixels kept sharp
    linear = RandomResize(ratio=[1.5, 1.5])(clip, np.random.default_rng(0))
    assert linear.shape == (2, 15, 18, 3) and linear.dtype == clip.dtype
    np.testing.assert_array_equal(linear[1], resize_frame(clip[1], (15, 18), "linear"))
