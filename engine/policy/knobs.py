"""Strategy knobs: their bounds (configs/bounds.yaml) and each player's validated values.

Knob names are flat and dotted (`gating_bias.rain`); files and requests may nest them
(`gating_bias: {rain: 0.5}`). Every check names the file or request and the key:
the TUI, the CLI's knob files and any API share `Knobs.update`, which applies a batch of
changes only when every one of them is valid, so a rejected update leaves the previous
values in place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from engine.world_model.manifest import locate_configs

BOUNDS_PATH = locate_configs()[0] / "bounds.yaml"  # the checkout's configs/ or the installed package's
SPEC_KEYS = {"type", "min", "max", "default", "step", "meaning"}
INVARIANTS = {  # name -> (type, min, max)
    "min_throttle": (float, 0.0, 1.0),
    "emergency_brake": (float, 0.0, 1.0),
    "emergency_hold_steps": (int, 1, 1000),
    "recovery_after_steps": (int, 0, 1000),
}


class KnobError(ValueError):
    """A bounds file, knob file or knob update is invalid; the message names what and where."""


@dataclass(frozen=True)
class KnobSpec:
    name: str  # dotted
    type: type
    min: float
    max: float
    default: float
    step: float
    meaning: str

    def check(self, value: Any, where: str) -> float | int:
        """The value as this knob's type, or KnobError naming `where` and the knob."""
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise KnobError(f"{where}: {self.name} must be a number, got {value!r}")
        if self.type is int and float(value) != int(value):
            raise KnobError(f"{where}: {self.name} must be a whole number, got {value!r}")
        v = self.type(value)
        if not math.isfinite(v) or not self.min <= v <= self.max:
            raise KnobError(f"{where}: {self.name} = {value!r} is outside [{self.min}, {self.max}]")
        return v


@dataclass(frozen=True)
class Bounds:
    knobs: dict[str, KnobSpec]  # dotted name -> spec, in file order
    invariants: dict[str, float | int]

    def defaults(self) -> dict[str, float | int]:
        return {name: spec.default for name, spec in self.knobs.items()}


def flatten(mapping: Any, where: str, prefix: str = "") -> dict[str, Any]:
    """{'gating_bias': {'rain': 1}} -> {'gating_bias.rain': 1}."""
    if not isinstance(mapping, dict):
        raise KnobError(f"{where}: expected a mapping of knob to value, got {type(mapping).__name__}")
    flat = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, where, name + "."))
        else:
            flat[name] = value
    return flat


def _spec(name: str, raw: Any, where: str) -> KnobSpec:
    if not isinstance(raw, dict):
        raise KnobError(f"{where}: knobs.{name} must be a mapping of {sorted(SPEC_KEYS)}")
    unknown = set(raw) - SPEC_KEYS
    if unknown:
        raise KnobError(f"{where}: knobs.{name}: unknown key {sorted(unknown)[0]!r}")
    missing = SPEC_KEYS - set(raw)
    if missing:
        raise KnobError(f"{where}: knobs.{name}: missing {sorted(missing)}")
    kind = {"float": float, "int": int}.get(raw["type"])
    if kind is None:
        raise KnobError(f"{where}: knobs.{name}.type must be float or int, got {raw['type']!r}")
    for key in ("min", "max", "default", "step"):
        v = raw[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and not isinstance(v, int)):
            raise KnobError(f"{where}: knobs.{name}.{key} must be {'an int' if kind is int else 'a number'}, got {v!r}")
    if raw["min"] > raw["max"]:
        raise KnobError(f"{where}: knobs.{name}: min {raw['min']} > max {raw['max']}")
    if not raw["min"] <= raw["default"] <= raw["max"]:
        raise KnobError(f"{where}: knobs.{name}.default {raw['default']} is outside [{raw['min']}, {raw['max']}]")
    if raw["step"] <= 0:
        raise KnobError(f"{where}: knobs.{name}.step must be positive, got {raw['step']}")
    if not isinstance(raw["meaning"], str) or not raw["meaning"].strip():
        raise KnobError(f"{where}: knobs.{name}.meaning must be a sentence")
    return KnobSpec(name, kind, kind(raw["min"]), kind(raw["max"]), kind(raw["default"]), kind(raw["step"]),
                    raw["meaning"].strip())  # fmt: skip


