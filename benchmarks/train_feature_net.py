"""Train the bundled MNIST feature net of the domain FID (``vaekit.metrics.quality``).

Trains :class:`vaekit.metrics.quality.FeatureNet` on the 60,000 MNIST training images
(grey levels / 255, not binarized), reports accuracy on the 10,000 test images, and
writes ``src/vaekit/metrics/assets/mnist_classifier.safetensors`` plus a JSON record
(``mnist_classifier.json``) of test accuracy, epochs, seed, versions and date. Changing
this file changes every domain FID: numbers are only comparable under the same weights.

    VAEKIT_DATA_DIR=../shared/data python benchmarks/train_feature_net.py --epochs 4
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, now, versions  # noqa: E402

from vaekit.data.fetch import fetch  # noqa: E402
from vaekit.data.idx import read_idx  # noqa: E402
from vaekit.data.images import to_nchw  # noqa: E402
from vaekit.metrics.quality import ASSET_NAME, save_feature_net, train_feature_net  # noqa: E402
from vaekit.train.checkpoint import atomic_write_text  # noqa: E402

ASSETS = Path(__file__).resolve().parents[1] / "src" / "vaekit" / "metrics" / "assets"


def load_mnist() -> tuple[torch.Tensor, ...]:
    files = fetch("mnist")
    x = to_nchw(read_idx(files["train-images-idx3-ubyte.gz"]), "mnist train")
    y = read_idx(files["train-labels-idx1-ubyte.gz"]).astype(np.int64)
    tx = to_nchw(read_idx(files["t10k-images-idx3-ubyte.gz"]), "mnist test")
    ty = read_idx(files["t10k-labels-idx1-ubyte.gz"]).astype(np.int64)
    return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in (x, y, tx, ty))


@torch.inference_mode()
def accuracy(net, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    correct = sum(int((net(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
                  for i in range(0, x.shape[0], batch_size))
    return correct / x.shape[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--out", type=Path, default=ASSETS / ASSET_NAME)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    x, y, tx, ty = load_mnist()
    print(f"MNIST: train {tuple(x.shape)}, test {tuple(tx.shape)}; {args.epochs} epochs, seed {args.seed}")
    t0 = time.perf_counter()
    net = train_feature_net(x, y, (1, 28, 28), 10, epochs=args.epochs, batch_size=args.batch_size,
                            lr=args.lr, seed=args.seed)
    train_s = time.perf_counter() - t0
    train_acc, test_acc = accuracy(net, x, y), accuracy(net, tx, ty)
    print(f"trained in {train_s:.0f} s: train accuracy {train_acc:.4f}, test accuracy {test_acc:.4f}")

    record = {
        "data": "mnist", "n_train": int(x.shape[0]), "n_test": int(tx.shape[0]), "pixels": "grey levels / 255",
        "config": net.config, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
        "seed": args.seed, "train_accuracy": round(train_acc, 5), "test_accuracy": round(test_acc, 5),
        "train_seconds": round(train_s, 1), "torch": torch.__version__, "date": now(),
        "versions": versions(), "machine": machine(),
    }
    save_feature_net(net, args.out, info={k: record[k] for k in ("data", "epochs", "seed", "test_accuracy")})
    record["sha256"] = hashlib.sha256(args.out.read_bytes()).hexdigest()
    record["bytes"] = args.out.stat().st_size
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out} ({record['bytes']} bytes) and {args.out.with_suffix('.json').name}")


if __name__ == "__main__":
    main()
