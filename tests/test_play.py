"""`vmc-duel play` under Textual's Pilot: a person's keys drive car B, the model drives car A.

The race is stepped by the test (`runner.step_n`) with the keys pressed in between, so every check is
exact: which action the person's car got on which step, how fast it went, and that controller A drove
exactly as it does against controller B in a duel of two controllers (the same actions, bit for bit: the
person's keys cannot reach the model's car). Hold mode gets its keys as the bytes a kitty-protocol
terminal sends, through the parser the terminal driver uses (tui/kitty_keys.py); repeat mode as Pilot's
key presses, as a terminal without releases sends them.
"""

from __future__ import annotations

import asyncio
import io
import json

import numpy as np
import pytest
from rich.console import Console
from textual.widgets._footer import FooterKey, FooterLabel
from waiting import pilot_wait_for

from engine.race.duel import Duel
from engine.race.race_log import RaceLog
from engine.race.replay import replay
from tui.kitty_keys import ReleaseParser
from tui.play_app import PlayApp, make_play_app
from tui.scores import Scores

SEED = 7
UP, LEFT = "\x1b[1;1:1A", "\x1b[1;1:1D"  # kitty: press
UP_OFF, LEFT_OFF = "\x1b[1;1:3A", "\x1b[1;1:3D"  # kitty: release


def play_app(tmp_path, keys: str, **kwargs) -> PlayApp:
    return make_play_app(seed=SEED, device="cpu", renderer="fast", graphics="halfblock", speed=None, truecolor=True,
                         keys=keys, scores=Scores(tmp_path / "scores.json"), **kwargs)  # fmt: skip


def drive(app: PlayApp, script, size=(120, 40)) -> None:
    async def main():
        async with app.run_test(size=size) as pilot:
            await script(pilot)

    asyncio.run(main())


async def terminal_sends(pilot, data: str) -> None:
    """What the terminal driver does with bytes from a kitty terminal: parse them, hand the messages to the app."""
    for message in ReleaseParser().feed(data):
        pilot.app.post_message(message)
    await pilot.pause()


def human_actions(app: PlayApp) -> np.ndarray:
    return app.runner.duel.log.actions[:, 1]  # (T, 3): car B's steer, gas, brake per step


def controllers_alone(steps: int) -> np.ndarray:
    """Controller A's actions over `steps` steps of a duel of two controllers on the same track."""
    with Duel(renderer="fast", device="cpu") as duel:
        duel.reset(SEED)
        for _ in range(steps):
            duel.step()
        return duel.log.actions[:, 0]


def footer(app: PlayApp) -> list[tuple[str, str]]:
    """(keys, what they do) as the footer shows them; a group's keys share its label (steer)."""
    shown = [(k.key_display, k.description) for k in app.query(FooterKey)]
    return shown + [("", text_of(label).strip()) for label in app.query(FooterLabel)]


def text_of(widget) -> str:
    """What `widget` draws, as plain text."""
    console = Console(width=max(widget.size.width, 40), file=io.StringIO(), record=True)
    console.print(widget.content)  # a Static's table or markup, as Rich draws it
    return console.export_text()


def test_hold_mode_keys_drive_the_persons_car_and_never_the_models(tmp_path):
    app = play_app(tmp_path, "hold")

    async def script(pilot):
        assert app.runner.snapshot().status == "ready" and app.controls.mode == "hold"
        assert "hold (key releases)" in text_of(app.query_one("#driver-1"))
        keys = await pilot_wait_for(pilot, lambda: footer(app), "the footer's keys")
        for shown in [("↑ w", "gas"), ("↓ s", "brake"), ("← a", ""), ("→ d", ""), ("", "steer"),
                      ("space", "start/pause"), ("^s", "save replay"), ("q", "quit")]:  # fmt: skip
            assert shown in keys, keys
        await terminal_sends(pilot, UP)  # gas down
        app.runner.step_n(30)
        await terminal_sends(pilot, LEFT)
        app.runner.step_n(10)
        await terminal_sends(pilot, LEFT_OFF)
        app.runner.step_n(10)
        await terminal_sends(pilot, UP_OFF)
        app.runner.step_n(20)
        a = human_actions(app)
        assert len(a) == 70
        assert np.all(a[:50, 1] == 1.0) and np.all(a[50:, 1] == 0.0)  # gas from press to release
        assert np.all(a[:30, 0] == 0.0) and np.all(a[30:40, 0] == -1.0)  # full lock from press ...
        assert np.all(a[40:, 0] == 0.0)  # ... to release
        assert app.runner.snapshot().telemetry[1]["speed"] > 5  # it went
        model = app.runner.duel.log.actions[:, 0]
        assert np.array_equal(model, controllers_alone(70))  # car A raced as it does against controller B

    drive(app, script)


