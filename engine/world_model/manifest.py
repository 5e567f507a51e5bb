"""weights/manifest.json: the shipped files, their sha256, and the sizes the engine uses.

Sizes (z, hidden, action, gaussians, frame) come from here, never from constants
repeated across packages. `load_manifest` checks every listed file against its sha256 and
names the file that is missing or differs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"


class WeightsError(ValueError):
    """A shipped weight file or the manifest is missing, corrupt or does not match."""


def file_sha256(path: Path) -> str:
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
        for name, meta in manifest["files"].items():
            f = Path(weights_dir) / name
            if not f.exists():
                raise WeightsError(f"{f}: listed in {path} but missing")
            if file_sha256(f) != meta.get("sha256"):
                raise WeightsError(f"{f}: sha256 does not match {path} (corrupt or replaced; re-export with --force)")
    return manifest
