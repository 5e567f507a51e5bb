"""The numba linear controller and its weight files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.policy.controller import ControllerError, load_controller, policy_actions


def reference(W, b, z, h):
    a = np.tanh(W @ np.concatenate([z, h]) + b)
    return np.array([a[0], (a[1] + 1) / 2, np.clip(a[2], 0, 1)])


def test_policy_matches_world_models_mapping():
    rng = np.random.default_rng(0)
    W = rng.normal(0, 0.1, (2, 3, 288))
    b = rng.normal(0, 0.5, (2, 3))
    z = rng.normal(0, 1, (2, 32)).astype(np.float32)
    h = rng.normal(0, 0.3, (2, 256)).astype(np.float32)
    out = np.zeros((2, 3))
    policy_actions(W, b, z, h, out)
    for p in range(2):
        # float64 sums of 288 terms in another order: ~1e-15 apart on any CPU (no fast-math in numba)
        assert np.allclose(out[p], reference(W[p], b[p], z[p], h[p]), atol=1e-12)
    assert (out[:, 1] >= 0).all() and (out[:, 1] <= 1).all() and (out[:, 2] >= 0).all()


def test_controller_files_are_checked(tmp_path):
    good = tmp_path / "c.npz"
    np.savez(good, W=np.zeros((3, 288)), b=np.zeros(3), generations=np.int64(5), placeholder=np.bool_(True))
    W, b, meta = load_controller(good, 32, 256)
    assert W.shape == (3, 288) and meta["generations"] == 5 and meta["placeholder"] is True
    wrong = tmp_path / "w.npz"
    np.savez(wrong, W=np.zeros((3, 100)), b=np.zeros(3))
    with pytest.raises(ControllerError, match=r"w.npz: W \(3, 100\)"):
        load_controller(wrong, 32, 256)
    nan = tmp_path / "n.npz"
    np.savez(nan, W=np.full((3, 288), np.nan), b=np.zeros(3))
    with pytest.raises(ControllerError, match="n.npz: W or b holds NaN"):
        load_controller(nan, 32, 256)
    corrupt = tmp_path / "x.npz"
    corrupt.write_bytes(good.read_bytes()[:50])
    with pytest.raises(ControllerError, match="x.npz: unreadable"):
        load_controller(corrupt, 32, 256)
    with pytest.raises(ControllerError, match="no such controller file"):
        load_controller(tmp_path / "none.npz", 32, 256)


def test_numba_cache_falls_back_to_the_user_cache_when_the_install_is_read_only(tmp_path):
    """An install whose package directory cannot hold __pycache__ (here: a file sits
    where the directory would go) compiles into the user-wide cache instead."""
    import shutil
    import subprocess
    import sys

    site = tmp_path / "site"
    shutil.copytree(Path(__file__).resolve().parents[1] / "engine", site / "engine",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    (site / "engine" / "policy" / "__pycache__").write_text("not a directory")  # beside controller.py
    code = ("import numpy as np\nfrom engine.policy.controller import policy_actions\n"
            "out = np.zeros((1, 3))\n"
            "policy_actions(np.zeros((1, 3, 4)), np.zeros((1, 3)), np.zeros((1, 2)), np.zeros((1, 2)), out)\n"
            "import engine\nprint(out.tolist(), engine.__file__)")  # fmt: skip
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "PYTHONPATH": str(site), "SDL_VIDEODRIVER": "dummy"}  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300,
                            cwd=tmp_path)  # not the checkout: its engine/ would come first
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["[[0.0,", "0.5,", "0.0]]", str(site / "engine" / "__init__.py")]
    cached = list((tmp_path / "cache" / "numba").rglob("controller.policy_actions*.nbi"))
    assert cached, f"no numba cache index in the user cache: {sorted((tmp_path / 'cache').rglob('*'))}"
