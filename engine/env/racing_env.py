"""CarRacing-v3 for the duel: the same physics, rewards and spaces as gymnasium's,
with a choice of renderer, a rain weather, per-step telemetry and strict action checks.

`make_env(renderer="exact")` is a drop-in for `gymnasium.make("CarRacing-v3")`:

- ``stock``: gymnasium's own drawing, the reference.
- ``exact``: frames bit-identical to ``stock``, drawn only where they can be seen.
- ``fast``: the 96x96 observation rasterised directly in numba (close to stock, not equal).

Renderers only draw: with the same seed and actions, rewards, car positions and
termination are identical in all three, and identical to gymnasium's own CarRacing-v3
(the car's dynamics run as engine.env.car_physics.FastCar: the same arithmetic, less
Python).
"""

from __future__ import annotations

import os
from typing import Any

# pygame must not try to open a display for off-screen drawing (headless servers, CI).
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
from gymnasium.envs.box2d.car_racing import FPS, CarRacing  # noqa: E402, F401  (FPS: for the duel)
from gymnasium.error import InvalidAction  # noqa: E402
from gymnasium.wrappers import OrderEnforcing, TimeLimit  # noqa: E402

from engine.env.car_physics import FastCar  # noqa: E402
from engine.env.weather import RAIN_ROAD_FRICTION, RainOverlay  # noqa: E402

RENDERERS = ("stock", "exact", "fast")
WEATHERS = ("clear", "rain")
MAX_EPISODE_STEPS = 1000  # steps, the TimeLimit of gymnasium's CarRacing-v3 registration
SLIP_MIN_SPEED = 1.0  # m/s: below this the heading-to-velocity angle is noise, slip reads 0

# Kerb colours of CarRacing-v3 (RGB 0-255): white on even tiles, red on odd ones.
KERB_WHITE = (255.0, 255.0, 255.0)
KERB_RED = (255.0, 0.0, 0.0)


