"""Typed configuration that reads and writes the original FOMM YAML schema, checked at load.

``Config.from_yaml(path)`` / ``Config.from_dict(d)`` parse the original layout
(``dataset_params``, ``model_params``, ``train_params``, ``reconstruction_params``,
``animate_params``, ``visualizer_params``); ``to_dict()`` gives it back.

Every config is checked when it is loaded (:func:`validate_config`; a preset, a YAML file, a dict,
a config stored in a checkpoint, or a :class:`Config` passed to the Python API) by the machinery of
:mod:`fomm.config.sections`, which TPSMM's schema uses too: the allowed keys
and their types come from the dataclass fields and their annotations, ranges from the fields'
``check(...)`` metadata (an ``int`` without one must be >= 0, every number must be finite). A
problem is a :class:`~fomm.errors.FommError` naming the file, the dotted key, the value and what is
allowed. Numbers written as text (YAML reads ``1e-4`` as a string) are converted. An unknown key in
a typed section is an error, with a "did you mean" when it is close to a known one; the sections
the original schema leaves free-form (``reconstruction_params``, ``visualizer_params``, most of
``animate_params`` and ``augmentation_params``' inner mappings) and the keys in
:data:`PASSTHROUGH_KEYS` are kept in ``extra`` and written back unchanged.

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
import difflib
import functools
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import ClassVar, Literal

import yaml

from fomm.config.limits import check_hourglass, check_pyramid
from fomm.config.sections import (  # noqa: F401 (the public API for declaring and checking sections)
    FRACTION,
    FROZEN_OK,
    LR,
    NON_NEG,
    POS,
    ConfigFile,
    Invalid,
    Rule,
    Section,
    check,
    coerce,
    omit_default,
    unknown_key,
)
from fomm.errors import FommError
from fomm.models.sniff import sniff_checkpoint

PRESET_PACKAGE = "fomm.presets"

# Keys outside the typed fields that are accepted and kept in the section's ``extra`` (dotted path
# -> type): ``train_params.vgg19_weights`` is written by the trainer (fomm.training.trainer).
PASSTHROUGH_KEYS: dict[str, type] = {"train_params.vgg19_weights": str}

# Known keys of mappings the original schema leaves untyped: unknown keys there are reported with
# a "did you mean" only when close to one of these (the augmentation values are checked by
# fomm.data.augment when the dataset is built).
FREE_FORM_KEYS: dict[str, tuple[str, ...]] = {
    "dataset_params.augmentation_params": (
        "flip_param",
        "jitter_param",
        "resize_param",
        "rotation_param",
        "crop_param",
    ),
    "animate_params.normalization_params": ("adapt_movement_scale", "use_relative_movement", "use_relative_jacobian"),
}


# the blur before downsampling by scale_factor: unset means the original's (1/scale - 1)/2; the
# community's 512 x 512 models use 1.5 (13 x 13 kernels). Loading a checkpoint sets it from the
# kernel the checkpoint stores, so one config serves both kinds.
ANTI_ALIAS = check(omit_default=True, gt=0, example="1.5")
FRAME_SHAPE = check(ge=1, lengths=(2, 3), example="[256, 256, 3]")


@dataclass
class CommonParams(Section):
    num_kp: int = field(default=10, metadata=POS)
    num_channels: int = field(default=3, metadata=POS)
    estimate_jacobian: bool = True


@dataclass
class HourglassParams(Section):
    """An hourglass at ``scale_factor`` of the frame: FOMM's keypoint detector and dense motion
    network, TPSMM's dense motion network."""

    block_expansion: int = field(default=64, metadata=POS)
    max_features: int = field(default=1024, metadata=POS)
    num_blocks: int = field(default=5, metadata=POS)
    scale_factor: float = field(default=0.25, metadata=FRACTION)


@dataclass
class KPDetectorParams(HourglassParams):
    block_expansion: int = field(default=32, metadata=POS)
    temperature: float = field(default=0.1, metadata=check(gt=0))
    single_jacobian_map: bool = field(default=False, metadata=omit_default())
    pad: int = field(default=0, metadata=check(omit_default=True, ge=0))
    anti_alias_sigma: float | None = field(default=None, metadata=ANTI_ALIAS)


