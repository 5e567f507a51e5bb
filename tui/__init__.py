"""VMC Duel's Textual terminal app (issue 6). Depends on `engine` only, never on torch."""
