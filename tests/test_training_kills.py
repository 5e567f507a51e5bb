"""Training SIGKILLed at 20 points of its progress (CMA-ES generations, VAE and MDN-RNN epochs): every rerun
resumes from the last saved generation or epoch (never losing one that was saved), no checkpoint is ever
unreadable, and a last uninterrupted rerun finishes the run.

The trainers run in real child processes (forked from a forkserver that has imported torch once, so each
start is quick) on tiny configs: a few random 64x64 frames, 4-car CMA-ES generations of 20 steps. When to kill
is decided from what the trainer has done, never from the clock: the child reports every progress point
(engine.progress: a step or batch done, a checkpoint file written but not yet renamed into place, a generation
or epoch committed) through a pipe and waits for the parent's word before it goes on; the parent kills it at a
point drawn from a seeded generator. The sequence of points of a run is the same on every machine, so the same
points are tried everywhere, on a fast idle machine as on one core shared with busy processes.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import signal
from pathlib import Path

import numpy as np
import pytest

from engine.world_model.manifest import WEIGHTS_DIR

KILLS = {"controller": 8, "vae": 6, "mdnrnn": 6}  # 20 in all
# Per trainer, where the kills land: a kind of point and how far into the run (the n-th point of that kind since
# the trainer's start, n uniform in 1..span). The spans cover one to two generations or epochs (a CMA-ES
# generation of this config has 20 steps, or 40 with its evaluation, and 4-5 file writes; a VAE epoch 7 batches
# and 5 writes; an MDN-RNN epoch 2 batches and 4 writes), so kills fall in setup, mid-generation or mid-epoch,
# during a checkpoint write (its temporary file complete, the rename not yet done) and right after a commit.
KILL_POINTS = {
    "controller": [("cma:step", 60), ("write:ready", 8), ("cma:generation", 2)],
    "vae": [("train:batch", 12), ("write:ready", 8), ("train:epoch", 2)],
    "mdnrnn": [("train:batch", 3), ("write:ready", 7), ("train:epoch", 2)],
}
# Generations or epochs of the run: more than the kills can reach (each kill lands within two generations or
# epochs of the last resume), so every kill lands on a running trainer; the last uninterrupted rerun trains
# what is left.
TARGET = {"controller": 12, "vae": 10, "mdnrnn": 10}
EPISODES, STEPS = 10, 6  # the tiny data set: episodes of this many steps (random frames)
REPORT_WITHIN_S = 300  # a generous deadline between two progress points (a cold start imports torch)


def configs(root: Path) -> dict:
    from train.config import TrainControllerConfig, TrainMDNRNNConfig, TrainVAEConfig

    return {
        "controller": TrainControllerConfig(name="K", out=root / "cma", generations=TARGET["controller"], population=4,
                                            rollouts=1, max_steps=20, eval_every=2, eval_tracks=1, workers=0,
                                            threads=1),
        "vae": TrainVAEConfig(data=root / "data", out=root / "vae", epochs=TARGET["vae"], batch_size=8, threads=1),
        "mdnrnn": TrainMDNRNNConfig(data=root / "data", vae=WEIGHTS_DIR / "vae.pth", out=root / "mdn",
                                    epochs=TARGET["mdnrnn"], batch_size=4, seq_len=4, threads=1),
    }  # fmt: skip


def train(kind: str, cfg, conn) -> None:
    """The child: one training run (resuming what is on disk), reporting each progress point to the parent
    through `conn` and going on only when the parent says so."""
    import contextlib
    import io

    from engine.progress import listen

    def report(name: str, details: dict) -> None:
        conn.send((name, details))
        conn.recv()  # the parent's word: go on (or a SIGKILL instead)

    listen(report)
    with contextlib.redirect_stdout(io.StringIO()):
        if kind == "controller":
            from train.controller import train_controller

            train_controller(cfg)
        elif kind == "vae":
            from train.vae import train_vae

            train_vae(cfg)
        else:
            from train.mdnrnn import train_mdnrnn

            train_mdnrnn(cfg)
    conn.send(("finished", {}))


def run_trainer(context, kind: str, cfg, kill_at: tuple[str, int] | None) -> tuple[int | None, list[str]]:
    """Start the trainer; with `kill_at` (name, n), SIGKILL it when it reports its n-th point of that name (it
    is held there, waiting for the parent), else let it run to its end. Returns (generations or epochs on disk
    the moment before the kill, None without one) and the names of the points it passed."""
    here, there = context.Pipe()
    child = context.Process(target=train, args=(kind, cfg, there))
    child.start()
    there.close()
    seen: list[str] = []
    before = None
    try:
        while True:
            assert here.poll(REPORT_WITHIN_S), f"the {kind} trainer reported nothing for {REPORT_WITHIN_S} s " \
                f"after {len(seen)} points (last: {seen[-3:]})"  # fmt: skip
            try:
                name, _ = here.recv()
            except EOFError:  # it ended without saying it finished
                break
            if name == "finished":
                break
            seen.append(name)
            if kill_at is not None and seen.count(kill_at[0]) == kill_at[1]:
                before = saved_progress(kind, cfg, live=True)
                os.kill(child.pid, signal.SIGKILL)
                break
            here.send(None)
        child.join(60)
        assert child.exitcode is not None, f"the {kind} trainer did not end"
        if kill_at is not None:
            assert child.exitcode == -signal.SIGKILL, (
                f"the {kind} trainer ended ({child.exitcode}) before its point {kill_at} (it passed "
                f"{len(seen)} points): raise TARGET so that the run outlasts the kills")  # fmt: skip
        else:
            assert child.exitcode == 0, f"the last, uninterrupted {kind} rerun failed ({child.exitcode})"
    finally:
        if child.is_alive():
            child.kill()
        here.close()
    return before, seen


def saved_progress(kind: str, cfg, live: bool = False) -> int:
    """Generations or epochs on disk, read the way a resume reads them (fails on a corrupt checkpoint).
    `live`: the trainer may be writing; for CMA-ES only the commit point (state.json, replaced atomically)
    is read then, as the CMA state files change under a reader between its reads."""
    if kind == "controller":
        from train.controller import load_generation

        run = cfg.out / cfg.name
        if not (run / "state.json").exists():
            return 0
        if live:
            return json.loads((run / "state.json").read_text())["generation"]
        es, state, rows = load_generation(run, settle=False)  # read only
        assert es.countiter == state["generation"] == len(rows), "state, CMA state and log disagree"
        assert [r["generation"] for r in rows] == list(range(1, len(rows) + 1))
        return state["generation"]
    import torch

    path = cfg.out / "checkpoint.pt"
    if not path.exists():
        return 0
    ckpt = torch.load(path, weights_only=True)
    history = json.loads(ckpt["history"])
    assert [h["epoch"] for h in history] == list(range(1, len(history) + 1))
    weights = torch.load(cfg.out / ("vae.pth" if kind == "vae" else "mdnrnn.pth"), weights_only=True)
    assert weights.keys() == ckpt["model"].keys()
    return len(history)


@pytest.fixture(scope="module")
def context():
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "train.controller", "train.vae", "train.mdnrnn", "engine.race.duel"])
    return ctx


def make_data(root: Path) -> None:
    from train.shards import episode_path, save_episode

    rng = np.random.default_rng(0)
    for i in range(EPISODES):
        save_episode(episode_path(root / "data", i), frames=rng.integers(0, 256, (STEPS + 1, 64, 64, 3), np.uint8),
                     actions=rng.uniform(-1, 1, (STEPS, 3)), rewards=rng.normal(size=STEPS),
                     off_track=rng.random(STEPS) < 0.2, done=np.arange(STEPS) == STEPS - 1, seed=i)  # fmt: skip


@pytest.mark.parametrize("kind", list(KILLS))
def test_killed_training_resumes_from_its_last_save(kind: str, context, tmp_path) -> None:
    make_data(tmp_path)
    cfg = configs(tmp_path)[kind]
    rng = random.Random(f"{kind}-kills")  # the same kill points on every machine
    progress, killed_at = [0], []
    for _ in range(KILLS[kind]):
        name, span = rng.choice(KILL_POINTS[kind])
        kill_at = (name, rng.randint(1, span))
        before, _ = run_trainer(context, kind, cfg, kill_at)
        killed_at.append(kill_at)
        after = saved_progress(kind, cfg)
        assert after >= before >= progress[-1], f"a saved {kind} generation/epoch was lost to a kill at {kill_at}"
        progress.append(after)
    assert progress[-1] < TARGET[kind]
    run_trainer(context, kind, cfg, None)
    assert saved_progress(kind, cfg) == TARGET[kind]
    # the schedule tried every kind of point: mid-work, mid-write and right after a commit
    assert {name for name, _ in killed_at} == {name for name, _ in KILL_POINTS[kind]}, killed_at
