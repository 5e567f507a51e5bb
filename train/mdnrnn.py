"""Train the MDN-RNN (World Models' M) with reward and off-track heads.

    vmc-duel train mdnrnn [--vae data/checkpoints/vae/vae.pth] [--epochs 40] [--force]

1. Encodes every collected frame with the trained VAE into (mu, logvar), cached in
   latents.npz beside the checkpoint and keyed by the VAE file's sha256.
2. Each epoch resamples z_t ~ N(mu_t, sigma_t) and trains on windows of the episodes:
   the LSTM reads x_t = [z_t, a_{t-1}] and its hidden state h_t predicts z_{t+1} (a
   mixture of 5 Gaussians per dimension), the reward of step t, and whether the car is
   off the track after step t (all four wheels off the road, as logged).
3. Reports on held-out episodes (index 9 mod 10): NLL per z dimension, the reward head's
   RMSE, and the off-track head's ROC AUC. Checkpoint every epoch, resume, --force.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from engine.files import save_figure, write_atomic
from engine.progress import point
from train import checkpoint
from train.config import TrainMDNRNNConfig, from_args
from train.models import MDNRNN, VAE, MDNRNNConfig, VAEConfig, mdn_nll
from train.shards import list_episodes, load_episode
from train.vae import VAL_EVERY, to_tensor


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_vae(path: Path) -> VAE:
    """A VAE from a state dict file; a clear error for the wrong file."""
    if not Path(path).exists():
        raise ValueError(f"{path}: no VAE weights (run `vmc-duel train vae` first)")
    vae = VAE(VAEConfig())
    state = checkpoint.torch_load(path, "VAE weights file")
    try:
        vae.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not weights of this VAE architecture ({str(e)[:200]})") from None
    return vae.eval()


@torch.no_grad()
def encode_episodes(cfg: TrainMDNRNNConfig) -> list[dict[str, np.ndarray]]:
    """Per episode: mu, logvar (T+1, z) float32, actions (T, 3), rewards, off_track (T,), index."""
    cache = cfg.out / "latents.npz"
    vae_sha = sha256(cfg.vae)
    paths = list_episodes(cfg.data)
    if not paths:
        raise ValueError(f"no episode shards in {cfg.data}: run `vmc-duel train collect` first")
    names = [p.name for p in paths]
    if cache.exists():
        with np.load(cache, allow_pickle=False) as z:
            if str(z["vae_sha256"]) == vae_sha and list(z["names"]) == names:
                steps, frames = z["step_bounds"], z["frame_bounds"]  # (E+1,) each
                return [
                    {k: z[k][frames[i] : frames[i + 1]] for k in ("mu", "logvar")}
                    | {k: z[k][steps[i] : steps[i + 1]] for k in ("actions", "rewards", "off_track")}
                    | {"index": int(n.split("_")[1].split(".")[0])}
                    for i, n in enumerate(names)
                ]
    vae = load_vae(cfg.vae)
    episodes = []
    with Progress(TextColumn("encode"), BarColumn(), TimeRemainingColumn()) as bar:
        task = bar.add_task("", total=len(paths))
        for p in paths:
            ep = load_episode(p)
            mus, logvars = [], []
            for i in range(0, len(ep["frames"]), 500):
                mu, logvar = vae.encode(to_tensor(ep["frames"][i : i + 500]))
                mus.append(mu.numpy())
                logvars.append(logvar.numpy())
            episodes.append({
                "mu": np.concatenate(mus), "logvar": np.concatenate(logvars), "actions": ep["actions"],
                "rewards": ep["rewards"], "off_track": ep["off_track"], "index": int(p.stem.split("_")[1]),
            })  # fmt: skip
            bar.advance(task)
    steps = np.array([len(e["actions"]) for e in episodes])
    cfg.out.mkdir(parents=True, exist_ok=True)
    np.savez(
        cache,
        vae_sha256=vae_sha,
        names=np.array(names),
        step_bounds=np.concatenate([[0], np.cumsum(steps)]),
        frame_bounds=np.concatenate([[0], np.cumsum(steps + 1)]),
        **{k: np.concatenate([e[k] for e in episodes]) for k in ("mu", "logvar", "actions", "rewards", "off_track")},
    )
    return episodes


def sequences(ep: dict[str, np.ndarray], rng: np.random.Generator | None) -> dict[str, np.ndarray]:
    """Inputs and targets of one episode. z is sampled from N(mu, sigma) (rng) or mu (None)."""
    mu, logvar = ep["mu"], ep["logvar"]
    z = mu if rng is None else mu + np.exp(0.5 * logvar) * rng.standard_normal(mu.shape).astype(np.float32)
    actions = ep["actions"].astype(np.float32)
    prev = np.concatenate([np.zeros((1, 3), np.float32), actions[:-1]])  # a_{t-1}, zero at the start
    return {
        "z": z[:-1], "prev": prev, "z_next": z[1:], "reward": ep["rewards"].astype(np.float32),
        "off": ep["off_track"].astype(np.float32),
    }  # fmt: skip


def batch_windows(eps: list[dict], seq_len: int, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    """Cut every episode into windows of seq_len (random phase), as a shuffled list."""
    windows = []
    for ep in eps:
        s = sequences(ep, rng)
        t = len(s["z"])
        start = int(rng.integers(0, max(t - seq_len, 0) + 1)) % seq_len if t > seq_len else 0
        for a in range(start, max(t - seq_len, 0) + 1, seq_len):
            windows.append({k: v[a : a + seq_len] for k, v in s.items()})
    order = rng.permutation(len(windows))
    return [windows[i] for i in order]


def loss_terms(model: MDNRNN, b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    log_pi, mu, sigma, reward, off_logit, _ = model(b["z"], b["prev"])
    nll = mdn_nll(log_pi, mu, sigma, b["z_next"])
    r_loss = F.mse_loss(reward, b["reward"])
    off_loss = F.binary_cross_entropy_with_logits(off_logit, b["off"])
    return nll, r_loss, off_loss, off_logit, reward


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (rank statistic; ties averaged)."""
    labels = labels.astype(bool)
    n_pos, n_neg = labels.sum(), (~labels).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@torch.no_grad()
