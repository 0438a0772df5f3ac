"""Full-size models for every preset have exactly the original state-dict keys and shapes."""

import json

import pytest
import torch

from fomm.config import load_preset, preset_names
from fomm.models import FirstOrderModel

ORIGINAL_PRESETS = [
    "vox-256",
    "vox-adv-256",
    "taichi-256",
    "taichi-adv-256",
    "fashion-256",
    "mgif-256",
    "bair-256",
    "nemo-256",
]


def test_all_original_presets_are_bundled():
    assert set(ORIGINAL_PRESETS) <= set(preset_names())


@pytest.fixture(scope="module")
def manifest(parity_dir):
    return json.loads((parity_dir / "full-size-keys.json").read_text())


def meta_model(name):
    with torch.device("meta"):
        return FirstOrderModel(load_preset(name))


def expected(manifest, name, part):
    vox = {e["key"]: tuple(e["shape"]) for e in manifest["full"]["vox-256.yaml"][part]["state_dict"]}
    file = f"{name}.yaml"
    if file in manifest["full"]:
        entry = manifest["full"][file][part]
        return {e["key"]: tuple(e["shape"]) for e in entry["state_dict"]}, entry["num_parameters"]
    diff = manifest["diff_vs_vox-256"][file][part]
    keys = {k: v for k, v in vox.items() if k not in diff["only_in_vox"]}
    for key, (_, new_shape) in diff["shape_changed"].items():
        keys[key] = tuple(new_shape)
    for key in diff["only_in_this"]:
        keys[key] = None  # shape not listed: only presence is checked
    return keys, diff["num_parameters"]


@pytest.mark.parametrize("name", ORIGINAL_PRESETS)
@pytest.mark.parametrize("part", ["generator", "kp_detector", "discriminator"])
def test_state_dict_keys_shapes_and_counts(manifest, name, part):
    module = getattr(meta_model(name), part)
    ours = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    keys, num_params = expected(manifest, name, part)
    assert set(ours) == set(keys)
    for key, shape in keys.items():
        if shape is not None:
            assert ours[key] == shape, key
    assert sum(p.numel() for p in module.parameters()) == num_params


def test_parameter_counts_match_notes():
    model = meta_model("vox-256")
    counts = {
        part: sum(p.numel() for p in getattr(model, part).parameters())
        for part in ("generator", "kp_detector", "discriminator")
    }
    assert counts == {"generator": 45_575_391, "kp_detector": 14_215_368, "discriminator": 2_758_849}
