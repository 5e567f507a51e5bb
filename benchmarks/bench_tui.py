"""What the terminal app costs on top of the race: CPU and bytes written to the terminal.

    python benchmarks/bench_tui.py [--seconds 10] [--rounds 3] [--graphics halfblock] [--size 120x40]
                                   [--exe PATH] [--out FILE]

Each round, side by side on the same track at real speed (50 steps/s):
1. the engine alone: `vmc-duel race --speed realtime --steps N` (CPU from the child's rusage);
2. the app: the real `vmc-duel` in tmux (120x40 unless --size, truecolor), started with space, for the
   same N steps; its CPU from /proc, and every byte it writes to the terminal through
   tmux's pipe-pane.
The app's own cost is (app CPU - engine CPU) per second of race. Medians over rounds.
Needs tmux.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from engine.hardware import hardware_info  # noqa: E402  (the installed package)

STEPS_PER_SECOND = 50  # CarRacing's FPS: the race's real speed
CLK_TCK = os.sysconf("SC_CLK_TCK")


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=30).stdout


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def engine_alone(exe: str, seed: int, steps: int, renderer: str) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([exe, "race", "--seed", str(seed), "--steps", str(steps), "--speed", "realtime",
                    "--renderer", renderer, "--json"], check=True, capture_output=True, timeout=600)  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def app_in_tmux(exe: str, seed: int, steps: int, renderer: str, graphics: str,
                size: tuple[int, int] = (120, 40)) -> tuple[float, int, float]:  # fmt: skip
    """(CPU seconds, bytes written, wall seconds) of the app racing `steps` steps."""
    session = f"bench{os.getpid()}"
    log = Path(tempfile.mkstemp(suffix=".out")[1])
    cmd = (f"unset COLUMNS LINES; TERM=xterm-256color COLORTERM=truecolor exec {exe} --seed {seed} "
           f"--renderer {renderer} --graphics {graphics}")  # fmt: skip
    tmux("new-session", "-d", "-s", session, "-x", str(size[0]), "-y", str(size[1]), "bash", "-c", cmd)
    try:
        pid = int(tmux("display-message", "-p", "-t", session, "#{pane_pid}").strip())
        deadline = time.monotonic() + 60
        while "READY" not in tmux("capture-pane", "-p", "-t", session):
            if time.monotonic() > deadline:
                raise RuntimeError("the app never showed its start screen")
            time.sleep(0.2)
        time.sleep(1.0)
        tmux("pipe-pane", "-o", "-t", session, f"cat > {log}")
        cpu0, t0 = proc_cpu(pid), time.perf_counter()
        tmux("send-keys", "-t", session, "Space")
        while True:
            m = re.search(r"step\s+(\d+)/1000", tmux("capture-pane", "-p", "-t", session))
            if m and int(m.group(1)) >= steps:
                break
            time.sleep(0.05)
        cpu1, t1 = proc_cpu(pid), time.perf_counter()
        written = log.stat().st_size
        tmux("pipe-pane", "-t", session)
        tmux("send-keys", "-t", session, "q")
        return cpu1 - cpu0, written, t1 - t0
    finally:
        tmux("kill-session", "-t", session)
        log.unlink(missing_ok=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0, help="race seconds per round (default 10)")
    p.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--renderer", default="exact")
    p.add_argument("--graphics", default="halfblock")
    p.add_argument("--size", default="120x40", help="terminal columns x rows (default 120x40)")
    p.add_argument("--exe", default=None,
                   help="the vmc-duel to measure (default: the one next to this Python; a wrapper script measures a "
                   "source tree)")  # fmt: skip
    p.add_argument("--out", type=Path, help="also write the JSON result here")
    p.add_argument("--force", action="store_true", help="replace --out")
    args = p.parse_args()
    if shutil.which("tmux") is None:
        raise SystemExit("bench_tui needs tmux (apt install tmux)")
    if args.out and args.out.exists() and not args.force:
        raise SystemExit(f"{args.out} exists: pass --force to replace it")
    exe = args.exe or shutil.which("vmc-duel", path=str(Path(sys.executable).parent)) or "vmc-duel"
    try:
        size = tuple(int(v) for v in args.size.lower().split("x"))
        assert len(size) == 2 and min(size) > 0
    except (ValueError, AssertionError):
        raise SystemExit(f"--size {args.size!r}: give COLUMNSxROWS, such as 80x24") from None
    steps = int(args.seconds * STEPS_PER_SECOND)
    rounds = []
    for r in range(args.rounds):
        engine = engine_alone(exe, args.seed, steps, args.renderer)
        cpu, written, wall = app_in_tmux(exe, args.seed, steps, args.renderer, args.graphics, size)
        race_seconds = steps / STEPS_PER_SECOND
        rounds.append({"engine_cpu_s": engine, "app_cpu_s": cpu, "wall_s": wall,
                       "ui_cores": (cpu - engine) / race_seconds, "app_cores": cpu / race_seconds,
                       "engine_cores": engine / race_seconds, "bytes_per_s": written / wall})  # fmt: skip
        print(f"round {r + 1}: engine {engine / race_seconds:.2f} cores, app {cpu / race_seconds:.2f} cores "
              f"-> UI {rounds[-1]['ui_cores']:.2f} cores; {written / wall / 1e6:.2f} MB/s to the terminal")  # fmt: skip
    result = {
        "graphics": args.graphics, "renderer": args.renderer, "terminal": f"tmux {size[0]}x{size[1]}, truecolor",
        "race_seconds": steps / STEPS_PER_SECOND, "rounds": rounds,
        "machine": {**hardware_info(), "cores": os.cpu_count()},
        **{f"median_{k}": statistics.median(r[k] for r in rounds)
           for k in ("ui_cores", "app_cores", "engine_cores", "bytes_per_s")},
    }  # fmt: skip
    print(f"median: UI {result['median_ui_cores']:.2f} cores besides the engine, "
          f"{result['median_bytes_per_s'] / 1e6:.2f} MB/s written")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
