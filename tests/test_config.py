"""The typed config reads and writes the original YAML schema without loss."""

from importlib import resources

import pytest
import torch
import yaml

from fomm.config import Config, load_preset, preset_names, resolve_config, validate_config
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


def test_free_form_keys_survive_and_align_corners_is_written_only_when_set(tmp_path):
    data = load_preset("vox-256").to_dict()
    data["visualizer_params"]["my_option"] = 3
    data["reconstruction_params"]["something_new"] = {"a": 1}
    data["train_params"]["vgg19_weights"] = "vgg19.pth"  # kept in extra (PASSTHROUGH_KEYS)
    cfg = Config.from_dict(data)
    assert cfg.to_dict() == data
    assert cfg.train_params.extra == {"vgg19_weights": "vgg19.pth"}
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
    with pytest.raises(FommError, match="is a folder; pass a YAML file"):
        resolve_config(tmp_path)
    (tmp_path / "image.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe" + bytes(40))
    with pytest.raises(FommError, match=r"image.yaml is not a text file \(it looks like a PNG image\)"):
        resolve_config(tmp_path / "image.yaml")
    (tmp_path / "other.yaml").write_text("foo: 1\n")
    with pytest.raises(FommError, match="no model_params"):
        resolve_config(tmp_path / "other.yaml")


# ------------------------------------------------------------------------------------------------
# The schema check at load
# ------------------------------------------------------------------------------------------------
def _with(path: str, value):
    data = load_preset("tiny-64").to_dict()
    node = data
    *parents, key = path.split(".")
    for name in parents:
        node = node[name]
    node[key] = value
    return data


@pytest.mark.parametrize(
    "path, value, message",
    [
        ("train_params.num_epochs", "two", "train_params.num_epochs is 'two'; expected a whole number >= 1"),
        ("model_params.common_params.num_kp", "ten", "num_kp is 'ten'; expected a whole number >= 1"),
        ("model_params.common_params.num_kp", 0, "num_kp is 0; expected a whole number >= 1"),
        ("model_params.common_params.num_kp", 2.5, "num_kp is 2.5; expected a whole number"),
        ("model_params.common_params.num_kp", True, "num_kp is true; expected a whole number"),
        ("dataset_params.frame_shape", "64x64", "frame_shape is '64x64'; expected a list of 2 or 3 whole numbers >= 1"),
        ("dataset_params.frame_shape", [64, 64, 3, 1], "frame_shape is [64, 64, 3, 1]; expected a list of 2 or 3"),
        ("dataset_params.frame_shape", [64, -64], "expected a list of 2 or 3 whole numbers >= 1"),
        ("model_params.kp_detector_params.scale_factor", 0, "scale_factor is 0; expected a number in (0, 1]"),
        ("model_params.kp_detector_params.scale_factor", 1.5, "scale_factor is 1.5; expected a number in (0, 1]"),
        ("model_params.kp_detector_params.temperature", 0, "temperature is 0; expected a number > 0"),
        ("train_params.lr_generator", "fast", "lr_generator is 'fast'; expected a number > 0"),
        ("train_params.lr_generator", float("nan"), "lr_generator is NaN; expected a number > 0"),
        ("train_params.lr_generator", -1e-4, "lr_generator is -0.0001; expected a number > 0"),
        ("train_params.scales", [], "scales is []; expected a non-empty list of numbers in (0, 1]"),
        ("train_params.generator_init", "magic", "generator_init is 'magic'; use one of default, identity"),
        ("model_params.common_params.estimate_jacobian", "yes", "estimate_jacobian is 'yes'; expected true or false"),
        ("model_params.kp_detector_params", None, "kp_detector_params is null; expected a mapping"),
        ("dataset_params.root_dir", 3, "root_dir is 3; expected text"),
        ("train_params.lr_generater", 1e-4, "unknown key train_params.lr_generater; did you mean lr_generator?"),
        ("model_parms", {}, "unknown key model_parms; did you mean model_params?"),
        (
            "model_params.common_params.num_kps",
            5,
            "unknown key model_params.common_params.num_kps; did you mean num_kp?",
        ),
        ("model_params.kp_detector_params.num_kp", 5, "num_kp belongs in model_params.common_params"),
        ("train_params.my_idea", 1, "unknown key train_params.my_idea; the keys allowed there are num_epochs,"),
        ("dataset_params.augmentation_params.flip", {}, "augmentation_params.flip; did you mean flip_param?"),
        ("animate_params.normalization_params.use_relative_movment", True, "did you mean use_relative_movement?"),
        (
            "model_params.kp_detector_params.num_blocks",
            6,
            "kp_detector_params: scale_factor 0.25 x 64 px = 16 px halved by 6 hourglass blocks reaches 1x1",
        ),
    ],
)
def test_bad_values_get_one_line_naming_key_value_and_what_is_allowed(tmp_path, path, value, message):
    with pytest.raises(FommError) as info:
        Config.from_dict(_with(path, value))
    assert message in str(info.value) and str(info.value).startswith("config: ")
    assert "\n" not in str(info.value)
    (tmp_path / "my.yaml").write_text(yaml.safe_dump(_with(path, value)))
    with pytest.raises(FommError, match=rf"^config {tmp_path / 'my.yaml'}: .*{path.split('.')[-1]}"):
        resolve_config(tmp_path / "my.yaml")


def test_numbers_written_as_text_are_numbers(tmp_path):
    (tmp_path / "c.yaml").write_text(
        yaml.safe_dump(_with("train_params.lr_generator", 0.5)).replace("lr_generator: 0.5", "lr_generator: 1e-4")
    )
    assert yaml.safe_load((tmp_path / "c.yaml").read_text())["train_params"]["lr_generator"] == "1e-4"
    cfg = resolve_config(tmp_path / "c.yaml")
    assert cfg.train_params.lr_generator == 1e-4 and isinstance(cfg.train_params.lr_generator, float)
    assert Config.from_dict(_with("model_params.common_params.num_kp", "12")).model_params.common_params.num_kp == 12
    assert Config.from_dict(_with("train_params.num_epochs", 3.0)).train_params.num_epochs == 3
    assert cfg.to_dict()["train_params"]["lr_generator"] == 1e-4  # written back as a number


def test_python_api_config_objects_and_stored_configs_are_checked(tmp_path):
    cfg = load_preset("tiny-64")
    cfg.model_params.common_params.num_kp = 0
    with pytest.raises(FommError, match="config tiny-64: model_params.common_params.num_kp is 0"):
        resolve_config(cfg)
    from fomm.models.checkpoint import load_model
    from fomm.testing import random_checkpoint

    with pytest.raises(FommError, match="num_kp is 0"):
        load_model(random_checkpoint(tmp_path / "ok.pth"), config=cfg)
    data = torch.load(random_checkpoint(tmp_path / "ok.pth"), weights_only=True)
    data["config"]["train_params"]["num_epochs"] = "two"
    torch.save(data, tmp_path / "stored.pth")
    with pytest.raises(FommError, match=r"the config stored in .*stored.pth: train_params.num_epochs is 'two'"):
        load_model(tmp_path / "stored.pth")


def test_every_default_and_preset_passes_its_own_check():
    validate_config(Config())  # defaults of every field, including fields added later
    for name in preset_names():
        validate_config(load_preset(name), name)
    with pytest.raises(FommError, match="did you mean vox-256"):
        load_preset("vox256")
    with pytest.raises(FommError, match="not a int"):
        resolve_config(3)
