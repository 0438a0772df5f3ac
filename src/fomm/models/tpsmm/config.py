"""The TPSMM configuration: the original repository's YAML schema (``config/vox-256.yaml`` and its
siblings), typed and checked at load with the machinery of :mod:`fomm.config.sections`; the sections
it shares with FOMM's schema (the dense motion hourglass, the dataset, the common training settings
and loss weights) are :mod:`fomm.config`'s own classes or derive from them.

A config is a TPSMM one when ``model_params.common_params`` has ``num_tps`` (FOMM's has
``num_kp``). Our additions (written only when set): ``model_params.resnet_width``, the base width
of the keypoint detector's and background predictor's ResNet-18 (64 in torchvision and in every
published checkpoint; loading a checkpoint takes it from the checkpoint), and
``train_params.loss_weights.pixel``, a multi-scale pixel L1 term for training without ImageNet
VGG-19 weights. Presets live in ``fomm/presets/tpsmm/`` (``tpsmm-vox-256``, ...).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import ClassVar

import yaml

from fomm.config import (
    FRAME_SHAPE,
    LR,
    NON_NEG,
    POS,
    ConfigFile,
    DatasetParams,
    HourglassParams,
    Invalid,
    ReconstructionWeights,
    Section,
    TrainingParams,
    check,
)
from fomm.config.limits import check_hourglass, check_pyramid
from fomm.errors import FommError

PRESET_DIR = "tpsmm"  # inside the fomm.presets package
PREFIX = "tpsmm-"


@dataclass
class TpsCommonParams(Section):
    num_tps: int = field(default=10, metadata=POS)
    num_channels: int = field(default=3, metadata=POS)
    bg: bool = False
    multi_mask: bool = True


@dataclass
class TpsGeneratorParams(Section):
    """The inpainting network: an encoder-decoder of ``num_down_blocks`` levels."""

    block_expansion: int = field(default=64, metadata=POS)
    max_features: int = field(default=512, metadata=POS)
    num_down_blocks: int = field(default=3, metadata=POS)


@dataclass
class AvdNetworkParams(Section):
    id_bottle_size: int = field(default=128, metadata=POS)
    pose_bottle_size: int = field(default=128, metadata=POS)


@dataclass
class TpsModelParams(Section):
    common_params: TpsCommonParams = field(default_factory=TpsCommonParams)
    generator_params: TpsGeneratorParams = field(default_factory=TpsGeneratorParams)
    dense_motion_params: HourglassParams = field(default_factory=HourglassParams)
    avd_network_params: AvdNetworkParams = field(default_factory=AvdNetworkParams)
    resnet_width: int = field(default=64, metadata=check(omit_default=True, ge=1))


@dataclass
class TpsLossWeights(ReconstructionWeights):
    warp_loss: float = field(default=10, metadata=NON_NEG)
    bg: float = field(default=10, metadata=NON_NEG)


@dataclass
class TpsTrainParams(TrainingParams):
    """FOMM's shared training settings (other defaults) plus the contribution-map dropout
    (Eq. 7-8) and the background loss's start."""

    epoch_milestones: list[int] = field(default_factory=lambda: [70, 90], metadata=NON_NEG)
    batch_size: int = field(default=28, metadata=POS)
    dataloader_workers: int = field(default=12, metadata=NON_NEG)
    dropout_epoch: int = field(default=35, metadata=NON_NEG)
    dropout_maxp: float = field(default=0.3, metadata=check(ge=0, le=1))
    dropout_startp: float = field(default=0.1, metadata=check(ge=0, le=1))
    dropout_inc_epoch: int = field(default=10, metadata=POS)
    bg_start: int = field(default=10, metadata=NON_NEG)
    loss_weights: TpsLossWeights = field(default_factory=TpsLossWeights)


@dataclass
class AvdTrainParams(Section):
    num_epochs: int = field(default=200, metadata=POS)
    num_repeats: int = field(default=300, metadata=POS)
    batch_size: int = field(default=256, metadata=POS)
    dataloader_workers: int = field(default=24, metadata=NON_NEG)
    checkpoint_freq: int = field(default=50, metadata=POS)
    epoch_milestones: list[int] = field(default_factory=lambda: [140, 180], metadata=NON_NEG)
    lr: float = field(default=1.0e-3, metadata=LR)
    lambda_shift: float = field(default=1, metadata=NON_NEG)
    lambda_affine: float = field(default=1, metadata=check(omit_default=True, ge=0))
    random_scale: float = field(default=0.25, metadata=NON_NEG)


@dataclass
class TpsDatasetParams(DatasetParams):
    frame_shape: list[int] | None = field(default=None, metadata=FRAME_SHAPE)  # the original's: 256 x 256


@dataclass
class TpsmmConfig(ConfigFile):
    """A whole TPSMM configuration (one original YAML file)."""

    KIND: ClassVar[str] = "TPSMM"

    dataset_params: TpsDatasetParams = field(default_factory=TpsDatasetParams)
    model_params: TpsModelParams = field(default_factory=TpsModelParams)
    train_params: TpsTrainParams = field(default_factory=TpsTrainParams)
    train_avd_params: AvdTrainParams = field(default_factory=AvdTrainParams)
    visualizer_params: dict | None = None
    name: str | None = field(default=None, metadata={"internal": True})

    @property
    def frame_shape(self) -> tuple[int, int]:
        """(H, W) of the frames the model was trained on (256 x 256 when the config leaves it out,
        as the original configs do)."""
        shape = self.dataset_params.frame_shape or [256, 256]
        return int(shape[0]), int(shape[1])

    def check_more(self) -> None:
        """The dense motion hourglass and the image pyramid against the frame size
        (:mod:`fomm.config.limits`), and the occlusion masks against the inpainting network."""
        d, tp = self.model_params.dense_motion_params, self.train_params
        path = "model_params.dense_motion_params"
        check_hourglass(path, self.frame_shape, d.scale_factor, d.num_blocks, "InstanceNorm")
        check_pyramid(self.frame_shape, tp.scales, tp.loss_weights.perceptual)
        if self.model_params.common_params.multi_mask:
            check_masks(d, self.model_params.generator_params)


