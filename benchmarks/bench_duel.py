"""The full two-player duel loop: the engine (exact and fast renderer) against the original design's stack.

    python benchmarks/bench_duel.py [--device cpu|cuda] [--steps 200] [--repeats 5] [--threads 1]
                                    [--torch-threads N] [--no-baseline] [--quick] [--out FILE]

Engine: `engine.race.duel.Duel(renderer, device, knobs=[k, k], lanes)`, both players looking
ahead (lookahead_horizon 10, risk_aversion 0.5: one imagined rollout per duel step on top
of the world model), `duel.step()` N times after `duel.reset(seed)` (reset again when it
ends). Stacks: each renderer in one process (lanes=1) and in two lanes (lanes=2: car B's
whole chain in a worker process at the same time as car A's, engine.race.lanes), in fp32;
and on the CPU both renderers in two lanes with the int8 world model where it is this CPU's
default (what `--precision auto` races with there: engine.world_model.int8_kind).

Baseline, what a user of the original World Models design would run: two stock
`gymnasium.make("CarRacing-v3")` environments, and per player per step the PyTorch eager
models from weights/vae.pth and mdnrnn.pth (crop to the top 84 rows, `interpolate(...,
mode="area")` to 64x64, scale to [0, 1], `vae.encode` -> mu, one `rnn.lstm` step on
[z, previous action] with its (h, c), `rnn.heads(h)`), then the linear controller in numpy
from weights/controller{A,B}.npz, all under `torch.no_grad()`. torch gets as many threads
as the engine has onnxruntime threads (--threads; --torch-threads 0: torch's default, all
cores, which on a busy machine costs batch-1 calls dearly). No lookahead: the baseline
does less work per step than the engine. Needs torch; without it the baseline is skipped.

Same-core baseline (`baseline_same_cores`), the stock stack given the cores the engine's
two lanes use: the two stock envs in one worker process each, stepped at the same time
(`gymnasium.vector.AsyncVectorEnv`, as a user parallelising the original design would),
and both players' models as one batch of 2 in the main process, with torch on as many
threads as each engine process has (--threads; --same-cores-torch-threads to change: on 2
cores, 2 torch threads measured 5 duel steps/s against 58 with 1, OpenMP's spinning
threads starving the env workers, so 1 is the stronger baseline there). Each engine stack
is compared with both: serial (`vs baseline`) and same cores (`vs same cores`).

Rounds interleave (baseline, engine-exact, engine-fast, baseline, ...) after a warm-up
round; the table reports median duel steps/s with the spread (min-max), and each engine
renderer's speed-up as the median of the per-round ratios engine / baseline, all measured
side by side in this one run. Then one more, untimed-for-the-table run per engine renderer
says where a duel step's time goes (ms per duel step): the environments, the world model
(frame resize + run), the decision after it (controller, lookahead risk, knobs: one numba
call on the CPU), the wait for the other lane (two lanes: the parts before it are this
process's lane, car A), and the rest (Python: telemetry, bookkeeping).
The last line printed is the whole result as JSON.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("VMC_DUEL_EXACT_KERNEL", "inline")  # the exact renderer timed from its kernel (lanes inherit)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo: engine, train
sys.path.insert(0, str(Path(__file__).resolve().parent))  # this directory: common, bench_env

from common import (  # noqa: E402
    TRACK_SEED,
    add_output_options,
    check_device,
    interleaved,
    median_ratio,
    refuse_overwrite,
    run_main,
    spread,
)

from engine.env.weather import PLAY_ROWS as CROP_ROWS  # noqa: E402  (84 px: the rows above the dashboard)
from engine.policy.knobs import Knobs, load_bounds  # noqa: E402
from engine.world_model.manifest import WEIGHTS_DIR  # noqa: E402

ENGINE_RENDERERS = ("exact", "fast")


def engine_stacks(device: str, weights_dir: Path = WEIGHTS_DIR) -> dict[str, dict]:
    """The engine configurations timed: name -> Duel keyword arguments."""
    stacks = {}
    for lanes in (1, 2):
        for r in ENGINE_RENDERERS:
            name = f"engine_{r}" + ("" if lanes == 1 else "_2lanes")
            stacks[name] = {"renderer": r, "lanes": lanes, "precision": precision_for(device)}
    from engine.world_model.manifest import load_manifest
    from engine.world_model.runtime import int8_is_cpu_default

    if device == "cpu" and int8_is_cpu_default(load_manifest(weights_dir, verify=False), weights_dir):
        # what `--precision auto` races with here: the default (exact) renderer and the fast one
        for r in ENGINE_RENDERERS:
            stacks[f"engine_{r}_2lanes_int8"] = {"renderer": r, "lanes": 2, "precision": "int8"}
    return stacks
LOOKAHEAD = {"lookahead_horizon": 10, "risk_aversion": 0.5}  # both players' knobs
# Where a duel step's time goes (this process's lane): the environment step, the world model (frame
# resize in numba + one onnxruntime run), the decision after it (controller, risk with the 10-step
# lookahead, knobs: one numba call on the CPU), waiting for the other lane; the rest is Python.
BREAKDOWN = ("env", "world_model", "decide", "lane_wait")
MODEL_SIDE = 64  # px: the VAE's input side
QUICK = {"steps": 5, "repeats": 1}


class BaselineDuel:
    """Two stock CarRacing-v3 envs and the PyTorch eager VAE + MDN-RNN + numpy controllers,
    one player at a time, as the original design runs them."""

    def __init__(self, weights_dir: Path = WEIGHTS_DIR, torch_threads: int | None = None):
        import gymnasium as gym
        import torch

        from train.models import MDNRNN, VAE, MDNRNNConfig, VAEConfig

        self.torch = torch
        self.torch_threads = torch_threads or torch.get_num_threads()  # None: torch's default
        torch.set_num_threads(self.torch_threads)
        self.vae = VAE(VAEConfig())
        self.vae.load_state_dict(torch.load(Path(weights_dir) / "vae.pth", weights_only=True))
        self.rnn = MDNRNN(MDNRNNConfig())
        self.rnn.load_state_dict(torch.load(Path(weights_dir) / "mdnrnn.pth", weights_only=True))
        self.vae.eval()
        self.rnn.eval()
        self.controllers = []
        for name in ("A", "B"):
            with np.load(Path(weights_dir) / f"controller{name}.npz") as f:
                self.controllers.append((f["W"].astype(np.float64), f["b"].astype(np.float64)))  # (3, 288), (3,)
        self.envs = [gym.make("CarRacing-v3") for _ in range(2)]
        hidden = self.rnn.cfg.hidden_size
        self.state = [(torch.zeros(1, 1, hidden), torch.zeros(1, 1, hidden)) for _ in range(2)]  # (h, c) each
        self.prev_action = [torch.zeros(1, self.rnn.cfg.action_size) for _ in range(2)]
        self.obs: list[np.ndarray] = [np.zeros((96, 96, 3), np.uint8)] * 2
        self.done = [True, True]

    def reset(self, seed: int) -> None:
        for p, env in enumerate(self.envs):
            self.obs[p], _ = env.reset(seed=seed)
            self.state[p] = tuple(self.torch.zeros_like(t) for t in self.state[p])
            self.prev_action[p] = self.torch.zeros_like(self.prev_action[p])
            self.done[p] = False

    @property
    def finished(self) -> bool:
        return all(self.done)

    def act(self, p: int) -> np.ndarray:
        torch, F = self.torch, self.torch.nn.functional
        with torch.no_grad():
            x = torch.from_numpy(self.obs[p][:CROP_ROWS]).permute(2, 0, 1)[None].float()  # (1, 3, 84, 96)
            x = F.interpolate(x, size=(MODEL_SIDE, MODEL_SIDE), mode="area") / 255.0  # (1, 3, 64, 64)
            z, _ = self.vae.encode(x)  # mu (1, 32); logvar unused
            out, self.state[p] = self.rnn.lstm(torch.cat([z, self.prev_action[p]], dim=-1)[:, None], self.state[p])
            h = out[:, 0]  # (1, 256)
            self.rnn.heads(h)  # log_pi, mu, sigma, reward, off-track logit: computed, as the design does
        W, b = self.controllers[p]
        a = np.tanh(W @ np.concatenate([z[0].numpy(), h[0].numpy()]).astype(np.float64) + b)
        action = np.array([a[0], (a[1] + 1.0) / 2.0, min(max(a[2], 0.0), 1.0)])
        self.prev_action[p] = torch.from_numpy(action.astype(np.float32))[None]
        return action

    def step(self) -> None:
        for p, env in enumerate(self.envs):
            if self.done[p]:
                continue
            self.obs[p], _, terminated, truncated, _ = env.step(self.act(p))
            self.done[p] = terminated or truncated

    def close(self) -> None:
        for env in self.envs:
            env.close()


class SameCoreBaselineDuel(BaselineDuel):
    """The stock stack on the engine's two-lane cores: both stock envs in their own worker
    process, stepped together (AsyncVectorEnv), and both players' models as one batch of 2
    by torch on `torch_threads` threads (set before each timed run: the serial baseline in
    this same process uses another count)."""

    def __init__(self, weights_dir: Path = WEIGHTS_DIR, torch_threads: int = 2):
        super().__init__(weights_dir, torch_threads=None)
        import gymnasium as gym

        for env in self.envs:  # the parent's serial envs are not used here
            env.close()
        self.torch_threads = torch_threads
        self.vec = gym.vector.AsyncVectorEnv([lambda: gym.make("CarRacing-v3")] * 2)
        hidden = self.rnn.cfg.hidden_size
        torch = self.torch
        self.state2 = (torch.zeros(1, 2, hidden), torch.zeros(1, 2, hidden))  # (h, c), both players
        self.prev2 = torch.zeros(2, self.rnn.cfg.action_size)
        self.obs2 = np.zeros((2, 96, 96, 3), np.uint8)

    def reset(self, seed: int) -> None:
        self.torch.set_num_threads(self.torch_threads)
        self.obs2, _ = self.vec.reset(seed=[seed, seed])  # both players on the same track
        self.state2 = tuple(self.torch.zeros_like(t) for t in self.state2)
        self.prev2 = self.torch.zeros_like(self.prev2)

    @property
    def finished(self) -> bool:
        return False  # the vector env resets a finished car by itself, as AsyncVectorEnv users run it

    def step(self) -> None:
        torch, F = self.torch, self.torch.nn.functional
        with torch.no_grad():
            x = torch.from_numpy(self.obs2[:, :CROP_ROWS]).permute(0, 3, 1, 2).float()  # (2, 3, 84, 96)
            x = F.interpolate(x, size=(MODEL_SIDE, MODEL_SIDE), mode="area") / 255.0
            z, _ = self.vae.encode(x)  # (2, 32)
            out, self.state2 = self.rnn.lstm(torch.cat([z, self.prev2], dim=-1)[:, None], self.state2)
            h = out[:, 0]  # (2, 256)
            self.rnn.heads(h)
        feats = np.concatenate([z.numpy(), h.numpy()], axis=1).astype(np.float64)  # (2, 288)
        actions = np.zeros((2, 3))
        for p, (W, b) in enumerate(self.controllers):
            a = np.tanh(W @ feats[p] + b)
            actions[p] = (a[0], (a[1] + 1.0) / 2.0, min(max(a[2], 0.0), 1.0))
        self.prev2 = torch.from_numpy(actions.astype(np.float32))
        self.obs2, *_ = self.vec.step(actions)

    def close(self) -> None:
        self.vec.close()


def timed(duel, steps: int, seed: int) -> float:
    """Duel steps per second over `steps` steps from a fresh reset (not timed); resets again when it ends."""
    duel.reset(seed)
    start = time.perf_counter()
    for _ in range(steps):
        if duel.finished:
            duel.reset(seed)
        duel.step()
    return steps / (time.perf_counter() - start)


def breakdown(duel, steps: int, seed: int) -> dict[str, float]:
    """ms per duel step in each part of `duel.step()` (BREAKDOWN), over `steps` steps (wrapping each
    part with a timer costs about a microsecond per call, so `total_ms` reads a little high)."""
    import engine.policy.players as players_module

    spent = dict.fromkeys(BREAKDOWN, 0.0)

    def clocked(part: str, fn):
        def call(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[part] += time.perf_counter() - start

        return call

    lane = duel.lanes.local if duel.lanes is not None else duel  # two lanes: this process's
    vec, players = lane.vec, lane.players
    saved = players_module.decide
    try:  # the decision after the world model: one numba call on the CPU, kernel by kernel elsewhere
        players_module.decide = clocked("decide", saved)
        players._decide_steps = clocked("decide", players._decide_steps)
        vec.step = clocked("env", vec.step)
        players.world.step = clocked("world_model", players.world.step)
        if duel.lanes is not None:
            duel.lanes.remote.step_wait = clocked("lane_wait", duel.lanes.remote.step_wait)
        duel.reset(seed)
        for part in spent:
            spent[part] = 0.0
        start = time.perf_counter()
        for _ in range(steps):
            if duel.finished:
                duel.reset(seed)
            duel.step()
        total = time.perf_counter() - start
    finally:
        players_module.decide = saved
        del vec.step, players.world.step, players._decide_steps
        if duel.lanes is not None:
            del duel.lanes.remote.step_wait
    out = {f"{part}_ms": 1e3 * t / steps for part, t in spent.items()}
    out["python_other_ms"] = 1e3 * (total - sum(spent.values())) / steps
    out["total_ms"] = 1e3 * total / steps
    return out


def precision_for(device: str) -> str:
    """fp32 on the CPU, the precision the baseline computes in (`--precision auto` may pick
    int8 there; bench_model measures every precision); on CUDA the engine's own choice."""
    return "fp32" if device == "cpu" else "auto"


