"""`vmc-duel play`'s bad input ends before the app opens, in one line naming what is wrong, exit status 2; and
`--scores` prints the leaderboard. The real CLI (`vmc_duel.cli.main`) in this process, as test_bad_arguments.py."""

from __future__ import annotations

import json
import os
import sys

import pytest

from engine.world_model.manifest import WEIGHTS_DIR
from tui.scores import Entry, Scores
from vmc_duel.cli import main


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return (0 if code is None else code), out.out, out.err


@pytest.fixture
def bad(tmp_path):
    """A broken controller file, a file where a directory should be, a foreign scores file, an existing record."""
    f = {"scores": str(tmp_path / "scores.json")}
    npz = (WEIGHTS_DIR / "controllerA.npz").read_bytes()
    (tmp_path / "broken.npz").write_bytes(npz[: len(npz) // 2])
    f["broken"] = str(tmp_path / "broken.npz")
    (tmp_path / "plain").write_text("not a directory\n")
    f["under_a_file"] = str(tmp_path / "plain" / "scores.json")
    (tmp_path / "foreign.json").write_text('{"hello": 1}\n')
    f["foreign"] = str(tmp_path / "foreign.json")
    (tmp_path / "old.json").write_text("{}\n")
    f["existing"] = str(tmp_path / "old.json")
    (tmp_path / "a_dir").mkdir()
    f["dir"] = str(tmp_path / "a_dir")
    return f


CASES = [
    ("play --as C", "--as"),
    ("play --against {broken}", "{broken}"),
    ("play --against nosuch.npz", "--against nosuch.npz"),
    ("play --scores-file {under_a_file}", "{under_a_file}"),
    ("play --scores-file {dir}", "{dir}"),
    ("play --scores-file {foreign}", "{foreign}"),
    ("play --scores --scores-file {foreign}", "{foreign}"),
    ("play --record {existing} --scores-file {scores}", "--force"),
    ("play --record {dir} --scores-file {scores}", "{dir}"),
    ("play --seed -1", "--seed"),
    ("play --speed nan", "--speed"),
]


@pytest.mark.parametrize("argv, names", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(argv: str, names: str, bad, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(argv.format(**bad).split(), capsys)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("usage:", " "))]
    assert "Traceback" not in err and code == 2, (code, err)
    assert len(lines) == 1 and names.format(**bad) in lines[0], err
    assert json.loads((tmp_path / "old.json").read_text()) == {}  # nothing saved was overwritten


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_scores_file_is_refused(tmp_path, capsys):
    path = tmp_path / "scores.json"
    Scores(path).add(Entry(1, "clear", "exact", "B", 10.0, 20.0, "model", "controllerA", 100, 5.0, False, "x"))
    path.chmod(0o444)
    code, _, err = run_cli(["play", "--scores-file", str(path)], capsys)
    assert code == 2 and str(path) in err and "cannot write" in err


def test_scores_prints_the_best_race_per_track(tmp_path, capsys):
    path = tmp_path / "scores.json"
    code, out, _ = run_cli(["play", "--scores", "--scores-file", str(path)], capsys)
    assert code == 0 and "no races yet" in out
    scores = Scores(path)
    for seed, reward, winner in [(7, 310.5, "model"), (7, 702.25, "you"), (3, -40.0, "model")]:
        scores.add(Entry(seed, "clear", "exact", "B", reward, 650.0, winner, "controllerA (sha256 1234abcd)", 1000,
                         50.0, False, "2026-12-02T10:00:00Z"))  # fmt: skip
    code, out, _ = run_cli(["play", "--scores", "--scores-file", str(path)], capsys)
    lines = out.splitlines()
    assert code == 0 and "your best" in lines[0]
    assert lines[1].split()[:4] == ["3", "-40.0", "650.0", "model"]
    assert lines[2].split()[:4] == ["7", "702.2", "650.0", "you"] and lines[2].split()[-2] == "2"  # 2 races on 7
    assert "3 races on 2 tracks, 1 won by you" in lines[3]
