"""Declaring and checking config sections: the machinery both schemas use (FOMM's in
:mod:`fomm.config`, TPSMM's in :mod:`fomm.models.tpsmm.config`).

A section is a dataclass deriving from :class:`Section` whose fields are the YAML keys; the type
annotations say what a value may be and each field's ``check(...)`` metadata its range (an ``int``
without one must be >= 0, every number must be finite). A whole configuration derives from
:class:`ConfigFile`: ``from_dict(data, source)`` builds it and checks every field (numbers written
as text become numbers; unknown keys are errors with a "did you mean"), then its
:meth:`ConfigFile.check_more` hook (relations between values). Every problem becomes one
:class:`~fomm.errors.FommError` line naming the source, the dotted key, the value and what is
allowed; a check raises :class:`Invalid` for that.
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
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml

from fomm.atomic import atomic_write_bytes
from fomm.errors import FommError


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
    ``example``), and ``omit_default`` to leave the field out of ``to_dict()`` while it has its
    default."""
    meta: dict[str, Any] = {"check": Rule(**rule)}
    if omit_default:
        meta["omit_default"] = True
    return meta


def omit_default() -> dict:
    """Field metadata of a field left out of ``to_dict()`` while it has its default."""
    return {"omit_default": True}


POS = check(ge=1)  # a count or size: a whole number >= 1
FRACTION = check(gt=0, le=1)  # a scale factor: 0 < x <= 1
NON_NEG = check(ge=0)
LR = check(gt=0)
FROZEN_OK = check(ge=0)  # a learning rate of 0 freezes the part (the original's *-adv presets)


@dataclass
class Section:
    """Base of every section (a dataclass): build from a dict and back. Keys that are not fields go
    to ``extra`` (every section has it, keyword-only), kept as read and written back."""

    extra: dict = field(default_factory=dict, kw_only=True)

    @classmethod
    def from_dict(cls, data: dict | None):
        """Build the section (not checked: :meth:`ConfigFile.from_dict` checks the whole config).
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
            section = section_type(hints[f.name])
            if section is not None and isinstance(value, dict):
                value = section.from_dict(value)
            kwargs[f.name] = value
        obj = cls(**kwargs, extra=data)
        obj._order = order
        return obj

    def as_kwargs(self) -> dict[str, Any]:
        """The typed fields by name (no ``extra``): the keyword arguments of the network the
        section configures."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}

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
            out[name] = value.to_dict() if isinstance(value, Section) else copy.deepcopy(value)
        return out


def section_type(kind: Any) -> type | None:
    """The :class:`Section` subclass in annotation ``kind`` (``X`` or ``X | None``), else None."""
    if isinstance(kind, type) and issubclass(kind, Section):
        return kind
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        found = [k for k in typing.get_args(kind) if isinstance(k, type) and issubclass(k, Section)]
        return found[0] if found else None
    return None


class Invalid(Exception):
    """One bad value: the dotted key, the value and what is allowed (turned into a FommError);
    ``line``, when given, is the whole message after the source."""

    def __init__(self, path: str, value: Any = None, allowed: str = "", unknown: bool = False, line: str = ""):
        super().__init__(path)
        self.path, self.value, self.allowed, self.unknown, self.line = path, value, allowed, unknown, line

    def message(self, source: str) -> str:
        if self.line:
            return f"{source}: {self.line}"
        if self.unknown:
            return f"{source}: unknown key {self.path}; {self.allowed}"
        return f"{source}: {self.path} is {show(self.value)}; {self.allowed}"


class ConfigFile(Section):
    """Base of a whole configuration (one YAML file): checked construction, YAML out, copies.

    Subclasses name their family in ``KIND`` (for messages), may accept extra dotted keys in
    ``PASSTHROUGH`` (dotted path -> type, kept in the section's ``extra``) and add checks in
    :meth:`check_more`."""

    KIND: ClassVar[str] = "config"
    PASSTHROUGH: ClassVar[dict[str, type]] = {}

    @classmethod
    def from_dict(cls, data: dict | None, source: str = "config"):
        """Build and check a config from a dict in the YAML schema; ``source`` names it in errors
        (e.g. ``"config runs/a/config.yaml"``)."""
        if data is not None and not isinstance(data, dict):
            raise FommError(f"{source} is a {type(data).__name__}, not a mapping of {cls.KIND} config sections")
        return super().from_dict(data).validate(source)

    def validate(self, source: str = "config"):
        """Check in place (types, ranges, known keys, then :meth:`check_more`); numbers written as
        text become numbers. Returns ``self``; raises :class:`FommError` naming ``source``."""
        try:
            check_section(self, "", type(self))
            self.check_more()
        except Invalid as bad:
            raise FommError(bad.message(source)) from None
        return self

    def check_more(self) -> None:
        """Checks beyond each field's own type and range (raise :class:`Invalid`)."""

    def to_yaml(self, path: str | Path | None = None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)
        if path is not None:
            atomic_write_bytes(path, text.encode())
        return text

    def copy(self):
        return copy.deepcopy(self)


