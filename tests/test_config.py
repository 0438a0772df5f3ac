"""The typed config reads and writes the original YAML schema without loss."""

from importlib import resources

import pytest
import yaml

from fomm.config import Config, load_preset, preset_names, resolve_config
from fomm.errors import FommError


@pytest.mark.parametrize("name", preset_names())
def test_presets_round_trip(name, tmp_path):
    original = yaml.safe_load((resources.files("fomm.presets") / f"{name}.yaml").read_text())
    cfg = load_preset(name)
    assert cfg.to_dict() == original
    cfg.to_yaml(tmp_path / "out.yaml")
    assert yaml.safe_load((tmp_path / "out.yaml").read_text()) == original


def test_typed_fields():
    cfg = load_preset("mgif-256")
    assert cfg.model_params.kp_detector_params.single_jacobian_map is True
    assert cfg.model_params.common_params.num_kp == 10
    assert cfg.train_params.loss_weights.generator_gan == 1
    assert cfg.dataset_params.augmentation_params["resize_param"]["ratio"] == [0.9, 1.1]
    assert cfg.frame_shape == (256, 256)
    assert load_preset("taichi-256").model_params.discriminator_params.sn is False
    assert load_preset("vox-adv-256").model_params.discriminator_params.use_kp is True


def test_unknown_keys_survive_and_align_corners_is_written_only_when_set(tmp_path):
    data = load_preset("vox-256").to_dict()
    data["model_params"]["my_option"] = 3
    data["something_new"] = {"a": 1}
    cfg = Config.from_dict(data)
    assert cfg.to_dict() == data
    assert "align_corners" not in cfg.to_dict()["model_params"]
    cfg.model_params.align_corners = True
    assert cfg.to_dict()["model_params"]["align_corners"] is True
    assert Config.from_dict(cfg.to_dict()).model_params.align_corners is True


def test_resolve_config_forms(parity_dir):
    assert resolve_config("vox-256").name == "vox-256"
    path = parity_dir / "variants" / "vox" / "config.yaml"
    assert resolve_config(path).model_params.generator_params.block_expansion == 4
    assert resolve_config(str(path)).frame_shape == (128, 128)
    assert resolve_config(load_preset("vox-256").to_dict()).frame_shape == (256, 256)


def test_config_errors(tmp_path):
    with pytest.raises(FommError, match="unknown preset 'vox-999'"):
        load_preset("vox-999")
    with pytest.raises(FommError, match="config file not found"):
        resolve_config(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("model_params: [unclosed")
    with pytest.raises(FommError, match="not valid YAML"):
        resolve_config(tmp_path / "bad.yaml")
    (tmp_path / "other.yaml").write_text("foo: 1\n")
    with pytest.raises(FommError, match="no model_params"):
        resolve_config(tmp_path / "other.yaml")
