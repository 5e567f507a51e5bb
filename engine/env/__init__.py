"""The racing environment, where frames come from: CarRacing-v3 with telemetry (`racing_env`),
its renderers (`render_exact`, bit-identical to stock; `render_fast`), rain (`weather`), many
environments over worker processes (`vector_env`) and the scripted centre-line driver
(`autopilot`). Imports nothing else of the engine."""
