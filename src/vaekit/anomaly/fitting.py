"""Training a detector's VAE with the shared :class:`~vaekit.train.Trainer`.

A random ``val_size`` share of the rows (or windows) is held out; the trainer keeps the
weights of the epoch with the best validation -ELBO. Training length is counted in
optimizer steps, so that a 150-row table and a 100,000-row table get the same number
of updates; a small table is repeated so that one epoch (validation + checkpoint) spans
at least ``EPOCH_STEPS`` steps.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Callable

import torch

from vaekit.config import BetaConfig, TrainConfig
from vaekit.core import VAE
from vaekit.train import Tensors, Trainer

EPOCH_STEPS = 50


def train_packed(model: VAE, x: torch.Tensor, *, val_size: float, batch_size: int, max_steps: int, lr: float,
                 weight_decay: float = 0.0, beta: float = 1.0, patience: int | None = None, seed: int = 0,
                 threads: int | None = None, run_dir: str | Path | None = None, transform: Callable | None = None,
                 progress: bool = False, log: Callable[[str], None] | None = None) -> list[dict]:
    """Fit ``model`` on packed inputs ``x``; returns the per-epoch history."""
    n = len(x)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = int(round(val_size * n)) if n >= 50 else 0
    train_idx = order[n_val:]
    batch = min(int(batch_size), len(train_idx))
    reps = max(1, math.ceil(EPOCH_STEPS * batch / len(train_idx)))
    train = Tensors(x[train_idx.repeat(reps)])
    val = Tensors(x[order[:n_val]]) if n_val else None
    steps_per_epoch = math.ceil(len(train) / batch)
    config = TrainConfig(epochs=max(1, math.ceil(max_steps / steps_per_epoch)), batch_size=batch, lr=lr,
                         weight_decay=weight_decay, patience=patience,
                         beta=BetaConfig(schedule="constant", value=float(beta)), seed=seed, threads=threads)
    with tempfile.TemporaryDirectory(prefix="vaekit-anomaly-") as tmp:
        trainer = Trainer(model, config, train, val, run_dir or tmp, transform=transform, progress=progress,
                          log=log or (lambda _m: None))
        history = trainer.fit().history
    model.cpu().eval()
    return history
