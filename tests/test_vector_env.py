"""Many environments across worker processes give exactly what single environments give."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import varied_actions

from engine import make_env
from engine.env.vector_env import VecRaceEnv

SEEDS = [3, 4, 5]
STEPS = 80


def single_runs(renderer: str) -> list[dict]:
    runs = []
    for k, seed in enumerate(SEEDS):
        env = make_env(renderer)
        obs, _ = env.reset(seed=seed)
        actions = varied_actions(STEPS, k)
        rewards, frames = [], [obs]
        for a in actions:
            obs, r, *_ = env.step(a)
            rewards.append(r)
            frames.append(obs)
        runs.append({"rewards": rewards, "last": frames[-1]})
    return runs


@pytest.mark.parametrize("workers", [0, 2])
def test_vector_env_matches_single_envs(workers):
    ref = single_runs("fast")
    actions = np.stack([varied_actions(STEPS, k) for k in range(len(SEEDS))], axis=1)  # (T, N, 3)
    with VecRaceEnv(len(SEEDS), workers=workers, renderer="fast") as vec:
        obs, info = vec.reset(SEEDS)
        assert obs.shape == (3, 96, 96, 3) and obs.dtype == np.uint8
        assert (info["track_tiles"] > 0).all()
        rewards = []
        for a in actions:
            res = vec.step(a)
            rewards.append(res.reward.copy())
        rewards = np.array(rewards)
        for k in range(len(SEEDS)):
            assert rewards[:, k].tolist() == ref[k]["rewards"]
            assert np.array_equal(res.obs[k], ref[k]["last"])
        assert res.info["speed"].shape == (3,)


def test_ended_episodes_stay_ended_until_reset():
    with VecRaceEnv(2, workers=0, renderer="fast", max_episode_steps=10) as vec:
        vec.reset([1, 1])
        for _ in range(10):
            res = vec.step(np.tile([0.0, 1.0, 0.0], (2, 1)))
        assert res.truncated.all() and res.done.all()
        frozen = res.obs.copy()
        res = vec.step(np.tile([0.5, 1.0, 0.0], (2, 1)))
        assert (res.reward == 0).all() and np.array_equal(frozen, res.obs)
        _, _ = vec.reset([2], indices=[0])
        res = vec.step(np.tile([0.0, 1.0, 0.0], (2, 1)))
        assert not res.done[0] and res.done[1] and res.reward[1] == 0


def test_duel_pair_on_one_seed_sees_the_same_track():
    with VecRaceEnv(2, workers=2, renderer="exact") as vec:
        obs, info = vec.reset([9, 9])
        assert np.array_equal(obs[0], obs[1])
        res = vec.step(np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]))
        assert not np.array_equal(res.obs[0], res.obs[1])  # different actions, different frames


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="num_envs"):
        VecRaceEnv(0)
    with pytest.raises(ValueError, match="renderer"):
        VecRaceEnv(1, renderer="nope")
    with VecRaceEnv(2, workers=1, renderer="fast") as vec:
        vec.reset([0, 1])
        with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
            vec.step(np.zeros((3, 3)))
        with pytest.raises(ValueError, match=r"environments \[1\]"):
            vec.step(np.array([[0.0, 0.0, 0.0], [np.nan, 0.0, 0.0]]))
        with pytest.raises(ValueError, match="2 seeds for 1"):
            vec.reset([1, 2], indices=[0])
        vec.step(np.zeros((2, 3)))  # still usable


@pytest.mark.parametrize("workers", [0, 2])
def test_end_cuts_episodes_and_weather_per_env(workers):
    with VecRaceEnv(3, workers=workers, renderer="fast", weather=["clear", "rain", "clear"]) as vec:
        vec.reset([4, 4, 4])
        res = vec.step(np.tile([0.0, 1.0, 0.0], (3, 1)))
        assert not np.array_equal(res.obs[0], res.obs[1])  # rain streaks on env 1 only
        assert np.array_equal(res.obs[0], res.obs[2])
        vec.end([2])
        frozen = res.obs[2].copy()
        res = vec.step(np.tile([0.0, 1.0, 0.0], (3, 1)))
        assert res.done.tolist() == [False, False, True] and res.reward[2] == 0
        assert np.array_equal(res.obs[2], frozen)
        vec.reset([4], indices=[2])
        assert not vec.step(np.tile([0.0, 1.0, 0.0], (3, 1))).done[2]
    with pytest.raises(ValueError, match="2 weathers for 3"):
        VecRaceEnv(3, weather=["clear", "rain"])
