"""The HTTP API (`vmc-duel serve`, the original design's FastAPI backend): a live duel from
engine.race.live behind health, control, knob and telemetry endpoints. An app at the edge:
it imports engine, and nothing imports it but the command line."""