def lookahead_knobs() -> Knobs:
    k = Knobs(load_bounds())
    k.update(LOOKAHEAD, where="bench_duel")
    return k


def baseline_or_reason(args: argparse.Namespace) -> tuple[BaselineDuel | None, str | None]:
    if args.no_baseline:
        return None, "--no-baseline given"
    try:
        import torch  # noqa: F401
    except ImportError:
        return None, "torch is not installed (pip install -e '.[train]')"
    torch_threads = args.threads if args.torch_threads is None else args.torch_threads
    return BaselineDuel(torch_threads=torch_threads or None), None


def serial_timed(baseline: BaselineDuel, steps: int, seed: int) -> float:
    """`timed` for the serial baseline, with its own torch thread count (the same-core one
    sets another in this process)."""
    baseline.torch.set_num_threads(baseline.torch_threads)
    return timed(baseline, steps, seed)


def run(args: argparse.Namespace) -> dict:
    from engine.race.duel import Duel

    k = lookahead_knobs()
    duels = {}
    baseline, same_cores, reason = None, None, None
    try:
        for name, kwargs in engine_stacks(args.device).items():
            duels[name] = Duel(device=args.device, knobs=[k, k], threads=args.threads, **kwargs)
        baseline, reason = baseline_or_reason(args)
        if reason:
            print(f"bench_duel: baseline skipped: {reason}", file=sys.stderr)
        fns = {}
        if baseline is not None:
            same_cores = SameCoreBaselineDuel(torch_threads=args.same_cores_torch_threads or args.threads)
            fns["baseline"] = lambda: serial_timed(baseline, args.steps, args.seed)
            fns["baseline_same_cores"] = lambda: timed(same_cores, args.steps, args.seed)
        for name, duel in duels.items():
            fns[name] = lambda duel=duel: timed(duel, args.steps, args.seed)
        rates, rounds = interleaved(fns, args.repeats, warmup=1)
        parts = {name: breakdown(duel, args.steps, args.seed) for name, duel in duels.items()}
    finally:
        for duel in duels.values():
            duel.close()
        if baseline is not None:
            baseline.close()
        if same_cores is not None:
            same_cores.close()
    result = {
        "benchmark": "duel",
        "device": args.device,
        "quick": args.quick,
        "steps": args.steps,
        "repeats": args.repeats,
        "seed": args.seed,
        "knobs": LOOKAHEAD,
        "threads": args.threads,
        "duel_steps_per_s": rates,
        "breakdown_ms_per_duel_step": parts,
        "baseline": None,
        "baseline_skipped": reason,
    }
    if baseline is not None:
        import torch

        result["baseline"] = {"torch": torch.__version__, "torch_threads": baseline.torch_threads,
                              "renderer": "stock gymnasium CarRacing-v3", "lookahead": False}  # fmt: skip
        result["baseline_same_cores"] = {"torch_threads": same_cores.torch_threads, "env_processes": 2,
                                         "vector_env": "gymnasium.vector.AsyncVectorEnv", "batch": 2,
                                         "renderer": "stock gymnasium CarRacing-v3", "lookahead": False}  # fmt: skip
        result["speedup_vs_baseline"] = {name[len("engine_"):]: median_ratio(rounds, name, "baseline")
                                         for name in duels}  # fmt: skip
        result["speedup_vs_same_cores"] = {name[len("engine_"):]: median_ratio(rounds, name, "baseline_same_cores")
                                           for name in duels}  # fmt: skip
    result["stacks"] = {name: {"renderer": d.renderer, "lanes": 1 if d.lanes is None else 2,
                               "precision": d.precision} for name, d in duels.items()}  # fmt: skip
    return result