# With multi_mask the dense motion network makes 4 occlusion masks, at 1/8, 1/4, 1/2 and 1 of the
# frame (fomm.models.tpsmm.dense_motion.OCCLUSION_MASKS): the finest 4 - log2(1 / scale_factor)
# levels of its hourglass, then up-sampled copies of the finest; the inpainting network applies
# one to each of its num_down_blocks + 1 feature maps, of the same sizes.
OCCLUSION_MASKS = 4


def check_masks(dense: HourglassParams, generator: TpsGeneratorParams) -> None:
    """Raise :class:`~fomm.config.sections.Invalid` when the multi-resolution occlusion masks do
    not fit the hourglass or the inpainting network (the original's architecture)."""
    from_hourglass = OCCLUSION_MASKS - int(math.log(1 / dense.scale_factor, 2))
    if dense.num_blocks < from_hourglass:
        raise Invalid(
            "model_params.dense_motion_params.num_blocks",
            line=f"model_params.dense_motion_params: num_blocks {dense.num_blocks} gives {dense.num_blocks} hourglass "
            f"levels but multi_mask takes {from_hourglass} of the {OCCLUSION_MASKS} occlusion masks from them at "
            f"scale_factor {dense.scale_factor:g}; use num_blocks >= {from_hourglass}, a smaller scale_factor or "
            f"common_params.multi_mask false",
        )
    if generator.num_down_blocks != OCCLUSION_MASKS - 1:
        raise Invalid(
            "model_params.generator_params.num_down_blocks",
            line=f"model_params.generator_params: num_down_blocks {generator.num_down_blocks} needs "
            f"{generator.num_down_blocks + 1} occlusion masks but multi_mask makes {OCCLUSION_MASKS} (at 1/8 to 1 of "
            f"the frame); use num_down_blocks {OCCLUSION_MASKS - 1} or common_params.multi_mask false",
        )


def is_tpsmm_dict(data) -> bool:
    """Whether a config mapping is TPSMM's (``model_params.common_params.num_tps``)."""
    common = ((data or {}).get("model_params") or {}).get("common_params") if isinstance(data, dict) else None
    return isinstance(common, dict) and "num_tps" in common


def tpsmm_preset_names() -> list[str]:
    """``tpsmm-vox-256``, ... (the original's four published configs)."""
    files = resources.files("fomm.presets") / PRESET_DIR
    return sorted(PREFIX + p.name[:-5] for p in files.iterdir() if p.name.endswith(".yaml"))


def load_tpsmm_preset(name: str) -> TpsmmConfig:
    stem = name[:-5] if name.endswith(".yaml") else name
    stem = stem[len(PREFIX) :] if stem.startswith(PREFIX) else stem
    res = resources.files("fomm.presets") / PRESET_DIR / f"{stem}.yaml"
    if not res.is_file():
        raise FommError(f"unknown TPSMM preset '{name}'; choose one of {', '.join(tpsmm_preset_names())}")
    cfg = TpsmmConfig.from_dict(yaml.safe_load(res.read_text()), source=f"preset {PREFIX}{stem}")
    cfg.name = PREFIX + stem
    return cfg


def resolve_tpsmm_config(config) -> TpsmmConfig:
    """A :class:`TpsmmConfig` from itself, a dict, a ``tpsmm-*`` preset name or a YAML path."""
    if isinstance(config, TpsmmConfig):
        return config
    if isinstance(config, dict):
        return TpsmmConfig.from_dict(config)
    text = str(config)
    if text.startswith(PREFIX) and not Path(text).exists():
        return load_tpsmm_preset(text)
    path = Path(text)
    if not path.is_file():
        raise FommError(
            f"config file not found: {path}; pass a YAML path or a preset ({', '.join(tpsmm_preset_names())})"
        )
    try:
        data = yaml.safe_load(path.read_text())
    except (UnicodeDecodeError, yaml.YAMLError):
        raise FommError(f"config {path} is not a readable YAML file; pass a TPSMM config") from None
    cfg = TpsmmConfig.from_dict(data, source=f"config {path}")
    cfg.name = path.stem
    return cfg


def is_tpsmm_config(config) -> bool:
    """Whether ``config`` (an object, a dict, a preset name or a YAML path) is a TPSMM config."""
    if isinstance(config, TpsmmConfig):
        return True
    if isinstance(config, dict):
        return is_tpsmm_dict(config)
    if not isinstance(config, (str, Path)):
        return False
    text = str(config)
    if text.startswith(PREFIX) and not Path(text).exists():
        return True
    path = Path(text)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        try:
            return is_tpsmm_dict(yaml.safe_load(path.read_text()))
        except (UnicodeDecodeError, yaml.YAMLError):
            return False
    return False
