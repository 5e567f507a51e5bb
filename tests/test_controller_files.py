"""Any two controller files race (--controller-a / --controller-b / --weights): the duel changes with them and
stays deterministic, bad files are refused with their name, and the screen and the API say which file drives."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import subprocess
import sys

import numpy as np
import pytest
from waiting import settled_screen, wait_for

from engine.policy.controller import ControllerError
from engine.race.headless import run_race
from engine.race.selection import resolve_controllers
from engine.world_model.manifest import WEIGHTS_DIR, WeightsError

RACE = ["--seed", "11", "--steps", "80", "--renderer", "fast", "--device", "cpu", "--precision", "fp32", "--json"]
VOLATILE = ("wall_seconds", "steps_per_second")  # timings: the only fields that may differ between two runs


def vmc_duel(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vmc_duel.cli", *args], capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def changed_a(path) -> None:
    """Shipped A with more gas: b[1] + 0.5 (everything else, its metadata included, as shipped)."""
    with np.load(WEIGHTS_DIR / "controllerA.npz", allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["b"] = arrays["b"] + np.array([0.0, 0.5, 0.0])
    np.savez(path, **arrays)


def race_records(stdout: str) -> list[dict]:
    records = [json.loads(line) for line in stdout.splitlines()]
    for r in records:
        for key in VOLATILE:
            r.pop(key, None)
    return records


def test_a_duel_of_two_files_from_the_command_line_differs_from_the_default_and_repeats(tmp_path):
    mine = tmp_path / "gassy_A.npz"
    changed_a(mine)
    b_file = WEIGHTS_DIR / "controllerB.npz"
    first = vmc_duel("race", *RACE, "--controller-a", str(mine), "--controller-b", str(b_file))
    again = vmc_duel("race", *RACE, "--controller-a", str(mine), "--controller-b", str(b_file))
    assert first.returncode == 0 and again.returncode == 0, first.stderr[-2000:] + again.stderr[-2000:]
    runs = race_records(first.stdout), race_records(again.stdout)
    assert runs[0] == runs[1]  # same seed, knobs and files: the same race, every telemetry line

    start, result = runs[0][0], runs[0][-1]
    a = start["controller_files"]["A"]
    with np.load(mine, allow_pickle=False) as f:  # the shipped A's run and generation, kept by changed_a
        run, generation = f["name"].item(), f["generation"].item()
    assert a["file"] == str(mine) and a["name"] == "gassy_A" and a["generation"] == generation and a["run"] == run
    assert a["sha256"] == hashlib.sha256(mine.read_bytes()).hexdigest() and a["sha256"][:8] in a["origin"]
    assert start["controller_files"]["B"]["file"] == "weights/controllerB.npz"

    default = run_race(seed=11, steps=80, renderer="fast", device="cpu", precision="fp32", out=None)
    ours, shipped = result["players"], default["players"]
    assert (ours["A"]["reward"], ours["A"]["speed"], ours["A"]["action"]) != \
        (shipped["A"]["reward"], shipped["A"]["speed"], shipped["A"]["action"])  # fmt: skip
    # B drives the same file on the same track in its own environment: its race is the default's, bit for bit
    assert {k: v for k, v in ours["B"].items() if k != "controller_file"} == \
        {k: v for k, v in shipped["B"].items() if k != "controller_file"}  # fmt: skip


def bad_files(tmp_path) -> dict[str, tuple]:
    """name -> (writer, what the message says)."""
    good = np.load(WEIGHTS_DIR / "controllerA.npz", allow_pickle=False)
    W, b = good["W"], good["b"]
    return {
        "nan.npz": (lambda p: np.savez(p, W=np.where(np.eye(3, 288) > 0, np.nan, W), b=b), "NaN"),
        "shape.npz": (lambda p: np.savez(p, W=W[:, :100], b=b), "expected (3, 288)"),
        "no_b.npz": (lambda p: np.savez(p, W=W), "no array 'b'"),
        "pickled.npz": (lambda p: np.savez(p, W=np.array([{"x": 1}] * 3, dtype=object), b=b), "unreadable"),
        "text.npz": (lambda p: p.write_text("not a zip"), "unreadable"),
    }


def test_bad_controller_files_are_refused_with_their_name(tmp_path):
    for name, (write, says) in bad_files(tmp_path).items():
        path = tmp_path / name
        write(path)
        with pytest.raises(ControllerError) as e:
            resolve_controllers(None, path)
        assert str(e.value).startswith(str(path)) and says in str(e.value), str(e.value)
    with pytest.raises(ControllerError, match="missing.npz: no such controller file"):
        resolve_controllers(tmp_path / "missing.npz", None)

    path = tmp_path / "nan.npz"
    for command in (["race", "--steps", "5"], ["tournament", "--tracks", "1", "--out", str(tmp_path / "t")]):
        r = vmc_duel(*command, "--controller-b", str(path))
        assert r.returncode == 2, r.stderr
        assert r.stderr.strip() == f"vmc-duel {command[0]}: {path}: W or b holds NaN or infinity"
    assert not (tmp_path / "t").exists()  # refused before anything ran or was written


def test_the_terminal_app_names_each_controller_and_its_origin(tmp_path):
    from textual.widgets import Static

    from tui.app import make_app

    mine = tmp_path / "gassy_A.npz"
    changed_a(mine)
    app = make_app(seed=7, device="cpu", renderer="fast", graphics="ascii", speed=None, truecolor=True,
                   controllers=(mine, None))  # fmt: skip

    async def main() -> list[str]:
        async with app.run_test(size=(120, 40)) as pilot:
            await settled_screen(pilot)
            return [str(app.query_one(f"#title-{p}", Static).render()) for p in range(2)]

    titles = asyncio.run(main())
    sha = hashlib.sha256(mine.read_bytes()).hexdigest()[:8]
    with np.load(mine, allow_pickle=False) as f:  # the shipped A's run and generation, kept by changed_a
        gens = f["averaged_generations"].item().split(", ") if "averaged_generations" in f.files else None
        origin = f"{f['name'].item()} gen " + (f"{gens[0]}-{gens[-1]} avg" if gens else str(f["generation"].item()))
    assert "gassy_A.npz" in titles[0] and origin in titles[0] and sha in titles[0], titles[0]
    with np.load(WEIGHTS_DIR / "controllerB.npz", allow_pickle=False) as f:  # the shipped B's run and generation
        shipped_b = f"{f['name'].item()} gen {f['generation'].item()}"
    assert "controllerB.npz" in titles[1] and shipped_b in titles[1], titles[1]


def test_serve_reports_which_files_drive(tmp_path):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    mine = tmp_path / "gassy_A.npz"
    changed_a(mine)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "vmc_duel.cli", "serve", "--port", str(port), "--seed", "3",
                               "--device", "cpu", "--renderer", "fast", "--controller-a", str(mine)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        def telemetry() -> dict | None:
            assert server.poll() is None, server.stderr.read()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/telemetry?frames=false", timeout=30).json()
            except httpx.TransportError:
                return None

        body = wait_for(telemetry, "vmc-duel serve to answer /telemetry", every=0.2)
    finally:
        server.terminate()
        server.wait(timeout=20)
    a, b = body["players"]["A"]["controller_file"], body["players"]["B"]["controller_file"]
    assert a["file"] == str(mine) and a["sha256"] == hashlib.sha256(mine.read_bytes()).hexdigest()
    with np.load(WEIGHTS_DIR / "controllerB.npz", allow_pickle=False) as f:
        generation = int(f["generation"].item())
    assert b["file"] == "weights/controllerB.npz" and b["generation"] == generation


def test_weights_takes_a_whole_set_with_its_manifest(tmp_path):
    for f in WEIGHTS_DIR.iterdir():  # a set elsewhere: the shipped files, linked
        if f.is_file():
            (tmp_path / f.name).symlink_to(f)
    (a, b), weights_dir = resolve_controllers(None, None, tmp_path)
    assert (a, b, weights_dir) == (tmp_path / "controllerA.npz", tmp_path / "controllerB.npz", tmp_path)
    mine = tmp_path / "mine.npz"
    changed_a(mine)
    assert resolve_controllers(mine, None, tmp_path)[0] == (mine, tmp_path / "controllerB.npz")
    with pytest.raises(WeightsError, match=f"{tmp_path / 'nowhere' / 'manifest.json'}: no manifest"):
        resolve_controllers(None, None, tmp_path / "nowhere")
