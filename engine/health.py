"""`vmc-duel health`: is this install able to race? Environment, providers, weights.

Like the original design's GET /health: the environment steps, onnxruntime's providers,
and every shipped file's sha256 against weights/manifest.json (placeholders flagged); and
the CPU's vector extensions with onnxruntime's version (engine.hardware), which decide
whether a race recorded elsewhere replays here bit for bit (docs/determinism.md).
"""

from __future__ import annotations

import platform
import time
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

import numpy as np

from engine.hardware import hardware_info, package_version
from engine.world_model.manifest import WEIGHTS_DIR, WeightsError, load_manifest

PACKAGES = ("gymnasium", "box2d", "pygame-ce", "onnxruntime", "onnxruntime-gpu", "numpy", "numba", "textual")
# The distributions that provide the Box2D module: box2d (the maintained wheels) or box2d-py (built
# from source where box2d has no wheel: Linux aarch64, Python 3.14+); pyproject.toml's markers choose.
BOX2D_DISTRIBUTIONS = ("box2d", "box2d-py")
HEALTH_RENDERER = "exact"  # the default renderer of race, tournament and the app


def box2d_distribution() -> tuple[str, str | None]:
    """(name, version) of the installed distribution that provides the Box2D module, as pip names
    it (box2d or box2d-py); ("box2d", None) when none does."""
    providers = [name.lower() for name in packages_distributions().get("Box2D", [])]
    for name in dict.fromkeys([*providers, *BOX2D_DISTRIBUTIONS]):
        found = package_version(name)
        if found is not None:
            return name, found
    return BOX2D_DISTRIBUTIONS[0], None


def package_versions() -> dict[str, str | None]:
    """{distribution: version or None} of PACKAGES, where "box2d" stands for whichever
    distribution provides the Box2D module (box2d-py on Linux aarch64)."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        if name == "box2d":
            dist, found = box2d_distribution()
            versions[dist] = found
        else:
            versions[name] = package_version(name)
    return versions


def check(weights_dir: Path = WEIGHTS_DIR) -> dict[str, Any]:
    """A health report; report['ok'] is False when anything needed to race is broken."""
    report: dict[str, Any] = {"python": platform.python_version(), "hardware": hardware_info(),
                              "packages": package_versions()}
    problems = []
    try:
        from engine import make_env

        # The renderer a race uses by default: its kernels, compiled here on a fresh install, are then
        # in numba's cache for the first race (the fast renderer's would be compiled for nothing).
        env = make_env(HEALTH_RENDERER)
        env.reset(seed=0)
        start = time.perf_counter()
        for _ in range(20):
            env.step(np.array([0.0, 1.0, 0.0]))
        report["environment"] = {"ok": True, "renderer": HEALTH_RENDERER,
                                 "steps_per_second": 20 / (time.perf_counter() - start)}
    except Exception as e:  # report, don't crash: this is the diagnostic
        report["environment"] = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        problems.append("environment")
    import onnxruntime as ort

    report["providers"] = ort.get_available_providers()
    try:  # which provider a world-model session really runs on, device auto (no silent CPU fallback)
        from engine.world_model.runtime import WorldModel

        report["session_provider"] = WorldModel(1, device="auto", precision="fp32", weights_dir=weights_dir) \
            .session.get_providers()[0]  # fmt: skip
    except Exception as e:  # the weights check below names what is broken
        report["session_provider"] = f"none ({type(e).__name__})"
    try:
        manifest = load_manifest(weights_dir)
        from engine.world_model.int8_kind import int8_verdict

        verdict = int8_verdict(manifest, weights_dir)
        report["precision_auto_cpu"] = {"precision": "int8" if verdict.use else "fp32", "why": verdict.why,
                                        "cpu_kind": verdict.kind, "z_err_over_spread": verdict.z_err_over_spread}
        on_cpu = report["session_provider"] == "CPUExecutionProvider"
        report["lookahead"] = ("numba on the CPU (engine.policy.imagine, lookahead.npz)"
                               if on_cpu and "lookahead.npz" in manifest["files"]
                               else f"lookahead.onnx on {report['session_provider']}")  # fmt: skip
        report["weights"] = {
            "ok": True, "dir": str(weights_dir),
            "files": {n: {"sha256_ok": True, "placeholder": bool(m.get("placeholder", False))}
                      for n, m in manifest["files"].items()},
        }  # fmt: skip
    except WeightsError as e:
        report["weights"] = {"ok": False, "dir": str(weights_dir), "error": str(e)}
        problems.append("weights")
    report["ok"] = not problems
    report["problems"] = problems
    return report


def format_report(r: dict[str, Any]) -> str:
    hw = r["hardware"]
    lines = [f"cpu          {hw['cpu']} ({hw['arch']}), vector ISA {hw['vector_isa']}: "
             f"{', '.join(hw['vector_extensions']) or 'unknown'}; onnxruntime {hw['onnxruntime']}",
             f"python {r['python']}"]  # fmt: skip
    lines += [f"  {k:<16}{v or '-'}" for k, v in r["packages"].items()]
    env = r["environment"]
    lines.append(
        f"environment  {'ok' if env['ok'] else 'BROKEN'}"
        + (f" ({env['steps_per_second']:.0f} steps/s, {env['renderer']} renderer)" if env["ok"]
           else f": {env['error']}")
    )
    lines.append(f"providers    {', '.join(r['providers'])}; a world-model session runs on "
                 f"{r.get('session_provider', '?')}")
    w = r["weights"]
    if w["ok"]:
        lines.append(f"weights      ok, {len(w['files'])} files match {w['dir']}/manifest.json")
        lines += [f"  {n} (PLACEHOLDER)" for n, m in w["files"].items() if m["placeholder"]]
        auto = r["precision_auto_cpu"]
        lines.append(f"precision    --precision auto on CPU: {auto['precision']} ({auto['why']})")
        lines.append(f"lookahead    {r['lookahead']}")
    else:
        lines.append(f"weights      BROKEN: {w['error']}")
    lines.append("healthy" if r["ok"] else f"UNHEALTHY: {', '.join(r['problems'])}")
    return "\n".join(lines)
