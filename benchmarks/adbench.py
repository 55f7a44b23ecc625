"""vaekit's VAEDetector on the 20 classical ADBench sets, side by side with PyOD's IForest,
ECOD, KNN and PyOD's own VAE, in the same run.

Protocol: ADBench's unsupervised setting (Han et al. 2022, "ADBench: Anomaly Detection
Benchmark"): for each set and seed, a 70/30 split stratified on the label; every method
fits on the training split *without labels* (anomalies included) and scores the test
split; features are standardized with statistics of the training split; ROC-AUC and
average precision on the test split; mean over 3 seeds (0, 1, 2), then the mean over
sets. Large training splits (cover, http, magic.gamma, shuttle, smtp) are subsampled to
``--cap`` rows (default 10,000), the same rows for every method; test splits are never
subsampled. Every method runs with its library defaults (PyOD 3.6.7: IForest(n_estimators=100),
ECOD(), KNN(n_neighbors=5, method='largest'), VAE(epoch_num=30, batch_size=32, latent_dim=2,
beta=1, capacity=0)); vaekit with VAEDetector's defaults. One torch thread each.

    python benchmarks/adbench.py                       # writes benchmarks/results/adbench.{json,md}
    python benchmarks/adbench.py --sets cardio,thyroid --seeds 1 --no-write
    python benchmarks/adbench.py --methods vaekit --vaekit score=iw_nll --name adbench_iw_nll   # an ablation

Partial results are kept in ``benchmarks/runs/adbench_partial.json`` so that an
interrupted run continues where it stopped (``--fresh`` starts over; ``--no-write`` runs
leave that file alone).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import yaml
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, now, versions, write_results  # noqa: E402

from vaekit.anomaly import VAEDetector  # noqa: E402
from vaekit.anomaly.data import load_adbench  # noqa: E402
from vaekit.data.registry import DATASETS  # noqa: E402

HERE = Path(__file__).resolve().parent
PARTIAL = HERE / "runs" / "adbench_partial.json"
METHODS = ["vaekit", "iforest", "ecod", "knn", "pyod_vae"]
SETS = sorted(k[len("adbench-"):] for k in DATASETS if k.startswith("adbench-"))


def make(method: str, seed: int, overrides: dict | None = None):
    if method == "vaekit":
        return VAEDetector(random_state=seed, threads=1, **(overrides or {}))
    if method == "iforest":
        from pyod.models.iforest import IForest

        return IForest(random_state=seed)
    if method == "ecod":
        from pyod.models.ecod import ECOD

        return ECOD()
    if method == "knn":
        from pyod.models.knn import KNN

        return KNN()
    if method == "pyod_vae":
        from pyod.models.vae import VAE

        return VAE(random_state=seed, verbose=0)
    raise ValueError(method)


def split(X, y, seed: int, cap: int):
    """ADBench's split: 70/30 stratified; the training split capped at ``cap`` rows; standardized."""
    X_tr, X_te, _, y_te = train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)
    if cap and len(X_tr) > cap:
        X_tr = X_tr[np.random.default_rng(seed).choice(len(X_tr), cap, replace=False)]
    scaler = StandardScaler().fit(X_tr)
    return scaler.transform(X_tr), scaler.transform(X_te), y_te


def run_one(method: str, X_tr, X_te, y_te, seed: int, overrides: dict | None = None) -> dict:
    torch.manual_seed(seed)
    det = make(method, seed, overrides)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det.fit(X_tr)
        fit_s = time.perf_counter() - start
        scores = det.decision_function(X_te)
    score_s = time.perf_counter() - start - fit_s
    scores = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0, posinf=1e300, neginf=-1e300)
    return {"roc_auc": float(roc_auc_score(y_te, scores)), "ap": float(average_precision_score(y_te, scores)),
            "fit_seconds": round(fit_s, 3), "score_seconds": round(score_s, 3)}


def summarise(partial: dict, sets: list[str], methods: list[str], seeds: list[int]) -> dict:
    per = {}
    for s in sets:
        per[s] = {}
        for m in methods:
            runs = [partial.get(f"{s}|{seed}|{m}") for seed in seeds]
            runs = [r for r in runs if r]
            if not runs:
                continue
            auc, ap = [r["roc_auc"] for r in runs], [r["ap"] for r in runs]
            per[s][m] = {"roc_auc": float(np.mean(auc)), "roc_auc_std": float(np.std(auc)), "ap": float(np.mean(ap)),
                         "ap_std": float(np.std(ap)), "fit_seconds": float(np.mean([r["fit_seconds"] for r in runs])),
                         "score_seconds": float(np.mean([r["score_seconds"] for r in runs])), "seeds": len(runs)}
    complete = [m for m in methods if all(m in per[s] for s in sets)]
    mean = lambda key, m: float(np.mean([per[s][m][key] for s in sets]))  # noqa: E731
    by_seed = {m: {str(seed): float(np.mean([partial[f"{s}|{seed}|{m}"]["roc_auc"] for s in sets]))
                   for seed in seeds if all(f"{s}|{seed}|{m}" in partial for s in sets)} for m in complete}
    return {"mean_roc_auc": {m: mean("roc_auc", m) for m in complete},
            "mean_roc_auc_by_seed": by_seed,
            "mean_ap": {m: mean("ap", m) for m in complete},
            "total_fit_seconds": {m: float(sum(per[s][m]["fit_seconds"] for s in sets)) for m in complete},
            "per_dataset": per}


