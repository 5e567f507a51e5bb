"""Results and checkpoints on a full disk or a read-only file system: a clear error naming the path, and
nothing already saved truncated (or left half-written beside it).

A tiny real tmpfs is mounted for each test (root only; the tests skip, saying why, where mounting is not
allowed). A chmod'ed directory is no test for root, who writes through it: hence tmpfs, full or `-o ro`.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from engine.files import WriteError

ROOT = Path(__file__).resolve().parents[1]
TOURNAMENT = ["tournament", "--tracks", "2", "--batch", "2", "--processes", "1", "--workers", "0", "--renderer",
              "fast", "--device", "cpu", "--precision", "fp32", "--max-steps", "20", "--json"]  # fmt: skip


def mount(where: Path, options: str) -> None:
    where.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True,
                            text=True)  # fmt: skip
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip() or 'not root'}): the full-disk and "
                    "read-only tests need one")  # fmt: skip


@pytest.fixture
def small_fs(tmp_path) -> Iterator[Path]:
    """A 512 kB tmpfs (fill it with `fill`)."""
    where = tmp_path / "small"
    mount(where, "size=512k")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def read_only_fs(tmp_path) -> Iterator[Path]:
    where = tmp_path / "ro"
    mount(where, "size=64k,ro")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def fill(fs: Path) -> None:
    """Take every free byte of `fs`."""
    with open(fs / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as e:
            assert e.errno == errno.ENOSPC


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vmc_duel", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env=dict(os.environ, PYTHONPATH=str(ROOT)))  # fmt: skip


def test_tournament_on_a_full_disk_names_the_path_and_keeps_the_old_results(small_fs, tmp_path):
    out = small_fs / "t"
    first = cli(*TOURNAMENT, "--out", str(out), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = snapshot(out)
    assert set(before) == {"tournament.json", "tournament.png"}
    fill(small_fs)
    again = cli(*TOURNAMENT, "--out", str(out), "--force", cwd=tmp_path)
    last = again.stderr.strip().splitlines()[-1]
    assert again.returncode == 1 and "Traceback" not in again.stderr, again.stderr
    assert f"cannot write {out}/" in last and "no space left on the device" in last, last
    assert snapshot(out) == before, "the saved results changed (or a half-written file was left beside them)"


def test_tournament_on_a_read_only_file_system_names_the_path(read_only_fs, tmp_path):
    out = read_only_fs / "t"
    result = cli(*TOURNAMENT, "--out", str(out), cwd=tmp_path)
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"cannot write {out}" in last and "read-only file system" in last, last


def test_training_checkpoint_on_a_full_disk_keeps_the_last_epoch(small_fs):
    import torch

    from train import checkpoint
    from train.config import TrainVAEConfig

    model = torch.nn.Linear(16, 16)
    opt = torch.optim.Adam(model.parameters())
    ckpt, weights = small_fs / "checkpoint.pt", small_fs / "vae.pth"
    checkpoint.save(ckpt, model, opt, [{"epoch": 1}], TrainVAEConfig(), weights)
    before = snapshot(small_fs)
    with torch.no_grad():
        model.weight += 1
    fill(small_fs)
    with pytest.raises(WriteError, match=f"cannot write {small_fs}/vae.pth: no space left on the device"):
        checkpoint.save(ckpt, model, opt, [{"epoch": 1}, {"epoch": 2}], TrainVAEConfig(), weights)
    after = snapshot(small_fs)
    after.pop("filler")
    assert after == before
    restored = torch.nn.Linear(16, 16)
    assert checkpoint.resume(ckpt, restored, torch.optim.Adam(restored.parameters()), 5, "test") == [{"epoch": 1}]


def test_cma_generation_on_a_full_disk_keeps_the_last_generation(small_fs):
    import cma

    from train.controller import load_generation, save_generation

    es = cma.CMAEvolutionStrategy(np.zeros(8), 0.1, {"popsize": 4, "seed": 1, "verbose": -9})
    rows: list[dict] = []
    for g in (1, 2):
        X = es.ask()
        es.tell(X, [float(np.sum(np.square(x))) for x in X])
        rows.append({"generation": g, "fitness_mean": -g, "sigma": es.sigma, "eval_mean": "", "eval_std": ""})
        state = {"generation": g, "best_eval": None, "best_generation": None, "seconds": float(g)}
        if g == 1:
            save_generation(small_fs, es, state, rows)
            before = snapshot(small_fs)
            fill(small_fs)
        else:
            with pytest.raises(WriteError, match=f"cannot write {small_fs}/es.next.pkl: no space left"):
                save_generation(small_fs, es, state, rows)
    after = snapshot(small_fs)
    after.pop("filler")
    assert after == before
    resumed, state, log = load_generation(small_fs)
    assert resumed.countiter == 1 and state["generation"] == 1 and [r["generation"] for r in log] == [1]


def test_rollout_shard_on_a_full_disk_names_it(small_fs):
    from train.shards import KEYS, episode_path, save_episode

    arrays = {k: np.zeros((3, 64, 64, 3) if k == "frames" else (2, 3) if k == "actions" else 2 if k != "seed" else (),
                          dtype=dtype) for k, dtype in KEYS.items()}  # fmt: skip
    save_episode(episode_path(small_fs, 0), **arrays)
    before = snapshot(small_fs)
    fill(small_fs)
    arrays["frames"] = np.random.default_rng(0).integers(0, 255, (3, 64, 64, 3), dtype=np.uint8)
    with pytest.raises(WriteError, match=f"cannot write {small_fs}/episode_00000.npz: no space left"):
        save_episode(episode_path(small_fs, 0), **arrays)
    after = snapshot(small_fs)
    after.pop("filler")
    assert after == before
