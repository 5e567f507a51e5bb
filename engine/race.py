"""The headless race: a duel run to the end in the terminal, with live telemetry lines.

Until the trained controllers land (issues 3-5), both cars are driven by the scripted
autopilot (`engine.autopilot`, a labelled placeholder) in two styles: A races hard,
B drives carefully.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

import numpy as np

from engine.autopilot import STYLES, Autopilot
from engine.duel import FPS, PLAYERS, Duel

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
    if not factor > 0:
        raise ValueError(f"--speed must be realtime, max or a positive number, got {speed!r}")
    return factor


def _line(duel: Duel) -> str:
    parts = []
    for name, t in zip(PLAYERS, duel.telemetry):
        parts.append(
            f"{name}: {t.reward:7.1f} pts {t.speed:5.1f} m/s off {t.off_track_seconds:4.1f}s "
            f"tiles {100 * t.tiles_fraction:5.1f}%{' done' if t.done else ''}"
        )
    step = max(t.step for t in duel.telemetry)
    leader = duel.leader() or "level"
    return f"step {step:4d}/1000 | " + " | ".join(parts) + f" | leads: {leader}"


def run_race(
    seed: int = 0,
    renderer: str = "exact",
    weather: str = "clear",
    speed: str = "max",
    out: TextIO | None = sys.stdout,
) -> dict[str, Any]:
    """Race A against B on track `seed` until both cars end; return the summary dict."""
    factor = parse_speed(speed)
    duel = Duel(renderer=renderer, weather=weather)
    drivers = [Autopilot(STYLES[name]) for name in PLAYERS]
    duel.reset(seed)
    if out is not None:
        print(
            f"VMC Duel | track {seed} | {weather} | renderer {renderer} | "
            "drivers: scripted autopilot (placeholder until trained controllers land)",
            file=out,
        )
    start = time.perf_counter()
    steps = 0
    while not duel.finished:
        actions = np.stack([d.act(env.unwrapped) for d, env in zip(drivers, duel.envs)])
        duel.step(actions)
        steps += 1
        if out is not None and (steps % REPORT_EVERY == 0 or duel.finished):
            print(_line(duel), file=out, flush=True)
        if factor is not None:
            lag = start + steps / (FPS * factor) - time.perf_counter()
            if lag > 0:
                time.sleep(lag)
    wall = time.perf_counter() - start
    winner = duel.winner()
    summary = {
        "seed": seed,
        "renderer": renderer,
        "weather": weather,
        "winner": winner or "draw",
        "players": {name: t.as_dict() for name, t in zip(PLAYERS, duel.telemetry)},
        "wall_seconds": wall,
        "steps_per_second": steps / wall if wall > 0 else float("inf"),
    }
    duel.close()
    if out is not None:
        a, b = (summary["players"][p] for p in PLAYERS)
        print(
            f"Finished: winner {summary['winner']} | A {a['reward']:.1f} vs B {b['reward']:.1f} | "
            f"{steps} steps in {wall:.1f} s ({summary['steps_per_second']:.0f} duel steps/s)",
            file=out,
        )
    return summary
