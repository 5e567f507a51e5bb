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
from pathlib import Path

import numba
import numpy as np

ACTIONS = 3  # steer, gas, brake


class ControllerError(ValueError):
    """A controller file is missing, corrupt or of the wrong shape; the message names it."""


def load_controller(path: Path, z_size: int, hidden: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """(W (3, z+hidden) float64, b (3,) float64, metadata) from an .npz written by training."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            W, b = f["W"].astype(np.float64), f["b"].astype(np.float64)
            meta = {k: f[k].item() for k in f.files if k not in ("W", "b") and f[k].ndim == 0}
    except FileNotFoundError:
        raise ControllerError(f"{path}: no such controller file") from None
    except KeyError as e:
        raise ControllerError(f"{path}: no array {e}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ControllerError(f"{path}: unreadable ({str(e)[:120]})") from None
    if W.shape != (ACTIONS, z_size + hidden) or b.shape != (ACTIONS,):
        raise ControllerError(f"{path}: W {W.shape} and b {b.shape}, expected ({ACTIONS}, {z_size + hidden}) and (3,)")
    if not (np.isfinite(W).all() and np.isfinite(b).all()):
        raise ControllerError(f"{path}: W or b holds NaN or infinity")
    return W, b, meta


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