@dataclass
class DenseMotionParams(HourglassParams):
    anti_alias_sigma: float | None = field(default=None, metadata=ANTI_ALIAS)


@dataclass
class GeneratorParams(Section):
    block_expansion: int = field(default=64, metadata=POS)
    max_features: int = field(default=512, metadata=POS)
    num_down_blocks: int = field(default=2, metadata=NON_NEG)
    num_bottleneck_blocks: int = field(default=6, metadata=NON_NEG)
    estimate_occlusion_map: bool = True
    dense_motion_params: DenseMotionParams | None = field(default_factory=DenseMotionParams)


@dataclass
class DiscriminatorParams(Section):
    scales: list[float] = field(default_factory=lambda: [1], metadata=check(gt=0, le=1, min_len=1))
    block_expansion: int = field(default=32, metadata=POS)
    max_features: int = field(default=512, metadata=POS)
    num_blocks: int = field(default=4, metadata=POS)
    sn: bool = field(default=False, metadata=omit_default())
    use_kp: bool = field(default=False, metadata=omit_default())


@dataclass
class ModelParams(Section):
    common_params: CommonParams = field(default_factory=CommonParams)
    kp_detector_params: KPDetectorParams = field(default_factory=KPDetectorParams)
    generator_params: GeneratorParams = field(default_factory=GeneratorParams)
    discriminator_params: DiscriminatorParams = field(default_factory=DiscriminatorParams)
    align_corners: bool = field(default=False, metadata=omit_default())


@dataclass
class TransformParams(Section):
    sigma_affine: float = field(default=0.05, metadata=NON_NEG)
    sigma_tps: float = field(default=0.005, metadata=NON_NEG)
    points_tps: int = field(default=5, metadata=POS)


@dataclass
class ReconstructionWeights(Section):
    """The loss weights FOMM and TPSMM share: VGG-19 perceptual (one per slice), equivariance and
    our pixel L1."""

    perceptual: list[float] = field(default_factory=lambda: [10, 10, 10, 10, 10], metadata=NON_NEG)
    equivariance_value: float = field(default=10, metadata=NON_NEG)
    # Our addition (default 0, written only when set): weight of the mean absolute pixel
    # difference between prediction and driving frame, averaged over the pyramid scales.
    pixel: float = field(default=0, metadata=check(omit_default=True, ge=0))


@dataclass
class LossWeights(ReconstructionWeights):
    generator_gan: float = field(default=0, metadata=NON_NEG)
    discriminator_gan: float = field(default=1, metadata=NON_NEG)
    feature_matching: list[float] = field(default_factory=lambda: [10, 10, 10, 10], metadata=NON_NEG)
    equivariance_jacobian: float = field(default=10, metadata=NON_NEG)
    # Our addition (default 0, written only when set): weight of the pixel L1 weighted by where the
    # driving frame differs from the source (thin moving parts such as limbs count as much as the
    # rest of the frame).
    pixel_motion: float = field(default=0, metadata=check(omit_default=True, ge=0))
    # Our addition (default 0, written only when set): weight of the keypoint separation prior
    # (fomm.training.recipe.separation_loss).
    kp_separation: float = field(default=0, metadata=check(omit_default=True, ge=0))
    # Our addition (default 0, written only when set): weight of the motion coverage prior, which pulls
    # the nearest keypoint towards every pixel that moved between source and driving frame
    # (fomm.training.recipe.motion_coverage_loss).
    kp_motion: float = field(default=0, metadata=check(omit_default=True, ge=0))


