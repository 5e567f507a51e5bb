"""Which way to draw frames in this terminal, and drawing them as terminal graphics.

`detect_graphics` picks from the environment (no terminal queries, which would race
Textual's own input reading): kitty's graphics protocol in kitty, WezTerm and Ghostty;
sixel in terminals known to speak it (foot, mlterm, contour, xterm started with
TERM=xterm-sixel...); half-block cells everywhere else, tmux and screen included (they
do not pass graphics through by default).
"""

from __future__ import annotations

from collections.abc import Mapping

KITTY_TERMS = ("xterm-kitty", "xterm-ghostty")
KITTY_PROGRAMS = ("WezTerm", "ghostty")
SIXEL_TERMS = ("foot", "mlterm", "contour", "sixel", "yaft")


def detect_graphics(environ: Mapping[str, str]) -> str:
    """'kitty', 'sixel' or 'halfblock' for the terminal described by `environ`."""
    term = environ.get("TERM", "")
    if environ.get("TMUX") or term.startswith(("screen", "tmux")):
        return "halfblock"
    if term in KITTY_TERMS or environ.get("KITTY_WINDOW_ID") or environ.get("TERM_PROGRAM") in KITTY_PROGRAMS:
        return "kitty"
    if any(name in term for name in SIXEL_TERMS):
        return "sixel"
    return "halfblock"
