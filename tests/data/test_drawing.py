"""fomm.data.drawing: the gist_rainbow colormap, keypoint discs, side-by-side panels, grids, contact sheets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fomm.data.drawing import (
    contact_sheet,
    default_radius,
    draw_keypoints,
    gist_rainbow,
    grid,
    keypoint_colors,
    keypoints_to_pixels,
    side_by_side,
    vstack,
)
from fomm.data.image_ops import to_uint8
from fomm.errors import FommError


def test_gist_rainbow_matches_matplotlib_anchors():
    # matplotlib: gist_rainbow(0) = (1, 0, 0.16), gist_rainbow(1.0) = (1, 0, 0.75)
    np.testing.assert_allclose(gist_rainbow(0.0), [1.0, 0.0, 0.16], atol=1e-6)
    np.testing.assert_allclose(gist_rainbow(1.0), [1.0, 0.0, 0.75], atol=1e-6)
    # The 256-entry table: x = 0.4 falls in entry 102, i.e. 102 / 255 = 0.4, pure green.
    np.testing.assert_allclose(gist_rainbow(0.4), [0.0, 1.0, 0.0], atol=0.02)
    # Out-of-range values are clipped, arrays keep their shape.
    assert gist_rainbow(np.zeros((2, 3))).shape == (2, 3, 3)
    np.testing.assert_array_equal(gist_rainbow(-1.0), gist_rainbow(0.0))
    np.testing.assert_array_equal(gist_rainbow(2.0), gist_rainbow(1.0))


def test_keypoint_colors_follow_the_original_visualizer():
    colors = keypoint_colors(10)
    assert colors.shape == (10, 3) and colors.dtype == np.float32
    np.testing.assert_array_equal(colors, gist_rainbow(np.arange(10) / 10))
    assert len({tuple(np.round(c, 4)) for c in colors}) == 10  # all distinct
    assert colors.min() >= 0 and colors.max() <= 1
    assert keypoint_colors(0).shape == (0, 3)


def test_keypoints_to_pixels_uses_the_projects_one_convention():
    # x_px = (x + 1) / 2 * (W - 1): -1 and +1 are the centres of the first and last pixels
    px = keypoints_to_pixels(np.array([[-1.0, -1.0], [0.0, 0.0], [1.0, 0.5]]), (65, 129))
    np.testing.assert_allclose(px, [[0, 0], [64, 32], [128, 48]])
    # dict / tensor / batch-of-one input
    kp = {"value": torch.tensor([[[0.0, 0.0]]])}
    np.testing.assert_allclose(keypoints_to_pixels(kp, (11, 11)), [[5, 5]])
    with pytest.raises(FommError, match="keypoints have shape"):
        keypoints_to_pixels(np.zeros((3, 3)), (10, 10))


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_draw_keypoints_paints_discs_and_keeps_the_input(dtype):
    image = np.zeros((65, 65, 3), dtype)  # (W - 1) / 2 = 32: keypoint 0 is pixel centre 32
    original = image.copy()
    kp = np.array([[0.0, 0.0], [-0.5, 0.5]])
    out = draw_keypoints(image, kp, radius=3)
    assert out.dtype == image.dtype and out.shape == image.shape
    np.testing.assert_array_equal(image, original)  # not modified in place
    colors = keypoint_colors(2)
    expected = np.rint(colors * 255).astype(np.uint8) if dtype == np.uint8 else colors
    np.testing.assert_array_equal(out[32, 32], expected[0])  # centre pixel of keypoint 0
    np.testing.assert_array_equal(out[48, 16], expected[1])  # (x, y) = (-0.5, 0.5) -> column 16, row 48
    # A disc: pixels closer than the radius to the centre, as skimage.draw.circle paints them.
    painted = np.any(out != 0, axis=-1)
    yy, xx = np.mgrid[:65, :65]
    disc = ((yy - 32) ** 2 + (xx - 32) ** 2 < 9) | ((yy - 48) ** 2 + (xx - 16) ** 2 < 9)
    np.testing.assert_array_equal(painted, disc)


def test_draw_keypoints_outline_batch_clipping_and_defaults():
    image = np.full((32, 32, 3), 255, np.uint8)
    out = draw_keypoints(image, np.array([[0.0, 0.0]]), radius=4, outline=True)
    assert (out == 0).all(axis=-1).any()  # a black ring
    # Keypoints off the image are skipped, partly visible ones clipped; NaN ignored.
    out = draw_keypoints(image, np.array([[5.0, 5.0], [1.0, 1.0], [np.nan, 0.0]]), radius=3)
    changed = np.any(out != 255, axis=-1)
    assert changed.sum() > 0 and changed[:28, :28].sum() == 0
    # Batches: (B, H, W, 3) with (B, K, 2), tensors accepted.
    batch = np.zeros((2, 32, 32, 3), np.float32)
    kps = torch.tensor([[[0.0, 0.0]], [[0.5, 0.5]]])
    out = draw_keypoints(batch, kps)
    assert out.shape == batch.shape and out[0, 16, 16].any() and out[1, 24, 24].any() and not out[1, 16, 16].any()
    with pytest.raises(FommError, match="batch of 2"):
        draw_keypoints(batch, np.zeros((3, 1, 2)))
    assert default_radius((256, 256)) == 5 and default_radius((64, 64)) == 2
    with pytest.raises(FommError, match="colours"):
        draw_keypoints(image, np.zeros((3, 2)), colors=np.ones((2, 3)))


def test_to_uint8():
    np.testing.assert_array_equal(to_uint8(np.array([0.0, 0.5, 1.0, 1.2, -0.1])), [0, 128, 255, 255, 0])
    a = np.arange(5, dtype=np.uint8)
    assert to_uint8(a) is a
    assert to_uint8(torch.ones(2)).tolist() == [255, 255]


def test_side_by_side_and_grid():
    a = np.zeros((64, 64, 3), np.uint8)
    b = np.ones((32, 48, 3), np.float32)  # another height and dtype: scaled to 64 high, uint8
    row = side_by_side([a, b, a])
    assert row.shape == (64, 64 + 96 + 64, 3) and row.dtype == np.uint8
    assert (row[:, 64:160] == 255).all()
    spaced = side_by_side([a, a], gap=4, background=1.0)
    assert spaced.shape == (64, 132, 3) and (spaced[:, 64:68] == 255).all()
    assert side_by_side([b, b], height=16).shape == (16, 48, 3)
    g = grid([[a, a, a], [a, a]], gap=2)
    assert g.shape == (64 * 2 + 2, 64 * 3 + 4, 3)
    assert (g[66:, 130:] == 255).all()  # the shorter row is padded
    assert vstack([a, np.zeros((10, 20), np.uint8)]).shape == (74, 64, 3)  # gray accepted
    with pytest.raises(FommError, match="no panels"):
        side_by_side([])
    with pytest.raises(FommError, match="shape"):
        side_by_side([np.zeros((4, 4, 5))])


def test_contact_sheet_layout_and_labels():
    images = [np.full((40, 40, 3), 10 * i, np.uint8) for i in range(5)]
    sheet = contact_sheet(images, gap=2, background=1.0)
    assert sheet.shape == (2 * 40 + 2, 3 * 40 + 4, 3)  # ceil(sqrt(5)) = 3 columns, 2 rows
    assert (sheet[0:40, 42:82] == 10).all() and (sheet[42:, 84:] == 255).all()
    sheet = contact_sheet(images, columns=5, gap=0, cell_size=(20, 20))
    assert sheet.shape == (20, 100, 3)
    wide = contact_sheet([np.zeros((20, 40, 3), np.float32)], cell_size=(40, 40), background=1.0)
    assert wide.shape == (40, 40, 3) and wide.dtype == np.float32
    assert (wide[10:30] == 0).all() and (wide[:10] == 1).all()  # scaled to fit and centred
    labelled = contact_sheet(images[:2], columns=2, labels=["a", "frame 1"], gap=0)
    plain = contact_sheet(images[:2], columns=2, gap=0)
    assert (labelled != plain).any()
    assert (labelled[:, :40] != plain[:, :40]).any() and (labelled[:, 40:] != plain[:, 40:]).any()
    with pytest.raises(FommError, match="1 label given for 5 images"):
        contact_sheet(images, labels=["x"])
    with pytest.raises(FommError, match="no images"):
        contact_sheet([])


def test_label_panel_and_labelled_row():
    from fomm.data.drawing import label_panel, labelled_row

    image = np.zeros((64, 64, 3), np.uint8)
    out = label_panel(image, "source")
    assert out.shape == (64 + 14, 64, 3) and out.dtype == np.uint8
    band = out[:14]
    assert band.max() > 200 and np.median(band) < 60  # white text on a dark band
    assert (out[14:] == 0).all()  # the picture itself is untouched
    assert label_panel(image.astype(np.float32), "x").dtype == np.float32
    # 64-pixel panels are enlarged to 128 so the labels stay legible
    row = labelled_row([image, image + 50, image + 100], ["source", "driving", "result"])
    assert row.shape == (128 + 16, 3 * 128, 3)
    for k in range(3):  # each panel has its own label
        assert row[:16, k * 128 : (k + 1) * 128].max() > 200
    np.testing.assert_array_equal(row[16:, 128:256], 50)
    with pytest.raises(FommError, match="2 labels given for 1 panel;"):
        labelled_row([image], ["a", "b"])


def test_training_visualisation_names_each_column():
    from fomm.training.visualize import make_visualization

    gen = torch.Generator().manual_seed(0)
    batch = {"source": torch.rand(2, 3, 32, 32, generator=gen), "driving": torch.rand(2, 3, 32, 32, generator=gen)}
    kp = {"value": torch.rand(2, 5, 2, generator=gen) * 2 - 1}
    generated = {
        "prediction": batch["driving"],
        "kp_source": kp,
        "kp_driving": kp,
        "occlusion_map": torch.ones(2, 1, 8, 8),
    }
    image = make_visualization(batch, generated, min_size=128)
    assert image.shape == (16 + 2 * 128, 5 * 128, 3)  # source, driving, occlusion, prediction + kp, prediction
    for k in range(5):
        assert image[:16, k * 128 : (k + 1) * 128].max() > 200  # a name above every column
