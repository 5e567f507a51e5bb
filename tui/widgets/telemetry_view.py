"""One player's numbers: reward, speed, off-track time, tiles, the action as bars, risk, regimes."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

BAR = 10  # cells per bar


def bar(value: float, lo: float, hi: float, style: str, width: int = BAR) -> Text:
    """A horizontal bar for value in [lo, hi]; centred at 0 when lo < 0."""
    cells = [" "] * width
    if lo < 0:
        mid = width // 2
        n = min(round(abs(value) / max(hi, -lo) * mid), mid)
        for i in range(mid, mid + n) if value > 0 else range(mid - n, mid):
            cells[i] = "█"
        if n == 0:
            cells[mid] = "│"
    else:
        n = round((value - lo) / (hi - lo) * width)
        for i in range(min(max(n, 0), width)):
            cells[i] = "█"
    return Text("".join(cells), style=style)


def car_rows(table: Table, t: dict) -> None:
    """The car's rows of a telemetry table: reward, speed, off track, tiles, then steer / gas / brake as bars.
    t: a PlayerTelemetry dict."""
    steer, gas, brake = t["action"]
    table.add_row("reward", Text(f"{t['reward']:8.1f}", style="bold"))
    table.add_row("speed", f"{t['speed']:6.1f} m/s")
    table.add_row("off track", f"{t['off_track_seconds']:6.1f} s")
    table.add_row("tiles", f"{t['tiles_percent']:6.1f} %")
    table.add_row("steer", Text.assemble(bar(steer, -1, 1, "cyan"), f" {steer:+.2f}"))
    table.add_row("gas", Text.assemble(bar(gas, 0, 1, "green"), f" {gas:.2f}"))
    table.add_row("brake", Text.assemble(bar(brake, 0, 1, "red"), f" {brake:.2f}"))


class TelemetryView(Static):
    """A small two-column table, refreshed from a PlayerTelemetry dict."""

    def show(self, t: dict, history_len: int = 0) -> None:
        table = Table.grid(padding=(0, 1))
        table.add_column(style="dim", no_wrap=True)
        table.add_column(no_wrap=True)
        car_rows(table, t)
        table.add_row("risk", Text.assemble(bar(t["risk"], 0, 1, "yellow"), f" {t['risk']:.2f}"))
        regimes = t.get("regimes") or {}
        if regimes:
            table.add_row("regime", " ".join(f"{k[:2]}{100 * v:.0f}" for k, v in regimes.items() if k != "neutral"))
        if t["done"]:
            table.add_row("", Text("lap finished" if t["lap_finished"] else "finished", style="bold magenta"))
        self.update(table)