class DuelCarRacing(CarRacing):
    """gymnasium's CarRacing with a pluggable observation renderer and weather.

    Extra attributes after ``reset``:
        road_vertices: (P, 4, 2) float64, world coordinates of every road polygon
            (tiles and kerbs, in drawing order).
        road_colors: (P, 3) float64, their RGB colours. Tile rows are live: the
            contact listener writes into them when a tile is first touched.
        road_is_tile: (P,) bool, True for track tiles, False for kerbs.
    """

    def __init__(self, renderer: str = "exact", weather: str = "clear", **kwargs: Any):
        if renderer not in RENDERERS:
            raise ValueError(f"renderer={renderer!r} is not one of {', '.join(RENDERERS)}")
        if weather not in WEATHERS:
            raise ValueError(f"weather={weather!r} is not one of {', '.join(WEATHERS)}")
        super().__init__(**kwargs)
        self.renderer_name = renderer
        self.weather = weather
        self._renderer = _make_renderer(renderer)
        self._rain: RainOverlay | None = None
        self._frame_index = 0

    # -- track ---------------------------------------------------------------------------
    def _create_track(self) -> bool:
        if not super()._create_track():
            return False
        # Gather every road polygon into arrays, and make each tile's colour a row view
        # of `road_colors`, so the contact listener's `tile.color[:] = road_color`
        # lands in the array the renderers read. Values and dtype are unchanged.
        n = len(self.road_poly)
        self.road_vertices = np.array([poly for poly, _ in self.road_poly], dtype=np.float64)
        self.road_colors = np.array([np.asarray(c, dtype=np.float64) for _, c in self.road_poly])
        self.road_is_tile = np.array([isinstance(c, np.ndarray) for _, c in self.road_poly])
        tiles = iter(self.road)
        for k in range(n):
            poly, _ = self.road_poly[k]
            if self.road_is_tile[k]:
                tile = next(tiles)
                tile.color = self.road_colors[k]
                if self.weather == "rain":
                    tile.road_friction = RAIN_ROAD_FRICTION
            self.road_poly[k] = (poly, self.road_colors[k])
        return True

    # -- gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self._rain = None
        self._frame_index = 0
        obs, info = super().reset(seed=seed, options=options)
        FastCar.adopt(self.car)  # the same physics, bit for bit, with less Python per step
        if self.weather == "rain":
            # Drawn after the track, from the env's own generator: same seed, same rain.
            self._rain = RainOverlay(int(self.np_random.integers(2**62)))
            obs = self.state = self._rain.apply(obs, 0)
        info.update(self.telemetry())
        return obs, info

    def step(self, action):
        if action is not None:  # None is reset()'s internal first step, as in gymnasium
            action = self._check_action(action)
        obs, reward, terminated, truncated, info = super().step(action)
        if action is None:
            return obs, reward, terminated, truncated, info
        self._frame_index += 1
        if self._rain is not None:
            obs = self.state = self._rain.apply(obs, self._frame_index)
        info.update(self.telemetry())
        info["lap_finished"] = bool(info.get("lap_finished", False))
        return obs, reward, terminated, truncated, info

    def _render(self, mode: str):
        if mode == "state_pixels" and self._renderer is not None and "t" in self.__dict__:
            return self._renderer.render(self)
        return super()._render(mode)

    def close(self) -> None:
        super().close()
        # gymnasium's close leaves the Box2D track and car alive (about 100 kB an env, never freed: a soak
        # of many duels grew by that per closed env); reset destroys them, so close does too.
        if getattr(self, "road", None):
            self._destroy()
        # The renderer holds pygame's font file open; the env itself may live on in a reference cycle
        # until the garbage collector runs, so let the font go now (a soak of many duels leaked one fd each).
        self._renderer = None

    # -- telemetry -----------------------------------------------------------------------
    def telemetry(self) -> dict[str, Any]:
        """Per-step numbers for the duel: speed (m/s), slip (rad), off_track (all four
        wheels off the road), tiles_visited, track_tiles, weather.

        slip is the angle from the car's heading to its velocity, positive when the car
        slides to its left (counter-clockwise), 0 below SLIP_MIN_SPEED."""
        car = self.car
        vx, vy = car.hull.linearVelocity
        speed = float(np.sqrt(vx * vx + vy * vy))
        slip = 0.0
        if speed > SLIP_MIN_SPEED:
            fx, fy = car.hull.GetWorldVector((0, 1))  # the car's forward direction
            slip = float(np.arctan2(fx * vy - fy * vx, fx * vx + fy * vy))
        return {
            "speed": speed,
            "slip": slip,
            "off_track": all(len(w.tiles) == 0 for w in car.wheels),
            "tiles_visited": int(self.tile_visited_count),
            "track_tiles": len(self.track),
            "weather": self.weather,
        }

    # -- input checks --------------------------------------------------------------------
    def _check_action(self, action):
        if not self.continuous:
            if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)):
                raise InvalidAction(
                    f"action must be an integer in 0..4 for continuous=False, got {action!r}"
                )
            if not 0 <= int(action) < 5:
                raise InvalidAction(f"action must be in 0..4 for continuous=False, got {action}")
            return action
        try:
            a = np.asarray(action)
        except Exception as e:  # ragged lists and the like
            raise InvalidAction(f"action must be 3 numbers (steer, gas, brake): {e}") from None
        if a.dtype.kind not in "fiu":
            raise InvalidAction(
                f"action must be numeric (steer, gas, brake), got dtype {a.dtype} from {action!r}"
            )
        if a.shape != (3,):
            raise InvalidAction(
                f"action must have shape (3,) (steer, gas, brake), got shape {a.shape}"
            )
        if not np.isfinite(a).all():
            raise InvalidAction(f"action must be finite, got {a.tolist()}")
        return a


def _make_renderer(name: str):
    if name == "exact":
        from engine.env.render_exact import ExactRenderer

        return ExactRenderer()
    if name == "fast":
        from engine.env.render_fast import FastRenderer

        return FastRenderer()
    return None


def make_env(
    renderer: str = "exact",
    weather: str = "clear",
    max_episode_steps: int = MAX_EPISODE_STEPS,
    **car_racing_kwargs: Any,
) -> gym.Env:
    """A CarRacing-v3 environment, wrapped like `gymnasium.make("CarRacing-v3")`.

    Args:
        renderer: "stock", "exact" (bit-identical to stock, faster) or "fast" (numba).
        weather: "clear" or "rain" (less grip on the road, seeded rain streaks).
        max_episode_steps: TimeLimit truncation, 1000 as in CarRacing-v3.
        **car_racing_kwargs: passed to CarRacing (render_mode, lap_complete_percent,
            domain_randomize, continuous, verbose).

    Returns:
        The env. Observations are (96, 96, 3) uint8; `info` carries the telemetry of
        `DuelCarRacing.telemetry` plus `lap_finished`.
    """
    if renderer not in RENDERERS:
        raise ValueError(f"renderer={renderer!r} is not one of {', '.join(RENDERERS)}")
    if weather not in WEATHERS:
        raise ValueError(f"weather={weather!r} is not one of {', '.join(WEATHERS)}")
    try:
        env = DuelCarRacing(renderer=renderer, weather=weather, **car_racing_kwargs)
    except TypeError as e:
        raise TypeError(f"make_env: bad CarRacing argument: {e}") from None
    return TimeLimit(OrderEnforcing(env), max_episode_steps=max_episode_steps)
