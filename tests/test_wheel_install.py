"""The product is the wheel: built from the sources, installed with pip into a fresh virtual
environment (the base dependencies only: no torch), it races from a directory with no
checkout on the weights it carries, and its health names the installed package as their
source. (This is also the edge path: a base install without torch races a duel.)

The wheel is built once per state of the sources (sdist, then the wheel from it, without
build isolation) and kept under ~/.cache/vmc-duel-tests/ keyed by a hash of every file that
goes into it; pip installs the dependencies from the machine's configured indexes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vmc-duel-tests" / "wheels"
MAX_WHEEL_BYTES = 40 * 1024 * 1024
TRAINING_ONLY = {"torch", "onnx", "matplotlib", "cma", "ray"}


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _wheel_sources() -> list[Path]:
    """Every file the wheel is built from: the build files, the packages' sources and their data."""
    setuptools = _project()["tool"]["setuptools"]
    files = [ROOT / "pyproject.toml", ROOT / "MANIFEST.in", ROOT / "README.md"]
    for package in setuptools["packages"]:
        folder = ROOT / setuptools.get("package-dir", {}).get(package, package.replace(".", "/"))
        files += sorted(folder.glob("*.py")) + sorted(folder.glob("*.tcss")) + sorted(folder.glob("*.yaml"))
        files += [folder / name for name in setuptools["package-data"].get(package, [])]
    return files


def _sources_key() -> str:
    h = hashlib.sha256()
    for path in _wheel_sources():
        h.update(str(path.relative_to(ROOT)).encode())
        h.update(path.read_bytes() if path.is_file() else b"<missing>")
    return h.hexdigest()[:20]


@pytest.fixture(scope="session")
def wheel() -> Path:
    """The wheel of the sources as they are, built once per state of them (cached across sessions)."""
    out = CACHE / _sources_key()
    for old in CACHE.glob("*"):  # wheels of earlier states of the sources (25 MB each)
        if old != out and not old.name.startswith("building-"):
            shutil.rmtree(old, ignore_errors=True)
    found = sorted(out.glob("vmc_duel-*.whl"))
    if found:
        return found[0]
    shutil.rmtree(out, ignore_errors=True)
    tmp = CACHE / f"building-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    built = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tmp), str(ROOT)],
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    try:
        tmp.rename(out)  # whole or not at all: a killed build leaves no half-written cache entry
    except OSError:  # another session built the same sources meanwhile: theirs is the same wheel
        shutil.rmtree(tmp, ignore_errors=True)
    return sorted(out.glob("vmc_duel-*.whl"))[0]