def test_hold_mode_speed_follows_the_gas(tmp_path):
    app = play_app(tmp_path, "hold")

    async def script(pilot):
        speed = []
        await terminal_sends(pilot, UP)
        for _ in range(40):
            app.runner.step_n(1)
            speed.append(app.runner.duel.telemetry[1].speed)
        await terminal_sends(pilot, UP_OFF + "\x1b[1;1:1B")  # off the gas, on the brake
        for _ in range(40):
            app.runner.step_n(1)
            speed.append(app.runner.duel.telemetry[1].speed)
        assert speed[0] < speed[20] < speed[39]  # accelerating
        assert speed[79] < speed[39] / 2  # braking
        assert np.all(human_actions(app)[40:, 2] == 0.8)

    drive(app, script)


def test_repeat_mode_presses_hold_then_fade_and_repeats_keep_the_gas_on(tmp_path):
    app = play_app(tmp_path, "repeat")

    async def script(pilot):
        assert app.controls.mode == "repeat"
        assert "repeat, fading" in text_of(app.query_one("#driver-1"))
        await pilot.press("w")  # one tap of the gas
        app.runner.step_n(40)
        gas = human_actions(app)[:, 1]
        assert gas[0] == 1.0 and 0 < gas[1] < 1.0 and np.all(np.diff(gas[:20]) <= 0) and gas[39] == 0.0
        for _ in range(30):  # a held key: the terminal's auto-repeat, a press every 2 steps
            await pilot.press("up")
            app.runner.step_n(2)
        gas = human_actions(app)[:, 1]
        assert np.all(gas[42:100] == 1.0)
        await pilot.press("a")  # one tap to the left
        app.runner.step_n(30)
        steer = human_actions(app)[100:, 0]
        assert steer[0] == -1.0 and -1.0 < steer[1] < 0 and np.all(steer[10:] == 0.0)
        assert app.runner.duel.telemetry[1].speed > 5
        model = app.runner.duel.log.actions[:, 0]
        assert np.array_equal(model, controllers_alone(130))

    drive(app, script)


def test_keys_in_a_dialog_do_not_drive(tmp_path):
    app = play_app(tmp_path, "repeat")

    async def script(pilot):
        await pilot.press("ctrl+p")
        await pilot_wait_for(pilot, lambda: app.screen is not app.screen_stack[0], "the command palette")
        await pilot.press(*"saw", "down", "escape")
        assert app.controls.presses == 0

    drive(app, script)


def test_a_finished_race_is_recorded_scored_and_replays(tmp_path):
    record = tmp_path / "race.json"
    app = play_app(tmp_path, "hold", record=record)

    async def script(pilot):
        await terminal_sends(pilot, UP)
        app.runner.step_n(200)
        await terminal_sends(pilot, UP_OFF)
        app.runner.step_n(1000)
        app.draw()
        await pilot_wait_for(pilot, record.exists, "the race record")
        assert app.runner.snapshot().status == "finished"
        assert "Race over" in text_of(app.query_one("#summary"))

    drive(app, script)
    log = RaceLog.load(record)
    assert log.human == "B" and log.header["human"] == "B"
    assert np.all(log.actions[:200, 1, 1] == 1.0) and np.all(log.actions[200:, 1, 1] == 0.0)
    result = replay(log)
    assert result.ok and result.verified == log.steps, result.divergence and result.divergence.message()
    entries = json.loads((tmp_path / "scores.json").read_text())["races"]
    assert len(entries) == 1
    e = entries[0]
    assert e["seed"] == SEED and e["seat"] == "B" and e["winner"] in ("you", "model", "draw")
    assert e["human_reward"] == pytest.approx(log.result["B"]["reward"], abs=1e-3)
    assert e["against"].startswith("controllerA")


def test_quitting_mid_race_writes_the_race_so_far(tmp_path):
    record = tmp_path / "so_far.json"
    app = play_app(tmp_path, "repeat", record=record)

    async def script(pilot):
        await pilot.press("up")
        app.runner.step_n(25)
        await pilot.press("q")

    drive(app, script)
    log = RaceLog.load(record)
    assert log.steps == 25 and log.human == "B" and log.actions[0, 1, 1] == 1.0
    assert not (tmp_path / "scores.json").exists()  # an unfinished race is not scored
    assert any("race record" in m for m in app.messages)
