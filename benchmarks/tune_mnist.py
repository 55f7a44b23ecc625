"""Hyperparameter search on MNIST: does `vaekit tune` beat the default preset?

One Optuna study (TPE, median pruning, SQLite) over the ``search:`` space of the ``mnist``
preset; every trial and the default preset get the same training budget (epochs and wall
time per run, set below). The objective is the validation IW-NLL (k = 50, on the first
2,000 of the 6,000 held-out training images); the best trial and the default are then scored on the 10,000
test images with IW-NLL (k = ``--test-k``, Burda et al. 2015).

    python benchmarks/tune_mnist.py --trials 20 --budget-minutes 40
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, now, versions, write_results  # noqa: E402

from vaekit.apps import images  # noqa: E402
from vaekit.config import build_config, load_preset  # noqa: E402
from vaekit.metrics.likelihood import iw_nll  # noqa: E402
from vaekit.tune import report, tune  # noqa: E402

HERE = Path(__file__).resolve().parent


def test_nll(run_dir: Path, k: int) -> float:
    model, _, data = images.load_run(run_dir)
    return float(iw_nll(model, data.test, k=k, chunk=50, batch_size=100).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--budget-minutes", type=float, default=40, help="wall time of the whole search")
    ap.add_argument("--epochs", type=int, default=30, help="epoch cap of each run")
    ap.add_argument("--run-seconds", type=float, default=90, help="training time cap of each run")
    ap.add_argument("--test-k", type=int, default=200)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=HERE / "runs" / "tune_mnist")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    budget = [f"train.epochs={args.epochs}", f"train.max_seconds={args.run_seconds}", "train.patience=5"]
    base = load_preset("mnist")
    from vaekit.config import apply_override

    for o in budget:
        apply_override(base, o)
    args.out.mkdir(parents=True, exist_ok=True)
    db = args.out / "tune.db"
    db.unlink(missing_ok=True)
    storage = f"sqlite:///{db}"
    start = time.perf_counter()
    summary = tune("mnist", base, args.out, storage, "mnist", args.trials, timeout=args.budget_minutes * 60,
                   iw_samples=50, seed=0)
    search_seconds = time.perf_counter() - start

    default_dir = args.out / "default"
    images.train(build_config(load_preset("mnist"), budget), default_dir, overwrite=True, progress=False,
                 log=lambda m: None, figures=False)
    best_dir = args.out / "best"
    best_nll, default_nll = test_nll(best_dir, args.test_k), test_nll(default_dir, args.test_k)
    table = report(storage, "mnist", HERE / "results" / "tune_mnist")
    payload = {
        "benchmark": "tune_mnist", "date": now(), "machine": machine(), "versions": versions("optuna"),
        "protocol": {"search_space": {k: v for k, v in load_preset("mnist")["search"].items()},
                     "budget_per_run": budget, "objective": "validation IW-NLL, k=50, first 2000 validation images",
                     "test_k": args.test_k, "sampler": "TPE", "pruner": "median"},
        "metrics": {"best_test_nll_nats": best_nll, "default_test_nll_nats": default_nll,
                    "trials": summary["trials"], "states": summary["states"], "wall_seconds": search_seconds,
                    "best_params": summary.get("best_params"), "best_val_iw_nll": summary.get("best_value")},
    }
    md = (f"MNIST hyperparameter search: {summary['trials']} trials ({summary['states']}) in "
          f"{search_seconds / 60:.1f} min on {machine()['cpu']}, {now()}.\n\n"
          f"| model | test IW-NLL (k={args.test_k}), nats |\n|---|---|\n"
          f"| default `mnist` preset, same budget | {default_nll:.2f} |\n| best trial | {best_nll:.2f} |\n\n"
          f"Best parameters: `{summary.get('best_params')}`\n\n" + table)
    write_results("tune_mnist", payload, md)
    print(md)


if __name__ == "__main__":
    main()
