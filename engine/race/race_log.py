"""The record of one duel: what it takes to race it again, and the actions to check it by.

A race is bit-for-bit reproducible from its seed, weather, renderer, knobs and weights (on one
machine: docs/determinism.md), so a record is small: the header (those settings, the sha256 of
every weight file, the package versions and CPU it ran on), the knobs at the start, every knob
change with the step it applied after, and each step's actions (steer, gas, brake per player),
which a replay compares with its own, step by step. A race a person drove (`vmc-duel play`)
says so in the header ("human": "A" or "B"): that player's actions are the person's keys, which a
replay gives the car again, and it checks the other player's actions and both cars' telemetry.

The file is JSON (`save` / `load`). The actions are stored compactly (float64, zlib, base64:
about 40 kB for a whole race). A chain of checks, one per step (a sha256 over the header, the
knob changes and the actions up to that step), makes an edited file fail at the step that was
edited: `load` names it. The checks catch edits and corruption, not forgery (anyone can
recompute them); they are not a signature.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "vmc-duel race record"
FORMAT_VERSION = 1
CHECK_CHARS = 16  # hex characters of sha256 kept per check
HEADER_KEYS = ("seed", "weather", "renderer", "driver", "max_episode_steps", "device", "precision", "weights",
               "versions", "machine")  # fmt: skip


def provenance(weights_dir: Path, controllers: list[Path]) -> dict[str, Any]:
    """{weights, versions, machine}: what a replay must match to race the same. weights: the
    sha256 of each controller file raced and of every file in the weights manifest."""
    from engine.hardware import hardware_info, package_version
    from engine.world_model.manifest import file_sha256, load_manifest

    manifest = load_manifest(weights_dir, verify=False)
    weights = {name: meta.get("sha256") for name, meta in sorted(manifest["files"].items())}
    for name, path in zip(("controller A", "controller B"), controllers):
        weights[name] = file_sha256(Path(path))
    hw = hardware_info()
    from engine.health import box2d_distribution

    versions = {name: package_version(name) for name in ("vmc-duel", "numpy", "numba", "gymnasium")}
    box2d, box2d_version = box2d_distribution()  # box2d, or box2d-py where box2d has no wheel (aarch64)
    versions[box2d] = box2d_version
    versions["onnxruntime"] = hw["onnxruntime"]
    return {"weights": weights, "versions": versions,
            "machine": {"cpu": hw["cpu"], "arch": hw["arch"], "vector_isa": hw["vector_isa"]}}  # fmt: skip


class RecordError(ValueError):
    """A race record that cannot be read, or was edited: the message names the file and the step."""


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


class RaceLog:
    """Header, starting knobs, knob changes and per-step actions of one duel (2 players).

    Args:
        header: the settings and provenance (HEADER_KEYS).
        knobs: per player, the flat knob values at the start.
    """

    def __init__(self, header: dict[str, Any], knobs: list[dict[str, Any]]):
        self.header = header
        self.knobs = [dict(k) for k in knobs]
        self.changes: list[dict[str, Any]] = []  # {"step": k, "player": p, "knobs": {...}}: applies from step k + 1
        self._actions: list[np.ndarray] = []  # per step, (2, 3) float64
        self.result: dict[str, Any] | None = None

    # -- recording -------------------------------------------------------------------------
    def knobs_changed(self, step: int, player: int, knobs: dict[str, Any]) -> None:
        """Player `player`'s knobs became `knobs` (flat, all of them) after `step` steps."""
        self.changes.append({"step": int(step), "player": int(player), "knobs": dict(knobs)})

    def add_step(self, actions: np.ndarray) -> None:
        """The (2, 3) actions of the next step."""
        self._actions.append(np.array(actions, dtype=np.float64).reshape(2, 3))

    @property
    def steps(self) -> int:
        return len(self._actions)

    @property
    def human(self) -> str | None:
        """The player a person drove ("A" or "B"), or None for a duel of two controllers."""
        return self.header.get("human")

    @property
    def actions(self) -> np.ndarray:
        """(T, 2, 3) float64: every step's actions, players A and B."""
        return np.stack(self._actions) if self._actions else np.zeros((0, 2, 3))

    def changes_at(self, step: int) -> list[dict[str, Any]]:
        """The knob changes made after `step` steps (they apply to step `step` + 1)."""
        return [c for c in self.changes if c["step"] == step]

    # -- the checks ------------------------------------------------------------------------
    def _checks(self, actions: np.ndarray) -> tuple[str, list[str]]:
        """(header check, one check per step): each step's chains the previous one, that step's
        knob changes and its actions (their exact bytes)."""
        h = hashlib.sha256(_canonical({"header": self.header, "knobs": self.knobs})).hexdigest()
        checks, prev = [], h
        by_step: dict[int, list] = {}
        for c in self.changes:
            by_step.setdefault(c["step"], []).append(c)
        for k in range(len(actions)):
            d = hashlib.sha256(prev.encode())
            d.update(_canonical(by_step.get(k, [])))
            d.update(np.ascontiguousarray(actions[k], dtype="<f8").tobytes())
            prev = d.hexdigest()
            checks.append(prev[:CHECK_CHARS])
        return h[:CHECK_CHARS], checks

    # -- the file --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        actions = self.actions
        header_check, checks = self._checks(actions)
        packed = zlib.compress(np.ascontiguousarray(actions, dtype="<f8").tobytes(), 9)
        return {
            "format": FORMAT, "format_version": FORMAT_VERSION, "header": self.header, "knobs": self.knobs,
            "knob_changes": self.changes, "steps": len(actions),
            "actions": {"dtype": "<f8", "shape": list(actions.shape), "zlib_base64": base64.b64encode(packed).decode()},
            "result": self.result, "header_check": header_check, "step_checks": checks,
        }  # fmt: skip

    def save(self, path: Path, force: bool = False) -> Path:
        """Write the record as JSON; an existing file is replaced only with `force`."""
        path = Path(path)
        if path.exists() and not force:
            raise FileExistsError(f"{path} already exists: pass --force to replace it")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: Path) -> RaceLog:
        """Read and check a record; RecordError names what is wrong (and the step, for an edit)."""
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise RecordError(f"{path}: no such file") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RecordError(f"{path}: not a race record (not JSON: {e})") from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise RecordError(f"{path}: not a race record (no 'format': {FORMAT!r})")
        if raw.get("format_version") != FORMAT_VERSION:
            raise RecordError(f"{path}: record format version {raw.get('format_version')!r}; this vmc-duel reads "
                              f"{FORMAT_VERSION}")  # fmt: skip
        try:
            header, knobs, changes = raw["header"], raw["knobs"], raw["knob_changes"]
            missing = [k for k in HEADER_KEYS if k not in header]
            if missing:
                raise RecordError(f"{path}: the header lacks {', '.join(missing)}")
            if header.get("human") not in (None, "A", "B"):
                raise RecordError(f"{path}: the header's 'human' must be A or B, got {header['human']!r}")
            spec = raw["actions"]
            steps = int(raw["steps"])
            data = zlib.decompress(base64.b64decode(spec["zlib_base64"], validate=True))
            actions = np.frombuffer(data, dtype="<f8")
            if spec.get("dtype") != "<f8" or actions.size != steps * 6:
                raise RecordError(f"{path}: the actions hold {actions.size} numbers, not {steps} steps x 2 players x 3")
            actions = actions.reshape(steps, 2, 3).astype(np.float64)
            header_check, checks = str(raw["header_check"]), list(raw["step_checks"])
            if not (isinstance(changes, list) and all(isinstance(c, dict) and {"step", "player", "knobs"} <= set(c)
                                                      for c in changes)):  # fmt: skip
                raise RecordError(f"{path}: 'knob_changes' must be a list of {{step, player, knobs}}")
        except RecordError:
            raise
        except (KeyError, TypeError, ValueError, zlib.error) as e:
            raise RecordError(f"{path}: damaged race record ({type(e).__name__}: {e})") from None
        log = cls(header, knobs)
        log.changes = changes
        log._actions = list(actions)
        log.result = raw.get("result")
        want_header, want_steps = log._checks(actions)
        if header_check != want_header:
            raise RecordError(f"{path}: refused: the header or the starting knobs were edited (their check fails; "
                              "nothing of this file can be trusted)")  # fmt: skip
        if len(checks) != steps:
            raise RecordError(f"{path}: refused: {len(checks)} step checks for {steps} steps")
        for k, (got, want) in enumerate(zip(checks, want_steps)):
            if got != want:
                raise RecordError(f"{path}: refused: step {k + 1} was edited (its knob changes or actions do not "
                                  "match the step's check)")  # fmt: skip
        return log


__all__ = ["FORMAT", "RaceLog", "RecordError"]