@dataclass
class TrainingParams(Section):
    """The training settings FOMM and TPSMM share: schedule, batch, the image pyramid of the
    perceptual loss and the random warps of the equivariance loss."""

    num_epochs: int = field(default=100, metadata=POS)
    num_repeats: int = field(default=1, metadata=POS)
    epoch_milestones: list[int] = field(default_factory=lambda: [60, 90], metadata=NON_NEG)
    lr_generator: float = field(default=2.0e-4, metadata=LR)
    batch_size: int = field(default=40, metadata=POS)
    scales: list[float] = field(default_factory=lambda: [1, 0.5, 0.25, 0.125], metadata=check(gt=0, le=1, min_len=1))
    checkpoint_freq: int = field(default=50, metadata=POS)
    transform_params: TransformParams = field(default_factory=TransformParams)


@dataclass
class TrainParams(TrainingParams):
    lr_discriminator: float = field(default=2.0e-4, metadata=FROZEN_OK)
    lr_kp_detector: float = field(default=2.0e-4, metadata=FROZEN_OK)
    loss_weights: LossWeights = field(default_factory=LossWeights)
    # Our additions (written only when set; see fomm.training.generator_init): start the generator
    # as an identity ("identity") and normalise its BatchNorm layers with statistics frozen after
    # the first batch ("frozen").
    generator_init: Literal["default", "identity"] = field(default="default", metadata=omit_default())
    generator_batchnorm: Literal["batch", "frozen"] = field(default="batch", metadata=omit_default())
    # Our additions against keypoint collapse (written only when set; fomm.training.recipe): a
    # decaying bias that starts the keypoints spread over the frame, an equivariance warm-up, and
    # the width (normalised units) of the separation prior loss_weights.kp_separation, and the
    # largest side (pixels) of the motion map of the coverage prior loss_weights.kp_motion.
    kp_spread_init: float = field(default=0, metadata=check(omit_default=True, ge=0))
    kp_spread_steps: int = field(default=0, metadata=check(omit_default=True, ge=0))
    equivariance_warmup_steps: int = field(default=0, metadata=check(omit_default=True, ge=0))
    equivariance_warmup_factor: float = field(default=1, metadata=check(omit_default=True, ge=0))
    kp_separation_sigma: float = field(default=0.1, metadata=check(omit_default=True, gt=0))
    kp_motion_size: int = field(default=64, metadata=check(omit_default=True, ge=1))


@dataclass
class DatasetParams(Section):
    root_dir: str | None = None
    frame_shape: list[int] = field(default_factory=lambda: [256, 256, 3], metadata=FRAME_SHAPE)
    id_sampling: bool = False
    pairs_list: str | None = None
    augmentation_params: dict = field(default_factory=dict)


@dataclass
class Config(ConfigFile):
    """A whole FOMM configuration (one original YAML file)."""

    dataset_params: DatasetParams = field(default_factory=DatasetParams)
    model_params: ModelParams = field(default_factory=ModelParams)
    train_params: TrainParams = field(default_factory=TrainParams)
    reconstruction_params: dict | None = None
    animate_params: dict | None = None
    visualizer_params: dict | None = None
    name: str | None = field(default=None, metadata={"internal": True})

    # --- derived facts used by the code -------------------------------------------------------
    @property
    def frame_shape(self) -> tuple[int, int]:
        """(H, W) of the frames the model was trained on."""
        h, w = self.dataset_params.frame_shape[:2]
        return int(h), int(w)

    @property
    def normalization_params(self) -> dict:
        return dict((self.animate_params or {}).get("normalization_params", {}))

    # --- the check at load ----------------------------------------------------------------------
    KIND: ClassVar[str] = "FOMM"
    PASSTHROUGH: ClassVar[dict[str, type]] = PASSTHROUGH_KEYS

    def check_more(self) -> None:
        _check_free_form(self)
        _check_relations(self)

    # --- I/O -----------------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path) -> Config:
        path = Path(path)
        if path.is_dir():
            raise FommError(f"config {path} is a folder; pass a YAML file or a preset name (e.g. vox-256)")
        if not path.is_file():
            raise FommError(
                f"config file not found: {path}; pass a YAML path or a preset name ({', '.join(preset_names())})"
            )
        try:
            data = yaml.safe_load(path.read_text())
        except UnicodeDecodeError:
            raise FommError(
                f"config {path} is not a text file{_binary_kind(path)}; pass a YAML config or a preset name"
            ) from None
        except yaml.YAMLError as exc:
            raise FommError(f"config {path} is not valid YAML ({str(exc).splitlines()[0]}); fix the file") from None
        if not isinstance(data, dict) or "model_params" not in data:
            raise FommError(f"config {path} has no model_params section; it does not look like a FOMM config")
        cfg = cls.from_dict(data, source=f"config {path}")
        cfg.name = path.stem
        return cfg


