"""How well a checkpoint's state dicts fit a config: tensor shapes compared key by key, presets
ranked by fit, and the one preset chosen for a checkpoint that carries no config.

Shapes come from a weightless (``meta`` device) build of the model, so comparing a checkpoint with
every preset allocates nothing. Each preset is compared in the anti-alias kind the checkpoint
stores when the preset is known in it (:func:`fomm.models.anti_alias.known_kind`): vox-512 in
both of its kinds, so a 13 x 13 vox checkpoint fits vox-256 and vox-512 alike; which one it is
then comes from what the file is registered as, or from its name, else the smallest frame size
(the original's published checkpoints and its training outputs are 256 px) with one warning line
naming the other kind's ``--config``.
"""

from __future__ import annotations

import json
import warnings

import torch

from fomm.config import Config, load_preset, preset_names
from fomm.errors import FommError, plural
from fomm.models.anti_alias import known_kind
from fomm.models.checkpoint_io import INFERENCE_PARTS
from fomm.models.first_order_model import FirstOrderModel


class AmbiguousPreset(FommError):
    """A checkpoint without a config fits presets that compute different functions; ``presets``:
    one of each kind (what ``--config`` may be)."""

    def __init__(self, message: str, presets: list[str]):
        super().__init__(message)
        self.presets = presets


def expected_shapes(config: Config, part: str) -> dict[str, tuple]:
    """State-dict key -> shape of a model part built from ``config``, without allocating weights."""
    return expected_part_shapes(config, (part,))[part]


def expected_part_shapes(config: Config, parts: tuple[str, ...]) -> dict[str, dict[str, tuple]]:
    """:func:`expected_shapes` of several parts from ONE (weightless, ``meta``) model build."""
    with torch.device("meta"):
        model = FirstOrderModel(config, with_discriminator="discriminator" in parts)
    return {part: {k: tuple(v.shape) for k, v in getattr(model, part).state_dict().items()} for part in parts}


def compare_state(expected: dict[str, tuple], state: dict[str, torch.Tensor]) -> dict[str, list]:
    """Keys missing from ``state``, unexpected in it, and present with another shape."""
    return {
        "missing": [k for k in expected if k not in state],
        "unexpected": [k for k in state if k not in expected],
        "shape": [k for k in expected if k in state and tuple(state[k].shape) != expected[k]],
    }


def mismatch_count(diff: dict[str, list]) -> int:
    return sum(len(v) for v in diff.values())


def describe_mismatch(diff: dict[str, list], state: dict, expected: dict) -> str:
    parts = []
    for label, keys in (("missing", diff["missing"]), ("unexpected", diff["unexpected"])):
        if keys:
            parts.append(f"{len(keys)} {label} keys (e.g. {', '.join(keys[:3])})")
    if diff["shape"]:
        k = diff["shape"][0]
        parts.append(
            f"{len(diff['shape'])} keys of another shape (e.g. {k}: checkpoint "
            f"{tuple(state[k].shape)} vs config {expected[k]})"
        )
    return "; ".join(parts)


def match_presets(states: dict[str, dict], configs: dict[str, Config] | None = None) -> list[tuple[int, int, str]]:
    """Rank presets by how well their generator and kp detector fit the state dicts.

    Returns ``(mismatches in G+KP, mismatches in the discriminator, name)`` sorted best first.
    ``configs``: the presets by name, already loaded (default: :func:`preset_configs`).
    """
    configs = preset_configs() if configs is None else configs
    with_disc = "discriminator" in states
    parts = INFERENCE_PARTS + (("discriminator",) if with_disc else ())
    ranked = []
    for name, cfg in configs.items():
        shapes = expected_part_shapes(cfg, parts)
        gk = sum(mismatch_count(compare_state(shapes[p], states[p])) for p in INFERENCE_PARTS)
        disc = mismatch_count(compare_state(shapes["discriminator"], states["discriminator"])) if with_disc else 0
        ranked.append((gk, disc, name))
    return sorted(ranked)


def preset_configs(states: dict[str, dict] | None = None) -> dict[str, Config]:
    """Every bundled preset, loaded once, by name; with ``states``, each in the anti-alias kind
    those store when the preset is known in it (module doc)."""
    configs = {name: load_preset(name) for name in preset_names()}
    return configs if states is None else {name: known_kind(cfg, states) for name, cfg in configs.items()}


