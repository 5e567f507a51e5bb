"""World Models' linear controller, for every player at once, in numba.

Per player p: a = tanh(W_p @ [z_p, h_p] + b_p), mapped as in World Models to
steer = a0, gas = (a1 + 1) / 2, brake = clip(a2, 0, 1). Each player has its own weights
(`weights/controllerA.npz`, `controllerB.npz`: W (3, z + hidden), b (3,), plus metadata).

The numba functions of the engine compile once and are cached (`cache=True`) beside the
source; when the install is read-only, numba caches them in the user's cache directory
instead (~/.cache/numba, or $NUMBA_CACHE_DIR), which a test checks.
"""

from __future__ import annotations

import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numba
import numpy as np

ACTIONS = 3  # steer, gas, brake
SHA_PREFIX = 8  # hex digits of a controller file's sha256 shown beside its name


class ControllerError(ValueError):
    """A controller file is missing, corrupt or of the wrong shape; the message names it."""


def load_controller(path: Path, z_size: int, hidden: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """(W (3, z+hidden) float64, b (3,) float64, metadata) from an .npz written by training."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ("W", "b") if k not in f.files]
            if missing:
                raise ControllerError(f"{path}: no array {missing[0]!r} (a controller file holds W and b)")
            W, b = f["W"].astype(np.float64), f["b"].astype(np.float64)
            meta = {k: f[k].item() for k in f.files if k not in ("W", "b") and f[k].ndim == 0}
    except FileNotFoundError:
        raise ControllerError(f"{path}: no such controller file") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ControllerError(f"{path}: unreadable ({str(e)[:120]})") from None
    if W.shape != (ACTIONS, z_size + hidden) or b.shape != (ACTIONS,):
        raise ControllerError(f"{path}: W {W.shape} and b {b.shape}, expected ({ACTIONS}, {z_size + hidden}) and (3,)")
    if not (np.isfinite(W).all() and np.isfinite(b).all()):
        raise ControllerError(f"{path}: W or b holds NaN or infinity")
    return W, b, meta


def display_path(path: Path) -> str:
    """A file of the project as 'weights/controllerA.npz' (the same on every checkout), any other as given."""
    from engine.world_model.manifest import WEIGHTS_DIR

    try:
        return str(Path(path).resolve().relative_to(WEIGHTS_DIR.parent))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class ControllerInfo:
    """Which controller a player drives with, as the screen, the telemetry and the league tables name it."""

    name: str  # short label: the one given, else the file's stem ("controllerA")
    file: str  # the path as given
    sha256: str  # of the file's bytes: two files with one sha256 are the same controller
    method: str  # how it was made (training writes it), "PLACEHOLDER ..." for a placeholder
    run: str | None  # the training run (CMA-ES: its run name, e.g. "A16"), when the file says
    generation: int | None  # the CMA-ES generation it comes from, when the file says
    placeholder: bool

    @classmethod
    def from_file(cls, path: Path, meta: dict, name: str | None = None) -> ControllerInfo:
        """From a controller file already checked by `load_controller` and its metadata."""
        from engine.world_model.manifest import file_sha256

        generation = meta.get("generation")
        run = meta.get("name")
        return cls(name=name or Path(path).stem, file=display_path(path), sha256=file_sha256(Path(path)),
                   method=str(meta.get("method", "unknown")), run=None if run is None else str(run),
                   generation=None if generation is None else int(generation),
                   placeholder=bool(meta.get("placeholder", False)))  # fmt: skip

    @property
    def origin(self) -> str:
        """'weights/controllerA.npz, run A16 generation 9, sha256 3c28cbd0' (what is known of it)."""
        parts = [self.file]
        if self.placeholder:
            parts.append("PLACEHOLDER")
        if self.generation is not None:
            parts.append(f"{'run ' + self.run + ' ' if self.run else ''}generation {self.generation}")
        parts.append(f"sha256 {self.sha256[:SHA_PREFIX]}")
        return ", ".join(parts)

    @property
    def kind(self) -> str:
        """PLACEHOLDER, or how it was trained (what the result tables call a controller)."""
        return "PLACEHOLDER" if self.placeholder else self.method

    @property
    def short(self) -> str:
        """'controllerA.npz · A16 gen 9 · sha256 3c28cbd0': the origin in one short line (the terminal app)."""
        parts = [Path(self.file).name] + (["PLACEHOLDER"] if self.placeholder else [])
        if self.generation is not None:
            parts.append(f"{self.run + ' ' if self.run else ''}gen {self.generation}")
        return " · ".join(parts + [f"sha256 {self.sha256[:SHA_PREFIX]}"])

    @property
    def label(self) -> str:
        """The name with its origin, for one line of a screen or a table."""
        return f"{self.name} ({self.origin})"

    def as_dict(self) -> dict:
        return {**asdict(self), "origin": self.origin, "short": self.short, "label": self.label}


@numba.njit(cache=True)
def policy_actions(W: np.ndarray, b: np.ndarray, z: np.ndarray, h: np.ndarray, out: np.ndarray) -> None:
    """W (P, 3, Z+H), b (P, 3), z (P, Z), h (P, H) -> out (P, 3) steer, gas, brake (in place)."""
    players, _, _ = W.shape
    nz = z.shape[1]
    for p in range(players):
        for k in range(3):
            acc = b[p, k]
            for i in range(nz):
                acc += W[p, k, i] * z[p, i]
            for i in range(h.shape[1]):
                acc += W[p, k, nz + i] * h[p, i]
            a = np.tanh(acc)
            if k == 0:
                out[p, 0] = a
            elif k == 1:
                out[p, 1] = (a + 1.0) / 2.0
            else:
                out[p, 2] = min(max(a, 0.0), 1.0)