def format_table(result: dict) -> str:
    rates = result["duel_steps_per_s"]
    speedup = result.get("speedup_vs_baseline", {})
    same = result.get("speedup_vs_same_cores", {})
    lines = [f"Duel loop on {result['device']} (lookahead 10, risk aversion 0.5): duel steps/s, "
             f"{result['steps']} steps x {result['repeats']} rounds",
             f"{'stack':<26}{'duel steps/s':>14}{'min-max':>16}{'vs baseline':>13}{'vs same cores':>15}"]  # fmt: skip
    for name, s in rates.items():
        ratio = f"{speedup[name[7:]]:.2f}x" if name[7:] in speedup else "-"
        ratio_same = f"{same[name[7:]]:.2f}x" if name[7:] in same else "-"
        lines.append(f"{name:<26}{s['median']:>14.1f}{spread(s, '{:.1f}'):>16}{ratio:>13}{ratio_same:>15}")
    if result["baseline_skipped"]:
        lines.append(f"baseline skipped: {result['baseline_skipped']}")
    parts = result.get("breakdown_ms_per_duel_step", {})
    if parts:
        cols = (*BREAKDOWN, "python_other", "total")
        lines.append("where a duel step's time goes, ms: " + " / ".join(cols))
        for name, b in parts.items():
            lines.append(f"{name:<26}" + "".join(f"{b[f'{c}_ms']:>9.3f}" for c in cols))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="the engine's onnxruntime device "
                   "(default cpu; the baseline runs torch on the CPU)")  # fmt: skip
    p.add_argument("--steps", type=int, default=200, help="duel steps per timed run (default 200)")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds after the warm-up round (default 5)")
    p.add_argument("--threads", type=int, default=1, help="the engine's onnxruntime threads (default 1, as Duel)")
    p.add_argument("--torch-threads", type=int, default=None, help="torch threads for the baseline (default: "
                   "--threads, the same cores as the engine; 0: torch's own choice, all cores)")  # fmt: skip
    p.add_argument("--same-cores-torch-threads", type=int, default=None, help="torch threads of the same-core "
                   "baseline's main process (default: --threads)")  # fmt: skip
    p.add_argument("--seed", type=int, default=TRACK_SEED, help=f"track seed (default {TRACK_SEED})")
    p.add_argument("--no-baseline", action="store_true", help="time the engine only")
    p.add_argument("--quick", action="store_true", help="a few steps, 1 round: a smoke test only")
    add_output_options(p)
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    refuse_overwrite(parser, args)
    check_device(parser, args.device)
    if args.quick:
        args.steps, args.repeats = QUICK["steps"], QUICK["repeats"]
    if args.steps < 1 or args.repeats < 1 or args.threads < 1:
        parser.error("--steps, --repeats and --threads must be at least 1")
    return args


def main(argv: list[str] | None = None) -> dict:
    return run_main(parse_args, run, format_table, argv)


if __name__ == "__main__":
    main()
