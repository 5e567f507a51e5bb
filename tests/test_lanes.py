"""Duels in two lanes (engine.race.lanes): the second half of the cars raced by a worker
process at the same time as this process races the first. The race must be the one the
duel gives in one process, bit for bit: every step's telemetry, frames, risk and regime
weights, with knob changes to players in either lane while it runs; bad settings are
refused; a lane worker that dies is reported by name, not waited on."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from engine.env.vector_env import WorkerDied
from engine.policy.knobs import Knobs, load_bounds
from engine.race.duel import Duel
from engine.race.track_map import car_positions

BOUNDS = load_bounds()
STEPS = 120
CHANGE_AT = 40  # step at which the knobs change mid-race


def knobs(**changes) -> Knobs:
    k = Knobs(BOUNDS)
    k.update(changes)
    return k


def race(lanes: int, duels: int, renderer: str, weather: str = "clear") -> dict[str, list]:
    """STEPS steps of `duels` duels on seeds 2_100_000..; A looks ahead from the start, B's
    knobs change at CHANGE_AT (B is in the worker's lane). Every step's telemetry, frames and risk."""
    setting = [knobs(lookahead_horizon=8, risk_aversion=0.5), knobs(alpha_action_smoothing=0.2)]
    rec = {"telemetry": [], "frames": [], "risk": [], "regimes": [], "actions": []}
    with Duel(knobs=setting, renderer=renderer, weather=weather, device="cpu", precision="fp32", duels=duels,
              lanes=lanes) as duel:  # fmt: skip
        duel.reset([2_100_000 + d for d in range(duels)])
        for step in range(STEPS):
            if step == CHANGE_AT:
                for d in range(duels):
                    late = {"lookahead_horizon": 5, "risk_aversion": 1.0, "gating_bias": {"drift": 1.0}}
                    duel.set_knobs(2 * d + 1, late)
                    duel.set_knobs(2 * d, {"emergency_brake_threshold": 0.4})
            tel = duel.step()
            rec["telemetry"].append([t.as_dict() for t in tel])
            rec["frames"].append(duel.frames.copy())
            rec["risk"].append([t.risk for t in tel])
            rec["regimes"].append([t.regimes for t in tel])
            rec["actions"].append(duel.last_actions.copy())
        rec["results"] = [duel.result(d) for d in range(duels)]
    return rec


@pytest.mark.parametrize("renderer,duels,weather", [("fast", 1, "clear"), ("exact", 1, "rain"), ("fast", 2, "clear")],
                         ids=["fast", "exact-rain", "two-duels"])  # fmt: skip
def test_a_laned_duel_is_the_same_race_bit_for_bit(renderer, duels, weather):
    one, two = race(1, duels, renderer, weather), race(2, duels, renderer, weather)
    assert one["telemetry"] == two["telemetry"]
    for a, b in zip(one["frames"], two["frames"]):
        assert np.array_equal(a, b)
    for a, b in zip(one["actions"], two["actions"]):
        assert np.array_equal(a, b)
    assert one["results"] == two["results"]
    # the race was one worth comparing: the cars moved, B's lookahead saw risk after the change
    assert one["telemetry"][-1][0]["speed"] > 5 and one["telemetry"][-1][1]["tiles_visited"] > 5
    assert max(r[1] for r in one["risk"][CHANGE_AT + 1 :]) > 0.0


def test_bad_lane_settings_are_refused():
    with pytest.raises(ValueError, match="lanes must be one of 1, 2, got 3"):
        Duel(lanes=3, device="cpu")
    with pytest.raises(ValueError, match="lanes=2 races the model driver"):
        Duel(lanes=2, driver="autopilot", device="cpu")
    with pytest.raises(ValueError, match="lanes=2 races the model driver"):
        Duel(lanes=2, workers=2, device="cpu")


def test_a_lane_worker_that_dies_is_reported():
    with Duel(renderer="fast", device="cpu", lanes=2) as duel:
        duel.reset(2_200_000)
        duel.step()
        os.kill(duel.lanes.remote._proc.pid, signal.SIGKILL)
        duel.lanes.remote._proc.join(timeout=60)
        died = r"lane worker \(pid \d+, cars 1\) was killed by SIGKILL while (taking a command|stepping)"
        with pytest.raises(WorkerDied, match=died):
            duel.step()


def test_the_race_command_gives_the_same_race_in_two_lanes():
    import json
    import subprocess
    import sys

    def result(lanes: int) -> dict:
        out = subprocess.run([sys.executable, "-m", "vmc_duel", "race", "--seed", "2300000", "--steps", "150",
                              "--renderer", "fast", "--device", "cpu", "--json", "--lanes", str(lanes)],
                             capture_output=True, text=True, timeout=300, check=True).stdout  # fmt: skip
        lines = [json.loads(line) for line in out.splitlines()]
        assert lines[0]["event"] == "start" and lines[0]["lanes"] == lanes
        return {k: v for k, v in lines[-1].items() if k not in ("wall_seconds", "steps_per_second", "hardware")}

    one, two = result(1), result(2)
    assert one == two and one["steps"] == 150


def test_a_laned_duel_reports_every_cars_position():
    with Duel(renderer="fast", device="cpu", lanes=2, duels=2) as laned, Duel(renderer="fast", device="cpu",
                                                                            duels=2) as plain:  # fmt: skip
        for duel in (laned, plain):
            duel.reset([2_400_000, 2_400_001])
            for _ in range(30):
                duel.step()
        assert np.array_equal(laned.lanes.positions(), car_positions(plain.vec.local_envs()))


def test_a_lane_stops_spinning_while_the_other_lane_is_late_and_spins_again_when_it_is_not():
    """After a wait longer than SPIN_S the next wait blocks at once (the core goes to the late lane's
    process); answers that are there in time bring the spin back. Real pipes, a real thread."""
    import multiprocessing as mp
    import threading

    from engine.race.lanes import SPIN_S, _Spin

    here, there = mp.Pipe()
    spin = _Spin(here)
    assert spin.budget == SPIN_S
    late = threading.Timer(0.05, there.send, args=("late",))  # 50 ms: longer than any spin
    late.start()
    spin()
    late.join()
    assert here.recv() == "late" and spin.budget == 0.0
    for _ in range(50):  # an answer already there: a wait well within SPIN_S (unless preempted meanwhile)
        there.send("ready")
        spin()
        assert here.recv() == "ready"
        if spin.budget == SPIN_S:
            break
    assert spin.budget == SPIN_S
