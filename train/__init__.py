"""Data collection and training (issues 3 and 5). The only place, with `export`, that imports torch."""
