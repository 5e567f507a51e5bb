"""VMC Duel's Textual terminal app: the duel live, each player's knobs, the track map.
Depends on `engine` only, never on torch."""