def read_yaml(path: Path, what: str) -> Any:
    """yaml.safe_load of `path`; KnobError naming the file when it is missing or not YAML."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise KnobError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise KnobError(f"{path}: a directory, not a {what}") from None
    except UnicodeDecodeError:
        raise KnobError(f"{path}: not a text file (a {what} is YAML)") from None
    except OSError as e:
        raise KnobError(f"{path}: cannot read the {what} ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise KnobError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None


def load_bounds(path: Path = BOUNDS_PATH) -> Bounds:
    """Parse and check a bounds file; KnobError names the file and the key at fault."""
    path = Path(path)
    raw = read_yaml(path, "bounds file")
    if not isinstance(raw, dict) or set(raw) != {"knobs", "invariants"}:
        raise KnobError(f"{path}: expected exactly the sections 'knobs' and 'invariants'")
    knobs: dict[str, KnobSpec] = {}

    def walk(node: Any, prefix: str) -> None:
        if not isinstance(node, dict) or not node:
            raise KnobError(f"{path}: knobs.{prefix.rstrip('.') or '(top)'} must be a non-empty mapping")
        for key, value in node.items():
            name = prefix + str(key)
            if isinstance(value, dict) and "type" not in value:
                walk(value, name + ".")  # a group such as gating_bias
            else:
                knobs[name] = _spec(name, value, str(path))

    walk(raw["knobs"], "")
    inv = raw["invariants"]
    if not isinstance(inv, dict):
        raise KnobError(f"{path}: invariants must be a mapping")
    unknown = set(inv) - set(INVARIANTS)
    if unknown:
        raise KnobError(f"{path}: invariants: unknown key {sorted(unknown)[0]!r}")
    for key, (kind, lo, hi) in INVARIANTS.items():
        v = inv.get(key)
        if v is None:
            raise KnobError(f"{path}: invariants.{key} is missing")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and not isinstance(v, int)):
            raise KnobError(f"{path}: invariants.{key} must be {'an int' if kind is int else 'a number'}, got {v!r}")
        if not lo <= v <= hi:
            raise KnobError(f"{path}: invariants.{key} = {v} is outside [{lo}, {hi}]")
    return Bounds(knobs, {k: INVARIANTS[k][0](inv[k]) for k in INVARIANTS})


class Knobs:
    """One player's knob values, always within bounds."""

    def __init__(self, bounds: Bounds):
        self.bounds = bounds
        self.values: dict[str, float | int] = bounds.defaults()

    def update(self, changes: dict[str, Any], where: str = "knob update") -> None:
        """Apply `changes` (flat or nested) all together, or none of them on any error."""
        flat = flatten(changes, where)
        checked = {}
        for name, value in flat.items():
            spec = self.bounds.knobs.get(name)
            if spec is None:
                raise KnobError(f"{where}: unknown knob {name!r} (knobs: {', '.join(self.bounds.knobs)})")
            checked[name] = spec.check(value, where)
        self.values.update(checked)

    def reset(self) -> None:
        self.values = self.bounds.defaults()

    def nested(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in self.values.items():
            *groups, leaf = name.split(".")
            node = out
            for g in groups:
                node = node.setdefault(g, {})
            node[leaf] = value
        return out

    def as_array(self) -> np.ndarray:
        """(K,) float64 in bounds-file order, for the numba strategy code."""
        return np.array([float(v) for v in self.values.values()])


def load_knobs_file(path: Path, bounds: Bounds) -> Knobs:
    """A YAML mapping of knob to value (gating_bias nested) -> validated Knobs."""
    raw = read_yaml(path, "knobs file")
    if raw is None:
        raise KnobError(f"{path}: empty knobs file (expected a mapping of knob to value, see configs/bounds.yaml)")
    knobs = Knobs(bounds)
    knobs.update(raw, where=str(path))
    return knobs
