"""Wall-clock time to reach a fixed test ELBO on real MNIST: vaekit's default settings,
vaekit's fast settings and Pythae's pipeline, same 784-400-20 networks.

Each system trains one epoch at a time; after each epoch the test -ELBO (10,000 test
images binarized once with a fixed seed, one z sample per image, fixed seed) is measured
outside the clock. The time reported is training time only, until the first epoch whose
test -ELBO is at or below the target. The fast settings count only because they reach
the same target.

    VAEKIT_DATA_DIR=../shared/data python benchmarks/time_to_quality.py --target 100
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, now, versions, write_results  # noqa: E402
from throughput import HIDDEN, LATENT, pythae_vae  # noqa: E402

from vaekit.apps.image_data import dynamic_binarize, load_raw  # noqa: E402
from vaekit.builders import build_vae, image_vae_description  # noqa: E402
from vaekit.config import DataConfig, build_config  # noqa: E402
from vaekit.train import Tensors, Trainer  # noqa: E402


@torch.no_grad()
def neg_elbo(fn, x: torch.Tensor) -> float:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return float(np.mean([fn(x[i : i + 1000]) for i in range(0, len(x), 1000)]))


def vaekit_time(train_x, test_x, target, max_epochs, batch, lr, fast) -> dict:
    cfg = build_config({"model": {"architecture": "mlp", "latent_dim": LATENT, "hidden": [HIDDEN]},
                        "train": {"epochs": 1, "batch_size": batch, "lr": lr, "patience": None, "fast": fast}})
    torch.manual_seed(0)
    model = build_vae(image_vae_description(cfg.model, (1, 28, 28)))
    trainer = Trainer(model, cfg.train, Tensors(train_x), None, None, dynamic_binarize, progress=False)
    seconds, curve = 0.0, []
    for epoch in range(1, max_epochs + 1):
        trainer.config.epochs = epoch
        t = time.perf_counter()
        trainer.fit()
        seconds += time.perf_counter() - t
        value = neg_elbo(lambda xb: float(-model.elbo(xb).elbo.mean()), test_x)
        curve.append(round(value, 3))
        if value <= target:
            return {"seconds": round(seconds, 2), "epochs": epoch, "test_neg_elbo": value, "curve": curve}
    return {"seconds": None, "epochs": max_epochs, "test_neg_elbo": curve[-1], "curve": curve}


def pythae_time(train_x, test_x, target, max_epochs, batch, lr) -> dict:
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig

    torch.manual_seed(0)
    model = pythae_vae()
    data = torch.bernoulli(train_x)  # Pythae binarizes nothing itself: once, up front
    seconds, curve = 0.0, []
    with tempfile.TemporaryDirectory() as out:
        for epoch in range(1, max_epochs + 1):
            tc = BaseTrainerConfig(output_dir=out, num_epochs=1, learning_rate=lr, per_device_train_batch_size=batch,
                                   no_cuda=True)
            pipe = TrainingPipeline(model=model, training_config=tc)
            t = time.perf_counter()
            pipe(train_data=data, eval_data=None)
            seconds += time.perf_counter() - t
            model.eval()
            value = neg_elbo(lambda xb: float(model({"data": xb}).loss), test_x)
            curve.append(round(value, 3))
            if value <= target:
                return {"seconds": round(seconds, 2), "epochs": epoch, "test_neg_elbo": value, "curve": curve}
    return {"seconds": None, "epochs": max_epochs, "test_neg_elbo": curve[-1], "curve": curve}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", type=float, default=100.0, help="test -ELBO to reach, nats")
    p.add_argument("--max-epochs", type=int, default=40)
    p.add_argument("--fast-batch", type=int, default=1024)
    args = p.parse_args()
    x, _, tx, _ = load_raw(DataConfig(name="mnist"))
    train_x = torch.from_numpy(x)
    test_x = torch.from_numpy((np.random.default_rng(1234).random(tx.shape, dtype=np.float32) < tx).astype(np.float32))
    fast_lr = 1e-3 * (args.fast_batch / 128) ** 0.5
    results = {
        "vaekit_default": vaekit_time(train_x, test_x, args.target, args.max_epochs, 128, 1e-3, False),
        "vaekit_fast": vaekit_time(train_x, test_x, args.target, args.max_epochs, args.fast_batch, fast_lr, True),
        "pythae": pythae_time(train_x, test_x, args.target, args.max_epochs, 128, 1e-3),
    }
    for k, v in results.items():
        print(k, v, flush=True)
    best = min((v["seconds"] for k, v in results.items() if k.startswith("vaekit") and v["seconds"]), default=None)
    metrics = {"vaekit_seconds": best, "vaekit_default_seconds": results["vaekit_default"]["seconds"],
               "vaekit_fast_seconds": results["vaekit_fast"]["seconds"], "pythae_seconds": results["pythae"]["seconds"],
               "target_test_elbo": -args.target, "runs": results}
    payload = {"benchmark": "time_to_quality", "date": now(), "machine": machine(), "versions": versions("pythae"),
               "command": " ".join(sys.argv), "config": vars(args) | {"fast_lr": fast_lr}, "metrics": metrics}
    rows = [f"| {k} | {v['seconds'] if v['seconds'] is not None else 'not reached'} | {v['epochs']} | "
            f"{v['test_neg_elbo']:.2f} |" for k, v in results.items()]
    md = ("| system | seconds to test -ELBO <= %.0f | epochs | test -ELBO then |\n|---|---|---|---|\n" % args.target
          + "\n".join(rows) + f"\n\n{payload['machine']['cpu']}, torch {payload['versions']['torch']}; {payload['date']}.\n")
    write_results("time_to_quality", payload, md)
    print(md)


if __name__ == "__main__":
    main()
