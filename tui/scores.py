"""The local leaderboard of `vmc-duel play`: every finished race a person drove, best per track seed.

One JSON file in the user's data directory (platformdirs: ~/.local/share/vmc-duel/scores.json on
Linux), or where --scores-file says. Each finished race adds an entry: the track seed, weather and
renderer, the person's reward and the controller's, who won, against which controller (its name and
the sha256 prefix of its file), the seat, the date. `best_per_seed` keeps, per seed, the person's best
reward. Written atomically (engine.files), so a crash never leaves half a file; a file that is not a
scores file is refused, never overwritten.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.files import describe, write_atomic

FORMAT = "vmc-duel scores"
FORMAT_VERSION = 1
APP_NAME = "vmc-duel"


class ScoresError(ValueError):
    """The scores file cannot be read or written; the message names it and says why."""


@dataclass(frozen=True)
class Entry:
    """One finished race a person drove."""

    seed: int
    weather: str
    renderer: str
    seat: str  # the player the person drove, "A" or "B"
    human_reward: float
    model_reward: float
    winner: str  # "you", "model" or "draw"
    against: str  # the controller: its name and sha256 prefix
    steps: int  # the person's car's steps
    tiles_percent: float
    lap_finished: bool
    date: str  # UTC, ISO 8601


def default_path() -> Path:
    """scores.json in the user's data directory."""
    from platformdirs import user_data_path

    return user_data_path(APP_NAME, appauthor=False) / "scores.json"


class Scores:
    """The scores file at `path` (default: `default_path()`)."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path is not None else default_path()

    def load(self) -> list[Entry]:
        """Every entry; [] when there is no file yet. ScoresError for a file that is not a scores file."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        except OSError as e:
            raise ScoresError(f"scores file {self.path}: cannot read it ({describe(e)})") from None
        try:
            raw = json.loads(text)
            if not isinstance(raw, dict) or raw.get("format") != FORMAT:
                raise ValueError(f"no 'format': {FORMAT!r}")
            if raw.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"format version {raw.get('format_version')!r}, this vmc-duel reads {FORMAT_VERSION}")
            return [Entry(**e) for e in raw["races"]]
        except (ValueError, TypeError, KeyError) as e:
            raise ScoresError(f"scores file {self.path}: not a VMC Duel scores file ({e}); move it away or give "
                              "another with --scores-file") from None  # fmt: skip

    def check_writable(self) -> None:
        """ScoresError now, before a race, if a finished race could not be saved: an unreadable or foreign
        file, a directory in the way, no permission to write there."""
        self.load()
        try:
            if self.path.is_dir():
                raise IsADirectoryError(21, "is a directory")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists():
                with open(self.path, "a"):  # opened to write, nothing written
                    pass
            else:  # what write_atomic will do: a temporary file beside it
                fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
                os.close(fd)
                os.unlink(tmp)
        except OSError as e:
            raise ScoresError(f"scores file {self.path}: cannot write it ({describe(e)}); give another with "
                              "--scores-file") from None  # fmt: skip

    def add(self, entry: Entry) -> None:
        """Append a finished race (read, append, write atomically)."""
        entries = self.load()
        entries.append(entry)
        data = {"format": FORMAT, "format_version": FORMAT_VERSION, "races": [asdict(e) for e in entries]}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(data, indent=1) + "\n")


def best_per_seed(entries: list[Entry]) -> list[tuple[Entry, int]]:
    """Per track seed (ascending), the entry with the person's best reward (the earliest on a tie), and how
    many races were driven on that seed."""
    best: dict[int, Entry] = {}
    count: dict[int, int] = {}
    for e in entries:
        count[e.seed] = count.get(e.seed, 0) + 1
        if e.seed not in best or e.human_reward > best[e.seed].human_reward:
            best[e.seed] = e
    return [(best[s], count[s]) for s in sorted(best)]


def format_table(entries: list[Entry], path: Path) -> str:
    """The leaderboard as text: one line per track seed."""
    if not entries:
        return f"no races yet in {path}: drive one with `vmc-duel play` (a finished race is scored)"
    rows = [f"{'track':>10}  {'your best':>9}  {'model':>7}  {'won by':<6}  {'against':<28}  {'races':>5}  date"]
    for e, n in best_per_seed(entries):
        rows.append(f"{e.seed:>10}  {e.human_reward:>9.1f}  {e.model_reward:>7.1f}  {e.winner:<6}  "
                    f"{e.against[:28]:<28}  {n:>5}  {e.date[:10]}")  # fmt: skip
    wins = sum(e.winner == "you" for e in entries)
    rows.append(f"{len(entries)} races on {len(best_per_seed(entries))} tracks, {wins} won by you ({path})")
    return "\n".join(rows)


def now_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


__all__ = ["Entry", "Scores", "ScoresError", "best_per_seed", "default_path", "format_table", "now_utc"]