def evaluate(model: MDNRNN, eps: list[dict]) -> dict[str, float]:
    """Held-out metrics over whole episodes, z = mu."""
    model.eval()
    nll_sum, n, sq, scores, labels = 0.0, 0, 0.0, [], []
    for ep in eps:
        s = {k: torch.from_numpy(v)[None] for k, v in sequences(ep, None).items()}
        nll, _, _, off_logit, reward = loss_terms(model, s)
        t = s["z"].shape[1]
        nll_sum += nll.item() * t
        n += t
        sq += ((reward - s["reward"]) ** 2).sum().item()
        scores.append(off_logit[0].numpy())
        labels.append(s["off"][0].numpy())
    model.train()
    scores, labels = np.concatenate(scores), np.concatenate(labels)
    return {
        "nll_per_dim": nll_sum / n, "reward_rmse": float(np.sqrt(sq / n)),
        "off_track_auc": roc_auc(scores, labels), "off_track_rate": float(labels.mean()), "steps": n,
    }  # fmt: skip


def save_png(history: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(ep, [h["train"]["nll"] for h in history], label="train")
    axes[0].plot(ep, [h["val"]["nll_per_dim"] for h in history], label="held-out")
    axes[0].set_title("MDN NLL per z dimension")
    axes[1].plot(ep, [h["val"]["reward_rmse"] for h in history], color="C2")
    axes[1].set_title("reward RMSE (held-out)")
    axes[2].plot(ep, [h["val"]["off_track_auc"] for h in history], color="C3")
    axes[2].set_title("off-track AUC (held-out)")
    axes[0].legend()
    for ax in axes:
        ax.set_xlabel("epoch")
    fig.tight_layout()
    save_figure(fig, out / "mdnrnn_metrics.png", dpi=80)
    plt.close(fig)


def train_mdnrnn(cfg: TrainMDNRNNConfig, force: bool = False) -> dict:
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    cfg.out.mkdir(parents=True, exist_ok=True)
    ckpt_path = cfg.out / "checkpoint.pt"
    model = MDNRNN(MDNRNNConfig())
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    history = checkpoint.resume(ckpt_path, model, opt, cfg.epochs, "MDN-RNN") if not force else []
    load_vae(cfg.vae)  # a missing or broken VAE file is named now, before any data is read
    episodes = encode_episodes(cfg)
    train = [e for e in episodes if e["index"] % VAL_EVERY != VAL_EVERY - 1]
    val = [e for e in episodes if e["index"] % VAL_EVERY == VAL_EVERY - 1]
    if not val:
        raise ValueError(f"{cfg.data}: fewer than {VAL_EVERY} episodes, none held out")
    print(f"{len(train)} training episodes, {len(val)} held out")
    columns = (TextColumn("mdnrnn epoch {task.fields[epoch]}"), BarColumn(), TextColumn("{task.fields[info]}"),
               TimeRemainingColumn())  # fmt: skip
    with Progress(*columns) as bar:
        for epoch in range(len(history), cfg.epochs):
            rng = np.random.default_rng([cfg.seed, epoch])
            windows = batch_windows(train, cfg.seq_len, rng)
            steps = max(len(windows) // cfg.batch_size, 1)
            task = bar.add_task("", total=steps, epoch=epoch + 1, info="")
            t0 = time.perf_counter()
            sums = np.zeros(3)
            for s in range(steps):
                chunk = windows[s * cfg.batch_size : (s + 1) * cfg.batch_size]
                b = {k: torch.from_numpy(np.stack([w[k] for w in chunk])) for k in chunk[0]}
                nll, r_loss, off_loss, _, _ = loss_terms(model, b)
                loss = nll + cfg.reward_weight * r_loss + cfg.off_track_weight * off_loss
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                point("train:batch", what="mdnrnn", epoch=epoch + 1, batch=s + 1)
                sums += [nll.item(), r_loss.item(), off_loss.item()]
                bar.update(task, completed=s + 1, info=f"nll {sums[0] / (s + 1):.3f}")
            train_m = dict(zip(("nll", "reward_mse", "off_track_bce"), (sums / steps).tolist()))
            history.append({"epoch": epoch + 1, "train": train_m, "val": evaluate(model, val),
                            "seconds": time.perf_counter() - t0})  # fmt: skip
            checkpoint.save(ckpt_path, model, opt, history, cfg, cfg.out / "mdnrnn.pth")
            point("train:epoch", what="mdnrnn", epoch=epoch + 1)
            write_atomic(cfg.out / "history.json", json.dumps({"history": history, "vae": str(cfg.vae)}, indent=1))
            save_png(history, cfg.out)
            v = history[-1]["val"]
            bar.console.print(
                f"epoch {epoch + 1}: held-out NLL {v['nll_per_dim']:.3f}/dim, reward RMSE {v['reward_rmse']:.3f}, "
                f"off-track AUC {v['off_track_auc']:.3f}, {history[-1]['seconds']:.0f} s"
            )
    return {"history": history}


def main(args: argparse.Namespace) -> int:
    train_mdnrnn(from_args(TrainMDNRNNConfig, args), force=args.force)
    return 0
