"""Every command's options swept with out-of-range, wrong-type and hostile values.

Each case must end with exit status 2 (a usage error) or 1 (a runtime error) and a last line on stderr that
names the option or the file at fault; never a traceback. The table runs the real CLI (`vmc_duel.cli.main`)
in this process, so the sweep stays fast; `test_sweep_in_a_real_process` runs a sample of it as
`python -m vmc_duel` to show the process itself ends the same way. Hypothesis adds random integers and
floats for the seed and the numeric training options.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.world_model.manifest import WEIGHTS_DIR
from vmc_duel.cli import main

ROOT = Path(__file__).resolve().parents[1]
BINARY = bytes(range(256)) * 8  # not text, not YAML, not a zip


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Hostile inputs: empty, binary and truncated files, a directory, broken weights directories."""
    d = tmp_path_factory.mktemp("bad")
    f = {"dir": d / "a_directory", "missing": d / "no_such_file.yaml", "file": d / "plain_file.txt"}
    f["dir"].mkdir()
    f["file"].write_text("just text\n")
    f["empty"] = d / "empty.yaml"
    f["empty"].write_text("")
    f["binary"] = d / "binary.yaml"
    f["binary"].write_bytes(BINARY)
    f["truncated_yaml"] = d / "truncated.yaml"
    f["truncated_yaml"].write_text("risk_aversion: [0.5,\n  gating_bias: {rain")
    f["list_yaml"] = d / "list.yaml"
    f["list_yaml"].write_text("- 1\n- 2\n")
    f["nan_knobs"] = d / "nan_knobs.yaml"
    f["nan_knobs"].write_text("risk_aversion: .nan\n")
    npz = (WEIGHTS_DIR / "controllerA.npz").read_bytes()
    f["truncated_npz"] = d / "truncated.npz"
    f["truncated_npz"].write_bytes(npz[: len(npz) // 2])
    f["binary_npz"] = d / "binary.npz"
    f["binary_npz"].write_bytes(BINARY)
    pth = (WEIGHTS_DIR / "vae.pth").read_bytes()
    f["truncated_pth"] = d / "truncated.pth"
    f["truncated_pth"].write_bytes(pth[:5000])
    # weights directories: one file missing, two files swapped, a truncated .onnx with a matching manifest
    for name in ("w_missing", "w_swapped", "w_truncated_onnx"):
        w = d / name
        w.mkdir()
        for p in WEIGHTS_DIR.iterdir():
            if p.is_file():
                (w / p.name).symlink_to(p)
    f["w_missing"] = d / "w_missing"
    (f["w_missing"] / "world_model.onnx").unlink()
    f["w_swapped"] = d / "w_swapped"
    for a, b in (("controllerA.npz", "controllerB.npz"), ("controllerB.npz", "controllerA.npz")):
        (f["w_swapped"] / a).unlink()
        (f["w_swapped"] / a).symlink_to(WEIGHTS_DIR / b)
    f["w_truncated_onnx"] = w = d / "w_truncated_onnx"
    onnx = (WEIGHTS_DIR / "world_model.onnx").read_bytes()
    (w / "world_model.onnx").unlink()
    (w / "world_model.onnx").write_bytes(onnx[: len(onnx) // 3])
    import hashlib
    import json

    manifest = json.loads((WEIGHTS_DIR / "manifest.json").read_text())
    manifest["files"]["world_model.onnx"]["sha256"] = hashlib.sha256(onnx[: len(onnx) // 3]).hexdigest()
    (w / "manifest.json").unlink()
    (w / "manifest.json").write_text(json.dumps(manifest))
    # rollout data: a directory with a truncated shard
    f["bad_data"] = d / "bad_rollouts"
    f["bad_data"].mkdir()
    shutil.copyfile(f["truncated_npz"], f["bad_data"] / "episode_00000.npz")
    return f


SEED_MAX = 2**32 - 1
HUGE = str(10**30)

# (argv with {placeholders} for the fixture files, exit status, what the last stderr line must name)
CASES = [
    # race
    ("race --seed -1", 2, "--seed"),
    (f"race --seed {SEED_MAX + 1}", 2, "--seed"),
    (f"race --seed {HUGE}", 2, "--seed"),
    ("race --seed 1.5", 2, "--seed"),
    ("race --seed abc", 2, "--seed"),
    ("race --steps 0", 2, "--steps"),
    ("race --steps -3", 2, "--steps"),
    (f"race --steps {HUGE}", 2, "--steps"),
    ("race --speed nan", 2, "--speed"),
    ("race --speed inf", 2, "--speed"),
    ("race --speed -2", 2, "--speed"),
    ("race --speed 0", 2, "--speed"),
    ("race --renderer vulkan", 2, "--renderer"),
    ("race --weather snow", 2, "--weather"),
    ("race --device tpu", 2, "--device"),
    ("race --knobs-a {missing}", 2, "{missing}"),
    ("race --knobs-a {dir}", 2, "{dir}"),
    ("race --knobs-a {empty}", 2, "{empty}"),
    ("race --knobs-b {binary}", 2, "{binary}"),
    ("race --knobs-a {truncated_yaml}", 2, "{truncated_yaml}"),
    ("race --knobs-a {list_yaml}", 2, "{list_yaml}"),
    ("race --knobs-a {nan_knobs}", 2, "{nan_knobs}"),
    # tui (fails before the app opens)
    ("tui --seed -1", 2, "--seed"),
    (f"tui --seed {HUGE}", 2, "--seed"),
    ("tui --speed nan", 2, "--speed"),
    ("tui --graphics opengl", 2, "--graphics"),
    # tournament
    ("tournament --tracks 0", 2, "--tracks"),
    ("tournament --tracks -5", 2, "--tracks"),
    ("tournament --tracks ten", 2, "--tracks"),
    ("tournament --tracks 4 --batch 0", 2, "--batch"),
    ("tournament --tracks 2 --processes 1 --workers -1", 2, "--workers"),
    ("tournament --tracks 2 --processes 1 --threads 0", 2, "--threads"),
    ("tournament --tracks 2 --processes 0", 2, "--processes"),
    ("tournament --tracks 2 --processes many", 2, "--processes"),
    ("tournament --tracks 2 --processes 1 --seed-start -1", 2, "--seed-start"),
    (f"tournament --seed-start {SEED_MAX} --tracks 2", 2, "--seed-start"),
    (f"tournament --tracks 2 --processes 1 --seed-start {HUGE}", 2, "--seed-start"),
    ("tournament --tracks 2 --processes 1 --out {file}", 2, "{file}"),
    ("tournament --tracks 2 --processes 1 --knobs-a {binary}", 2, "{binary}"),
    ("tournament --tracks 2 --processes 1 --knobs-b {dir}", 2, "{dir}"),
    ("tournament --tracks 2 --processes 1 --address auto", 2, "--address"),
    # serve (fails before binding)
    ("serve --port -1", 2, "--port"),
    ("serve --port 70000", 2, "--port"),
    ("serve --seed -1", 2, "--seed"),
    (f"serve --seed {HUGE}", 2, "--seed"),
    ("serve --speed nan", 2, "--speed"),
    ("serve --host 0.0.0.0", 2, "--host"),
    ("serve --token ' '", 2, "token"),
    # health
    ("health --weights {missing}", 1, "{missing}"),
    ("health --weights {file}", 1, "{file}"),
    ("health --weights {w_missing}", 1, "world_model.onnx"),
    ("health --weights {w_swapped}", 1, "controllerA.npz"),
    # train collect
    ("train collect --episodes 0", 2, "--episodes"),
    ("train collect --seed -1", 2, "--seed"),
    (f"train collect --seed {HUGE}", 2, "--seed"),
    ("train collect --workers -1", 2, "--workers"),
    ("train collect --out {file}", 2, "{file}"),
    # train vae
    ("train vae --epochs 0", 2, "--epochs"),
    ("train vae --lr nan", 2, "--lr"),
    ("train vae --lr inf", 2, "--lr"),
    ("train vae --lr -1e-3", 2, "--lr"),
    ("train vae --kl-tolerance nan", 2, "--kl-tolerance"),
    ("train vae --batch-size -4", 2, "--batch-size"),
    (f"train vae --seed {HUGE}", 2, "--seed"),
    ("train vae --data {missing}", 2, "{missing}"),
    ("train vae --data {file}", 2, "{file}"),
    ("train vae --data {bad_data} --out {dir}/vae_run", 2, "episode_00000.npz"),
    ("train vae --out {file}", 2, "{file}"),
    # train mdnrnn
    ("train mdnrnn --seq-len 0", 2, "--seq-len"),
    ("train mdnrnn --grad-clip inf", 2, "--grad-clip"),
    ("train mdnrnn --vae {truncated_pth} --out {dir}/mdn_run", 2, "{truncated_pth}"),
    ("train mdnrnn --vae {dir} --out {dir}/mdn_run2", 2, "{dir}"),
    # train controller
    ("train controller --population 0", 2, "--population"),
    ("train controller --sigma0 nan", 2, "--sigma0"),
    ("train controller --sigma0 inf", 2, "--sigma0"),
    ("train controller --rain-fraction 2", 2, "--rain-fraction"),
    ("train controller --hard-fraction 1.5", 2, "--hard-fraction"),
    ("train controller --hard-tracks {missing} --hard-fraction 0.5 --out {dir}/hard_run", 2, "{missing}"),
    ("train hard-tracks {missing} --out {dir}/pool.json", 2, "{missing}"),
    ("train hard-tracks {binary} --out {dir}/pool2.json", 2, "{binary}"),
    ("train controller --track-seed -1", 2, "--track-seed"),
    (f"train controller --track-seed {SEED_MAX}", 2, "--track-seed"),
    (f"train controller --seed {HUGE}", 2, "--seed"),
    ("train controller --renderer vulkan", 2, "--renderer"),
    ("train controller --subspace diagonal --out {dir}/sub_run", 2, "diagonal"),
    ("train controller --subspace gains --out {dir}/sub_run", 2, "--init"),
    ("train controller --backend slurm", 2, "--backend"),
    ("train controller --name ../escape", 2, "--name"),
    ("train controller --config {missing}", 2, "{missing}"),
    ("train controller --config {empty} --population 0", 2, "--population"),
    ("train controller --config {binary}", 2, "{binary}"),
    ("train controller --config {truncated_yaml}", 2, "{truncated_yaml}"),
    ("train controller --config {list_yaml}", 2, "{list_yaml}"),
    ("train controller --config {dir}", 2, "{dir}"),
    ("train controller --init {truncated_npz} --out {dir}/ctl", 2, "{truncated_npz}"),
    ("train controller --init {dir} --out {dir}/ctl2", 2, "{dir}"),
    ("train controller --out {file}", 2, "{file}"),
    # train ship-controller, renderer-gap
    ("train ship-controller --name A --run {missing}", 2, "{missing}"),
    ("train ship-controller --name A --run {dir} --weights {file}", 2, "best.npz"),
    ("train ship-controller --name B --run {dir} --generation 3 6 --weather rain", 2, "gen_0003.npz"),
    ("train renderer-gap --tracks 0", 2, "--tracks"),
    ("train renderer-gap --steps -1", 2, "--steps"),
    ("train renderer-gap --vae {binary}", 2, "{binary}"),
    # export
    ("export --vae {missing}", 2, "{missing}"),
    ("export --vae {truncated_pth}", 2, "{truncated_pth}"),
    ("export --out {file}", 2, "{file}"),
]


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """(exit status, stderr) of `vmc-duel argv`, in this process, as the real process would end."""
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
        if isinstance(code, str):  # as Python does for SystemExit("message")
            print(code, file=sys.stderr)
            code = 1
    return (0 if code is None else code), capsys.readouterr().err


def expand(text: str, files: dict[str, Path]) -> str:
    return text.format(**{k: str(v) for k, v in files.items()})


@pytest.mark.parametrize("argv, status, names", CASES, ids=[c[0] for c in CASES])
def test_bad_argument(argv: str, status: int, names: str, files: dict[str, Path], capsys, tmp_path,
                      monkeypatch) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)  # default output directories (data/...) land here, never in the checkout
    import shlex

    code, err = run_cli([expand(a, files) for a in shlex.split(argv)], capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert code == status, f"exit status {code}, expected {status}:\n{err}"
    assert lines, "no message on stderr"
    assert expand(names, files) in lines[-1], f"the last line does not name {expand(names, files)!r}:\n{err}"


SAMPLE = ["race --seed -1", "train controller --sigma0 nan", "tournament --tracks 2 --processes 1 --out {file}",
          "health --weights {w_swapped}"]  # fmt: skip


@pytest.mark.parametrize("argv", SAMPLE)
def test_sweep_in_a_real_process(argv: str, files: dict[str, Path], tmp_path) -> None:
    import shlex

    status, names = next((s, n) for a, s, n in CASES if a == argv)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "vmc_duel", *(expand(a, files) for a in shlex.split(argv))],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == status, proc.stderr
    assert expand(names, files) in proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("weights, names", [("w_missing", "world_model.onnx"), ("w_swapped", "controllerA.npz"),
                                            ("w_truncated_onnx", "world_model.onnx")])  # fmt: skip
def test_broken_weights_directory_is_named(weights: str, names: str, files: dict[str, Path]) -> None:
    """A duel on a weights directory with a file missing, two files swapped, or a truncated .onnx (its sha256
    updated in the manifest, so only onnxruntime can tell): WeightsError naming the file, no worker left."""
    from engine.race.duel import Duel
    from engine.world_model.manifest import WeightsError

    with pytest.raises(WeightsError, match=names):
        Duel(weights_dir=files[weights], device="cpu", precision="fp32", renderer="fast").close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.one_of(st.integers(max_value=-1), st.integers(min_value=2**32)))
def test_any_out_of_range_seed_is_refused(seed: int, capsys) -> None:
    code, err = run_cli(["race", "--seed", str(seed)], capsys)
    assert code == 2 and "--seed" in err.splitlines()[-1] and "Traceback" not in err


NUMERIC = ["--lr", "--sigma0", "--rain-fraction", "--off-track-penalty"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(option=st.sampled_from(NUMERIC),
       value=st.one_of(st.sampled_from([math.nan, math.inf, -math.inf]), st.floats(max_value=-1e-9)))  # fmt: skip
def test_non_finite_or_negative_training_numbers_are_refused(option: str, value: float, capsys) -> None:
    command = ["train", "vae"] if option == "--lr" else ["train", "controller"]
    code, err = run_cli([*command, option, repr(value)], capsys)
    assert "Traceback" not in err
    assert code == 2 and option in err.splitlines()[-1], err
