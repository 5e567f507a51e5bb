"""Per-epoch checkpoints shared by the training scripts: resume, refuse, save atomically."""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from pathlib import Path

import torch

from engine.files import write_atomic


def torch_load(path: Path, what: str):
    """torch.load(path, weights_only=True); ValueError naming the file when it is missing, a directory,
    truncated or not a torch file (never a traceback from the unpickler)."""
    import pickle
    import zipfile

    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: no {what} found")
    if path.is_dir():
        raise ValueError(f"{path}: a directory, not a {what}")
    try:
        return torch.load(path, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        reason = " ".join(str(e).split())[:160]
        raise ValueError(f"{path}: not a readable {what} (truncated or not a torch file: {reason})") from None


def resume(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, epochs: int, what: str) -> list[dict]:
    """Load `path` into model and optimiser if it exists; returns the epoch history so far.

    Raises ValueError naming the file when it belongs to another architecture, or when it
    already has `epochs` epochs (more epochs continue it; --force starts over)."""
    if not path.exists():
        return []
    ckpt = torch_load(path, f"{what} checkpoint")
    try:
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a checkpoint of this {what} ({str(e)[:200]}); --force starts over") from None
    opt.load_state_dict(ckpt["optimizer"])
    history = json.loads(ckpt["history"])
    if len(history) >= epochs:
        raise ValueError(
            f"{path} already has {len(history)} epochs (asked for {epochs}): "
            "raise --epochs to continue it, or --force to train from scratch"
        )
    print(f"resuming {path} after epoch {len(history)}")
    return history


def torch_save(obj, path: Path) -> None:
    """torch.save `obj` to `path` atomically (engine.files): serialised in memory first, so a full disk is an
    OSError naming the path (torch's own writer fails with an opaque RuntimeError) and the old file stays."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_atomic(path, buffer.getvalue())


def save(
    path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, history: list[dict], cfg, weights: Path
) -> None:
    """Write the bare state dict `weights`, then the checkpoint (model, optimiser, history), each atomically
    (engine.files: temp file, fsync, rename). The checkpoint is the commit point: a kill between the two leaves
    the previous epoch's checkpoint, whose resume redoes the epoch and writes `weights` again.
    WriteError names the file that could not be written; files already saved stay as they were."""
    torch_save(model.state_dict(), weights)
    torch_save({"model": model.state_dict(), "optimizer": opt.state_dict(), "history": json.dumps(history),
                "config": json.dumps(asdict(cfg), default=str)}, path)  # fmt: skip
