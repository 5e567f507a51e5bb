"""Train the VAE on collected frames (World Models' V).

    vmc-duel train vae [--data data/rollouts] [--epochs 5] [--out data/checkpoints/vae] [--force]

Reads every episode shard, holds out episodes whose index is 9 mod 10, and trains with
World Models' loss (summed L2 + KL with 0.5 nats per dimension of free bits). Each epoch
writes a checkpoint (model, optimiser, history) and the run resumes from it; a finished
run is not retrained or overwritten without --force. Writes the loss curve and held-out
frames beside their reconstructions as PNGs next to the checkpoint.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from engine.files import save_figure, write_atomic
from engine.progress import point
from train import checkpoint
from train.config import TrainVAEConfig, from_args
from train.models import VAE, VAEConfig, vae_loss
from train.shards import list_episodes, load_episode

VAL_EVERY = 10  # episode index % VAL_EVERY == VAL_EVERY - 1 -> held out


def load_frames(data: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """All frames of all shards: (train (N, 64, 64, 3) uint8, val (M, 64, 64, 3) uint8, files)."""
    paths = list_episodes(data)
    if not paths:
        raise ValueError(f"no episode shards in {data}: run `vmc-duel train collect` first")
    train, val = [], []
    for p in paths:
        index = int(p.stem.split("_")[1])
        (val if index % VAL_EVERY == VAL_EVERY - 1 else train).append(load_episode(p)["frames"])
    if not val:
        raise ValueError(f"{data}: fewer than {VAL_EVERY} episodes, none held out")
    return np.concatenate(train), np.concatenate(val), [p.name for p in paths]


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """(B, 64, 64, 3) uint8 -> (B, 3, 64, 64) float32 in [0, 1]."""
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float().div_(255.0)


@torch.no_grad()
def evaluate(model: VAE, frames: np.ndarray, cfg: TrainVAEConfig) -> dict[str, float]:
    model.eval()
    totals = np.zeros(3)
    for i in range(0, len(frames), 500):
        x = to_tensor(frames[i : i + 500])
        mu, logvar = model.encode(x)
        recon = model.decode(mu)
        loss, r, kl = vae_loss(x, recon, mu, logvar, cfg.kl_tolerance)
        totals += np.array([loss.item(), r.item(), kl.item()]) * len(x)
    model.train()
    loss, r, kl = totals / len(frames)
    return {"loss": loss, "recon": r, "kl": kl}


def save_pngs(model: VAE, val: np.ndarray, history: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idx = np.linspace(0, len(val) - 1, 8).astype(int)
    with torch.no_grad():
        model.eval()
        recon = model.decode(model.encode(to_tensor(val[idx]))[0])
        model.train()
    recon = (recon.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    fig, axes = plt.subplots(2, 8, figsize=(16, 4.4))
    for k in range(8):
        axes[0, k].imshow(val[idx[k]])
        axes[1, k].imshow(recon[k])
        axes[0, k].axis("off")
        axes[1, k].axis("off")
    axes[0, 0].set_title("held-out frames", loc="left")
    axes[1, 0].set_title("VAE reconstructions (z = mu)", loc="left")
    fig.tight_layout()
    save_figure(fig, out / "vae_reconstructions.png", dpi=80)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    ep = [h["epoch"] for h in history]
    ax.plot(ep, [h["train_loss"] for h in history], "o-", label="train loss")
    ax.plot(ep, [h["val"]["loss"] for h in history], "o-", label="held-out loss")
    ax.plot(ep, [h["val"]["kl"] for h in history], "s--", label="held-out KL")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss per frame (summed L2 + KL)")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title("VAE training")
    fig.tight_layout()
    save_figure(fig, out / "vae_loss.png", dpi=80)
    plt.close(fig)


def train_vae(cfg: TrainVAEConfig, force: bool = False) -> dict:
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    cfg.out.mkdir(parents=True, exist_ok=True)
    ckpt_path = cfg.out / "checkpoint.pt"
    model = VAE(VAEConfig())
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    history = checkpoint.resume(ckpt_path, model, opt, cfg.epochs, "VAE") if not force else []

    train, val, files = load_frames(cfg.data)
    print(f"{len(train)} training frames, {len(val)} held-out frames from {len(files)} episodes")
    rng = np.random.default_rng([cfg.seed, len(history)])
    steps = len(train) // cfg.batch_size
    columns = (TextColumn("vae epoch {task.fields[epoch]}"), BarColumn(), TextColumn("{task.fields[info]}"),
               TimeRemainingColumn())  # fmt: skip
    with Progress(*columns) as bar:
        for epoch in range(len(history), cfg.epochs):
            task = bar.add_task("", total=steps, epoch=epoch + 1, info="")
            order = rng.permutation(len(train))
            t0, running = time.perf_counter(), 0.0
            for s in range(steps):
                x = to_tensor(train[np.sort(order[s * cfg.batch_size : (s + 1) * cfg.batch_size])])
                recon, mu, logvar = model(x)
                loss, r, kl = vae_loss(x, recon, mu, logvar, cfg.kl_tolerance)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                point("train:batch", what="vae", epoch=epoch + 1, batch=s + 1)
                running += loss.item()
                if s % 20 == 0:
                    fps = (s + 1) * cfg.batch_size / (time.perf_counter() - t0)
                    bar.update(task, completed=s + 1, info=f"loss {running / (s + 1):.1f} | {fps:.0f} frames/s")
            bar.update(task, completed=steps)
            history.append({
                "epoch": epoch + 1, "train_loss": running / steps, "val": evaluate(model, val, cfg),
                "seconds": time.perf_counter() - t0,
            })  # fmt: skip
            checkpoint.save(ckpt_path, model, opt, history, cfg, cfg.out / "vae.pth")
            point("train:epoch", what="vae", epoch=epoch + 1)
            write_atomic(cfg.out / "history.json", json.dumps({"history": history, "files": files}, indent=1))
            save_pngs(model, val, history, cfg.out)
            v = history[-1]["val"]
            bar.console.print(
                f"epoch {epoch + 1}: train {history[-1]['train_loss']:.1f}, held-out {v['loss']:.1f} "
                f"(recon {v['recon']:.1f}, KL {v['kl']:.1f}), {history[-1]['seconds']:.0f} s"
            )
    return {"history": history, "train_frames": len(train), "val_frames": len(val)}


def main(args: argparse.Namespace) -> int:
    train_vae(from_args(TrainVAEConfig, args), force=args.force)
    return 0
