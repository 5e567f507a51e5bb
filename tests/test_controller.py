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


def test_a_file_with_a_wet_track_set_drives_it_in_rain(tmp_path):
    dry, wet = np.full((3, 288), 0.1), np.full((3, 288), -0.2)
    f = tmp_path / "c.npz"
    np.savez(f, W=dry, b=np.zeros(3), W_rain=wet, b_rain=np.ones(3), name=np.str_("B"), generation=np.int64(46),
             rain_name=np.str_("B16h"), rain_generation=np.int64(12))  # fmt: skip
    W, b, meta = load_controller(f, 32, 256)
    assert (W == dry).all() and (b == 0).all() and (meta["name"], meta["generation"]) == ("B", 46)
    W, b, meta = load_controller(f, 32, 256, weather="rain")
    assert (W == wet).all() and (b == 1).all() and (meta["name"], meta["generation"]) == ("B16h", 12)
    # a file without a wet-track set drives its one set in rain too
    plain = tmp_path / "p.npz"
    np.savez(plain, W=dry, b=np.zeros(3))
    assert (load_controller(plain, 32, 256, weather="rain")[0] == dry).all()
    # the wet set is checked in clear weather too: a broken file fails whatever the weather
    half = tmp_path / "h.npz"
    np.savez(half, W=dry, b=np.zeros(3), W_rain=wet)
    with pytest.raises(ControllerError, match="h.npz: W_rain and b_rain come together"):
        load_controller(half, 32, 256)
    bad = tmp_path / "r.npz"
    np.savez(bad, W=dry, b=np.zeros(3), W_rain=np.zeros((3, 100)), b_rain=np.zeros(3))
    with pytest.raises(ControllerError, match=r"r.npz: W_rain \(3, 100\)"):
        load_controller(bad, 32, 256)
    with pytest.raises(ValueError, match="weather 'snow'"):
        load_controller(f, 32, 256, weather="snow")


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


def test_an_averaged_controller_is_named_by_the_generations_it_averages(tmp_path):
    from engine.policy.controller import ControllerInfo

    W, b = np.zeros((3, 288)), np.zeros(3)
    plain, averaged = tmp_path / "plain.npz", tmp_path / "avg.npz"
    np.savez(plain, W=W, b=b, name=np.asarray("R"), generation=np.asarray(9))
    np.savez(averaged, W=W, b=b, name=np.asarray("R"), generation=np.asarray(26),
             averaged_generations=np.asarray("8, 10, 12, 26"))  # fmt: skip
    one = ControllerInfo.from_file(plain, load_controller(plain, 32, 256)[2])
    avg = ControllerInfo.from_file(averaged, load_controller(averaged, 32, 256)[2])
    assert " · R gen 9 · " in one.short and "run R generation 9," in one.origin and one.averaged is None
    assert " · R gen 8-26 avg · " in avg.short and "run R generations 8-26 averaged," in avg.origin
    assert avg.as_dict()["averaged"] == "8, 10, 12, 26"