def preset_for(path, states: dict[str, dict], prefer: str | None = None, registered=None) -> Config:
    """The one preset whose tensor shapes fit ``states`` (each preset is loaded once).

    Presets with identical networks (taichi-256 and vox-256) fit alike; ``prefer`` (e.g. the
    preset the file name points to) is taken among those, else the first by name. When the
    fitting presets compute different functions (vox-256 and the community's vox-512), the shapes
    cannot choose: ``registered()`` (asked then only: e.g. the preset whose registered sha256 the
    file has), else ``prefer``, names one of them; else the kind of the smallest frame size is
    taken with one warning line, and only a tie at that size is a one-line error."""
    configs = preset_configs(states)
    ranked = match_presets(states, configs)
    gk, _, name = ranked[0]
    if gk:
        detail = describe_mismatch(*_first_mismatch(configs[name], states))
        raise FommError(
            f"{path} fits no bundled preset (closest: {name}: {detail}); pass --config with "
            f"the YAML it was trained with"
        )
    fitting = [n for g, _, n in ranked if g == 0]
    if _functions(configs, fitting) == 1:
        tied = [n for g, d, n in ranked if (g, d) == ranked[0][:2]]
        return configs[prefer if prefer in tied else name]
    chosen = registered() if registered else None
    chosen = chosen if chosen in fitting else prefer
    if chosen in fitting:
        return configs[chosen]
    return _smallest(path, configs, fitting)


def _smallest(path, configs: dict[str, Config], names: list[str]) -> Config:
    """The fitting kind of the smallest frame size (what an unnamed file of these shapes most often
    is: a 256 px checkpoint of the original code), said in one warning line with the fix."""
    kinds = _kinds(configs, names)
    size = min(configs[n].frame_shape[0] * configs[n].frame_shape[1] for n in kinds)
    smallest = [n for n in kinds if configs[n].frame_shape[0] * configs[n].frame_shape[1] == size]
    if len(smallest) > 1:
        raise _ambiguous(path, configs, names)
    chosen, others = smallest[0], [n for n in kinds if n != smallest[0]]
    listed = ", ".join(_kind(n, len(kinds[n]) - 1, configs[n]) for n in others)
    warnings.warn(
        f"{path} carries no config and its name does not say which model it is: read as {chosen} at "
        f"{configs[chosen].frame_shape[1]}x{configs[chosen].frame_shape[0]}; its shapes fit {listed} too "
        f"(pass --config {' or --config '.join(others)} if it is that one)",
        stacklevel=2,
    )
    return configs[chosen]


def _kinds(configs: dict[str, Config], names: list[str]) -> dict[str, list[str]]:
    """The shortest name of each function among ``names`` -> the names computing it."""
    groups: dict[tuple, list[str]] = {}
    for n in names:
        groups.setdefault(_function(configs[n]), []).append(n)
    return {min(group, key=lambda n: (len(n), n)): group for group in groups.values()}


def inference_options(cfg: Config) -> dict:
    """The model options that change what the generator and keypoint detector compute."""
    options = cfg.to_dict()["model_params"]
    options.pop("discriminator_params", None)
    return options


def _function(cfg: Config) -> tuple:
    """What a config computes from a checkpoint's weights: its model options and frame size."""
    return json.dumps(inference_options(cfg), sort_keys=True), tuple(cfg.frame_shape)


def same_function(cfg: Config, preset: str) -> bool:
    """Whether ``cfg`` computes from a checkpoint's weights what preset ``preset`` computes."""
    return _function(cfg) == _function(load_preset(preset))


def _functions(configs: dict[str, Config], names: list[str]) -> int:
    return len({_function(configs[n]) for n in names})


def _ambiguous(path, configs: dict[str, Config], names: list[str]) -> AmbiguousPreset:
    """Presets with the same tensor shapes may still compute different functions (e.g. vox-256 and
    the community's vox-512, or two that differ only in the keypoint padding): one line naming
    one of each kind (the shortest name) and the fix."""
    kinds = _kinds(configs, names)
    shown = list(kinds)
    listed = ", ".join(_kind(name, len(group) - 1, configs[name]) for name, group in kinds.items())
    return AmbiguousPreset(
        f"{path} carries no config and fits several presets that compute different functions: {listed}; "
        f"nothing in the file tells them apart: pass the one it was trained with, --config {' or --config '.join(shown)} "
        "(or name the file after it)",
        shown,
    )


def _kind(name: str, twins: int, cfg: Config) -> str:
    """``vox-256 (and 6 presets of its network) at 256x256``."""
    also = f" (and {plural(twins, 'preset')} of its network)" if twins else ""
    return f"{name}{also} at {cfg.frame_shape[1]}x{cfg.frame_shape[0]}"


def _first_mismatch(cfg: Config, states: dict) -> tuple[dict, dict, dict]:
    shapes = expected_part_shapes(cfg, INFERENCE_PARTS)
    for part in INFERENCE_PARTS:
        diff = compare_state(shapes[part], states[part])
        if mismatch_count(diff):
            return diff, states[part], shapes[part]
    return {"missing": [], "unexpected": [], "shape": []}, {}, {}
