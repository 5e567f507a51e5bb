"""Training SIGKILLed at 20 random points (CMA-ES generations, VAE and MDN-RNN epochs): every rerun resumes
from the last saved generation or epoch (never losing one that was saved), no checkpoint is ever unreadable,
and a last uninterrupted rerun finishes the run.

The trainers run in real child processes (forked from a forkserver that has imported torch once, so each
start is quick) on tiny configs: a few random 64x64 frames, 4-car CMA-ES generations of 20 steps.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from engine.world_model.manifest import WEIGHTS_DIR

# per trainer: kills (20 in all), generations or epochs of the run, and the span (s) after the trainer's start
# within which each kill lands (uniform): about the whole run's length on 2 busy cores, so kills fall in setup,
# in the middle of a generation or epoch, and while its checkpoint is being written
KILLS = {"controller": 8, "vae": 6, "mdnrnn": 6}
# Runs long enough that no run can finish within the kill schedule on a fast, idle machine (a run that ended
# before its kill would not test the kill); the last uninterrupted rerun trains what is left.
TARGET = {"controller": 40, "vae": 16, "mdnrnn": 12}
DELAY_S = {"controller": (0.05, 1.2), "vae": (0.3, 3.0), "mdnrnn": (0.3, 2.0)}
EPISODES, STEPS = 10, 6  # the tiny data set: episodes of this many steps (random frames)


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


def train(kind: str, cfg, started) -> None:
    """The child: one training run (resuming what is on disk)."""
    import contextlib
    import io

    started.set()
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
    rng = random.Random(f"{kind}-kills")
    progress, killed = [0], 0
    for _ in range(KILLS[kind]):
        started = context.Event()
        child = context.Process(target=train, args=(kind, cfg, started))
        child.start()
        assert started.wait(60), "the trainer did not start"
        time.sleep(rng.uniform(*DELAY_S[kind]))
        before = saved_progress(kind, cfg, live=True)
        if child.is_alive():
            os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        killed += child.exitcode == -signal.SIGKILL
        after = saved_progress(kind, cfg)
        assert after >= before >= progress[-1], f"a saved {kind} generation/epoch was lost to a kill"
        progress.append(after)
        if after == TARGET[kind]:
            break
    started = context.Event()
    child = context.Process(target=train, args=(kind, cfg, started))
    if progress[-1] < TARGET[kind]:
        child.start()
        child.join(120)
        assert child.exitcode == 0, f"the last, uninterrupted rerun failed ({child.exitcode})"
    assert saved_progress(kind, cfg) == TARGET[kind]
    assert killed == KILLS[kind], f"only {killed} of {KILLS[kind]} kills landed on a running trainer"
