"""The `vmc-duel` command line: the composition root that wires the engine to its apps (the
terminal app in tui, the HTTP API in server) and the training tools (train, export, through
entry points). `python -m vmc_duel` is the same as `vmc-duel`."""
