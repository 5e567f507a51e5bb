"""onnxruntime sessions for the engine, and the batched world-model step.

`make_session` picks providers (`device="auto"|"cpu"|"cuda"`: auto takes CUDA when
onnxruntime-gpu sees a GPU), sets threads, turns thread spinning off for interactive use
(a live duel runs one small batch every 20 ms: spinning threads would burn the cores
the environments need), and on CUDA asks cuDNN for heuristic convolution algorithms
(the default re-benchmarks every new batch size).

`WorldModel` runs every player's VAE + MDN-RNN step in one `run` per env step and keeps
each player's LSTM state and previous action; sizes come from weights/manifest.json. The
observations become the VAE's input frames in numba first (engine.world_model.frames).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from engine.world_model.frames import CHANNELS, MODEL_SIZE, model_input
from engine.world_model.manifest import WEIGHTS_DIR, WeightsError, load_manifest

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "int8", "fp16")
GPU_FIX = "pip uninstall -y onnxruntime && pip install onnxruntime-gpu"
IO_BINDING_CPU_BATCH = 16  # players: up to this batch a CPU session binds its buffers (benchmarks/bench_model.py)


def providers_for(device: str) -> list:
    """onnxruntime providers for `device`; ValueError naming the fix when CUDA is asked for but absent."""
    if device not in DEVICES:
        raise ValueError(f"device={device!r} is not one of {', '.join(DEVICES)}")
    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if device == "cuda" and not has_cuda:
        raise ValueError(f"device=cuda: this onnxruntime has no CUDA provider ({GPU_FIX})")
    if device == "cpu" or not has_cuda:
        return ["CPUExecutionProvider"]
    return [("CUDAExecutionProvider", {"cudnn_conv_algo_search": "HEURISTIC"}), "CPUExecutionProvider"]


def make_session(path: Path, device: str = "auto", threads: int = 1, interactive: bool = True) -> ort.InferenceSession:
    """An InferenceSession on `path` for `device`, with `threads` intra-op threads."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    if interactive:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = providers_for(device)
    try:
        sess = ort.InferenceSession(str(path), opts, providers=providers)
    except (ort.capi.onnxruntime_pybind11_state.InvalidProtobuf, ort.capi.onnxruntime_pybind11_state.Fail) as e:
        raise WeightsError(f"{path}: onnxruntime cannot load it ({str(e)[:200]})") from None
    check_provider(sess, providers, device, path)
    return sess


def check_provider(sess: ort.InferenceSession, asked: list, device: str, path: Path) -> None:
    """No silent fallback: onnxruntime drops to the CPU (with a log line) when the CUDA
    provider is installed but its CUDA libraries do not load. device=cuda then fails here,
    naming what runs; device=auto carries on, on the CPU, and says so."""
    wanted = asked[0] if isinstance(asked[0], str) else asked[0][0]
    running = sess.get_providers()[0]
    if running == wanted:
        return
    message = (f"{path}: asked for {wanted}, onnxruntime runs {running}: the CUDA libraries did not load "
               "(with PyTorch's CUDA wheels installed, `import onnxruntime; onnxruntime.preload_dlls()` before "
               "the session; or install the CUDA 12 runtime and cuDNN 9)")  # fmt: skip
    if device == "cuda":
        raise WeightsError(message)
    import warnings

    warnings.warn(message, RuntimeWarning, stacklevel=3)


def int8_is_cpu_default(manifest: dict, weights_dir: Path = WEIGHTS_DIR) -> bool:
    """Whether `precision="auto"` takes int8 on this CPU: the variant passed its driving gate
    (`vmc-duel export --int8-only`) on this CPU kind, or measures as close to fp32 here as where
    it passed (engine.world_model.int8_kind)."""
    from engine.world_model.int8_kind import int8_verdict

    return int8_verdict(manifest, weights_dir).use


