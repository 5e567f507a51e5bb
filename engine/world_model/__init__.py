"""The world model at inference: observation -> the VAE's input frame (`frames`, numba) -> z
(VAE) -> h and the next-z mixture (MDN-RNN), one onnxruntime `run` for every player
(`runtime`), and the shipped weights checked against weights/manifest.json (`manifest`).
Imports nothing else of the engine."""
