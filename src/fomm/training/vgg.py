"""VGG19 feature extractor for the perceptual loss, with or without ImageNet weights.

The network is the convolutional part of VGG19 up to ``relu5_1`` with torchvision's layer indices
(``features.0`` ... ``features.29``), cut into the five slices of the original ``Vgg19`` module:
outputs after relu1_1, relu2_1, relu3_1, relu4_1 and relu5_1. Inputs in [0, 1] are normalised with
the ImageNet mean and std first.

Weights. Nothing may be downloaded, and no installed package ships VGG19 weights, so they come
from a local file in torchvision's state-dict format (``vgg19-dcbb9e9d.pth``: keys
``features.N.weight`` / ``features.N.bias``; the classifier keys are ignored). The file is found,
in this order, from: an explicit path (``--vgg19-weights``), the config key
``train_params.vgg19_weights``, the environment variable ``FOMM_VGG19_WEIGHTS``, and the torch hub
cache (``$TORCH_HOME/hub/checkpoints/vgg19-*.pth``, by default ``~/.cache/torch/hub/checkpoints``).

Substitute. Without a file, training uses the same VGG19 with **fixed random weights**: Kaiming
normal (fan-out, ReLU gain) convolutions and zero biases drawn from a private
``torch.Generator`` seeded with :data:`SUBSTITUTE_SEED`, so every run and every machine gets the
same network whatever the global seed. Why this one: it keeps the exact structure of the loss
(image pyramid x five feature depths x the config's weights, the same cost) so that the config's
weights and the training dynamics stay comparable, and random deep convolutional features are
known to remain a usable perceptual distance (multi-scale, multi-orientation random filters
respond to edges and texture; see Zhang et al. 2018, "The Unreasonable Effectiveness of Deep
Features as a Perceptual Metric", where untrained networks still beat pixel metrics, and He et
al. 2016 on random-weight networks for image representation). It is weaker than ImageNet
features, so the substitute is announced at the start of training and recorded in ``run.json``.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import torch
from torch import nn

from fomm.errors import FommError
from fomm.models.registry import file_sha256

SUBSTITUTE_SEED = 19_0000_0019
ENV_VAR = "FOMM_VGG19_WEIGHTS"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision's vgg19 "E" configuration up to relu5_1: channel counts, "M" = 2x2 max pooling.
_LAYERS = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512]
# End index (exclusive) in ``features`` of each slice of the original Vgg19: relu1_1 ... relu5_1.
SLICE_ENDS = (2, 7, 12, 21, 30)
# Number of 2x2 poolings before each output; an input must be at least 2**n pixels for output n.
POOLS_BEFORE = (0, 1, 2, 3, 4)


def _make_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    in_ch = 3
    for item in _LAYERS:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers.append(nn.Conv2d(in_ch, item, kernel_size=3, padding=1))
            layers.append(nn.ReLU(inplace=False))
            in_ch = item
    assert len(layers) == SLICE_ENDS[-1]
    return nn.Sequential(*layers)


class Vgg19(nn.Module):
    """``vgg(x in [0, 1], (B, 3, H, W))`` returns the five feature maps relu1_1 ... relu5_1.

    Parameters are frozen (``requires_grad=False``); gradients still flow to the input.
    """

    def __init__(self):
        super().__init__()
        self.features = _make_features()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        for p in self.parameters():
            p.requires_grad_(False)
        self.source = "uninitialised"

    def forward(self, x: torch.Tensor, depth: int = 5) -> list[torch.Tensor]:
        """The first ``depth`` feature maps (all five by default; fewer skips the deeper layers)."""
        out = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        outputs = []
        start = 0
        for end in SLICE_ENDS[:depth]:
            for i in range(start, end):
                out = self.features[i](out)
            outputs.append(out)
            start = end
        return outputs

    def train(self, mode: bool = True):  # always a fixed feature extractor
        return super().train(False)


def random_vgg19(seed: int = SUBSTITUTE_SEED) -> Vgg19:
    """The documented substitute: VGG19 with fixed random weights (module doc)."""
    vgg = Vgg19()
    gen = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for m in vgg.features:
            if isinstance(m, nn.Conv2d):
                fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1]
                std = (2.0 / fan_out) ** 0.5
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * std)
                m.bias.zero_()
    vgg.source = f"random-substitute(seed={seed})"
    return vgg


def load_vgg19_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a torchvision-format VGG19 state dict and check every needed tensor."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FommError(
            f"VGG19 weights file not found: {path}; pass a torchvision vgg19-*.pth file or drop "
            f"--vgg19-weights to train with the random substitute"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error here
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FommError(
            f"cannot read VGG19 weights {path} ({reason}); pass torchvision's vgg19-*.pth state dict"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise FommError(
            f"VGG19 weights {path} hold a {type(state).__name__}, not a state dict; pass torchvision's vgg19-*.pth"
        )
    state = {k[len("module.") :] if k.startswith("module.") else k: v for k, v in state.items()}
    expected = {f"features.{k}": v.shape for k, v in _make_features().state_dict().items()}
    missing = [k for k in expected if k not in state]
    if missing:
        raise FommError(
            f"VGG19 weights {path} lack {len(missing)} tensors (e.g. {missing[0]}); it is not a "
            f"torchvision VGG19 (vgg19-*.pth, keys features.N.weight)"
        )
    bad = [k for k in expected if tuple(state[k].shape) != tuple(expected[k])]
    if bad:
        k = bad[0]
        raise FommError(
            f"VGG19 weights {path}: {k} has shape {tuple(state[k].shape)}, expected "
            f"{tuple(expected[k])}; it is not VGG19 (vgg16 or batch-norm variants do not fit)"
        )
    return {k: state[k].float() for k in expected}


def hub_cache_candidates() -> list[Path]:
    """``vgg19-*.pth`` files in the torch hub cache (no batch-norm variant)."""
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch"
    )
    found = sorted(glob.glob(os.path.join(home, "hub", "checkpoints", "vgg19-*.pth")))
    return [Path(p) for p in found]


def find_vgg19_weights(
    explicit: str | Path | None = None, config_value: str | Path | None = None
) -> tuple[Path | None, str]:
    """The weights file to use and where its name came from (module doc for the order)."""
    if explicit:
        return Path(explicit).expanduser(), "--vgg19-weights"
    if config_value:
        return Path(config_value).expanduser(), "train_params.vgg19_weights"
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser(), ENV_VAR
    cached = hub_cache_candidates()
    if cached:
        return cached[0], "torch hub cache"
    return None, "none found"


def build_vgg19(explicit: str | Path | None = None, config_value: str | Path | None = None) -> tuple[Vgg19, dict]:
    """VGG19 with ImageNet weights when a file is found, else the random substitute.

    Returns ``(vgg, status)``; ``status`` (for ``run.json``) has ``pretrained`` (bool), ``source``
    and, with a file, ``path``, ``found_via`` and ``sha256``.
    """
    path, via = find_vgg19_weights(explicit, config_value)
    if path is None:
        vgg = random_vgg19()
        return vgg, {
            "pretrained": False,
            "source": vgg.source,
            "note": "no VGG19 weights file found (--vgg19-weights, train_params.vgg19_weights, "
            f"{ENV_VAR} or the torch hub cache); perceptual loss uses fixed random VGG19 features",
        }
    state = load_vgg19_state(path)
    vgg = Vgg19()
    vgg.features.load_state_dict({k[len("features.") :]: v for k, v in state.items()})
    vgg.source = f"file:{path}"
    return vgg, {
        "pretrained": True,
        "source": "imagenet-file",
        "path": str(path),
        "found_via": via,
        "sha256": file_sha256(path),
    }
