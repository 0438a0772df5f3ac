"""VGG19 for the perceptual loss: torchvision-format weights, the lookup order, the substitute."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fomm.errors import FommError
from fomm.training import vgg as V

# torchvision's vgg19 "features" layout (conv, relu, ..., max-pool), all 37 layers, and its classifier
_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]


def torchvision_like_state(seed: int = 5) -> dict:
    """A random state dict with torchvision's vgg19 keys and shapes (features.N.*, classifier.N.*)."""
    gen = torch.Generator().manual_seed(seed)
    state, idx, cin = {}, 0, 3
    for item in _CFG:
        if item == "M":
            idx += 1
            continue
        state[f"features.{idx}.weight"] = torch.randn(item, cin, 3, 3, generator=gen) * 0.05
        state[f"features.{idx}.bias"] = torch.randn(item, generator=gen) * 0.01
        idx += 2
        cin = item
    state["classifier.0.weight"] = torch.zeros(8, 8)  # shapes do not matter: ignored
    state["classifier.0.bias"] = torch.zeros(8)
    return state


def reference_slices(state: dict) -> list[nn.Sequential]:
    """The original Vgg19 slices built independently from the state dict (indices [0,2) ... [21,30))."""
    layers, idx, cin = [], 0, 3
    for item in _CFG:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
            idx += 1
            continue
        conv = nn.Conv2d(cin, item, 3, padding=1)
        conv.weight.data.copy_(state[f"features.{idx}.weight"])
        conv.bias.data.copy_(state[f"features.{idx}.bias"])
        layers += [conv, nn.ReLU()]
        idx += 2
        cin = item
    return [nn.Sequential(*layers[a:b]) for a, b in ((0, 2), (2, 7), (7, 12), (12, 21), (21, 30))]


def test_loads_torchvision_state_dict_and_matches_original_slices(tmp_path):
    state = torchvision_like_state()
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save(state, path)
    vgg, status = V.build_vgg19(explicit=path)
    assert status["pretrained"] and status["path"] == str(path) and status["found_via"] == "--vgg19-weights"
    assert len(status["sha256"]) == 64
    x = torch.rand(2, 3, 32, 32)
    mean = torch.tensor(V.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(V.IMAGENET_STD).view(1, 3, 1, 1)
    out = (x - mean) / std
    expected = []
    for s in reference_slices(state):
        out = s(out)
        expected.append(out)
    got = vgg(x)
    assert [tuple(g.shape) for g in got] == [
        (2, 64, 32, 32),
        (2, 128, 16, 16),
        (2, 256, 8, 8),
        (2, 512, 4, 4),
        (2, 512, 2, 2),
    ]
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)
    assert all(not p.requires_grad for p in vgg.parameters())
    xg = x.clone().requires_grad_(True)
    vgg(xg)[2].sum().backward()
    assert xg.grad is not None and xg.grad.abs().sum() > 0


@pytest.mark.slow
def test_lookup_order_flag_config_env_hub(tmp_path, monkeypatch):
    hub = tmp_path / "torchhome" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(torchvision_like_state(), hub / "vgg19-dcbb9e9d.pth")
    torch.save(torchvision_like_state(), hub / "vgg19_bn-c79401a0.pth")  # batch-norm variant: not picked
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torchhome"))
    monkeypatch.delenv(V.ENV_VAR, raising=False)
    assert V.find_vgg19_weights() == (hub / "vgg19-dcbb9e9d.pth", "torch hub cache")
    monkeypatch.setenv(V.ENV_VAR, "/env/vgg.pth")
    assert V.find_vgg19_weights()[1] == V.ENV_VAR
    assert V.find_vgg19_weights(config_value="/cfg/vgg.pth")[1] == "train_params.vgg19_weights"
    assert V.find_vgg19_weights("/flag.pth", "/cfg/vgg.pth")[1] == "--vgg19-weights"
    monkeypatch.delenv(V.ENV_VAR)
    _, status = V.build_vgg19()
    assert status["pretrained"] and status["found_via"] == "torch hub cache"


def test_substitute_is_fixed_and_announced(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    monkeypatch.delenv(V.ENV_VAR, raising=False)
    torch.manual_seed(123)
    a, status = V.build_vgg19()
    torch.manual_seed(456)
    b, _ = V.build_vgg19()
    assert not status["pretrained"] and "random" in status["source"]
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    feats = a(torch.rand(1, 3, 16, 16))
    assert all(torch.isfinite(f).all() and f.abs().sum() > 0 for f in feats)


@pytest.mark.slow
def test_bad_weight_files_raise_fomm_error(tmp_path):
    with pytest.raises(FommError, match="not found"):
        V.load_vgg19_state(tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(FommError, match="cannot read"):
        V.load_vgg19_state(junk)
    wrong = torchvision_like_state()
    wrong["features.28.weight"] = torch.zeros(512, 256, 3, 3)
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(FommError, match="shape"):
        V.load_vgg19_state(tmp_path / "wrong.pth")
    partial = {k: v for k, v in torchvision_like_state().items() if not k.startswith("features.0.")}
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(FommError, match="lack"):
        V.load_vgg19_state(tmp_path / "partial.pth")
