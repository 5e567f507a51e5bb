"""The machines the project has been measured on, side by side: one markdown table.

    python benchmarks/machines.py [--write]

Reads each machine's results under benchmarks/results/: `<machine>/env.json`
(bench_env.py --save) and `<machine>/bench_*.json` (run_all.py --out-dir
benchmarks/results/<machine>), and the older results at the top of benchmarks/results/
(env_cpu_2core.json, bench_cpu_2core.json: the AMD EPYC development machine, before
results were kept per machine). Every ratio in a row was measured side by side in one run
on that machine; rows are not comparable run to run beyond that (other loads, other
dates). --write saves the table to benchmarks/results/machines.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
LEGACY = ("env_cpu_2core.json", "bench_cpu_2core.json")  # kept where they were first written


def _load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        return None


def _runs() -> list[tuple[str, dict | None, dict | None]]:
    """(where, env result, suite result) per machine directory, the legacy files first."""
    runs = [("results/ (before per-machine results)", _load(RESULTS / LEGACY[0]), _load(RESULTS / LEGACY[1]))]
    for d in sorted(p for p in RESULTS.iterdir() if p.is_dir()):
        env = _load(d / "env.json")
        suites = sorted(d.glob("bench_*.json"))
        suite = _load(suites[-1]) if suites else None
        if env or suite:
            runs.append((f"results/{d.name}/", env, suite))
    return runs


def _ratio(x) -> str:
    return f"{x:.1f}x" if isinstance(x, (int, float)) else "-"


def table() -> str:
    head = ["results", "CPU (LLVM)", "vector ISA", "cores", "load (1 min)", "stock steps/s", "exact", "fast",
            "duel exact, 1 process / 2 lanes / 2 lanes int8, vs serial stock", "vs same-core stock",
            "tournament (renderer): % of ceiling"]  # fmt: skip
    rows = []
    for where, env, suite in _runs():
        m = {**(suite or {}).get("machine", {}), **(env or {}).get("machine", {})}
        r = (env or {}).get("renderers", {})
        duel = (suite or {}).get("duel") or {}
        serial = duel.get("speedup_vs_baseline", {})
        same = duel.get("speedup_vs_same_cores", {})
        tour = (suite or {}).get("tournament") or {}
        frac = tour.get("ceiling_fraction")
        load = m.get("load_average")
        rows.append([
            where, f"{m.get('cpu', '?')} ({m.get('llvm_cpu', '?')})", m.get("vector_isa", "?"),
            m.get("cores", "?"), load[0] if load else "?",
            f"{r['stock']['median']:.0f}" if "stock" in r else "-",
            _ratio(r.get("exact_vs_stock")), _ratio(r.get("fast_vs_stock")),
            " / ".join(_ratio(serial.get(k)) for k in ("exact", "exact_2lanes", "exact_2lanes_int8")),
            " / ".join(_ratio(same.get(k)) for k in ("exact", "exact_2lanes", "exact_2lanes_int8")),
            f"{100 * frac:.0f}% ({tour.get('renderer', 'fast')})" if frac else "-",
        ])  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="save the table to benchmarks/results/machines.md")
    args = parser.parse_args(argv)
    text = "# Machines measured\n\nexact and fast: the renderer's env steps/s over stock's, same run " \
           "(bench_env.py); duel and tournament: run_all.py (vmc-duel bench).\n\n" + table()
    print(text, end="")
    if args.write:
        (RESULTS / "machines.md").write_text(text)


if __name__ == "__main__":
    main()
