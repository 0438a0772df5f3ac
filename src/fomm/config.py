"""Typed configuration that reads and writes the original FOMM YAML schema, checked at load.

``Config.from_yaml(path)`` / ``Config.from_dict(d)`` parse the original layout
(``dataset_params``, ``model_params``, ``train_params``, ``reconstruction_params``,
``animate_params``, ``visualizer_params``); ``to_dict()`` gives it back.

Every config is checked when it is loaded (:func:`validate_config`; a preset, a YAML file, a dict,
a config stored in a checkpoint, or a :class:`Config` passed to the Python API): the allowed keys
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
import dataclasses
import difflib
import functools
import json
import math
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from fomm.atomic import atomic_write_bytes
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


@dataclass(frozen=True)
class Rule:
    """Range of a number field (or of each item of a list field) and allowed list lengths."""

    gt: float | None = None
    ge: float | None = None
    le: float | None = None
    lengths: tuple[int, ...] | None = None
    min_len: int = 0
    example: str | None = None


def check(omit_default: bool = False, **rule: Any) -> dict:
    """Field metadata: a :class:`Rule` (``gt``, ``ge``, ``le``, ``lengths``, ``min_len``,
    ``example``), and
    ``omit_default`` to leave the field out of ``to_dict()`` while it has its default."""
    meta: dict[str, Any] = {"check": Rule(**rule)}
    if omit_default:
        meta["omit_default"] = True
    return meta


def _omit_default():
    return {"omit_default": True}


class _Section:
    """Dataclass mix-in: build from a dict (unknown keys go to ``extra``) and back."""

    extra: dict

    @classmethod
    def from_dict(cls, data: dict | None):
        """Build the section (not checked: :meth:`Config.from_dict` checks the whole config).
        A value that is not a mapping where a section belongs is kept as it is, for the check to
        report."""
        data = dict(data or {})
        order = list(data)
        hints = typing.get_type_hints(cls)
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name == "extra" or f.name not in data or f.metadata.get("internal"):
                continue
            value = data.pop(f.name)
            section = _section_type(hints[f.name])
            if section is not None and isinstance(value, dict):
                value = section.from_dict(value)
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


def _section_type(kind: Any) -> type | None:
    """The :class:`_Section` subclass in annotation ``kind`` (``X`` or ``X | None``), else None."""
    if isinstance(kind, type) and issubclass(kind, _Section):
        return kind
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        found = [k for k in typing.get_args(kind) if isinstance(k, type) and issubclass(k, _Section)]
        return found[0] if found else None
    return None


POS = check(ge=1)  # a count or size: a whole number >= 1
FRACTION = check(gt=0, le=1)  # a scale factor: 0 < x <= 1
NON_NEG = check(ge=0)
LR = check(gt=0)
FROZEN_OK = check(ge=0)  # a learning rate of 0 freezes the part (the original's *-adv presets)
# the blur before downsampling by scale_factor: unset means the original's (1/scale - 1)/2; the
# community's 512 x 512 models use 1.5 (13 x 13 kernels). Loading a checkpoint sets it from the
# kernel the checkpoint stores, so one config serves both kinds.
ANTI_ALIAS = check(omit_default=True, gt=0, example="1.5")


@dataclass
class CommonParams(_Section):
    num_kp: int = field(default=10, metadata=POS)
    num_channels: int = field(default=3, metadata=POS)
    estimate_jacobian: bool = True
    extra: dict = field(default_factory=dict)


@dataclass
class KPDetectorParams(_Section):
    temperature: float = field(default=0.1, metadata=check(gt=0))
    block_expansion: int = field(default=32, metadata=POS)
    max_features: int = field(default=1024, metadata=POS)
    scale_factor: float = field(default=0.25, metadata=FRACTION)
    num_blocks: int = field(default=5, metadata=POS)
    single_jacobian_map: bool = field(default=False, metadata=_omit_default())
    pad: int = field(default=0, metadata=check(omit_default=True, ge=0))
    anti_alias_sigma: float | None = field(default=None, metadata=ANTI_ALIAS)
    extra: dict = field(default_factory=dict)


@dataclass
class DenseMotionParams(_Section):
    block_expansion: int = field(default=64, metadata=POS)
    max_features: int = field(default=1024, metadata=POS)
    num_blocks: int = field(default=5, metadata=POS)
    scale_factor: float = field(default=0.25, metadata=FRACTION)
    anti_alias_sigma: float | None = field(default=None, metadata=ANTI_ALIAS)
    extra: dict = field(default_factory=dict)


@dataclass
class GeneratorParams(_Section):
    block_expansion: int = field(default=64, metadata=POS)
    max_features: int = field(default=512, metadata=POS)
    num_down_blocks: int = field(default=2, metadata=NON_NEG)
    num_bottleneck_blocks: int = field(default=6, metadata=NON_NEG)
    estimate_occlusion_map: bool = True
    dense_motion_params: DenseMotionParams | None = field(default_factory=DenseMotionParams)
    extra: dict = field(default_factory=dict)


@dataclass
class DiscriminatorParams(_Section):
    scales: list[float] = field(default_factory=lambda: [1], metadata=check(gt=0, le=1, min_len=1))
    block_expansion: int = field(default=32, metadata=POS)
    max_features: int = field(default=512, metadata=POS)
    num_blocks: int = field(default=4, metadata=POS)
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
    sigma_affine: float = field(default=0.05, metadata=NON_NEG)
    sigma_tps: float = field(default=0.005, metadata=NON_NEG)
    points_tps: int = field(default=5, metadata=POS)
    extra: dict = field(default_factory=dict)


@dataclass
class LossWeights(_Section):
    generator_gan: float = field(default=0, metadata=NON_NEG)
    discriminator_gan: float = field(default=1, metadata=NON_NEG)
    feature_matching: list[float] = field(default_factory=lambda: [10, 10, 10, 10], metadata=NON_NEG)
    perceptual: list[float] = field(default_factory=lambda: [10, 10, 10, 10, 10], metadata=NON_NEG)
    equivariance_value: float = field(default=10, metadata=NON_NEG)
    equivariance_jacobian: float = field(default=10, metadata=NON_NEG)
    # Our addition (default 0, written only when set): weight of the mean absolute pixel
    # difference between prediction and driving frame, averaged over the pyramid scales.
    pixel: float = field(default=0, metadata=check(omit_default=True, ge=0))
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
    extra: dict = field(default_factory=dict)


@dataclass
class TrainParams(_Section):
    num_epochs: int = field(default=100, metadata=POS)
    num_repeats: int = field(default=1, metadata=POS)
    epoch_milestones: list[int] = field(default_factory=lambda: [60, 90], metadata=NON_NEG)
    lr_generator: float = field(default=2.0e-4, metadata=LR)
    lr_discriminator: float = field(default=2.0e-4, metadata=FROZEN_OK)
    lr_kp_detector: float = field(default=2.0e-4, metadata=FROZEN_OK)
    batch_size: int = field(default=40, metadata=POS)
    scales: list[float] = field(default_factory=lambda: [1, 0.5, 0.25, 0.125], metadata=check(gt=0, le=1, min_len=1))
    checkpoint_freq: int = field(default=50, metadata=POS)
    transform_params: TransformParams = field(default_factory=TransformParams)
    loss_weights: LossWeights = field(default_factory=LossWeights)
    # Our additions (written only when set; see fomm.training.generator_init): start the generator
    # as an identity ("identity") and normalise its BatchNorm layers with statistics frozen after
    # the first batch ("frozen").
    generator_init: Literal["default", "identity"] = field(default="default", metadata=_omit_default())
    generator_batchnorm: Literal["batch", "frozen"] = field(default="batch", metadata=_omit_default())
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
    extra: dict = field(default_factory=dict)


@dataclass
class DatasetParams(_Section):
    root_dir: str | None = None
    frame_shape: list[int] = field(
        default_factory=lambda: [256, 256, 3], metadata=check(ge=1, lengths=(2, 3), example="[256, 256, 3]")
    )
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
    def from_dict(cls, data: dict | None, source: str = "config") -> Config:
        """Build and check a config from a dict in the YAML schema; ``source`` names it in errors
        (e.g. ``"config runs/a/config.yaml"``)."""
        if data is not None and not isinstance(data, dict):
            raise FommError(f"{source} is a {type(data).__name__}, not a mapping of FOMM config sections")
        return validate_config(super().from_dict(data), source)

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

    def to_yaml(self, path: str | Path | None = None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)
        if path is not None:
            atomic_write_bytes(path, text.encode())
        return text

    def copy(self) -> Config:
        return copy.deepcopy(self)


# ------------------------------------------------------------------------------------------------
# The check at load
# ------------------------------------------------------------------------------------------------
class _Invalid(Exception):
    """One bad value: the dotted key, the value and what is allowed (turned into a FommError)."""

    def __init__(self, path: str, value: Any, allowed: str, unknown: bool = False):
        super().__init__(path)
        self.path, self.value, self.allowed, self.unknown = path, value, allowed, unknown


def validate_config(cfg: Config, source: str = "config") -> Config:
    """Check ``cfg`` in place (types, ranges, known keys, sizes that fit together); numbers written
    as text become numbers. Returns ``cfg``; raises :class:`FommError` naming ``source``, the dotted
    key, the value and what is allowed."""
    try:
        _check_section(cfg, "")
        _check_free_form(cfg)
        _check_relations(cfg)
    except _Invalid as bad:
        if bad.unknown:
            raise FommError(f"{source}: unknown key {bad.path}; {bad.allowed}") from None
        raise FommError(f"{source}: {bad.path} is {_show(bad.value)}; {bad.allowed}") from None
    return cfg


def _show(value: Any) -> str:
    try:
        text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_section(section: _Section, prefix: str) -> None:
    hints = typing.get_type_hints(type(section))
    fields = [f for f in dataclasses.fields(section) if f.name != "extra" and not f.metadata.get("internal")]
    for f in fields:
        path = f"{prefix}{f.name}"
        value = getattr(section, f.name)
        sub = _section_type(hints[f.name])
        if sub is not None and isinstance(value, dict):  # a plain dict set on a Config object
            value = sub.from_dict(value)
            setattr(section, f.name, value)
        if isinstance(value, _Section):
            _check_section(value, path + ".")
            continue
        if sub is not None and not (value is None and _allows_none(hints[f.name])):
            raise _Invalid(path, value, "expected a mapping (key: value lines)")
        setattr(section, f.name, _coerce(value, hints[f.name], f.metadata.get("check", Rule()), path))
    for key in list(section.extra):
        path = f"{prefix}{key}"
        if path in PASSTHROUGH_KEYS:
            section.extra[key] = _coerce(section.extra[key], PASSTHROUGH_KEYS[path] | None, Rule(), path)
            continue
        _unknown_key(path, str(key), [f.name for f in fields])


def _unknown_key(path: str, key: str, known: list[str]) -> None:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.7)
    close = close or [k for k in known if len(key) >= 3 and (key in k or k in key)][:1]
    if close:
        raise _Invalid(path, key, f"did you mean {close[0]}?", unknown=True)
    homes = [home for home in _field_homes().get(key, []) if f"{home}.{key}" != path]
    if homes:
        raise _Invalid(path, key, f"{key} belongs in {' or '.join(homes)}", unknown=True)
    raise _Invalid(path, key, f"the keys allowed there are {', '.join(known)}", unknown=True)


@functools.cache
def _field_homes() -> dict[str, list[str]]:
    """Field name -> the dotted sections of :class:`Config` that have it (for misplaced keys)."""
    homes: dict[str, list[str]] = {}

    def visit(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name == "extra" or f.metadata.get("internal"):
                continue
            homes.setdefault(f.name, []).append(prefix.rstrip(".") or "the top level")
            sub = _section_type(hints[f.name])
            if sub is not None:
                visit(sub, f"{prefix}{f.name}.")

    visit(Config, "")
    return homes


def _allows_none(kind: Any) -> bool:
    return typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in typing.get_args(kind)


def _coerce(value: Any, kind: Any, rule: Rule, path: str) -> Any:
    """``value`` checked against annotation ``kind`` and ``rule`` (converted where harmless)."""
    if _allows_none(kind):
        if value is None:
            return None
        (kind,) = [k for k in typing.get_args(kind) if k is not type(None)]
    origin = typing.get_origin(kind)
    if origin is Literal:
        choices = typing.get_args(kind)
        if value not in choices:
            raise _Invalid(path, value, f"use one of {', '.join(map(str, choices))}")
        return value
    if kind is list or origin is list:
        return _coerce_list(value, (typing.get_args(kind) or (Any,))[0], rule, path)
    if kind is dict or origin is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise _Invalid(path, value, "expected a mapping (key: value lines)")
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise _Invalid(path, value, "expected true or false")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise _Invalid(path, value, "expected text")
        return value
    if kind in (int, float):
        return _number(value, kind, rule, path)
    return value


def _coerce_list(value: Any, item: Any, rule: Rule, path: str) -> list:
    allowed = _describe_list(item, rule)
    if not isinstance(value, (list, tuple)):
        raise _Invalid(path, value, f"expected {allowed}")
    if len(value) < rule.min_len or (rule.lengths and len(value) not in rule.lengths):
        raise _Invalid(path, list(value), f"expected {allowed}")
    if item is Any:
        return list(value)
    try:
        return [_coerce(v, item, rule, path) for v in value]
    except _Invalid:
        raise _Invalid(path, list(value), f"expected {allowed}") from None


def _number(value: Any, kind: type, rule: Rule, path: str) -> int | float:
    allowed = f"expected {_describe_number(kind, rule)}"
    number = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise _Invalid(path, value, allowed) from None
    if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
        raise _Invalid(path, value, allowed)
    if kind is int:
        if number != int(number):
            raise _Invalid(path, value, allowed)
        number = int(number)
    elif isinstance(value, str):
        number = float(number)
    too_low = (rule.gt is not None and not number > rule.gt) or (rule.ge is not None and not number >= rule.ge)
    if kind is int and rule.gt is None and rule.ge is None:
        too_low = number < 0
    if too_low or (rule.le is not None and not number <= rule.le):
        raise _Invalid(path, value, allowed)
    return number


def _describe_number(kind: type, rule: Rule, plural: bool = False) -> str:
    noun = ("whole numbers" if plural else "a whole number") if kind is int else ("numbers" if plural else "a number")
    low = f"> {rule.gt:g}" if rule.gt is not None else f">= {rule.ge:g}" if rule.ge is not None else None
    if kind is int and low is None:
        low = ">= 0"
    if low and rule.le is not None:
        bracket = "(" if rule.gt is not None else "["
        return f"{noun} in {bracket}{(rule.gt if rule.gt is not None else rule.ge):g}, {rule.le:g}]"
    if low:
        return f"{noun} {low}"
    return f"{noun} <= {rule.le:g}" if rule.le is not None else noun


def _describe_list(item: Any, rule: Rule) -> str:
    if rule.lengths:
        count = " or ".join(map(str, rule.lengths)) + " "
    else:
        count = ""
    items = _describe_number(item, rule, plural=True) if item in (int, float) else "items"
    example = f" (e.g. {rule.example})" if rule.example else ""
    return f"a {'non-empty ' if rule.min_len else ''}list of {count}{items}{example}"


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
            raise _Invalid(path, mapping, "expected a mapping (key: value lines)")
        known = list(FREE_FORM_KEYS[path])
        for key, value in mapping.items():
            if key not in known:
                _unknown_key(f"{path}.{key}", str(key), known)
            if path.endswith("normalization_params"):
                _coerce(value, bool, Rule(), f"{path}.{key}")


def _check_relations(cfg: Config) -> None:
    """Sizes that must fit together: each hourglass halves its input ``num_blocks`` times."""
    h, w = cfg.dataset_params.frame_shape[:2]
    mp = cfg.model_params
    sections = {
        "model_params.kp_detector_params": mp.kp_detector_params,
        "model_params.generator_params.dense_motion_params": mp.generator_params.dense_motion_params,
    }
    for path, section in sections.items():
        if section is None:
            continue
        step = 2**section.num_blocks
        for side in (h, w):
            size = side * section.scale_factor
            if abs(size - round(size)) > 1e-6 or round(size) % step:
                raise _Invalid(
                    f"{path}.scale_factor",
                    section.scale_factor,
                    f"frame {w}x{h} x scale_factor = {side * section.scale_factor:g} px is not divisible by "
                    f"2**num_blocks = {step}; change scale_factor, num_blocks or dataset_params.frame_shape",
                )


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
