"""Race a recorded duel again and check it, step by step, against the record.

`replay(log)` rebuilds the duel from the record's header (seed, weather, renderer, driver,
device, precision), sets the starting knobs, applies each knob change after the step it was
made at, and compares every step's actions with the recorded ones, bit for bit. The first
step that differs stops the replay with a `Divergence` that says which player, by how much,
and what differs between the recording and this run (weights, package versions, the CPU's
vector instructions): a model race recorded on an AVX-512 CPU can take another line on an
AVX2-only one (docs/determinism.md), and that is reported, not raised. In a race a person
drove (the header's "human"), that car is given the recorded actions again (nobody can press
the same keys twice), so what is checked is the controller's car, step by step, and the
final telemetry of both: the physics and the renderer must reproduce the person's race too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.policy.knobs import Knobs, load_bounds
from engine.race.duel import PLAYERS, Duel
from engine.race.race_log import RaceLog
from engine.world_model.manifest import WEIGHTS_DIR

ACTION_NAMES = ("steer", "gas", "brake")
RESULT_KEYS = ("reward", "step", "off_track_steps", "tiles_visited", "lap_finished", "done")


@dataclass
class Divergence:
    """Where a replay first differs from its record."""

    step: int  # 1-based step whose actions differ
    player: str
    recorded: list[float]  # steer, gas, brake
    replayed: list[float]
    differences: list[str] = field(default_factory=list)  # what differs between the recording and this run

    def message(self) -> str:
        worst = int(np.argmax(np.abs(np.subtract(self.recorded, self.replayed))))
        detail = (f"player {self.player}'s {ACTION_NAMES[worst]} is {self.replayed[worst]!r}, recorded "
                  f"{self.recorded[worst]!r} (a difference of {abs(self.replayed[worst] - self.recorded[worst]):.3g})")
        why = ("; ".join(self.differences) if self.differences else
               "the weights, versions and CPU match the record's, so the recorded actions did not come from this "
               "build's race")  # fmt: skip
        return f"the replay diverged at step {self.step}: {detail}. Why: {why}"


@dataclass
class ReplayResult:
    steps: int  # steps in the record
    verified: int  # steps whose actions matched
    divergence: Divergence | None
    result: dict[str, Any]  # duel.result() at the end of the replay
    differences: list[str]  # between the recording and this run, even when nothing diverged
    result_mismatch: list[str] = field(default_factory=list)  # final telemetry that differs from the record's

    @property
    def ok(self) -> bool:
        return self.divergence is None and not self.result_mismatch and self.verified == self.steps


def final_telemetry(duel: Duel) -> dict[str, dict[str, Any]]:
    """Per player, the numbers a replay must end on (RESULT_KEYS)."""
    return {name: {k: getattr(duel.telemetry[p], k) for k in RESULT_KEYS} for p, name in enumerate(PLAYERS)}


def save_record(duel: Duel, path: Path, force: bool = False) -> Path:
    """Write `duel`'s race so far (a single duel, since its reset) to `path`, with its final telemetry."""
    if duel.log is None:
        raise RuntimeError("this duel keeps no record (a batch of duels, or a pipelined run)")
    duel.log.result = final_telemetry(duel)
    return duel.log.save(path, force=force)


def differences(recorded: dict[str, Any], here: dict[str, Any]) -> list[str]:
    """What differs between two record headers: the weights (per file), versions, the CPU, device, precision."""
    out = []
    for key in ("device", "precision", "renderer"):
        if recorded.get(key) != here.get(key):
            out.append(f"{key} {here.get(key)} here, {recorded.get(key)} in the record")
    rw, hw = recorded.get("weights", {}), here.get("weights", {})
    changed = sorted(n for n in set(rw) | set(hw) if rw.get(n) != hw.get(n))
    if changed:
        out.append("other weights: " + ", ".join(f"{n} (sha256 {str(hw.get(n))[:12]} here, {str(rw.get(n))[:12]} "
                                                  "recorded)" for n in changed)
                   + ("; race the recorded controller files with --controller-a / --controller-b"
                      if any(n.startswith("controller ") for n in changed) else ""))  # fmt: skip
    rv, hv = recorded.get("versions", {}), here.get("versions", {})
    changed = sorted(n for n in set(rv) | set(hv) if rv.get(n) != hv.get(n))
    if changed:
        out.append("other versions: " + ", ".join(f"{n} {hv.get(n)} here, {rv.get(n)} recorded" for n in changed))
    ri, hi = recorded.get("machine", {}).get("vector_isa"), here.get("machine", {}).get("vector_isa")
    if ri != hi:
        out.append(f"another CPU: {hi} here, {ri} when recorded (onnxruntime's floats differ in the last bits across "
                   "vector instruction sets, and a closed-loop race grows that into another line)")  # fmt: skip
    return out


def replay(log: RaceLog, weights_dir: Path = WEIGHTS_DIR, device: str | None = None,
           on_step: Callable[[Duel, int], None] | None = None,
           controllers: Sequence[Path] | None = None) -> ReplayResult:  # fmt: skip
    """Race `log` again and compare each step's actions with the record.

    Args:
        log: a loaded record (RaceLog.load checked it).
        weights_dir: the weights to race with (their sha256 are compared with the record's).
        device: None: the recorded device; or auto, cpu, cuda.
        on_step: called with (duel, step) after the start (step 0) and after every step that matched.
        controllers: the controller files (A, B) to race (default: weights_dir's controllerA/B.npz); their
            sha256 are compared with the record's too.
    """
    h = log.header
    bounds = load_bounds()
    knobs = []
    for p, values in enumerate(log.knobs):
        k = Knobs(bounds)
        k.update(values, where=f"the record's starting knobs of player {PLAYERS[p]}")
        knobs.append(k)
    recorded = log.actions
    with Duel(controllers=controllers, knobs=knobs, renderer=h["renderer"], weather=h["weather"],
              device=device or h["device"], precision=h["precision"], weights_dir=weights_dir, driver=h["driver"],
              max_episode_steps=h["max_episode_steps"], human=log.human) as duel:  # fmt: skip
        duel.reset(h["seed"])
        diff = differences(h, duel.log.header)
        if on_step is not None:
            on_step(duel, 0)
        divergence = None
        verified = 0
        for k in range(len(recorded)):
            for change in log.changes_at(k):
                duel.set_knobs(int(change["player"]), change["knobs"], where=f"the record's knob change at step {k}")
            if duel.finished:
                break
            duel.step(None if duel.human is None else recorded[k][duel.human])
            got = duel.last_actions
            if not np.array_equal(got, recorded[k]):
                p = int(np.flatnonzero(np.any(got != recorded[k], axis=1))[0])
                divergence = Divergence(k + 1, PLAYERS[p], recorded[k][p].tolist(), np.asarray(got[p]).tolist(), diff)
                break
            verified += 1
            if on_step is not None:
                on_step(duel, verified)
        mismatch = []
        if divergence is None and log.result:
            here = final_telemetry(duel)
            for name in PLAYERS:
                for key in RESULT_KEYS:
                    if log.result.get(name, {}).get(key) != here[name][key]:
                        mismatch.append(f"player {name}'s {key}: {here[name][key]!r}, recorded "
                                        f"{log.result[name].get(key)!r}")  # fmt: skip
        return ReplayResult(steps=len(recorded), verified=verified, divergence=divergence, result=duel.result(),
                            differences=diff, result_mismatch=mismatch)  # fmt: skip


__all__ = ["Divergence", "ReplayResult", "differences", "final_telemetry", "replay", "save_record"]
