"""The TPSMM building blocks (fomm.models.tpsmm) on tiny sizes: ResNet-18 key names, the TPS
kernel system of Eq. 2, the dropout of Eq. 7-8, configs and presets, and checkpoint recognition."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import yaml

from fomm import load_model
from fomm.config import DatasetParams, HourglassParams, TrainingParams
from fomm.errors import FommError
from fomm.models.tpsmm import TpsmmModel
from fomm.models.tpsmm.checkpoint import tpsmm_checkpoint_dict, tpsmm_preset_for
from fomm.models.tpsmm.config import TpsmmConfig, load_tpsmm_preset, resolve_tpsmm_config, tpsmm_preset_names
from fomm.models.tpsmm.dense_motion import dropout_softmax
from fomm.models.tpsmm.resnet import ResNet18
from fomm.models.tpsmm.tps import REGULARISATION, RandomTPS, tps_parameters, tps_warp
from fomm.testing import TINY_TPSMM, random_tpsmm_model


def test_resnet18_has_torchvision_key_names_and_shapes():
    with torch.device("meta"):
        state = ResNet18(100).state_dict()
    assert len(state) == 122  # torchvision's resnet18: 62 parameters, 60 BatchNorm buffers
    assert state["conv1.weight"].shape == (64, 3, 7, 7)
    assert state["layer1.0.conv1.weight"].shape == (64, 64, 3, 3)
    assert state["layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1)
    assert state["layer4.1.bn2.num_batches_tracked"].shape == ()
    assert state["fc.weight"].shape == (100, 512)
    assert "layer1.0.downsample.0.weight" not in state


def test_tps_solves_the_regularised_kernel_system():
    """Eq. 2 with lambda on the diagonal: T(P_i) + lambda w_i equals the target exactly."""
    gen = torch.Generator().manual_seed(0)
    control = torch.rand(2, 3, 5, 2, generator=gen) * 2 - 1
    target = control + 0.1 * torch.randn(2, 3, 5, 2, generator=gen)
    theta, weights = tps_parameters(control.double(), target.double())
    warped = tps_warp(control.double()[:1, 0], control.double()[:1, :1], theta[:1, :1], weights[:1, :1])
    assert warped.shape == (1, 1, 5, 2)
    mapped = warped[0, 0] + REGULARISATION * weights[0, 0]
    np.testing.assert_allclose(mapped.numpy(), target[0, 0].double().numpy(), atol=1e-10)


def test_random_tps_without_noise_is_the_identity():
    tps = RandomTPS(2, sigma_affine=0, sigma_tps=0, points_tps=5)
    frame = torch.zeros(2, 3, 8, 8)
    from fomm.models.geometry import make_coordinate_grid

    np.testing.assert_allclose(tps.grid(frame)[1].numpy(), make_coordinate_grid((8, 8)).numpy(), atol=1e-7)


def test_dropout_softmax_keeps_the_background():
    logits = torch.randn(3, 4, 5, 5, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(dropout_softmax(logits, 0.0), torch.softmax(logits, 1), atol=1e-5)
    only_bg = dropout_softmax(logits, 1.0)  # every TPS dropped: the background takes all
    assert torch.all(only_bg[:, 1:] == 0)
    assert torch.allclose(only_bg[:, 0], torch.ones(3, 5, 5), atol=1e-3)  # 1e-6 in the denominator


def test_presets_are_the_published_configs():
    assert tpsmm_preset_names() == ["tpsmm-mgif-256", "tpsmm-taichi-256", "tpsmm-ted-384", "tpsmm-vox-256"]
    ted, mgif = load_tpsmm_preset("tpsmm-ted-384"), load_tpsmm_preset("tpsmm-mgif-256")
    assert ted.frame_shape == (384, 384) and ted.train_params.batch_size == 12
    assert not mgif.model_params.common_params.bg and mgif.train_avd_params.lambda_affine == 1
    vox = load_tpsmm_preset("tpsmm-vox-256")
    assert vox.train_params.dropout_maxp == 0.3 and vox.train_params.bg_start == 10
    assert vox.model_params.dense_motion_params.max_features == 1024


def test_config_errors_are_one_line():
    bad = {"model_params": {"common_params": {"num_tps": 10, "num_kp": 3}}}
    with pytest.raises(FommError, match="unknown key model_params.common_params.num_kp"):
        resolve_tpsmm_config(bad)
    # a misplaced key is pointed to TPSMM's own section (not to FOMM's schema)
    bad = {"model_params": {"common_params": {"num_tps": 10}}, "train_params": {"warp_loss": 1}}
    with pytest.raises(FommError, match=r"^config: unknown key train_params.warp_loss; .* train_params.loss_weights$"):
        resolve_tpsmm_config(bad)
    with pytest.raises(FommError, match="^config is a list, not a mapping of TPSMM config sections$"):
        TpsmmConfig.from_dict([1])


def test_config_shares_fomm_sections_and_round_trips(tmp_path):
    """The sections both schemas have are fomm.config's classes (one declaration, one check)."""
    vox = load_tpsmm_preset("tpsmm-vox-256")
    assert isinstance(vox.model_params.dense_motion_params, HourglassParams)
    assert isinstance(vox.train_params, TrainingParams) and isinstance(vox.dataset_params, DatasetParams)
    assert vox.train_params.batch_size == 28 and vox.train_params.epoch_milestones == [70, 90]  # TPSMM defaults
    assert TpsmmConfig().train_params.batch_size == 28 and TpsmmConfig().frame_shape == (256, 256)
    again = TpsmmConfig.from_dict(yaml.safe_load(vox.to_yaml(tmp_path / "c.yaml")))
    assert again.to_dict() == vox.to_dict() and (tmp_path / "c.yaml").is_file()
    with pytest.raises(FommError, match="anti_alias_sigma"):  # FOMM's addition is not TPSMM's
        resolve_tpsmm_config(
            {"model_params": {"common_params": {"num_tps": 10}, "dense_motion_params": {"anti_alias_sigma": 1}}}
        )