class WorldModel:
    """The world-model step for a batch of players, with their LSTM state.

    Args:
        players: batch size B.
        device: auto, cpu or cuda.
        precision: fp32, int8 or fp16 variant of world_model.onnx; auto = fp16 on CUDA; on CPU
            int8 where it passed its driving gate on this CPU kind (engine.world_model.int8_kind), else fp32.
        weights_dir: where manifest.json and the graphs are (checked against their sha256).
        io_binding: bind inputs and outputs to preallocated buffers once, so a full-batch
            step allocates nothing (None: on CUDA, and on the CPU up to IO_BINDING_CPU_BATCH
            players: 1.04-1.05x at batch 1 and 2 there, no gain at large batches). The same
            numbers either way.
    """

    OUTPUTS = ["z", "h_next", "c_next", "mdn_log_pi", "mdn_mu", "mdn_sigma", "reward", "off_track_prob"]

    def __init__(self, players: int, device: str = "auto", precision: str = "auto", weights_dir: Path = WEIGHTS_DIR,
                 threads: int = 1, io_binding: bool | None = None):  # fmt: skip
        if precision not in PRECISIONS:
            raise ValueError(f"precision={precision!r} is not one of {', '.join(PRECISIONS)}")
        self.manifest = load_manifest(weights_dir)
        sizes = self.manifest["sizes"]
        self.players, self.hidden, self.z_size = players, sizes["hidden"], sizes["z"]
        providers = providers_for(device)
        on_cuda = providers[0] != "CPUExecutionProvider"
        if precision == "auto":
            precision = "fp16" if on_cuda else "int8" if int8_is_cpu_default(self.manifest, weights_dir) else "fp32"
        name = "world_model.onnx" if precision == "fp32" else f"world_model.{precision}.onnx"
        if name not in self.manifest["files"]:
            raise WeightsError(f"{Path(weights_dir) / name}: the {precision} variant is not in the manifest")
        self.precision, self.device = precision, "cuda" if on_cuda else "cpu"
        self.session = make_session(Path(weights_dir) / name, device, threads)
        if self.session.get_inputs()[0].name != "frame":  # graphs exported before the frames were made here
            raise WeightsError(f"{Path(weights_dir) / name}: takes {self.session.get_inputs()[0].name!r}, not the "
                               f"model's frames: export it again (vmc-duel export --world-model-only --out "
                               f"{weights_dir} --force)")  # fmt: skip
        self._frames = np.zeros((players, CHANNELS, MODEL_SIZE, MODEL_SIZE), np.float32)  # (B, 3, 64, 64)
        self.h = np.zeros((players, self.hidden), np.float32)  # (B, H)
        self.c = np.zeros((players, self.hidden), np.float32)  # (B, H)
        self.prev_action = np.zeros((players, sizes["action"]), np.float32)  # (B, 3)
        self.io_binding = (on_cuda or players <= IO_BINDING_CPU_BATCH) if io_binding is None else bool(io_binding)
        if self.io_binding:
            self._bind(sizes)

    def _bind(self, sizes: dict) -> None:
        b, z, g = self.players, self.z_size, sizes["gaussians"]
        shapes = {"z": (b, z), "h_next": (b, self.hidden), "c_next": (b, self.hidden), "mdn_log_pi": (b, z, g),
                  "mdn_mu": (b, z, g), "mdn_sigma": (b, z, g), "reward": (b,), "off_track_prob": (b,)}  # fmt: skip
        self._outputs = {name: np.zeros(shapes[name], np.float32) for name in self.OUTPUTS}
        self._binding = self.session.io_binding()
        for name, arr in (("frame", self._frames), ("prev_action", self.prev_action), ("h", self.h), ("c", self.c)):
            self._binding.bind_cpu_input(name, arr)
        for name, arr in self._outputs.items():
            self._binding.bind_output(name, "cpu", 0, np.float32, list(arr.shape), arr.ctypes.data)

    def reset(self, players: list[int] | None = None) -> None:
        """Zero the state of `players` (default: all)."""
        idx = slice(None) if players is None else players
        self.h[idx] = 0.0
        self.c[idx] = 0.0
        self.prev_action[idx] = 0.0

    def step(self, obs: np.ndarray, idx: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """obs (B, 96, 96, 3) uint8 -> the graph's outputs by name; the state advances.

        With `idx` (int array of n players), only those players step: obs is (n, 96, 96, 3)
        and the outputs have n rows (training skips cars whose episode has ended). With
        io_binding, a full-batch step returns the bound buffers: read them before the next step.
        z (B, 32) and h (B, 256) afterwards are what the controller reads; call
        `set_actions` with the actions taken so the next step sees them."""
        rows = self.players if idx is None else len(idx)
        if obs.shape != (rows, 96, 96, 3) or obs.dtype != np.uint8:
            raise ValueError(f"obs must be ({rows}, 96, 96, 3) uint8, got {obs.dtype}{obs.shape}")
        frame = model_input(obs, self._frames[:rows])  # (rows, 3, 64, 64), into the bound buffer
        if idx is None and self.io_binding:  # the bound buffers: state copied back in place
            self.session.run_with_iobinding(self._binding)
            self.h[:], self.c[:] = self._outputs["h_next"], self._outputs["c_next"]
            return self._outputs
        if idx is None:
            feed = {"frame": frame, "prev_action": self.prev_action, "h": self.h, "c": self.c}
        else:
            feed = {"frame": frame, "prev_action": self.prev_action[idx], "h": self.h[idx], "c": self.c[idx]}
        out = dict(zip(self.OUTPUTS, self.session.run(self.OUTPUTS, feed)))
        if idx is None and not self.io_binding:
            self.h, self.c = out["h_next"], out["c_next"]
        else:
            self.h[idx], self.c[idx] = out["h_next"], out["c_next"]
        return out

    def set_actions(self, actions: np.ndarray, idx: np.ndarray | None = None) -> None:
        """The actions (B, 3), or (n, 3) for players `idx`, taken after the last step."""
        self.prev_action[slice(None) if idx is None else idx] = actions


class Decoder:
    """The VAE's decoder: what the model sees. z (B, 32) float32 -> (B, 64, 64, 3) uint8."""

    def __init__(self, device: str = "auto", weights_dir: Path = WEIGHTS_DIR, threads: int = 1):
        self.session = make_session(Path(weights_dir) / "decoder.onnx", device, threads)

    def __call__(self, z: np.ndarray) -> np.ndarray:
        return self.session.run(["frame"], {"z": np.ascontiguousarray(z, np.float32)})[0]
