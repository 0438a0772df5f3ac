"""How well a checkpoint's state dicts fit a config: tensor shapes compared key by key, presets
ranked by fit, and the one preset chosen for a checkpoint that carries no config.

Shapes come from a weightless (``meta`` device) build of the model, so comparing a checkpoint with
every preset allocates nothing. Each preset is compared in the anti-alias kind the checkpoint
stores when the preset is known in it (:func:`fomm.models.anti_alias.known_kind`): vox-512 in
both of its kinds, so a 13 x 13 vox checkpoint fits vox-256 and vox-512 alike; which one it is
then comes from what the file is registered as, or from its name, else a one-line error.
"""

from __future__ import annotations

import json

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
    file has), else ``prefer``, must name one of them, else a one-line error."""
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
    if chosen not in fitting:
        raise _ambiguous(path, configs, fitting)
    return configs[chosen]


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
    groups: dict[tuple, list[str]] = {}
    for n in names:
        groups.setdefault(_function(configs[n]), []).append(n)
    shown = [min(group, key=lambda n: (len(n), n)) for group in groups.values()]
    listed = ", ".join(_kind(name, len(group) - 1, configs[name]) for name, group in zip(shown, groups.values()))
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
