"""Race records and replays: record, replay, identical telemetry; an edited file refused at the
step that was edited; a replay that diverges says where and why; the replay GIF.

The model race is compared only with itself on this machine (the brief: onnxruntime's floats
differ across CPUs); the step-by-step telemetry comparison races the scripted autopilot."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import zlib

import numpy as np
import pytest

from engine.race.duel import Duel
from engine.race.race_log import RaceLog, RecordError
from engine.race.replay import replay, save_record

CLI = [sys.executable, "-m", "vmc_duel.cli"]
STEPS = 120


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def autopilot_record(tmp_path_factory):
    """An autopilot race with knob changes mid-race, its telemetry after every step, and its record."""
    path = tmp_path_factory.mktemp("replay") / "autopilot.json"
    telemetry = []
    with Duel(driver="autopilot", renderer="fast", device="cpu") as duel:
        duel.reset(11)
        for k in range(STEPS):
            if k == 40:
                duel.set_knobs("A", {"risk_aversion": 0.6, "gating_bias.rain": -0.5})
            if k == 80:
                duel.set_knobs("B", {"lookahead_horizon": 3})
            duel.step()
            telemetry.append([t.as_dict() for t in duel.telemetry])
        save_record(duel, path)
    return path, telemetry


def test_replay_gives_the_recorded_telemetry_step_by_step(autopilot_record):
    path, recorded = autopilot_record
    log = RaceLog.load(path)
    assert log.steps == STEPS and [c["step"] for c in log.changes] == [40, 80]
    replayed = []
    result = replay(log, on_step=lambda duel, k: k and replayed.append([t.as_dict() for t in duel.telemetry]))
    assert result.ok and result.verified == STEPS and result.divergence is None
    assert replayed == recorded  # every field of both players' telemetry, every step


def rewrite(path, out, edit) -> None:
    raw = json.loads(path.read_text())
    edit(raw)
    out.write_text(json.dumps(raw))


def set_action(raw: dict, step: int, player: int, index: int, value: float) -> None:
    spec = raw["actions"]
    actions = np.frombuffer(zlib.decompress(base64.b64decode(spec["zlib_base64"])), "<f8").reshape(-1, 2, 3).copy()
    actions[step - 1, player, index] = value
    spec["zlib_base64"] = base64.b64encode(zlib.compress(actions.tobytes())).decode()


def test_an_edited_record_is_refused_naming_the_step(autopilot_record, tmp_path):
    path, _ = autopilot_record
    cases = {
        "knob": (lambda raw: raw["knob_changes"][0]["knobs"].update(risk_aversion=0.9), "step 41 was edited"),
        "action": (lambda raw: set_action(raw, 37, 1, 0, 0.25), "step 37 was edited"),
        "seed": (lambda raw: raw["header"].update(seed=12), "the header or the starting knobs were edited"),
    }
    for name, (edit, message) in cases.items():
        out = tmp_path / f"{name}.json"
        rewrite(path, out, edit)
        with pytest.raises(RecordError, match=message):
            RaceLog.load(out)
    # the real command line: one line naming the file and the step, exit status 2, no traceback
    result = run("replay", tmp_path / "action.json")
    assert result.returncode == 2, result.stderr
    assert "action.json: refused: step 37 was edited" in result.stderr and "Traceback" not in result.stderr
    (tmp_path / "junk.json").write_text("{not json")
    result = run("replay", tmp_path / "junk.json")
    assert result.returncode == 2 and "not a race record" in result.stderr and "Traceback" not in result.stderr


def test_a_diverging_replay_says_where_and_why(autopilot_record, tmp_path):
    # What a record from another machine looks like: consistent checks, but other actions from
    # step 50 on, recorded on an AVX2-only CPU with another onnxruntime.
    path, _ = autopilot_record
    log = RaceLog.load(path)
    actions = log.actions
    actions[49, 0, 0] += 1e-12
    log._actions = list(actions)
    log.header = {**log.header, "machine": {**log.header["machine"], "vector_isa": "avx2-test"},
                  "versions": {**log.header["versions"], "onnxruntime": "0.0.1"}}  # fmt: skip
    other = log.save(tmp_path / "other_machine.json")
    result = run("replay", other)
    assert result.returncode == 1, result.stderr
    err = result.stderr
    assert "diverged at step 50: player A's steer" in err and "49 steps matched" in err, err
    assert "another CPU" in err and "avx2-test when recorded" in err and "onnxruntime" in err, err
    assert "Traceback" not in err


def test_model_race_recorded_by_the_cli_replays_identically_with_a_gif(tmp_path):
    record, gif = tmp_path / "race.json", tmp_path / "race.gif"
    raced = run("race", "--seed", 3, "--steps", 60, "--renderer", "fast", "--device", "cpu", "--json",
                "--record", record)  # fmt: skip
    assert raced.returncode == 0, raced.stderr
    final = json.loads(raced.stdout.splitlines()[-1])
    assert record.stat().st_size < 20_000  # small: 60 steps of a model race
    again = run("race", "--seed", 3, "--steps", 10, "--record", record)
    assert again.returncode == 2 and "already exists" in again.stderr  # nothing is overwritten without --force
    result = run("replay", record, "--gif", gif, "--gif-every", 10, "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["ok"] and out["verified"] == 60 and out["divergence"] is None
    log = RaceLog.load(record)
    for name in ("A", "B"):  # the record's final telemetry is the race's
        assert log.result[name]["reward"] == final["players"][name]["reward"]
    from PIL import Image

    with Image.open(gif) as im:
        assert im.n_frames == 7  # the start and every 10th step
        im.seek(3)
        pixels = np.asarray(im.convert("RGB"))
    side = 192
    assert pixels.shape == (side + 16, 3 * side + 8, 3)
    view_a, map_ = pixels[:side, :side], pixels[:side, 2 * side + 8 :]
    assert (view_a[..., 1] > 150).mean() > 0.2  # grass in the car's view
    greys = (np.abs(map_.astype(int) - 124).max(axis=2) < 20).mean()
    assert 0.03 < greys < 0.5  # the road outline on the map
    for colour in ((0, 200, 255), (255, 140, 0)):  # at least the leader's dot (the other may be under it)
        hits = (np.abs(map_.astype(int) - colour).max(axis=2) < 40).sum()
        if hits:
            break
    assert hits > 4


def test_a_replay_with_other_weights_names_them(tmp_path):
    from engine.world_model.manifest import WEIGHTS_DIR, file_sha256

    record = tmp_path / "model.json"
    with Duel(renderer="fast", device="cpu") as duel:
        duel.reset(5)
        for _ in range(30):
            duel.step()
        save_record(duel, record)
    # other weights: controller B's file as controller A, every other file as shipped
    other = tmp_path / "weights"
    other.mkdir()
    for f in WEIGHTS_DIR.iterdir():
        if f.name not in ("controllerA.npz", "manifest.json"):
            (other / f.name).symlink_to(f)
    (other / "controllerA.npz").write_bytes((WEIGHTS_DIR / "controllerB.npz").read_bytes())
    manifest = json.loads((WEIGHTS_DIR / "manifest.json").read_text())
    manifest["files"]["controllerA.npz"]["sha256"] = file_sha256(other / "controllerA.npz")
    (other / "manifest.json").write_text(json.dumps(manifest))
    result = run("replay", record, "--weights", other)
    assert result.returncode == 1, result.stderr
    err = result.stderr
    assert "diverged at step" in err and "player A's" in err and "Traceback" not in err, err
    assert "other weights: controller A (sha256" in err and "controllerA.npz (sha256" in err, err
    assert "another CPU" not in err  # the same machine: only the weights differ
    assert run("replay", record).returncode == 0  # and with the shipped weights it replays exactly


def test_a_race_of_other_controller_files_replays_with_them(tmp_path):
    from engine.world_model.manifest import WEIGHTS_DIR

    with np.load(WEIGHTS_DIR / "controllerA.npz", allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["b"] = arrays["b"] + np.array([0.0, 0.5, 0.0], arrays["b"].dtype)  # more gas: another driver
    mine = tmp_path / "mine.npz"
    np.savez(mine, **arrays)
    record = tmp_path / "mine.json"
    with Duel(controllers=[mine, WEIGHTS_DIR / "controllerB.npz"], renderer="fast", device="cpu") as duel:
        duel.reset(5)
        for _ in range(30):
            duel.step()
        save_record(duel, record)
    shipped = run("replay", record)  # the shipped A is another driver: it diverges and says how to fix it
    assert shipped.returncode == 1 and "other weights: controller A (sha256" in shipped.stderr, shipped.stderr
    assert "--controller-a" in shipped.stderr and "Traceback" not in shipped.stderr
    result = run("replay", record, "--controller-a", mine, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["verified"] == 30