def _meta_states(config, with_bg: bool) -> dict:
    with torch.device("meta"):
        model = TpsmmModel(config, with_bg=with_bg)
    parts = ["inpainting_network", "kp_detector", "dense_motion_network", "avd_network"]
    parts += ["bg_predictor"] if with_bg else []
    return {p: getattr(model, p).state_dict() for p in parts}


@pytest.mark.parametrize(
    "file, with_bg, preset",
    [
        ("vox.pth.tar", True, "tpsmm-vox-256"),
        ("ted.pth.tar", True, "tpsmm-ted-384"),
        ("taichi.pth.tar", True, "tpsmm-taichi-256"),
        ("mgif.pth.tar", False, "tpsmm-mgif-256"),
        ("checkpoint.pth.tar", False, "tpsmm-mgif-256"),
        ("checkpoint.pth.tar", True, "tpsmm-vox-256"),
    ],
)
def test_published_checkpoints_are_recognised_from_their_shapes(file, with_bg, preset):
    states = _meta_states("tpsmm-vox-256", with_bg)
    assert tpsmm_preset_for(file, states).name == preset


def test_original_layout_loads_with_a_config_and_ours_without(tmp_path):
    model = random_tpsmm_model()
    original = {
        p: getattr(model, p).state_dict() for p in ("inpainting_network", "kp_detector", "dense_motion_network")
    }
    torch.save({**original, "epoch": 3}, tmp_path / "orig.pth.tar")
    with pytest.raises(FommError, match="fits no published config"):
        load_model(tmp_path / "orig.pth.tar")
    with pytest.raises(FommError, match="is a FOMM config"):
        load_model(tmp_path / "orig.pth.tar", config="vox-256")
    wider = copy.deepcopy(TINY_TPSMM)
    wider["model_params"]["generator_params"]["block_expansion"] = 8
    with pytest.raises(FommError) as info:  # every tensor shape is checked: one line naming the first
        load_model(tmp_path / "orig.pth.tar", config=wider)
    assert "\n" not in str(info.value) and str(info.value).startswith(f"{tmp_path / 'orig.pth.tar'} does not fit")
    assert "inpainting_network: " in str(info.value) and "pass the --config it was trained with" in str(info.value)
    loaded = load_model(tmp_path / "orig.pth.tar", config=TINY_TPSMM)
    assert loaded.kind == "tpsmm" and not loaded.has_avd and loaded.bg_predictor is None
    torch.save(tpsmm_checkpoint_dict(model), tmp_path / "ours.pth.tar")
    ours = load_model(tmp_path / "ours.pth.tar")
    assert ours.has_avd and ours.bg_predictor is not None and ours.config.model_params.resnet_width == 4
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(ours.kp_detector(x)["fg_kp"], model.kp_detector(x)["fg_kp"])


def test_fast_precision_uses_bf16_where_native_and_says_so_where_not(monkeypatch):
    import fomm.models.tpsmm.inference as tpsmm_inference
    from fomm.models.tpsmm.inference import TpsmmInference

    model = random_tpsmm_model()
    monkeypatch.setattr(tpsmm_inference, "resolve_precision", lambda p, d, dtype=None: (torch.bfloat16, False))
    assert TpsmmInference(model, "fast").low_dtype == torch.bfloat16
    monkeypatch.setattr(tpsmm_inference, "resolve_precision", lambda p, d, dtype=None: (None, True))  # AVX2: int8
    with pytest.warns(UserWarning, match="no int8 path for TPSMM; running in fp32"):
        assert TpsmmInference(model, "fast").low_dtype is None


def test_the_engine_hands_its_fast_options_to_tpsmm():
    from fomm.animation.engine import AnimationEngine

    model = random_tpsmm_model()
    engine = AnimationEngine(model, precision="fast", fast_dtype=torch.bfloat16, channels_last=False)
    assert engine.inference.low_dtype == torch.bfloat16 and engine.inference.channels_last is False
    assert AnimationEngine(model, precision="fast", fast_dtype=torch.bfloat16).inference.channels_last is True


def test_fast_single_mask_model_keeps_the_hourglass_fp32_and_casts_for_its_head(monkeypatch):
    """Without ``multi_mask`` the one occlusion head takes the fp32 hourglass's output cast to bf16
    (measured 48.9 dB against exact on this tiny model)."""
    import fomm.models.tpsmm.inference as tpsmm_inference
    from fomm import animate

    config = copy.deepcopy(TINY_TPSMM)
    config["model_params"]["common_params"]["multi_mask"] = False
    model = random_tpsmm_model(config)
    forced = lambda p, d, dtype=None: (torch.bfloat16 if p == "fast" else None, False)  # noqa: E731
    monkeypatch.setattr(tpsmm_inference, "resolve_precision", forced)
    rng = np.random.default_rng(0)
    source, driving = rng.random((64, 64, 3), dtype=np.float32), rng.random((3, 64, 64, 3), dtype=np.float32)
    exact, fast = animate(model, source, driving), animate(model, source, driving, precision="fast")
    psnr = 10 * np.log10(1.0 / np.mean((exact.astype(np.float64) - fast) ** 2))
    assert 45 <= psnr < 80, psnr
