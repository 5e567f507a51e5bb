"""weights/manifest.json: the shipped files, their sha256, and the sizes the engine uses.

Sizes (z, hidden, action, gaussians, frame) come from here, never from constants
repeated across packages. `load_manifest` checks every listed file against its sha256 and
names the file that is missing or differs.

Where the shipped files are (`locate_weights`, `locate_configs`; one code path for every
install): the checkout's top-level weights/ and configs/ when the engine runs from a source
checkout (an editable install or PYTHONPATH), else the installed wheel's packages
`vmc_duel_weights` and `vmc_duel_configs` (pyproject.toml maps the two folders onto them, so
the checkout and the wheel hold the same files). The environment variable VMC_DUEL_WEIGHTS
names another weights directory; a command's `--weights DIR` overrides both. The wheel
leaves out the files inference never reads (`INFERENCE_ONLY_SKIPS`); where they are
present they are checked like the rest.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

WEIGHTS_ENV = "VMC_DUEL_WEIGHTS"  # a weights directory to race with instead of the shipped one
WEIGHTS_PACKAGE = "vmc_duel_weights"  # the wheel's weights/ (pyproject.toml: package-dir)
CONFIGS_PACKAGE = "vmc_duel_configs"  # the wheel's configs/
# Listed in the manifest, never read by inference, left out of the wheel: the torch checkpoints
# (training and export start from them) and dream.onnx (the per-step reference of the lookahead,
# for tests and export). Checked when present; a missing one is not an error.
INFERENCE_ONLY_SKIPS = ("vae.pth", "mdnrnn.pth", "dream.onnx")
_SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the checkout, when this file is in one


def checkout_root() -> Path | None:
    """The source checkout this engine runs from (where pyproject.toml and weights/ are), or None
    when it is installed from a wheel."""
    root = _SOURCE_ROOT
    return root if (root / "pyproject.toml").is_file() and (root / "weights").is_dir() else None


def _shipped(folder: str, package: str, marker: str) -> tuple[Path, str]:
    """The checkout's `folder` if this is a checkout holding `marker`, else the installed
    `package`'s directory (found without importing it), else the checkout's path (so errors
    name where the file was looked for)."""
    root = checkout_root()
    if root is not None and (root / folder / marker).is_file():
        return root / folder, "checkout"
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (Path(location) / marker).is_file():
            return Path(location), f"installed package {package}"
    return _SOURCE_ROOT / folder, "checkout"


def locate_weights() -> tuple[Path, str]:
    """(weights directory, where it came from): $VMC_DUEL_WEIGHTS if set ("VMC_DUEL_WEIGHTS"),
    else the checkout's weights/ ("checkout"), else the installed package ("installed package
    vmc_duel_weights")."""
    named = os.environ.get(WEIGHTS_ENV, "").strip()
    if named:
        return Path(named).expanduser(), WEIGHTS_ENV
    return _shipped("weights", WEIGHTS_PACKAGE, "manifest.json")


def locate_configs() -> tuple[Path, str]:
    """(configs directory holding bounds.yaml, where it came from): as `locate_weights`, without
    the variable."""
    return _shipped("configs", CONFIGS_PACKAGE, "bounds.yaml")


WEIGHTS_DIR, WEIGHTS_SOURCE = locate_weights()  # every command's default (`--weights DIR` overrides it)


class WeightsError(ValueError):
    """A shipped weight file or the manifest is missing, corrupt or does not match."""


def file_sha256(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_manifest(weights_dir: Path = WEIGHTS_DIR, verify: bool = True) -> dict[str, Any]:
    """Read `weights_dir/manifest.json`; with `verify`, check every file's sha256."""
    path = Path(weights_dir) / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise WeightsError(f"{path}: no manifest (export the models with `vmc-duel export`)") from None
    except json.JSONDecodeError as e:
        raise WeightsError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(manifest, dict) or "files" not in manifest or "sizes" not in manifest:
        raise WeightsError(f"{path}: missing 'files' or 'sizes'")
    if verify:
        # An export's manifest (it lists the world model) may lack the files inference never reads:
        # the wheel leaves them out. Any other manifest must have every file it lists.
        exported = "world_model.onnx" in manifest["files"]
        for name, meta in manifest["files"].items():
            f = Path(weights_dir) / name
            if not f.exists():
                if exported and name in INFERENCE_ONLY_SKIPS:
                    continue  # not installed with the wheel; inference never reads it
                raise WeightsError(f"{f}: listed in {path} but missing")
            if file_sha256(f) != meta.get("sha256"):
                raise WeightsError(f"{f}: sha256 does not match {path} (corrupt or replaced; re-export with --force)")
    return manifest