def markdown(metrics: dict, sets: list[str], methods: list[str], header: str) -> str:
    per = metrics["per_dataset"]
    lines = [header, "", "ROC-AUC on the test split, mean over seeds (best per set in bold):", "",
             "| set | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for s in sets:
        cells = []
        best = max((per[s][m]["roc_auc"] for m in methods if m in per[s]), default=None)
        for m in methods:
            v = per[s].get(m, {}).get("roc_auc")
            cells.append("" if v is None else (f"**{v:.3f}**" if v == best else f"{v:.3f}"))
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    for key, label in (("mean_roc_auc", "mean ROC-AUC"), ("mean_ap", "mean AP")):
        lines.append(f"| **{label}** | " + " | ".join(
            f"{metrics[key][m]:.4f}" if m in metrics[key] else "" for m in methods) + " |")
    lines.append("| fit seconds (all sets, per seed) | " + " | ".join(
        f"{metrics['total_fit_seconds'][m]:.0f}" if m in metrics["total_fit_seconds"] else "" for m in methods) + " |")
    lines += ["", "AP per set:", "", "| set | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for s in sets:
        lines.append(f"| {s} | " + " | ".join(
            f"{per[s][m]['ap']:.3f}" if m in per[s] else "" for m in methods) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sets", default="", help="comma-separated subset (default: all 20)")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--cap", type=int, default=10000, help="training rows per set (0 = no cap)")
    p.add_argument("--fresh", action="store_true", help="ignore partial results of an earlier run")
    p.add_argument("--no-write", action="store_true", help="do not write benchmarks/results")
    p.add_argument("--vaekit", action="append", default=[], metavar="KEY=VALUE",
                   help="VAEDetector setting for an ablation, e.g. --vaekit score=iw_nll (value parsed as YAML)")
    p.add_argument("--name", default="adbench", help="results name: benchmarks/results/NAME.{json,md}")
    args = p.parse_args(argv)
    overrides = {k: yaml.safe_load(v) for k, v in (o.split("=", 1) for o in args.vaekit)}
    partial_path = PARTIAL.with_name(f"{args.name}_partial.json")
    torch.set_num_threads(1)
    sets = [s for s in SETS if not args.sets or s in args.sets.lower().split(",")]
    methods = [m for m in args.methods.split(",") if m]
    seeds = list(range(args.seeds))
    keep = not args.no_write  # a trial run (--no-write) neither reads nor writes the partial file
    partial = {} if args.fresh or not keep or not partial_path.exists() else json.loads(partial_path.read_text())
    if partial.get("_cap", args.cap) != args.cap:
        partial = {}
    partial["_cap"] = args.cap
    started = time.perf_counter()
    for s in sets:
        X, y = load_adbench(f"adbench-{s}")
        for seed in seeds:
            X_tr, X_te, y_te = split(X, y, seed, args.cap)
            for m in methods:
                key = f"{s}|{seed}|{m}"
                if key in partial:
                    continue
                partial[key] = run_one(m, X_tr, X_te, y_te, seed, overrides)
                r = partial[key]
                print(f"{s:14s} seed {seed} {m:9s} ROC-AUC {r['roc_auc']:.4f} AP {r['ap']:.4f} "
                      f"fit {r['fit_seconds']:.1f}s", flush=True)
                if keep:
                    partial_path.parent.mkdir(parents=True, exist_ok=True)
                    partial_path.write_text(json.dumps(partial))
    metrics = summarise(partial, sets, methods, seeds)
    wall = time.perf_counter() - started
    for m in metrics["mean_roc_auc"]:
        print(f"{m:9s} mean ROC-AUC {metrics['mean_roc_auc'][m]:.4f}  mean AP {metrics['mean_ap'][m]:.4f}")
    if args.no_write:
        return 0
    info = machine()
    header = (f"ADBench classical sets ({len(sets)}), unsupervised protocol, 70/30 stratified split, seeds "
              f"{seeds}, training split capped at {args.cap} rows; {info['cpu']}, {now()}")
    payload = {"benchmark": "adbench", "date": now(), "machine": info, "versions": versions("pyod", "scikit-learn"),
               "command": " ".join(["python", "benchmarks/adbench.py", *(argv or sys.argv[1:])]),
               "config": {"sets": sets, "methods": methods, "seeds": seeds, "train_cap": args.cap,
                          "split": "70/30 stratified, StandardScaler fitted on the training split",
                          "vaekit": VAEDetector(**overrides).get_params(), "vaekit_overrides": overrides,
                          "wall_seconds_this_invocation": round(wall, 1)},
               "metrics": metrics}
    payload["config"]["vaekit"].pop("log", None)
    payload["benchmark"] = args.name
    write_results(args.name, payload, markdown(metrics, sets, methods, header))
    return 0


if __name__ == "__main__":
    sys.exit(main())
