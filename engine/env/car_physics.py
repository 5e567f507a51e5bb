"""gymnasium's car dynamics, the same floats at a third of the cost.

`Car.step` (gymnasium/envs/box2d/car_dynamics.py) runs once per environment step for each of
the four wheels, and spends most of its time in numpy's scalar functions (`np.sign`,
`np.sqrt(np.square(...))` on Python floats) and in repeated Box2D attribute reads. `FastCar.step`
is the same arithmetic, in the same order, on plain floats (IEEE-754 gives `math.sqrt` and
`np.sqrt` the same correctly rounded result; `x * x` is `np.square(x)`), so the race is the same
bit for bit (tests/test_car_physics.py drives both side by side).
"""

from __future__ import annotations

import math

from gymnasium.envs.box2d.car_dynamics import ENGINE_POWER, FRICTION_LIMIT, SIZE, WHEEL_MOMENT_OF_INERTIA, Car

GRASS_FRICTION_LIMIT = FRICTION_LIMIT * 0.6  # friction limit of a wheel on no tile
BRAKE_FORCE = 15.0  # rad/s taken off a braking wheel's spin per step at full brake
BRAKE_LOCK = 0.9  # brake at or above this blocks the wheel
STEER_GAIN = 50.0  # 1/s, steering joint motor speed per rad of error
STEER_MAX_SPEED = 3.0  # rad/s, the steering joint motor's limit
FORCE_SCALE = 205000 * SIZE * SIZE  # gymnasium's damping coefficient of the wheel forces
FORWARD = (0, 1)  # a wheel's forward and sideways axes, body frame
SIDEWAYS = (1, 0)


def _sign(x: float) -> float:
    """np.sign of a float, as a float: 1.0, -1.0, 0.0 for either zero, nan for nan."""
    if x > 0.0:
        return 1.0
    if x < 0.0:
        return -1.0
    return x * 0.0 + 0.0


def _clip01(x: float) -> float:
    """np.clip(x, 0, 1) of a float (nan and -0.0 stay as they are)."""
    if x < 0.0:
        return 0.0
    return 1.0 if x > 1.0 else x


class FastCar(Car):
    """gymnasium's Car with a faster `step` and the same results; made from a Car by
    `FastCar.adopt(car)` (CarRacing builds its own Car in `reset`)."""

    @classmethod
    def adopt(cls, car: Car) -> Car:
        car.__class__ = cls
        return car

    def gas(self, gas: float) -> None:
        """Rear-wheel drive, as gymnasium's: gas clipped to [0, 1], each wheel's rising by at most
        0.1 a step and falling at once."""
        gas = _clip01(gas)
        for w in self.wheels[2:4]:
            diff = gas - w.gas
            if diff > 0.1:
                diff = 0.1  # gradually increase, but stop immediately
            w.gas += diff

    def step(self, dt: float) -> None:
        for w in self.wheels:
            # Steer each wheel
            joint = w.joint
            err = w.steer - joint.angle
            joint.motorSpeed = _sign(err) * min(STEER_GAIN * abs(err), STEER_MAX_SPEED)

            # Position => friction_limit
            grass = True
            friction_limit = GRASS_FRICTION_LIMIT
            for tile in w.tiles:
                friction_limit = max(friction_limit, FRICTION_LIMIT * tile.road_friction)
                grass = False

            # Force
            forw = w.GetWorldVector(FORWARD)
            side = w.GetWorldVector(SIDEWAYS)
            v = w.linearVelocity
            v0, v1 = v[0], v[1]
            vf = forw[0] * v0 + forw[1] * v1  # forward speed
            vs = side[0] * v0 + side[1] * v1  # side speed

            omega = w.omega
            gas = w.gas
            omega += dt * ENGINE_POWER * gas / WHEEL_MOMENT_OF_INERTIA / (abs(omega) + 5.0)
            self.fuel_spent += dt * ENGINE_POWER * gas

            brake = w.brake
            if brake >= BRAKE_LOCK:
                omega = 0
            elif brake > 0:
                direction = -_sign(omega)
                val = BRAKE_FORCE * brake
                if abs(val) > abs(omega):
                    val = abs(omega)  # low speed => same as = 0
                omega += direction * val
            w.phase += omega * dt

            vr = omega * w.wheel_rad  # rotating wheel speed
            f_force = (-vf + vr) * FORCE_SCALE
            p_force = -vs * FORCE_SCALE
            force = math.sqrt(f_force * f_force + p_force * p_force)

            # Skid trace (drawn only outside state_pixels; kept so every render mode matches)
            if abs(force) > 2.0 * friction_limit:
                if w.skid_particle and w.skid_particle.grass == grass and len(w.skid_particle.poly) < 30:
                    w.skid_particle.poly.append((w.position[0], w.position[1]))
                elif w.skid_start is None:
                    w.skid_start = w.position
                else:
                    w.skid_particle = self._create_particle(w.skid_start, w.position, grass)
                    w.skid_start = None
            else:
                w.skid_start = None
                w.skid_particle = None

            if abs(force) > friction_limit:
                f_force /= force
                p_force /= force
                force = friction_limit  # Correct physics here
                f_force *= force
                p_force *= force

            omega -= dt * f_force * w.wheel_rad / WHEEL_MOMENT_OF_INERTIA
            w.omega = omega

            w.ApplyForceToCenter((p_force * side[0] + f_force * forw[0], p_force * side[1] + f_force * forw[1]), True)
