"""World Models' linear controller, for every player at once, in numba.

Per player p: a = tanh(W_p @ [z_p, h_p] + b_p), mapped as in World Models to
steer = a0, gas = (a1 + 1) / 2, brake = clip(a2, 0, 1). Each player has its own weights
(`weights/controllerA.npz`, `controllerB.npz`: W (3, z + hidden), b (3,), plus metadata).
A file may also hold a second set for a wet track, W_rain and b_rain (trained in rain:
`vmc-duel train ship-controller --weather rain`); a duel in rain drives with those. The car
knows the weather (the same wet flag the strategy's rain regime reads), as a driver does.

A set may carry a steering hold p (`steer_hold`, `rain_steer_hold`; 0 when absent: none). A
linear controller's steering oscillates about a straight line (a reversal every ~3 steps,
faster than the front wheels follow); with the hold, a steer to the other side than the last
one no larger than p is held straight (0) instead: the wheel changes side only when the
controller asks for more than p. No lag, unlike a low-pass: a steer beyond p, or to the same
side, passes unchanged (`hold_steering`).

A set may carry a pace too (`pace_bend`, `pace_straight`, m/s; `rain_pace_bend`,
`rain_pace_straight` for the wet-track set; 0 or absent: none): full gas on a straight the frame
shows, the brakes before a bend it shows (engine.policy.pace).

The numba functions of the engine compile once and are cached (`cache=True`) beside the
source; when the install is read-only, numba caches them in the user's cache directory
instead (~/.cache/numba, or $NUMBA_CACHE_DIR), which a test checks.
"""

from __future__ import annotations

import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numba
import numpy as np

ACTIONS = 3  # steer, gas, brake
STEER_HOLD_MAX = 1.0  # a steering hold above this would forbid every reversal (|steer| <= 1)
PACE_MAX = 200.0  # m/s, a pace above this is no pace (the car tops out near 100)
PACE_KEYS = ("pace_bend", "pace_straight")  # a set's pace (engine.policy.pace), m/s
SHA_PREFIX = 8  # hex digits of a controller file's sha256 shown beside its name
WEATHER_SETS = ("clear", "rain")  # the weathers a controller file can hold weights for


class ControllerError(ValueError):
    """A controller file is missing, corrupt or of the wrong shape; the message names it."""


def load_controller(path: Path, z_size: int, hidden: int,
                    weather: str = "clear") -> tuple[np.ndarray, np.ndarray, dict]:  # fmt: skip
    """(W (3, z+hidden) float64, b (3,) float64, metadata) from an .npz written by training.

    weather "rain" takes the file's wet-track set (W_rain, b_rain) when it has one; the
    metadata then describes that set (its run and generation: `rain_name`, `rain_generation`,
    `rain_method` in the file), so a screen names the weights that drive."""
    path = Path(path)
    if weather not in WEATHER_SETS:
        raise ValueError(f"weather {weather!r} is not one of {', '.join(WEATHER_SETS)}")
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ("W", "b") if k not in f.files]
            if missing:
                raise ControllerError(f"{path}: no array {missing[0]!r} (a controller file holds W and b)")
            if ("W_rain" in f.files) != ("b_rain" in f.files):
                raise ControllerError(f"{path}: W_rain and b_rain come together (the wet-track set), found one")
            sets = {k: f[k].astype(np.float64) for k in ("W", "b", "W_rain", "b_rain") if k in f.files}
            meta = {k: f[k].item() for k in f.files if f[k].ndim == 0}
    except ControllerError:
        raise
    except FileNotFoundError:
        raise ControllerError(f"{path}: no such controller file") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ControllerError(f"{path}: unreadable ({str(e)[:120]})") from None
    for w, bias in (("W", "b"), ("W_rain", "b_rain")) if "W_rain" in sets else (("W", "b"),):
        W, b = sets[w], sets[bias]
        if W.shape != (ACTIONS, z_size + hidden) or b.shape != (ACTIONS,):
            raise ControllerError(f"{path}: {w} {W.shape} and {bias} {b.shape}, expected "
                                  f"({ACTIONS}, {z_size + hidden}) and (3,)")  # fmt: skip
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise ControllerError(f"{path}: {w} or {bias} holds NaN or infinity")
    for key in ("steer_hold", "rain_steer_hold"):
        if key in meta:
            hold = meta[key]
            if isinstance(hold, (bool, str)) or not np.isfinite(hold) or not 0.0 <= hold <= STEER_HOLD_MAX:
                raise ControllerError(f"{path}: {key} = {hold!r}, expected a number in [0, {STEER_HOLD_MAX}]")
    for key in PACE_KEYS + tuple(f"rain_{k}" for k in PACE_KEYS):
        if key in meta:
            value = meta[key]
            if isinstance(value, (bool, str)) or not np.isfinite(value) or not 0.0 <= value <= PACE_MAX:
                raise ControllerError(f"{path}: {key} = {value!r}, expected a speed in [0, {PACE_MAX}] m/s")
    wet = weather == "rain" and "W_rain" in sets
    W, b = (sets["W_rain"], sets["b_rain"]) if wet else (sets["W"], sets["b"])
    if wet:  # describe the set that drives
        meta.pop("averaged_generations", None)
        meta["steer_hold"] = meta.get("rain_steer_hold", 0.0)  # the wet set's own hold, none when it has none
        for key in PACE_KEYS:  # and its own pace
            meta[key] = meta.get(f"rain_{key}", 0.0)
        meta.update({k: meta[f"rain_{k}"] for k in ("name", "generation", "method", "averaged_generations")
                     if f"rain_{k}" in meta})  # fmt: skip
    return W, b, meta


