"""The community's 512 x 512 checkpoint in ``fomm models`` / ``fomm download``, and 512 checkpoints
of either kind given by name (a FOMM_MODELS entry fetched by hand) or by URL download check."""

from __future__ import annotations

import pytest
import torch

from fomm.cli import main
from fomm.hub.fetch import check_shapes
from fomm.testing import random_checkpoint, small_config


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("FOMM_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FOMM_MODELS", raising=False)
    return tmp_path / "home"


def test_models_lists_vox_512_with_its_page_and_licence(home, capsys):
    assert main(["models", "--urls"]) == 0
    listing = capsys.readouterr().out
    row = next(line for line in listing.splitlines() if line.startswith("vox-512 "))
    assert row.split()[:3] == ["vox-512", "vox-512", "vox-512.pth.tar"]
    assert "mediafire.com/folder/e6ikqpr3eegxf/first-order-model" in listing
    assert "first-order-model-checkpoint-94.pth.tar; CC0-1.0 licence" in listing


def test_download_says_how_to_get_it_by_hand(home, capsys):
    assert main(["download", "vox-512"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "download first-order-model-checkpoint-94.pth.tar by hand from https://www.mediafire.com/" in err
    assert str(home / "checkpoints" / "vox-512.pth.tar") in err


def _meta_states(sigma):
    from fomm.config import load_preset
    from fomm.models.first_order_model import FirstOrderModel

    cfg = load_preset("vox-512")
    cfg.model_params.kp_detector_params.anti_alias_sigma = sigma
    cfg.model_params.generator_params.dense_motion_params.anti_alias_sigma = sigma
    with torch.device("meta"):
        model = FirstOrderModel(cfg, with_discriminator=False)
    return {part: getattr(model, part).state_dict() for part in ("kp_detector", "generator")}


@pytest.mark.slow
@pytest.mark.parametrize("sigma, kernel", [(None, 29), (1.5, 13)])
def test_the_name_vox_512_chooses_the_512_config_for_either_kind(home, sigma, kernel):
    """``--checkpoint vox-512`` is its file in the cache, vox-512.pth.tar: the name points to
    vox-512, which takes the 13x13 kind too (whose shapes are vox-256's); by shapes alone the 29x29
    kind is vox-512 and the 13x13 kind is either (vox-256, with one warning line naming vox-512)."""
    from fomm.models.checkpoint import LoadRequest, _fomm_config

    states = _meta_states(sigma)
    for label in (str(home / "checkpoints" / "vox-512.pth.tar"), "mine.pth.tar"):
        if kernel == 13 and label == "mine.pth.tar":
            with pytest.warns(UserWarning, match="read as vox-256 at 256x256; its shapes fit vox-512 at 512x512"):
                assert _fomm_config({}, states, LoadRequest(None, label)).name == "vox-256"
            continue
        cfg = _fomm_config({}, states, LoadRequest(None, label))
        assert cfg.name == "vox-512" and cfg.frame_shape == (512, 512)
        assert cfg.model_params.kp_detector_params.anti_alias_sigma == sigma


@pytest.mark.parametrize("sigma", [None, 1.5])
def test_download_check_takes_both_kinds_for_the_512_config(tmp_path, sigma):
    path = random_checkpoint(tmp_path / "k.pth.tar", small_config(anti_alias_sigma=sigma), original_format=True)
    config = tmp_path / "small.yaml"
    small_config().to_yaml(config)
    assert check_shapes(path, str(config))  # the 29x29 config takes the 13x13 kind too
