"""torch -> ONNX export of the world model, its int8 and fp16 variants, the lookahead, and the parity checks."""
