"""What the molecule benchmarks (``moses.py``, ``zinc250k.py``) share: the training
options and the time-limited training run of a preset."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

from vaekit.config import load_preset
from vaekit.molecules import app
from vaekit.molecules.config import build_molecule_config

HERE = Path(__file__).resolve().parent


def add_training_args(p: argparse.ArgumentParser, preset: str) -> None:
    p.add_argument("--train-minutes", type=float, default=80.0)
    p.add_argument("--limit", type=int, default=None, help="train on a seeded subset of N molecules")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    p.add_argument("--set", dest="overrides", action="append", default=[], help="extra preset override")
    p.add_argument("--out", type=Path, default=HERE / "runs" / preset)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--results-name", default=preset)


def train_preset(args: argparse.Namespace, preset: str, log) -> tuple[Path, float, list[str]]:
    """Train ``preset`` for at most ``--train-minutes``; the run directory, the training
    seconds and the overrides used."""
    torch.set_num_threads(args.threads)
    overrides = [f"train.device={args.device}", f"train.precision={args.precision}",
                 f"train.max_seconds={args.train_minutes * 60}", f"train.threads={args.threads}", *args.overrides]
    if args.limit:
        overrides.append(f"data.limit={args.limit}")
    config = build_molecule_config(load_preset(preset), overrides)
    started = time.perf_counter()
    run = app.train(config, args.out, overwrite=True, progress=False, log=log,
                    command=f"benchmarks/{preset}.py " + " ".join(sys.argv[1:]))
    return run, time.perf_counter() - started, overrides
