"""API soak: the load test's request mix against `vmc-duel serve` for a long time, with knob updates and resets.

    python benchmarks/api_soak.py [--minutes 30] [--threads 6] [--rate 300] [--frames-every 10]
                                  [--knob-every 1.0] [--reset-every 30] [--window 5] [--out-dir DIR] [--force]

Starts `vmc-duel serve --speed realtime --start` (this checkout) on a free port and drives it as
tests/test_api.py's load test does: `threads` client threads poll GET /telemetry at `rate` requests a second in
all, one in `frames-every` with both cars' frames as PNG. Meanwhile one more client changes a random knob of a
random player to a random value within its bounds every `knob-every` seconds (POST /update_knobs), resets the
race onto a new track every `reset-every` seconds or as soon as it has finished (POST /control reset, start),
and the server's RSS is sampled every 10 s.

Reports the latency percentiles (p50/p95/p99) of the first and the last `window` minutes, the status codes seen
(any 5xx fails the run, exit status 1) and the RSS curve (the server's RSS in the last window more than 5% above
the first window after warm-up fails it too). Writes api_soak.json and api_soak.png to --out-dir.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from engine.hardware import hardware_info  # noqa: E402

RSS_GROWTH_LIMIT = 0.05  # the last window's mean RSS may be at most 5% above the first window's
RSS_EVERY = 10.0  # s between RSS samples
PAGE = os.sysconf("SC_PAGE_SIZE")  # bytes
STARTUP_TIMEOUT = 120.0  # s for the server to answer its first request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE / 2**20
    except FileNotFoundError:
        return float("nan")


def start_server(port: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-m", "vmc_duel", "serve", "--port", str(port), "--speed", "realtime",
                             "--start", "--device", "cpu"], env=env, cwd=REPO_ROOT)  # fmt: skip


def wait_ready(url: str, proc: subprocess.Popen) -> None:
    import httpx

    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"api_soak: the server exited with status {proc.returncode} before answering")
        try:
            if httpx.get(url + "/telemetry", params={"frames": "false"}, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"api_soak: the server did not answer within {STARTUP_TIMEOUT:.0f} s")


def soak(url: str, pid: int, seconds: float, threads: int, rate: float, frames_every: int, knob_every: float,
         reset_every: float) -> dict:  # fmt: skip
    """Drive the server for `seconds`; returns the raw records (see main)."""
    import httpx

    from engine.policy.knobs import load_bounds

    bounds = load_bounds()
    polls: list[list[tuple[float, float, int, bool]]] = [[] for _ in range(threads)]  # (t, latency s, status, frames)
    writes: list[tuple[float, float, int, str]] = []  # (t, latency s, status, what)
    rss: list[tuple[float, float]] = []
    start = time.perf_counter()
    stop = threading.Event()

    def poller(i: int) -> None:
        out = polls[i]
        with httpx.Client(base_url=url, timeout=30) as c:
            gap, n = threads / rate, 0
            while not stop.is_set():
                frames = (n * threads + i) % frames_every == 0
                t0 = time.perf_counter()
                try:
                    status = c.get("/telemetry", params={"frames": "true" if frames else "false"}).status_code
                except httpx.HTTPError:
                    status = 0  # no answer at all
                out.append((t0 - start, time.perf_counter() - t0, status, frames))
                n += 1
                wait = start + n * gap - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)

    def post(c, path: str, body: dict, what: str) -> dict | None:
        t0 = time.perf_counter()
        try:
            r = c.post(path, json=body)
            status, doc = r.status_code, (r.json() if r.status_code == 200 else None)
        except httpx.HTTPError:
            status, doc = 0, None
        writes.append((t0 - start, time.perf_counter() - t0, status, what))
        return doc

    def writer() -> None:
        rng = random.Random(0)
        names = list(bounds.knobs)
        last_reset = 0.0
        with httpx.Client(base_url=url, timeout=30) as c:
            while not stop.wait(knob_every):
                name = rng.choice(names)
                spec = bounds.knobs[name]
                value = rng.randint(int(spec.min), int(spec.max)) if spec.type is int else rng.uniform(spec.min,
                                                                                                        spec.max)
                post(c, "/update_knobs", {"player": rng.choice("AB"), "knobs": {name: value}}, "knobs")
                now = time.perf_counter() - start
                finished = False
                try:
                    finished = c.get("/telemetry", params={"frames": "false"}).json().get("status") == "finished"
                except (httpx.HTTPError, ValueError):
                    pass
                if finished or now - last_reset >= reset_every:
                    post(c, "/control", {"action": "reset", "seed": rng.randrange(2**31)}, "reset")
                    post(c, "/control", {"action": "start"}, "start")
                    last_reset = now

    workers = [threading.Thread(target=poller, args=(i,), daemon=True) for i in range(threads)]
    workers.append(threading.Thread(target=writer, daemon=True))
    for w in workers:
        w.start()
    try:
        while (now := time.perf_counter() - start) < seconds:
            rss.append((now, rss_mb(pid)))
            print(f"{now / 60:5.1f} min: server RSS {rss[-1][1]:.1f} MB, {sum(map(len, polls))} polls, "
                  f"{len(writes)} writes", flush=True)  # fmt: skip
            time.sleep(min(RSS_EVERY, max(seconds - now, 0.01)))
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=60)
    rss.append((time.perf_counter() - start, rss_mb(pid)))
    return {"polls": [r for part in polls for r in part], "writes": writes, "rss": rss}


def percentiles(latencies_s: list[float]) -> dict[str, float]:
    ms = np.array(latencies_s) * 1000
    if not len(ms):
        return {"n": 0}
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {"n": int(len(ms)), "p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99),
            "max_ms": float(ms.max())}  # fmt: skip


def summarise(raw: dict, seconds: float, window: float) -> dict:
    """Percentiles of the first and last `window` seconds, status counts, RSS at start and end."""
    polls, writes, rss = raw["polls"], raw["writes"], raw["rss"]
    first = [r[1] for r in polls if r[0] < window]
    last = [r[1] for r in polls if r[0] >= seconds - window]
    statuses = Counter(str(r[2]) for r in polls) + Counter(f"{r[3]} {r[2]}" for r in writes)
    warm = [m for t, m in rss if 60 <= t < 60 + window] or [m for t, m in rss if t < window]
    end = [m for t, m in rss if t >= seconds - window]
    minutes = int(np.ceil(seconds / 60))
    per_minute = [percentiles([r[1] for r in polls if k * 60 <= r[0] < (k + 1) * 60]) for k in range(minutes)]
    return {
        "requests": len(polls) + len(writes), "polls": len(polls), "writes": len(writes),
        "polls_per_second": len(polls) / seconds, "statuses": dict(statuses),
        "server_errors": sum(1 for r in polls if r[2] >= 500) + sum(1 for r in writes if r[2] >= 500),
        "no_answer": sum(1 for r in polls if r[2] == 0) + sum(1 for r in writes if r[2] == 0),
        "start": percentiles(first), "end": percentiles(last),
        "start_with_frames": percentiles([r[1] for r in polls if r[0] < window and r[3]]),
        "end_with_frames": percentiles([r[1] for r in polls if r[0] >= seconds - window and r[3]]),
        "writes_latency": percentiles([r[1] for r in writes]),
        "rss_start_mb": float(np.mean(warm)), "rss_end_mb": float(np.mean(end)),
        "rss_growth_percent": float(100 * (np.mean(end) / np.mean(warm) - 1)),
        "per_minute": per_minute, "rss": rss,
    }  # fmt: skip


def plot(s: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
    minutes = np.arange(len(s["per_minute"])) + 0.5
    for key in ("p50_ms", "p95_ms", "p99_ms"):
        ax.plot(minutes, [m.get(key, np.nan) for m in s["per_minute"]], "o-", ms=3, label=key[:3])
    ax.set_yscale("log")
    ax.set_xlabel("minute")
    ax.set_ylabel("GET /telemetry latency (ms)")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    ax2.plot([t / 60 for t, _ in s["rss"]], [m for _, m in s["rss"]], "-", color="C3")
    ax2.set_xlabel("minute")
    ax2.set_ylabel("server RSS (MB)")
    ax2.set_ylim(bottom=0)
    ax2.set_title(f"server RSS: {s['rss_start_mb']:.0f} MB -> {s['rss_end_mb']:.0f} MB "
                  f"({s['rss_growth_percent']:+.1f}%)", fontsize=9)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] + " See the module docstring for the checks.")
    p.add_argument("--minutes", type=float, default=30.0, help="how long to drive the server (default 30)")
    p.add_argument("--threads", type=int, default=6, help="polling client threads (default 6, as the load test)")
    p.add_argument("--rate", type=float, default=300.0, help="telemetry polls per second in all (default 300)")
    p.add_argument("--frames-every", type=int, default=10, help="one poll in this many has frames (default 10)")
    p.add_argument("--knob-every", type=float, default=1.0, help="seconds between knob updates (default 1)")
    p.add_argument("--reset-every", type=float, default=30.0, help="seconds between resets at most (default 30)")
    p.add_argument("--window", type=float, default=5.0, help="minutes of the start and end windows (default 5)")
    p.add_argument("--out-dir", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "api_soak",
                   help="where api_soak.json and api_soak.png go (default benchmarks/results/api_soak)")  # fmt: skip
    p.add_argument("--force", action="store_true", help="replace api_soak.json and .png in --out-dir")
    args = p.parse_args(argv)
    for name in ("minutes", "threads", "rate", "frames_every", "knob_every", "reset_every", "window"):
        value = getattr(args, name)
        if not (value > 0 and np.isfinite(value)):
            p.error(f"--{name.replace('_', '-')} must be a positive number, got {value}")
    if 2 * args.window > args.minutes:
        p.error(f"--window {args.window} is more than half of --minutes {args.minutes}")
    existing = [args.out_dir / n for n in ("api_soak.json", "api_soak.png") if (args.out_dir / n).exists()]
    if existing and not args.force:
        p.error(f"{', '.join(map(str, existing))} already exist: pass --force to replace them")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(port)
    try:
        wait_ready(url, proc)
        seconds = 60 * args.minutes
        raw = soak(url, proc.pid, seconds, args.threads, args.rate, args.frames_every, args.knob_every,
                   args.reset_every)  # fmt: skip
        alive = proc.poll() is None
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    s = summarise(raw, seconds, 60 * args.window)
    problems = []
    if s["server_errors"]:
        problems.append(f"{s['server_errors']} answers with a 5xx status")
    if s["no_answer"]:
        problems.append(f"{s['no_answer']} requests got no answer")
    if not alive:
        problems.append("the server died during the soak")
    if s["rss_growth_percent"] > 100 * RSS_GROWTH_LIMIT:
        problems.append(f"server RSS grew {s['rss_growth_percent']:.1f}% (limit {100 * RSS_GROWTH_LIMIT:.0f}%)")
    result = {"minutes": args.minutes, "threads": args.threads, "rate": args.rate, "frames_every": args.frames_every,
              "knob_every_s": args.knob_every, "reset_every_s": args.reset_every, "window_minutes": args.window,
              **s, "problems": problems, "ok": not problems, "hardware": hardware_info(),
              "nice": os.getpriority(os.PRIO_PROCESS, 0)}  # fmt: skip
    from engine.files import write_atomic

    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out_dir / "api_soak.json", json.dumps(result, indent=1) + "\n")
    plot(s, args.out_dir / "api_soak.png", f"{args.minutes:.0f} min, {s['polls_per_second']:.0f} polls/s "
         f"(1 in {args.frames_every} with frames), a knob update every {args.knob_every:g} s")  # fmt: skip
    a, b = s["start"], s["end"]
    print(f"{s['requests']} requests in {args.minutes:.0f} min; statuses {s['statuses']}; GET /telemetry latency "
          f"first {args.window:g} min p50/p95/p99 {a['p50_ms']:.1f}/{a['p95_ms']:.1f}/{a['p99_ms']:.1f} ms, last "
          f"{args.window:g} min {b['p50_ms']:.1f}/{b['p95_ms']:.1f}/{b['p99_ms']:.1f} ms; server RSS "
          f"{s['rss_start_mb']:.1f} -> {s['rss_end_mb']:.1f} MB ({s['rss_growth_percent']:+.1f}%)")  # fmt: skip
    for line in problems:
        print(f"api_soak: {line}", file=sys.stderr)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
