"""Data collection and training of the world model (VAE, MDN-RNN) and the controllers (CMA-ES).
The only place, with `export`, that imports torch."""
