"""Where the fast path's test-NLL gap comes from: batch size or bf16.

The throughput benchmark's quality check finds the fast settings (compile + bf16, batch
1024) a little worse in test NLL than the default (fp32, batch 128) after the same number
of epochs. This trains the 784-400-20 MNIST VAE for the same epochs four ways, changing
one thing at a time, and scores each by IW-NLL on a fixed subset of the test set:
fp32 batch 128 (default), fp32 batch 1024, bf16 batch 1024 (same lr), fp32 batch 1024 with
a larger lr.

    VAEKIT_DATA_DIR=../shared/data python benchmarks/fast_nll_gap.py --epochs 10
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, now, versions, write_results  # noqa: E402

from vaekit.apps.image_data import dynamic_binarize, load_raw  # noqa: E402
from vaekit.builders import build_vae, image_vae_description  # noqa: E402
from vaekit.config import DataConfig, build_config  # noqa: E402
from vaekit.metrics.likelihood import iw_nll  # noqa: E402
from vaekit.train import Tensors, Trainer  # noqa: E402

SETTINGS = [
    ("fp32, batch 128, lr 1e-3 (default)", 128, 1e-3, "fp32"),
    ("fp32, batch 1024, lr 2.8e-3", 1024, 2.8e-3, "fp32"),
    ("bf16, batch 1024, lr 2.8e-3", 1024, 2.8e-3, "bf16"),
    ("fp32, batch 1024, lr 5e-3", 1024, 5e-3, "fp32"),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--test-images", type=int, default=2000)
    p.add_argument("--k", type=int, default=200)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    train_x, _, test_x, _ = load_raw(DataConfig(name="mnist"))
    x = torch.from_numpy(train_x[:54000])
    test = torch.bernoulli(torch.from_numpy(test_x[: args.test_images]), generator=torch.Generator().manual_seed(0))
    rows = []
    for name, batch, lr, precision in SETTINGS:
        cfg = build_config({"model": {"architecture": "mlp", "latent_dim": 20, "hidden": [400]},
                            "train": {"epochs": args.epochs, "batch_size": batch, "lr": lr, "patience": None,
                                      "precision": precision}})
        torch.manual_seed(0)
        model = build_vae(image_vae_description(cfg.model, (1, 28, 28)))
        start = time.perf_counter()
        Trainer(model, cfg.train, Tensors(x), None, None, dynamic_binarize, progress=False).fit()
        seconds = time.perf_counter() - start
        nll = float(iw_nll(model.cpu(), Tensors(test), k=args.k, compile=False).mean())
        rows.append({"settings": name, "batch": batch, "lr": lr, "precision": precision,
                     "test_nll": round(nll, 3), "train_seconds": round(seconds, 1)})
        print(rows[-1], flush=True)
    payload = {"benchmark": "fast_nll_gap", "date": now(), "machine": machine(), "versions": versions(),
               "command": "python benchmarks/fast_nll_gap.py " + " ".join(sys.argv[1:]), "config": vars(args),
               "rows": rows}
    lines = [f"MNIST 784-400-20 VAE, {args.epochs} epochs on 54,000 images each; test NLL by importance sampling "
             f"(k = {args.k}) on the first {args.test_images} test images, binarized once.", "",
             "| settings | test NLL (nats) | train s |", "|---|---|---|"]
    lines += [f"| {r['settings']} | {r['test_nll']:.2f} | {r['train_seconds']:.0f} |" for r in rows]
    lines += ["", f"{payload['machine'].get('cpu')}, torch {torch.__version__}; {payload['date']}."]
    write_results("fast_nll_gap", payload, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
