"""Key releases from the terminal, for hold-to-steer: the kitty keyboard protocol's event types.

Textual (8.x) asks the terminal for the kitty keyboard protocol with flags 1 | 8 | 16 (disambiguated
escape codes, every key as one, the text it types) but not for flag 2, the event types: it sees key
presses only, and its parser cannot read a sequence that carries an event type ("CSI 119;1:3u", a
release of `w`). A person holding a key to steer needs the release. Here:

- `ReleaseParser`, Textual's own parser taught the event types: a release becomes a `KeyReleased`
  message, a repeat is dropped (the key is still down, nothing new happened), a press goes on as
  Textual's own `Key` (so bindings and widgets see what they always see), and the terminal's answer
  to "which flags do you grant?" (CSI ? flags u) becomes `KeyboardFlags`.
- `ReleaseDriver`, Textual's Linux driver that also sets flag 2 and asks that question, and reads
  its input through `ReleaseParser`.

Terminals that speak the protocol (kitty, WezTerm, foot, Ghostty) answer with flag 2 granted and
send releases; the others (xterm, tmux, most SSH clients, the browser's xterm.js) stay silent, and
the app keeps its repeat-with-decay steering. Nothing here runs under Pilot (no terminal): tests
feed `ReleaseParser` the bytes a kitty terminal sends.
"""

from __future__ import annotations

import os
import re
import selectors
from codecs import getincrementaldecoder
from collections.abc import Iterable

from textual import events
from textual._xterm_parser import XTermParser
from textual.keys import Keys
from textual.message import Message

KITTY_FLAGS = 1 | 2 | 8 | 16  # Textual's flags (1, 8, 16) and the event types (2)
EVENT_TYPES = 2
# CSI code[:alternates] ; modifiers:event [; text] final: a key sequence that carries an event type
_EVENT = re.compile(r"\x1b\[(\d*)((?::\d*)*);(\d*):(\d)((?:;[\d:]*)?)([u~ABCDEFHPQS])\Z")
_FLAGS = re.compile(r"\x1b\[\?(\d+)u\Z")  # the terminal's answer to CSI ? u


class KeyReleased(Message):
    """A key came up (the kitty protocol's release event). Not an `events.Key`: no binding fires on it.

    `key` is Textual's name for the key without modifiers ("up", "w", "space")."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key


class KeyboardFlags(Message):
    """The terminal's kitty keyboard flags: releases will come when `flags & EVENT_TYPES`."""

    key = ""  # the parser looks at `key` of whatever it hands on (Keys.Ignore is dropped)

    def __init__(self, flags: int) -> None:
        super().__init__()
        self.flags = flags

    @property
    def releases(self) -> bool:
        return bool(self.flags & EVENT_TYPES)


class ReleaseParser(XTermParser):
    """Textual's parser, plus the kitty protocol's event types (see the module's docstring)."""

    def _sequence_to_key_events(self, sequence: str, alt: bool = False) -> Iterable[events.Key]:
        if (flags := _FLAGS.match(sequence)) is not None:
            yield KeyboardFlags(int(flags.group(1)))  # type: ignore[misc]  # handed on like a key
            return
        if (match := _EVENT.match(sequence)) is None:
            yield from super()._sequence_to_key_events(sequence, alt)
            return
        code, alternates, modifiers, event, text, final = match.groups()
        if event == "3":
            # The key's name without modifiers: shift+up coming up releases what up pressed.
            for key in super()._sequence_to_key_events(f"\x1b[{code}{final}" if code else f"\x1b[{final}"):
                yield KeyReleased(key.key)  # type: ignore[misc]
            return
        if event == "2":  # a repeat: the key is still down
            yield events.Key(Keys.Ignore, sequence)
            return
        # A press: the same sequence without its event type, as Textual reads it
        yield from super()._sequence_to_key_events(f"\x1b[{code}{alternates};{modifiers}{text}{final}", alt)


def _driver_base():
    try:
        from textual.drivers.linux_driver import LinuxDriver
    except ImportError:  # Windows: no termios
        return None
    return LinuxDriver


_LinuxDriver = _driver_base()


if _LinuxDriver is not None:

    class ReleaseDriver(_LinuxDriver):  # type: ignore[valid-type, misc]
        """Textual's Linux driver that asks for key releases (see the module's docstring)."""

        def start_application_mode(self) -> None:
            super().start_application_mode()
            # Textual pushed its flags (CSI > 25 u) and pops them when it ends; set ours on that level
            # (CSI = flags ; 1 u), then ask which the terminal granted (CSI ? u).
            self.write(f"\x1b[={KITTY_FLAGS};1u\x1b[?u")
            self.flush()

        def run_input_thread(self) -> None:
            """Textual's input loop (LinuxDriver.run_input_thread), reading through ReleaseParser."""
            selector = selectors.SelectSelector()
            selector.register(self.fileno, selectors.EVENT_READ)
            parser = ReleaseParser(self._debug)
            decode = getincrementaldecoder("utf-8")().decode
            try:
                while not self.exit_event.is_set():
                    ready = selector.select(0.1)
                    for _key, mask in ready:
                        if mask & selectors.EVENT_READ:
                            data = decode(os.read(self.fileno, 1024 * 4))
                            if not data:  # stdin closed
                                break
                            for message in parser.feed(data):
                                self.process_message(message)
                    for message in parser.tick():
                        self.process_message(message)
            finally:
                selector.close()
else:
    ReleaseDriver = None  # type: ignore[assignment, misc]


def release_driver():
    """The driver class that reports key releases here, or None to keep Textual's choice: under a driver
    chosen by the environment (TEXTUAL_DRIVER: `vmc-duel web` runs the app under textual-serve's), on a
    system without termios, or when TEXTUAL_DISABLE_KITTY_KEY turns the protocol off."""
    if ReleaseDriver is None or os.environ.get("TEXTUAL_DRIVER") or os.environ.get("TEXTUAL_DISABLE_KITTY_KEY"):
        return None
    return ReleaseDriver


__all__ = ["KITTY_FLAGS", "KeyReleased", "KeyboardFlags", "ReleaseDriver", "ReleaseParser", "release_driver"]
