"""torch -> ONNX export, quantisation and parity checks (issue 3)."""
