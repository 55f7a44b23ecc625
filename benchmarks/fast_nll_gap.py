"""Where the fast path's test-NLL gap comes from: batch size or bf16.

The throughput benchmark's quality check finds the fast settings (compile + bf16, batch
1024) a little worse in test NLL than the default (fp32, batch 128) after the same number
of epochs. This trains the 784-400-20 MNIST VAE for the same epochs four ways, changing
one thing at a time, and scores each by IW-NLL on a fixed subset of the test set:
fp32 batch 128 (default), fp32 batch 1024, bf16 batch 1024 (same lr), fp32 batch 1024 with
a larger lr.

    VAEKIT_DATA_DIR=../shared/data python benchmarks/fast_nll_gap.py --epochs 10

``--setting fast,1024,4e-3[,DECAY[,BETA2]]`` (repeatable; an optional per-epoch lr decay and Adam's beta2; ``fp32`` / ``bf16`` / ``fast`` = compile + bf16)
scores other settings, and ``--eval-on val`` scores them on the 6,000 training images
held out of training (the last 6,000), so that fast settings can be chosen without the
test set.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, now, versions, write_results  # noqa: E402
from throughput import ADAM_BETA2, SELECTION_SPLIT, mnist_trainer  # noqa: E402

from vaekit.apps.image_data import load_raw  # noqa: E402
from vaekit.config import DataConfig  # noqa: E402
from vaekit.metrics.likelihood import iw_nll  # noqa: E402
from vaekit.train import Tensors  # noqa: E402

SETTINGS = [
    ("fp32, batch 128, lr 1e-3 (default)", 128, 1e-3, "fp32", 1.0, ADAM_BETA2),
    ("fp32, batch 1024, lr 2.8e-3", 1024, 2.8e-3, "fp32", 1.0, ADAM_BETA2),
    ("bf16, batch 1024, lr 2.8e-3", 1024, 2.8e-3, "bf16", 1.0, ADAM_BETA2),
    ("fp32, batch 1024, lr 5e-3", 1024, 5e-3, "fp32", 1.0, ADAM_BETA2),
]


def _setting(text: str) -> tuple[str, int, float, str, float, float]:
    precision, batch, lr, *rest = text.split(",")
    if precision not in ("fp32", "bf16", "fast") or len(rest) > 2:
        raise SystemExit(f"--setting {text!r}: expected PRECISION,BATCH,LR[,DECAY[,BETA2]] with precision "
                         "fp32, bf16 or fast")
    decay = float(rest[0]) if rest else 1.0
    beta2 = float(rest[1]) if len(rest) > 1 else ADAM_BETA2
    name = (f"{precision}, batch {batch}, lr {lr}" + (f", lr x{decay:g} an epoch" if decay != 1.0 else "")
            + (f", Adam beta2 {beta2:g}" if beta2 != ADAM_BETA2 else ""))
    return name, int(batch), float(lr), precision, decay, beta2


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--test-images", type=int, default=2000)
    p.add_argument("--k", type=int, default=200)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--setting", action="append", default=None, metavar="PRECISION,BATCH,LR[,DECAY[,BETA2]]",
                   help="a setting to score (repeatable); PRECISION is fp32, bf16 or fast (compile + bf16); "
                        "DECAY multiplies the lr after each epoch")
    p.add_argument("--eval-on", choices=["test", "val"], default="test")
    p.add_argument("--name", default="fast_nll_gap", help="results file name")
    p.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="training seeds (weights, shuffling, binarization, noise); several give a mean and spread")
    args = p.parse_args()
    settings = SETTINGS if not args.setting else [_setting(s) for s in args.setting]
    if args.threads:
        torch.set_num_threads(args.threads)
    train_x, _, test_x, _ = load_raw(DataConfig(name="mnist"))
    x = torch.from_numpy(train_x[:SELECTION_SPLIT])
    scored = test_x if args.eval_on == "test" else train_x[SELECTION_SPLIT:]
    test = torch.bernoulli(torch.from_numpy(scored[: args.test_images]), generator=torch.Generator().manual_seed(0))
    rows = []
    for seed in args.seeds:
        for name, batch, lr, precision, decay, beta2 in settings:
            fast = precision == "fast"
            trainer = mnist_trainer(x, args.epochs, batch, lr, fast, precision="auto" if fast else precision,
                                    lr_decay=decay, seed=seed, beta2=beta2)
            model = trainer.model
            start = time.perf_counter()
            trainer.fit()
            seconds = time.perf_counter() - start
            nll = float(iw_nll(model.cpu(), Tensors(test), k=args.k, compile=False).mean())
            rows.append({"settings": name, "seed": seed, "batch": batch, "lr": lr, "precision": precision,
                         "beta2": beta2,
                         f"{args.eval_on}_nll": round(nll, 3), "train_seconds": round(seconds, 1)})
            print(rows[-1], flush=True)
    payload = {"benchmark": "fast_nll_gap", "date": now(), "machine": machine(), "versions": versions(),
               "command": "python benchmarks/fast_nll_gap.py " + " ".join(sys.argv[1:]), "config": vars(args),
               "rows": rows}
    where = "test images" if args.eval_on == "test" else "held-out training images (54,000-59,999)"
    lines = [f"MNIST 784-400-20 VAE, {args.epochs} epochs on 54,000 images each; {args.eval_on} NLL by importance "
             f"sampling (k = {args.k}) on the first {args.test_images} {where}, binarized once.", "",
             f"| settings | {args.eval_on} NLL (nats), mean ± std over seeds {args.seeds} | train s |", "|---|---|---|"]
    for name, *_ in settings:
        nlls = np.array([r[args.eval_on + "_nll"] for r in rows if r["settings"] == name])
        secs = np.mean([r["train_seconds"] for r in rows if r["settings"] == name])
        lines.append(f"| {name} | {nlls.mean():.2f}" + (f" ± {nlls.std(ddof=1):.2f}" if len(nlls) > 1 else "")
                     + f" | {secs:.0f} |")
    lines += ["", f"{payload['machine'].get('cpu')}, torch {torch.__version__}; {payload['date']}."]
    write_results(args.name, payload, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
