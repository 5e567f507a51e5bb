"""The keys of `vmc-duel play` without a race: the kitty keyboard protocol's bytes through the parser the
terminal driver uses (tui/kitty_keys.py), and the keys -> action model in both modes (tui/human_controls.py).

The bytes are what kitty, WezTerm, foot and Ghostty send with flags 1 | 2 | 8 | 16 set (CSI code ; mods:event u,
arrows as CSI 1 ; mods:event A-D); the parser is Textual's own with the event types added."""

from __future__ import annotations

import numpy as np
import pytest
from textual import events

from tui.human_controls import Feel, HumanControls
from tui.kitty_keys import KeyboardFlags, KeyReleased, ReleaseParser


def parse(data: str) -> list:
    parser = ReleaseParser()
    return [m for m in parser.feed(data)] + list(parser.tick())


def keys(messages: list) -> list[tuple[str, str]]:
    return [("press", m.key) if isinstance(m, events.Key) else ("release", m.key) if isinstance(m, KeyReleased)
            else ("flags", m.flags) for m in messages]  # fmt: skip


@pytest.mark.parametrize("data, expected", [
    ("\x1b[1;1:3A", [("release", "up")]),
    ("\x1b[1;1:3D", [("release", "left")]),
    ("\x1b[119;1:3u", [("release", "w")]),
    ("\x1b[32;1:3u", [("release", "space")]),
    ("\x1b[1;2:3C", [("release", "right")]),  # shift+right coming up releases right
    ("\x1b[1;1:1A", [("press", "up")]),
    ("\x1b[119;1:1;119u", [("press", "w")]),  # a press with its text (flag 16)
    ("\x1b[119;1:2;119u", []),  # a repeat: the key is still down, nothing new
    ("\x1b[A", [("press", "up")]),  # without event types: Textual's own reading
    ("w", [("press", "w")]),
    ("\x1b[?27u", [("flags", 27)]),  # the terminal grants the event types
    ("\x1b[1;1:1A\x1b[1;1:2A\x1b[1;1:2A\x1b[1;1:3A", [("press", "up"), ("release", "up")]),
])  # fmt: skip
def test_the_parser_reads_kitty_presses_repeats_releases_and_flags(data, expected):
    assert keys(parse(data)) == expected


def test_flags_say_whether_releases_will_come():
    granted, refused = parse("\x1b[?27u")[0], parse("\x1b[?25u")[0]
    assert isinstance(granted, KeyboardFlags) and granted.releases
    assert not refused.releases  # Textual's flags without the event types: keys repeat and fade


def run(controls: HumanControls, steps: range, presses: dict[int, list[str]] | None = None,
        releases: dict[int, list[str]] | None = None) -> np.ndarray:  # fmt: skip
    """The actions for `steps`, with presses and releases made before the given steps."""
    out = []
    for k in steps:
        for c in (presses or {}).get(k, []):
            controls.press(c)
        for c in (releases or {}).get(k, []):
            controls.release(c)
        out.append(controls.action(k))
    return np.array(out)


def test_hold_mode_drives_while_a_key_is_down():
    c = HumanControls("hold")
    a = run(c, range(20), presses={0: ["gas"], 2: ["left"]}, releases={8: ["left"], 15: ["gas"]})
    assert np.all(a[:15, 1] == 1.0) and np.all(a[15:, 1] == 0.0)
    assert a[:10, 0].tolist() == [0.0, 0.0] + [-1.0] * 6 + [0.0, 0.0]  # full lock from press to release
    assert np.all(a[:, 2] == 0.0)
    ramp = run(HumanControls("hold", Feel(steer_rate=0.25)), range(12), presses={2: ["left"]}, releases={8: ["left"]})
    assert ramp[:12, 0].tolist() == [0.0, 0.0, -0.25, -0.5, -0.75, -1.0, -1.0, -1.0, -0.75, -0.5, -0.25, 0.0]


def test_hold_mode_brake_gives_way_to_gas_and_blur_releases_everything():
    c = HumanControls("hold")
    a = run(c, range(6), presses={0: ["brake"], 3: ["gas"]})
    assert a[:3, 2].tolist() == [0.8, 0.8, 0.8] and a[3:, 2].tolist() == [0.0, 0.0, 0.0] and a[3:, 1].min() == 1.0
    c.release_all()
    assert c.action(6)[1] == 0.0


def test_repeat_mode_a_tap_is_a_short_push():
    f = Feel()
    gas = run(HumanControls("repeat", f), range(30), presses={0: ["gas"]})[:, 1]
    assert gas[0] == 1.0 and gas[1:6].tolist() == pytest.approx([np.exp(-k / f.fade[2]) for k in range(1, 6)])
    assert np.all(gas[20:] == 0.0)  # a fade ends
    steer = run(HumanControls("repeat", f), range(30), presses={0: ["right"], 10: ["right"], 12: ["left"]})[:, 0]
    assert steer[0] == 1.0 and 0 < steer[1] < 0.5 and steer[6] == 0.0  # a tap: one step of full lock, then it fades
    assert steer[10] == 1.0 and steer[12] == -1.0  # the opposite key takes over at once


def test_repeat_mode_a_held_key_repeats_and_stays_on_until_the_repeats_stop():
    f = Feel()
    # the terminal: a press, its first repeat 25 steps later (0.5 s), then one every 2 steps (25 a second)
    stream = [0, *range(25, 80, 2)]
    gas = run(HumanControls("repeat", f), range(120), presses={k: ["gas"] for k in stream})[:, 1]
    assert np.all(gas[27:81] == 1.0)  # on through the stream
    assert gas[81] < 1.0 and np.all(gas[100:] == 0.0)  # let go: it eases off at once, then fades
    assert gas[10:25].max() < 0.05  # the first repeat delay is a gap (the first press was a tap)
    steer = run(HumanControls("repeat", f), range(120), presses={k: ["left"] for k in stream})[:, 0]
    assert np.all(steer[27:81] == -1.0) and np.all(steer[86:] == 0.0)  # centred within 0.1 s of letting go


def test_a_reset_centres_everything():
    c = HumanControls("repeat")
    run(c, range(3), presses={0: ["left", "gas"]})
    c.reset()
    assert c.action(0).tolist() == [0.0, 0.0, 0.0]


def test_bad_controls_and_modes_are_refused():
    with pytest.raises(ValueError, match="mode"):
        HumanControls("sticky")
    with pytest.raises(ValueError, match="control"):
        HumanControls().press("horn")
