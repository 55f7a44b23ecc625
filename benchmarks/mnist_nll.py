"""MNIST test NLL with k = 5000 importance samples (Burda et al. 2015 protocol).

Trains a preset on dynamically binarized MNIST (54k train / 6k validation from the 60k
training images) under a wall-clock budget, then estimates -log p(x) on all 10,000 test
images (binarized once with a fixed seed) with k importance samples. Each invocation
adds or replaces one row of ``benchmarks/results/mnist_nll.json``; ``metrics`` holds the
best row. Anchors: Burda et al. 2015 table 1 (VAE 86.76, IWAE k=50 84.78), Pythae's
reproduction of the VAE 89.78.

    VAEKIT_DATA_DIR=../shared/data python benchmarks/mnist_nll.py --preset mnist-made --train-minutes 60
    VAEKIT_DATA_DIR=../shared/data python benchmarks/mnist_nll.py --preset mnist-burda --train-minutes 20
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, now, read_results, versions, write_results  # noqa: E402

from vaekit.apps.image_data import load_image_data  # noqa: E402
from vaekit.builders import build_vae, image_vae_description  # noqa: E402
from vaekit.core import VAE  # noqa: E402
from vaekit.config import build_config, load_preset  # noqa: E402
from vaekit.metrics.elbo import elbo_pass  # noqa: E402
from vaekit.metrics.likelihood import bits_per_dim, iw_nll  # noqa: E402
from vaekit.train import Tensors, Trainer  # noqa: E402

ANCHORS = [
    ("Burda et al. 2015, VAE (1 stochastic layer, k=1 training)", 86.76),
    ("Burda et al. 2015, IWAE (1 stochastic layer, k=50)", 84.78),
    ("Pythae reproduction of the VAE", 89.78),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="mnist-made")
    p.add_argument("--train-minutes", type=float, default=60.0)
    p.add_argument("--iw-samples", type=int, default=5000)
    p.add_argument("--n-test", type=int, default=10000)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--run-dir", default=None, help="default: benchmarks/runs/<preset>")
    p.add_argument("--results-name", default="mnist_nll")
    p.add_argument("--eval-only", action="store_true",
                   help="evaluate the model a previous invocation trained into --run-dir (training time "
                        "and epochs are read from its metrics.jsonl)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    overrides = [f"train.max_seconds={args.train_minutes * 60}", *args.overrides]
    if args.threads:
        overrides.append(f"train.threads={args.threads}")
    config = build_config(load_preset(args.preset), overrides)
    run_dir = Path(args.run_dir or Path(__file__).parent / "runs" / args.preset)
    data = load_image_data(config)
    if args.eval_only:
        model = VAE.from_pretrained(run_dir / "model")
        history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        train_seconds, epochs = history[-1]["seconds"], len(history)
        stopped = "time_limit" if train_seconds >= config.train.max_seconds else "see metrics.jsonl"
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        model = build_vae(image_vae_description(config.model, data.shape, data.n_classes))
        trainer = Trainer(model, config.train, data.train, data.val, run_dir, data.transform(),
                          progress=False, log=lambda m: print(m, flush=True))
        trainer.callbacks.append(lambda r: print(
            f"epoch {r['epoch'] + 1} t={r['seconds']:.0f}s train {r['train_loss']:.2f} "
            f"val {r['val_loss']:.2f} kl {r['val_kl']:.2f} au {r['active_units']}", flush=True))
        t0 = time.perf_counter()
        result = trainer.fit()
        train_seconds, epochs, stopped = time.perf_counter() - t0, result.epochs, result.stopped
        model.save_pretrained(run_dir / "model")
        print(f"trained {epochs} epochs in {train_seconds:.0f}s ({stopped})", flush=True)

    test = Tensors(data.test.x[: args.n_test])
    done = [0]
    t1 = time.perf_counter()

    def progress(n):
        done[0] += n
        if done[0] % 1000 == 0:
            print(f"iw-nll {done[0]}/{len(test)} images, {time.perf_counter() - t1:.0f}s", flush=True)

    nll = iw_nll(model, test, k=args.iw_samples, chunk=config.eval.iw_chunk, batch_size=50, on_batch=progress)
    eval_seconds = time.perf_counter() - t1
    # the ELBO pass of the trainer's validation (same batch size and seed), on test images
    stats = elbo_pass(model, Tensors(data.test.x[: args.n_test]), batch_size=1000, seed=config.train.seed + 2)
    row = {
        "preset": args.preset,
        "config": config.model_dump(),
        "test_nll_nats": round(float(nll.mean()), 3),
        "test_nll_sem": round(float(nll.std() / len(nll) ** 0.5), 3),
        "test_elbo": round(stats.elbo, 3),
        "test_kl": round(stats.kl, 3),
        "active_units": stats.active_units,
        "bits_per_dim": round(bits_per_dim(float(nll.mean()), 784), 4),
        "iw_samples": args.iw_samples,
        "n_test": len(test),
        "epochs": epochs,
        "train_seconds": round(train_seconds, 1),
        "eval_seconds": round(eval_seconds, 1),
        "stopped": stopped,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    print(row, flush=True)

    previous = read_results(args.results_name) or {}
    rows = {**previous.get("rows", {}), args.preset: row}
    best = min(rows.values(), key=lambda r: r["test_nll_nats"])
    payload = {
        "benchmark": "mnist_nll",
        "date": now(),
        "machine": machine(),
        "versions": versions(),
        "command": " ".join(sys.argv),
        "config": {name: r["config"] for name, r in rows.items()},
        "metrics": {k: best[k] for k in ("test_nll_nats", "iw_samples", "n_test", "train_seconds")}
        | {"preset": best["preset"]},
        "rows": rows,
        "anchors": dict(ANCHORS),
    }
    lines = [
        "| model | test NLL (nats, k=%s) | test ELBO | KL | active units | epochs | train time |" % args.iw_samples,
        "|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows.values(), key=lambda r: r["test_nll_nats"]):
        lines.append(
            f"| vaekit `{r['preset']}` | **{r['test_nll_nats']:.2f}** ± {r['test_nll_sem']:.2f} | "
            f"{r['test_elbo']:.2f} | {r['test_kl']:.2f} | {r['active_units']} | {r['epochs']} | "
            f"{r['train_seconds'] / 60:.1f} min |"
        )
    for name, value in ANCHORS:
        lines.append(f"| {name} | {value:.2f} | | | | | |")
    m = payload["machine"]
    md = "\n".join(lines) + f"\n\nMachine: {m['cpu']}, {m['cores']} cores, torch {payload['versions']['torch']}; {payload['date']}.\n"
    write_results(args.results_name, payload, md)
    print(md)


if __name__ == "__main__":
    main()