@pytest.fixture(scope="session")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel and its dependencies (the base install); its bin/."""
    venv = tmp_path_factory.mktemp("wheel-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
                         capture_output=True, text=True, timeout=900)  # fmt: skip
    assert pip.returncode == 0, pip.stderr[-3000:]
    return venv / "bin"


def _run(bin_dir: Path, *argv: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VMC_DUEL_WEIGHTS", "NUMBA_CACHE_DIR")}
    return subprocess.run([str(bin_dir / argv[0]), *argv[1:]], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env={**environ, **(env or {})})  # fmt: skip


def test_every_package_of_the_checkout_is_in_the_wheel_list():
    listed = set(_project()["tool"]["setuptools"]["packages"])
    found = {str(p.parent.relative_to(ROOT)).replace("/", ".") for top in ("engine", "tui", "server", "vmc_duel",
             "train", "export") for p in (ROOT / top).rglob("__init__.py")}  # fmt: skip
    assert found <= listed, f"add to pyproject.toml's [tool.setuptools] packages: {sorted(found - listed)}"


def test_the_wheel_carries_what_inference_reads_and_no_training_state(wheel):
    assert wheel.stat().st_size <= MAX_WHEEL_BYTES, f"{wheel.name}: {wheel.stat().st_size / 2**20:.1f} MiB"
    names = set(zipfile.ZipFile(wheel).namelist())
    manifest = json.loads((ROOT / "weights" / "manifest.json").read_text())
    carried = {n.split("/", 1)[1] for n in names if n.startswith("vmc_duel_weights/")}
    needed = {n for n in manifest["files"] if n not in ("vae.pth", "mdnrnn.pth", "dream.onnx")}
    assert carried == needed | {"manifest.json"}
    assert "vmc_duel_configs/bounds.yaml" in names
    assert not [n for n in names if n.endswith((".pth", ".png", ".csv", ".nbi", ".nbc")) or "/cma/" in n]


def test_installed_wheel_races_outside_the_checkout_without_torch(installed, tmp_path):
    elsewhere = tmp_path / "elsewhere"  # no checkout here or above it
    elsewhere.mkdir()
    listed = subprocess.run([str(installed / "python"), "-m", "pip", "list", "--format=json"], capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    have = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert {"vmc-duel", "onnxruntime", "numba"} <= have and not have & TRAINING_ONLY

    health = _run(installed, "vmc-duel", "health", cwd=elsewhere)
    assert health.returncode == 0, health.stdout[-2000:] + health.stderr[-2000:]
    assert health.stdout.rstrip().endswith("healthy")
    site = installed.parent / "lib"
    source = next(line for line in health.stdout.splitlines() if line.strip().startswith("from "))
    assert "installed package vmc_duel_weights" in source and str(site) in source, source

    record = elsewhere / "race.json"
    race = _run(installed, "vmc-duel", "race", "--seed", "7", "--steps", "50", "--renderer", "fast", "--json",
                "--record", str(record), cwd=elsewhere)  # fmt: skip
    assert race.returncode == 0, race.stderr[-3000:]
    result = json.loads(race.stdout.splitlines()[-1])
    assert result["event"] == "result" and result["steps"] == 50
    assert all(p["step"] == 50 or p["done"] for p in result["players"].values())
    replay = _run(installed, "vmc-duel", "replay", str(record), cwd=elsewhere)
    assert replay.returncode == 0 and "identical" in replay.stdout, replay.stdout + replay.stderr

    probe = _run(installed, "python", "-c", "import torch", cwd=elsewhere)
    assert probe.returncode != 0 and "No module named 'torch'" in probe.stderr
    for argv, extra in ((("train", "vae"), "torch"), (("export",), "onnx")):
        missing = _run(installed, "vmc-duel", *argv, cwd=elsewhere)
        assert missing.returncode == 2, missing.stderr
        assert missing.stderr.count("\n") == 1 and "pip install 'vmc-duel[train]'" in missing.stderr, missing.stderr
        assert extra in missing.stderr and "Traceback" not in missing.stderr
    assert sorted(p.name for p in elsewhere.iterdir()) == ["race.json"]  # nothing else written here


def test_installed_weights_are_checked_and_overridable(installed, tmp_path):
    empty = tmp_path / "no-weights"
    empty.mkdir()
    for env, argv in (({"VMC_DUEL_WEIGHTS": str(empty)}, ()), ({}, ("--weights", str(empty)))):
        race = _run(installed, "vmc-duel", "race", "--seed", "1", "--steps", "5", *argv, cwd=tmp_path, env=env)
        assert race.returncode == 2 and race.stderr.count("\n") == 1, race.stderr
        assert f"{empty / 'manifest.json'}: no manifest" in race.stderr
    health = _run(installed, "vmc-duel", "health", cwd=tmp_path, env={"VMC_DUEL_WEIGHTS": str(empty)})
    assert health.returncode == 1 and "from VMC_DUEL_WEIGHTS" in health.stdout
    # a copy of the installed weights with one file edited: its sha256 no longer matches
    copy = tmp_path / "edited"
    shutil.copytree(next((installed.parent / "lib").glob("python3*/site-packages/vmc_duel_weights")), copy)
    with open(copy / "controllerB.npz", "ab") as f:
        f.write(b"x")
    out = tmp_path / "never.json"
    race = _run(installed, "vmc-duel", "race", "--seed", "1", "--steps", "5", "--record", str(out), cwd=tmp_path,
                env={"VMC_DUEL_WEIGHTS": str(copy)})  # fmt: skip
    assert race.returncode == 2 and race.stderr.count("\n") == 1, race.stderr
    assert f"{copy / 'controllerB.npz'}: sha256 does not match" in race.stderr and not out.exists()
