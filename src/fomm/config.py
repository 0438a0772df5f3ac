"""Typed configuration that reads and writes the original FOMM YAML schema.

``Config.from_yaml(path)`` / ``Config.from_dict(d)`` parse the original layout
(``dataset_params``, ``model_params``, ``train_params``, ``reconstruction_params``,
``animate_params``, ``visualizer_params``); ``to_dict()`` gives it back. Keys this code does not
know are kept in ``extra`` and written back unchanged, so a round trip loses nothing.

Our additions to the schema: ``train_params.loss_weights.pixel`` (default 0, written only when
set), a multi-scale pixel L1 term for training without ImageNet VGG weights;
``train_params.generator_init`` / ``generator_batchnorm`` (defaults ``default`` / ``batch``, written
only when set; :mod:`fomm.training.generator_init`); and
``model_params.align_corners`` (default ``false``), the ``grid_sample`` corner convention. The
original ran under PyTorch 1.0, whose ``grid_sample`` behaved like ``align_corners=True``; the same
code under today's PyTorch runs with ``False``.
Published checkpoints were trained under the old behaviour, so ``true`` matches the numbers of the
paper's era more closely, while ``false`` (the default) matches the original code run today and the
parity fixture. The key is only written when it is ``true``, so the original code still reads our
files (it ignores unknown keys in ``model_params``).
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from fomm.errors import FommError

PRESET_PACKAGE = "fomm.presets"


class _Section:
    """Dataclass mix-in: build from a dict (unknown keys go to ``extra``) and back."""

    extra: dict

    @classmethod
    def from_dict(cls, data: dict | None):
        data = dict(data or {})
        order = list(data)
        hints = typing.get_type_hints(cls)
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name == "extra" or f.name not in data or f.metadata.get("internal"):
                continue
            value = data.pop(f.name)
            kind = hints[f.name]
            if isinstance(kind, type) and issubclass(kind, _Section):
                value = kind.from_dict(value)
            elif typing.get_origin(kind) in (typing.Union, types.UnionType):
                sections = [k for k in typing.get_args(kind) if isinstance(k, type) and issubclass(k, _Section)]
                if sections and isinstance(value, dict):
                    value = sections[0].from_dict(value)
            kwargs[f.name] = value
        obj = cls(**kwargs, extra=data)
        obj._order = order
        return obj

    def to_dict(self) -> dict:
        """The section in the YAML schema: keys that were read come back in their order; fields
        never read are written when they differ from their default (or have no default marker)."""
        known = {f.name: f for f in dataclasses.fields(self) if f.name != "extra" and not f.metadata.get("internal")}
        order = list(getattr(self, "_order", []))
        names = order + [n for n in known if n not in order] + [k for k in self.extra if k not in order]
        out: dict[str, Any] = {}
        for name in names:
            if name in self.extra:
                out[name] = copy.deepcopy(self.extra[name])
                continue
            if name not in known:
                continue
            f = known[name]
            value = getattr(self, name)
            if name not in order and (value is None or (f.metadata.get("omit_default") and value == f.default)):
                continue
            out[name] = value.to_dict() if isinstance(value, _Section) else copy.deepcopy(value)
        return out


def _omit_default():
    return {"omit_default": True}


@dataclass
class CommonParams(_Section):
    num_kp: int = 10
    num_channels: int = 3
    estimate_jacobian: bool = True
    extra: dict = field(default_factory=dict)


@dataclass
class KPDetectorParams(_Section):
    temperature: float = 0.1
    block_expansion: int = 32
    max_features: int = 1024
    scale_factor: float = 0.25
    num_blocks: int = 5
    single_jacobian_map: bool = field(default=False, metadata=_omit_default())
    pad: int = field(default=0, metadata=_omit_default())
    extra: dict = field(default_factory=dict)


@dataclass
class DenseMotionParams(_Section):
    block_expansion: int = 64
    max_features: int = 1024
    num_blocks: int = 5
    scale_factor: float = 0.25
    extra: dict = field(default_factory=dict)


@dataclass
class GeneratorParams(_Section):
    block_expansion: int = 64
    max_features: int = 512
    num_down_blocks: int = 2
    num_bottleneck_blocks: int = 6
    estimate_occlusion_map: bool = True
    dense_motion_params: DenseMotionParams | None = field(default_factory=DenseMotionParams)
    extra: dict = field(default_factory=dict)


@dataclass
class DiscriminatorParams(_Section):
    scales: list = field(default_factory=lambda: [1])
    block_expansion: int = 32
    max_features: int = 512
    num_blocks: int = 4
    sn: bool = field(default=False, metadata=_omit_default())
    use_kp: bool = field(default=False, metadata=_omit_default())
    extra: dict = field(default_factory=dict)


@dataclass
class ModelParams(_Section):
    common_params: CommonParams = field(default_factory=CommonParams)
    kp_detector_params: KPDetectorParams = field(default_factory=KPDetectorParams)
    generator_params: GeneratorParams = field(default_factory=GeneratorParams)
    discriminator_params: DiscriminatorParams = field(default_factory=DiscriminatorParams)
    align_corners: bool = field(default=False, metadata=_omit_default())
    extra: dict = field(default_factory=dict)


@dataclass
class TransformParams(_Section):
    sigma_affine: float = 0.05
    sigma_tps: float = 0.005
    points_tps: int = 5
    extra: dict = field(default_factory=dict)


@dataclass
class LossWeights(_Section):
    generator_gan: float = 0
    discriminator_gan: float = 1
    feature_matching: list = field(default_factory=lambda: [10, 10, 10, 10])
    perceptual: list = field(default_factory=lambda: [10, 10, 10, 10, 10])
    equivariance_value: float = 10
    equivariance_jacobian: float = 10
    # Our addition (default 0, written only when set): weight of the mean absolute pixel
    # difference between prediction and driving frame, averaged over the pyramid scales.
    pixel: float = field(default=0, metadata=_omit_default())
    extra: dict = field(default_factory=dict)


@dataclass
class TrainParams(_Section):
    num_epochs: int = 100
    num_repeats: int = 1
    epoch_milestones: list = field(default_factory=lambda: [60, 90])
    lr_generator: float = 2.0e-4
    lr_discriminator: float = 2.0e-4
    lr_kp_detector: float = 2.0e-4
    batch_size: int = 40
    scales: list = field(default_factory=lambda: [1, 0.5, 0.25, 0.125])
    checkpoint_freq: int = 50
    transform_params: TransformParams = field(default_factory=TransformParams)
    loss_weights: LossWeights = field(default_factory=LossWeights)
    # Our additions (written only when set; see fomm.training.generator_init): start the generator
    # as an identity ("identity") and normalise its BatchNorm layers with statistics frozen after
    # the first batch ("frozen").
    generator_init: str = field(default="default", metadata=_omit_default())
    generator_batchnorm: str = field(default="batch", metadata=_omit_default())
    extra: dict = field(default_factory=dict)


@dataclass
class DatasetParams(_Section):
    root_dir: str | None = None
    frame_shape: list = field(default_factory=lambda: [256, 256, 3])
    id_sampling: bool = False
    pairs_list: str | None = None
    augmentation_params: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


@dataclass
class Config(_Section):
    """A whole FOMM configuration (one original YAML file)."""

    dataset_params: DatasetParams = field(default_factory=DatasetParams)
    model_params: ModelParams = field(default_factory=ModelParams)
    train_params: TrainParams = field(default_factory=TrainParams)
    reconstruction_params: dict | None = None
    animate_params: dict | None = None
    visualizer_params: dict | None = None
    name: str | None = field(default=None, metadata={"internal": True})
    extra: dict = field(default_factory=dict)

    # --- derived facts used by the code -------------------------------------------------------
    @property
    def frame_shape(self) -> tuple[int, int]:
        """(H, W) of the frames the model was trained on."""
        h, w = self.dataset_params.frame_shape[:2]
        return int(h), int(w)

    @property
    def normalization_params(self) -> dict:
        return dict((self.animate_params or {}).get("normalization_params", {}))

    # --- I/O -----------------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path) -> Config:
        path = Path(path)
        if not path.is_file():
            raise FommError(
                f"config file not found: {path}; pass a YAML path or a preset name ({', '.join(preset_names())})"
            )
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise FommError(f"config {path} is not valid YAML ({str(exc).splitlines()[0]}); fix the file") from None
        if not isinstance(data, dict) or "model_params" not in data:
            raise FommError(f"config {path} has no model_params section; it does not look like a FOMM config")
        cfg = cls.from_dict(data)
        cfg.name = path.stem
        return cfg

    def to_yaml(self, path: str | Path | None = None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)
        if path is not None:
            from fomm.atomic import atomic_write_bytes

            atomic_write_bytes(path, text.encode())
        return text

    def copy(self) -> Config:
        return copy.deepcopy(self)


def preset_names() -> list[str]:
    """Names of the bundled presets (the eight original configs plus ours)."""
    files = resources.files(PRESET_PACKAGE)
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".yaml"))


def load_preset(name: str) -> Config:
    """A bundled preset by name, e.g. ``'vox-256'``."""
    name = name[:-5] if name.endswith(".yaml") else name
    files = resources.files(PRESET_PACKAGE)
    res = files / f"{name}.yaml"
    if not res.is_file():
        raise FommError(f"unknown preset '{name}'; choose one of {', '.join(preset_names())} or pass a YAML path")
    cfg = Config.from_dict(yaml.safe_load(res.read_text()))
    cfg.name = name
    return cfg


def resolve_config(config: Config | str | Path | dict) -> Config:
    """Accept a :class:`Config`, a dict in the YAML schema, a preset name or a YAML path."""
    if isinstance(config, Config):
        return config
    if isinstance(config, dict):
        return Config.from_dict(config)
    text = str(config)
    if Path(text).suffix in (".yaml", ".yml") or Path(text).exists():
        return Config.from_yaml(text)
    return load_preset(text)