def display_path(path: Path) -> str:
    """A file of the project as 'weights/controllerA.npz' (the same on every checkout and in an
    installed wheel, whose weights are the package vmc_duel_weights), any other file of the
    checkout relative to it, any other as given."""
    from engine.world_model.manifest import WEIGHTS_DIR, checkout_root

    resolved = Path(path).resolve()
    try:
        return str(Path("weights") / resolved.relative_to(WEIGHTS_DIR.resolve()))
    except ValueError:
        pass
    root = checkout_root()
    try:
        return str(resolved.relative_to(root)) if root is not None else str(path)
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class ControllerInfo:
    """Which controller a player drives with, as the screen, the telemetry and the league tables name it."""

    name: str  # short label: the one given, else the file's stem ("controllerA")
    file: str  # the path as given
    sha256: str  # of the file's bytes: two files with one sha256 are the same controller
    method: str  # how it was made (training writes it), "PLACEHOLDER ..." for a placeholder
    run: str | None  # the training run (CMA-ES: its run name, e.g. "A16"), when the file says
    generation: int | None  # the CMA-ES generation it comes from, when the file says
    placeholder: bool
    averaged: str | None = None  # "8, 10, 12": the generations whose weights it averages (`ship --generation`)

    @classmethod
    def from_file(cls, path: Path, meta: dict, name: str | None = None) -> ControllerInfo:
        """From a controller file already checked by `load_controller` and its metadata."""
        from engine.world_model.manifest import file_sha256

        generation = meta.get("generation")
        run = meta.get("name")
        return cls(name=name or Path(path).stem, file=display_path(path), sha256=file_sha256(Path(path)),
                   method=str(meta.get("method", "unknown")), run=None if run is None else str(run),
                   generation=None if generation is None else int(generation),
                   placeholder=bool(meta.get("placeholder", False)),
                   averaged=str(meta["averaged_generations"]) if "averaged_generations" in meta else None)  # fmt: skip

    @property
    def generations(self) -> str:
        """'9', or '8-26' for weights averaged over generations 8 to 26."""
        if self.averaged:
            listed = [g.strip() for g in self.averaged.split(",")]
            return f"{listed[0]}-{listed[-1]}"
        return str(self.generation)

    @property
    def origin(self) -> str:
        """'weights/controllerA.npz, run A16 generation 9, sha256 3c28cbd0' (what is known of it)."""
        parts = [self.file]
        if self.placeholder:
            parts.append("PLACEHOLDER")
        if self.generation is not None:
            what = f"generations {self.generations} averaged" if self.averaged else f"generation {self.generation}"
            parts.append(f"{'run ' + self.run + ' ' if self.run else ''}{what}")
        parts.append(f"sha256 {self.sha256[:SHA_PREFIX]}")
        return ", ".join(parts)

    @property
    def kind(self) -> str:
        """PLACEHOLDER, or how it was trained (what the result tables call a controller)."""
        return "PLACEHOLDER" if self.placeholder else self.method

    @property
    def short(self) -> str:
        """'controllerA.npz · A16 gen 9 · sha256 3c28cbd0': the origin in one short line (the terminal app)."""
        parts = [Path(self.file).name] + (["PLACEHOLDER"] if self.placeholder else [])
        if self.generation is not None:
            parts.append(f"{self.run + ' ' if self.run else ''}gen {self.generations}{' avg' if self.averaged else ''}")
        return " · ".join(parts + [f"sha256 {self.sha256[:SHA_PREFIX]}"])

    @property
    def label(self) -> str:
        """The name with its origin, for one line of a screen or a table."""
        return f"{self.name} ({self.origin})"

    def as_dict(self) -> dict:
        return {**asdict(self), "origin": self.origin, "short": self.short, "label": self.label}


@numba.njit(cache=True, inline="always")  # inlined into engine.policy.players.decide
def policy_actions(W: np.ndarray, b: np.ndarray, z: np.ndarray, h: np.ndarray, out: np.ndarray) -> None:
    """W (P, 3, Z+H), b (P, 3), z (P, Z), h (P, H) -> out (P, 3) steer, gas, brake (in place)."""
    players, _, _ = W.shape
    nz = z.shape[1]
    for p in range(players):
        for k in range(3):
            acc = b[p, k]
            for i in range(nz):
                acc += W[p, k, i] * z[p, i]
            for i in range(h.shape[1]):
                acc += W[p, k, nz + i] * h[p, i]
            a = np.tanh(acc)
            if k == 0:
                out[p, 0] = a
            elif k == 1:
                out[p, 1] = (a + 1.0) / 2.0
            else:
                out[p, 2] = min(max(a, 0.0), 1.0)


@numba.njit(cache=True, inline="always")  # inlined into engine.policy.players.decide
def hold_steering(steer_hold: np.ndarray, side: np.ndarray, out: np.ndarray) -> None:
    """The controllers' steering holds, in place: out (P, 3) the policy's actions; steer_hold (P,) float64,
    each player's hold p (0: none); side (P,) float64, the side each last steered to (-1, 1; 0 at the
    start), updated. A steer to the other side than the last, |steer| <= p, becomes 0 (straight ahead)."""
    for p in range(out.shape[0]):
        s = out[p, 0]
        if s * side[p] < 0.0 and abs(s) <= steer_hold[p]:
            out[p, 0] = 0.0
        elif s > 0.0:
            side[p] = 1.0
        elif s < 0.0:
            side[p] = -1.0
