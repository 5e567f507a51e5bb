"""The headless race: a duel run in the terminal (the shipped controllers, or any two controller
files), with live telemetry lines (or JSON lines) and a result table."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from engine.env.racing_env import MAX_EPISODE_STEPS
from engine.hardware import hardware_info
from engine.policy.knobs import Knobs, load_bounds, load_knobs_file
from engine.race.duel import FPS, PLAYERS, Duel
from engine.world_model.manifest import WEIGHTS_DIR

REPORT_EVERY = 50  # steps between telemetry lines (one second of race time)


def parse_speed(speed: str) -> float | None:
    """'realtime' -> 1.0, 'max' -> None (no waiting), 'X' -> X times real time."""
    if speed == "max":
        return None
    if speed == "realtime":
        return 1.0
    try:
        factor = float(speed)
    except ValueError:
        raise ValueError(f"--speed must be realtime, max or a positive number, got {speed!r}") from None
    if not (factor > 0 and math.isfinite(factor)):
        raise ValueError(f"--speed must be realtime, max or a positive number, got {speed!r}")
    return factor


def _line(duel: Duel, step: int) -> str:
    parts = []
    for name, t in zip(PLAYERS, duel.telemetry):
        parts.append(
            f"{name}: {t.reward:7.1f} pts {t.speed:5.1f} m/s off {t.off_track_seconds:4.1f}s "
            f"tiles {100 * t.tiles_fraction:5.1f}% risk {t.risk:4.2f}{' done' if t.done else ''}"
        )
    return f"step {step:4d} | " + " | ".join(parts) + f" | leads: {duel.leader() or 'level'}"


def _table(summary: dict[str, Any]) -> str:
    rows = [("", *PLAYERS)]
    players = [summary["players"][p] for p in PLAYERS]
    for label, key, fmt in (("reward", "reward", "{:.1f}"), ("steps", "step", "{}"),
                            ("off track (s)", "off_track_seconds", "{:.2f}"), ("tiles (%)", "tiles_percent", "{:.1f}"),
                            ("lap finished", "lap_finished", "{}"), ("controller", "controller", "{}")):  # fmt: skip
        rows.append((label, *(fmt.format(p[key]) for p in players)))
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, width))) for r in rows]
    verdict = summary["winner"] if summary["finished"] else f"{summary['leader'] or 'level'} leads (stopped early)"
    return "\n".join(lines + [f"winner: {verdict}"])


def run_race(
    seed: int | None = None,
    steps: int | None = None,
    knobs_a: Path | None = None,
    knobs_b: Path | None = None,
    renderer: str = "exact",
    weather: str = "clear",
    device: str = "auto",
    precision: str = "auto",
    speed: str = "max",
    out: TextIO | None = sys.stdout,
    json_lines: bool = False,
    controller_a: Path | None = None,
    controller_b: Path | None = None,
    weights_dir: Path = WEIGHTS_DIR,
    record: Path | None = None,
    force: bool = False,
    lanes: int = 1,
) -> dict[str, Any]:
    """Race A against B on track `seed` (random when None) until both cars end, or for
    `steps` steps; print telemetry to `out` (text, or JSON lines); return the summary.
    controller_a / controller_b: controller files (default weights_dir's controllerA.npz / controllerB.npz);
    weights_dir: the world model and its manifest (default the shipped weights/).
    With `record`, write the race record there (engine.race.race_log; `force` replaces a file).
    lanes: 1 or 2, as for engine.race.duel.Duel (2: car B raced by a second process at the same time)."""
    factor = parse_speed(speed)
    record_to = None if record is None else Path(record)  # (`record` names each telemetry line below)
    if record_to is not None and record_to.exists() and not force:
        raise ValueError(f"--record {record_to} already exists: pass --force to replace it")
    if steps is not None and not 1 <= steps <= MAX_EPISODE_STEPS:
        raise ValueError(f"--steps must be in 1..{MAX_EPISODE_STEPS}, got {steps}")
    bounds = load_bounds()
    knobs = [load_knobs_file(path, bounds) if path else None for path in (knobs_a, knobs_b)]
    with Duel(controllers=[controller_a, controller_b], knobs=[k or Knobs(bounds) for k in knobs], renderer=renderer,
              weather=weather, device=device, precision=precision, weights_dir=weights_dir,
              lanes=lanes) as duel:  # fmt: skip
        seeds = duel.reset(seed)
        controllers = {name: info.kind for name, info in zip(PLAYERS, duel.controller_info)}
        files = {name: info.as_dict() for name, info in zip(PLAYERS, duel.controller_info)}
        header = {"event": "start", "seed": seeds[0], "renderer": renderer, "weather": weather,
                  "device": duel.device, "precision": duel.precision, "lanes": lanes,
                  "controllers": controllers, "controller_files": files,
                  "knobs": {n: k.nested() for n, k in zip(PLAYERS, duel.knobs)}}  # fmt: skip
        _emit(out, json_lines, header, f"VMC Duel | track {seeds[0]} | {weather} | renderer {renderer} | "
              f"{header['device']} {header['precision']} | controllers "
              + ", ".join(f"{n}: {i.label}" for n, i in zip(PLAYERS, duel.controller_info)))
        start = time.perf_counter()
        n = 0
        while not duel.finished and (steps is None or n < steps):
            duel.step()
            n += 1
            if n % REPORT_EVERY == 0 or duel.finished or n == steps:
                record = {"event": "step", "step": n,
                          "players": {p: duel.telemetry[k].as_dict() for k, p in enumerate(PLAYERS)}}  # fmt: skip
                _emit(out, json_lines, record, _line(duel, n))
            if factor is not None:
                lag = start + n / (FPS * factor) - time.perf_counter()
                if lag > 0:
                    time.sleep(lag)
        wall = time.perf_counter() - start
        if record_to is not None:
            from engine.race.replay import save_record

            save_record(duel, record_to, force=force)
        summary = duel.result()
        for name, label in controllers.items():
            summary["players"][name]["controller"] = label
            summary["players"][name]["controller_file"] = files[name]
        summary.update({"event": "result", "renderer": renderer, "weather": weather, "steps": n,
                        "wall_seconds": wall, "steps_per_second": n / wall if wall > 0 else float("inf"),
                        "hardware": hardware_info()})  # fmt: skip
    if record_to is not None:
        summary["record"] = str(record_to)
    recorded = f"\nrecorded to {record_to} (vmc-duel replay {record_to})" if record_to else ""
    _emit(out, json_lines, summary, _table(summary) + f"\n{n} steps in {wall:.1f} s ({summary['steps_per_second']:.0f}"
          " duel steps/s)" + recorded)  # fmt: skip
    return summary


def _emit(out: TextIO | None, json_lines: bool, record: dict, text: str) -> None:
    if out is not None:
        print(json.dumps(record) if json_lines else text, file=out, flush=True)