def show(value: Any) -> str:
    """A value as a message shows it (JSON-like, at most 60 characters)."""
    try:
        text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_section(section: Section, prefix: str, root: type[ConfigFile]) -> None:
    """Check (and convert in place) every field of ``section``, at dotted ``prefix`` of ``root``."""
    hints = typing.get_type_hints(type(section))
    fields = [f for f in dataclasses.fields(section) if f.name != "extra" and not f.metadata.get("internal")]
    for f in fields:
        path = f"{prefix}{f.name}"
        value = getattr(section, f.name)
        sub = section_type(hints[f.name])
        if sub is not None and isinstance(value, dict):  # a plain dict set on a config object
            value = sub.from_dict(value)
            setattr(section, f.name, value)
        if isinstance(value, Section):
            check_section(value, path + ".", root)
            continue
        if sub is not None and not (value is None and _allows_none(hints[f.name])):
            raise Invalid(path, value, "expected a mapping (key: value lines)")
        setattr(section, f.name, coerce(value, hints[f.name], f.metadata.get("check", Rule()), path))
    for key in list(section.extra):
        path = f"{prefix}{key}"
        if path in root.PASSTHROUGH:
            section.extra[key] = coerce(section.extra[key], root.PASSTHROUGH[path] | None, Rule(), path)
            continue
        unknown_key(path, str(key), [f.name for f in fields], root)


def unknown_key(path: str, key: str, known: list[str], root: type[ConfigFile]) -> None:
    """Raise :class:`Invalid` for an unknown key: a close known one, else where it belongs."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.7)
    close = close or [k for k in known if len(key) >= 3 and (key in k or k in key)][:1]
    if close:
        raise Invalid(path, key, f"did you mean {close[0]}?", unknown=True)
    homes = [home for home in _field_homes(root).get(key, []) if f"{home}.{key}" != path]
    if homes:
        raise Invalid(path, key, f"{key} belongs in {' or '.join(homes)}", unknown=True)
    raise Invalid(path, key, f"the keys allowed there are {', '.join(known)}", unknown=True)


@functools.cache
def _field_homes(root: type) -> dict[str, list[str]]:
    """Field name -> the dotted sections of ``root`` that have it (for misplaced keys)."""
    homes: dict[str, list[str]] = {}

    def visit(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name == "extra" or f.metadata.get("internal"):
                continue
            homes.setdefault(f.name, []).append(prefix.rstrip(".") or "the top level")
            sub = section_type(hints[f.name])
            if sub is not None:
                visit(sub, f"{prefix}{f.name}.")

    visit(root, "")
    return homes


def _allows_none(kind: Any) -> bool:
    return typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in typing.get_args(kind)


def coerce(value: Any, kind: Any, rule: Rule, path: str) -> Any:
    """``value`` checked against annotation ``kind`` and ``rule`` (converted where harmless)."""
    if _allows_none(kind):
        if value is None:
            return None
        (kind,) = [k for k in typing.get_args(kind) if k is not type(None)]
    origin = typing.get_origin(kind)
    if origin is Literal:
        choices = typing.get_args(kind)
        if value not in choices:
            raise Invalid(path, value, f"use one of {', '.join(map(str, choices))}")
        return value
    if kind is list or origin is list:
        return _coerce_list(value, (typing.get_args(kind) or (Any,))[0], rule, path)
    if kind is dict or origin is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise Invalid(path, value, "expected a mapping (key: value lines)")
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise Invalid(path, value, "expected true or false")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise Invalid(path, value, "expected text")
        return value
    if kind in (int, float):
        return _number(value, kind, rule, path)
    return value


def _coerce_list(value: Any, item: Any, rule: Rule, path: str) -> list:
    allowed = _describe_list(item, rule)
    if not isinstance(value, (list, tuple)):
        raise Invalid(path, value, f"expected {allowed}")
    if len(value) < rule.min_len or (rule.lengths and len(value) not in rule.lengths):
        raise Invalid(path, list(value), f"expected {allowed}")
    if item is Any:
        return list(value)
    try:
        return [coerce(v, item, rule, path) for v in value]
    except Invalid:
        raise Invalid(path, list(value), f"expected {allowed}") from None


def _number(value: Any, kind: type, rule: Rule, path: str) -> int | float:
    allowed = f"expected {_describe_number(kind, rule)}"
    number = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise Invalid(path, value, allowed) from None
    if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
        raise Invalid(path, value, allowed)
    if kind is int:
        if number != int(number):
            raise Invalid(path, value, allowed)
        number = int(number)
    elif isinstance(value, str):
        number = float(number)
    too_low = (rule.gt is not None and not number > rule.gt) or (rule.ge is not None and not number >= rule.ge)
    if kind is int and rule.gt is None and rule.ge is None:
        too_low = number < 0
    if too_low or (rule.le is not None and not number <= rule.le):
        raise Invalid(path, value, allowed)
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
