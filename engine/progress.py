"""Progress points: the named moments of long work that an observer may follow.

A trainer passes through points such as "a batch trained", "a checkpoint file written but not yet
renamed into place", "a generation committed". Nothing listens by default, and then a point costs a
global lookup. A listener (`listen`) is called with the point's name and its details, in the thread
that reached the point, before the work goes on: the fault tests install one that reports every point
to the parent process and waits for its word, so that a kill lands at a chosen point of the work (the
same point on any machine, however fast or loaded it is) instead of after a chosen number of seconds.

Names in use (details in brackets):
    "write:ready"       engine.files: a file's new content is on the disk under its temporary name, not yet
                        renamed over the target [path]
    "train:batch"       a VAE or MDN-RNN optimiser step done [what, epoch, batch]
    "train:epoch"       an epoch's checkpoint saved: the commit point of a resume [what, epoch]
    "cma:step"          a step of every car of a CMA-ES generation [generation, step]
    "cma:generation"    a generation's checkpoint saved (state.json committed) [generation]
    "duel:step"         a duel's step of every car still racing (`Duel.step`, `Duel.run`) [step: the further car's]
    "tournament:tracks" finished tracks journalled, or kept, by a tournament [done]

A whole program (the `vmc-duel` command) can be held at a point from outside: with VMC_DUEL_STOP_AT=NAME:N in
its environment it stops itself (SIGSTOP) at the N-th point called NAME, for a test or a person at a debugger
to act at exactly that point (send SIGKILL, or SIGINT then SIGCONT; SIGCONT alone goes on).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

Listener = Callable[[str, dict], None]

_listener: Listener | None = None


def listen(listener: Listener | None) -> Listener | None:
    """Make `listener` the one that hears every point (None: nobody); returns the one it replaces."""
    global _listener
    previous, _listener = _listener, listener
    return previous


def listening() -> bool:
    """Somebody listens: a hot loop computes a point's details only then."""
    return _listener is not None


def point(name: str, **details) -> None:
    """Report that the work has reached point `name` (see the module's list); the listener, if any,
    runs now and may block (a test holding the work at this point)."""
    if _listener is not None:
        _listener(name, details)


STOP_AT = "VMC_DUEL_STOP_AT"  # environment variable: NAME:N, the point at which the program stops itself


def stop_at(spec: str) -> None:
    """Stop this process (SIGSTOP) when it reaches the N-th point called NAME (`spec` "NAME:N"), once.
    Raises ValueError naming the variable when `spec` is not of that form."""
    name, _, count = spec.rpartition(":")
    if not name or not count.isdigit() or int(count) < 1:
        raise ValueError(f"{STOP_AT}={spec!r}: expected NAME:N, a progress point's name and a count of at least 1 "
                         "(e.g. duel:step:5)")  # fmt: skip
    target, seen = int(count), 0

    def stop(point_name: str, details: dict) -> None:
        nonlocal seen
        if point_name == name:
            seen += 1
            if seen == target:
                os.kill(os.getpid(), signal.SIGSTOP)

    listen(stop)


__all__ = ["STOP_AT", "Listener", "listen", "listening", "point", "stop_at"]
