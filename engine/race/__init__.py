"""Races: two players on one track, stepped in lockstep with telemetry and a winner (`duel`),
a duel live in a worker thread for watchers (`live`), the headless race (`headless`) and
batched tournaments (`tournament`). Imports engine.env, engine.world_model, engine.policy."""
