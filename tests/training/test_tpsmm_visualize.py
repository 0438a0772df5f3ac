"""``--vis-every`` for TPSMM runs: FOMM's training picture with TPSMM's outputs (each TPS's 5 control
points in one colour, the finest occlusion mask, the contribution maps), written atomically."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from test_tpsmm_train import tiny_config, train  # noqa: I001 - tests/training/test_tpsmm_train.py

from fomm.data.image_ops import kp_to_pixels
from fomm.models.tpsmm.config import resolve_tpsmm_config
from fomm.testing import random_tpsmm_model
from fomm.training.tpsmm.losses import TpsmmObjective
from fomm.training.tpsmm.records import tpsmm_visualization
from fomm.training.visualize import contribution_image, group_colors, keypoint_colors

COLUMNS = ("source", "driving", "equivariance warp", "deformed source", "occlusion", "contribution")
COLUMNS += ("prediction + kp", "prediction")
BAND, S = 16, 128  # the names' band above the first row; frames enlarged to 128 px


@pytest.fixture(scope="module")
def step():
    """A batch and the objective's outputs for it (tiny seeded model, smooth frames)."""
    model = random_tpsmm_model().train()
    objective = TpsmmObjective(model, resolve_tpsmm_config(tiny_config()).train_params, None, torch.Generator())
    gen = torch.Generator().manual_seed(1)
    batch = {k: F.interpolate(torch.rand(2, 3, 8, 8, generator=gen), size=(64, 64), mode="bilinear") for k in "ab"}
    batch = {"source": batch["a"], "driving": batch["b"]}
    with torch.no_grad():
        _, generated = objective(batch, epoch=0)
    return batch, generated


def test_group_colors_give_each_tps_one_colour():
    colors = group_colors(10, 5)
    assert (colors[:5] == keypoint_colors(2)[0]).all() and (colors[5:] == keypoint_colors(2)[1]).all()
    assert group_colors(3).tolist() == keypoint_colors(3).tolist()


def test_the_picture_has_tpsmm_columns_and_its_keypoints(step):
    batch, generated = step
    image = tpsmm_visualization(batch, generated, kp_size=3)
    assert image.shape == (BAND + 2 * S, len(COLUMNS) * S, 3) and image.dtype == np.uint8
    for k in range(len(COLUMNS)):
        assert image[:BAND, k * S : (k + 1) * S].max() > 200  # a name above every column
    # the source column: each keypoint's disc in its TPS's colour (2 TPS: keypoints 0-4, 5-9)
    kp = generated["kp_source"]["fg_kp"][1].numpy()
    for k, (x, y) in enumerate(np.rint(kp_to_pixels(kp.astype(np.float64), (S, S))).astype(int)):
        if 3 <= x < S - 3 and 3 <= y < S - 3:
            assert image[BAND + S + y, x].tolist() in [c.tolist() for c in group_colors(10, 5)], k
    # the contribution column is the colour mix of the maps (second row, nearest enlargement)
    expected = contribution_image(generated["contribution_maps"][1], S)
    np.testing.assert_array_equal(image[BAND + S :, 5 * S : 6 * S], expected)
    maps = generated["contribution_maps"][1, :, 0, 0]  # the top-left cell
    palette = np.concatenate([[[128, 128, 128]], keypoint_colors(2)]) / 255
    np.testing.assert_allclose(expected[0, 0] / 255, maps.numpy() @ palette, atol=1 / 255 + 1e-6)
    # the occlusion column is the finest mask in gray
    mask = generated["occlusion_map"][-1][1, 0]
    assert abs(float(image[BAND + S :, 4 * S : 5 * S, 0].mean()) / 255 - float(mask.mean())) < 0.01


@pytest.mark.slow
def test_a_run_writes_a_picture_every_vis_every_steps_and_at_its_end(tpsmm_data, tmp_path, capsys):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny_config()))
    out = tmp_path / "run"
    assert train(tpsmm_data, out, "--config", str(tmp_path / "tiny.yaml"), "--max-steps", "3", "--vis-every", "2") == 0
    assert "not used by Thin-Plate Spline" not in capsys.readouterr().err  # --vis-every is no longer FOMM only
    assert sorted(p.name for p in (out / "vis").iterdir()) == ["step-00000002.png", "step-00000003.png"]
    picture = cv2.imread(str(out / "vis" / "step-00000003.png"))
    assert picture.shape == (BAND + 2 * S, len(COLUMNS) * S, 3)