# ------------------------------------------------------------------------------------------------
# The check at load
# ------------------------------------------------------------------------------------------------
def validate_config(cfg: Config, source: str = "config") -> Config:
    """Check ``cfg`` in place (types, ranges, known keys, sizes that fit together); numbers written
    as text become numbers. Returns ``cfg``; raises :class:`FommError` naming ``source``, the dotted
    key, the value and what is allowed."""
    return cfg.validate(source)


def _check_free_form(cfg: Config) -> None:
    """Known keys (and booleans) in the mappings the original schema leaves free-form."""
    mappings = {
        "dataset_params.augmentation_params": cfg.dataset_params.augmentation_params,
        "animate_params.normalization_params": (cfg.animate_params or {}).get("normalization_params"),
    }
    for path, mapping in mappings.items():
        if mapping is None:
            continue
        if not isinstance(mapping, dict):
            raise Invalid(path, mapping, "expected a mapping (key: value lines)")
        known = list(FREE_FORM_KEYS[path])
        for key, value in mapping.items():
            if key not in known:
                unknown_key(f"{path}.{key}", str(key), known, Config)
            if path.endswith("normalization_params"):
                coerce(value, bool, Rule(), f"{path}.{key}")


def _check_relations(cfg: Config) -> None:
    """Sizes that must fit together (:mod:`fomm.config.limits`): each hourglass against the frame
    at its scale, and the smallest pyramid level against the perceptual loss's VGG-19."""
    mp, tp = cfg.model_params, cfg.train_params
    sections = {
        "model_params.kp_detector_params": mp.kp_detector_params,
        "model_params.generator_params.dense_motion_params": mp.generator_params.dense_motion_params,
    }
    for path, section in sections.items():
        if section is not None:
            check_hourglass(path, cfg.frame_shape, section.scale_factor, section.num_blocks, "BatchNorm")
    check_pyramid(cfg.frame_shape, tp.scales, tp.loss_weights.perceptual)


def _binary_kind(path: Path) -> str:
    """`` (it looks like ...)`` for a binary file given as a config (empty when unknown)."""
    kind = sniff_checkpoint(path)
    if kind in ("torch", "pickle"):
        return " (it looks like a checkpoint: pass that with --checkpoint)"
    return f" ({kind})" if kind.startswith("it looks like") else ""


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
        close = difflib.get_close_matches(name, preset_names(), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}? " if close else ""
        raise FommError(f"unknown preset '{name}'; {hint}choose one of {', '.join(preset_names())} or pass a YAML path")
    cfg = Config.from_dict(copy.deepcopy(_preset_data(name)), source=f"preset {name}")
    cfg.name = name
    return cfg


@functools.cache
def _preset_data(name: str) -> dict:
    """The parsed YAML of a bundled preset (parsed once per process; callers copy it)."""
    return yaml.safe_load((resources.files(PRESET_PACKAGE) / f"{name}.yaml").read_text())


def resolve_config(config: Config | str | Path | dict) -> Config:
    """Accept a :class:`Config` (checked in place), a dict in the YAML schema, a preset name or a
    YAML path; the result is checked (:func:`validate_config`)."""
    if isinstance(config, Config):
        return validate_config(config, f"config {config.name}" if config.name else "config")
    if isinstance(config, dict):
        return Config.from_dict(config)
    if not isinstance(config, (str, Path)):
        raise FommError(
            f"config must be a preset name, a YAML path, a dict or a fomm Config, not a {type(config).__name__}"
        )
    text = str(config)
    if Path(text).suffix in (".yaml", ".yml") or Path(text).exists():
        return Config.from_yaml(text)
    return load_preset(text)
