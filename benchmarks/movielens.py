"""Mult-VAE on MovieLens-100K with the strong-generalization protocol of Liang et al. 2018,
side by side with its peers on the same splits.

Protocol: ratings >= 4 (i.e. > 3.5) are positives; users with >= 5 of them; 5 random
splits (seeds 0-4), each with 100 validation and 100 test users held out of training;
80% of each held-out user's items are folded in, 20% predicted. Every method sees the
same split files and is scored by the same code (``vaekit.recommend.metrics``): Recall@20,
Recall@50 (normalised by min(K, held-out count)), NDCG@100; mean and std over splits.

Hyperparameters are chosen on validation users only: EASE's lambda and item-kNN's
neighbourhood size per split from a grid; Mult-VAE / Mult-DAE pick their best epoch by
validation NDCG@100 (their settings are fixed below, chosen on validation users). RecBole's MultiVAE runs in its own
environment (``benchmarks/peers/recbole_multvae.py``) when that environment exists.

    python benchmarks/movielens.py            # writes benchmarks/results/movielens.{json,md}
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, now, versions, write_results  # noqa: E402

from vaekit.data.ratings import movielens_100k  # noqa: E402
from vaekit.recommend import MultVAERecommender, strong_generalization_split  # noqa: E402
from vaekit.recommend.baselines import EASE, ItemKNN, Popularity  # noqa: E402
from vaekit.recommend.metrics import ranking_report  # noqa: E402

HERE = Path(__file__).resolve().parent
RECBOLE_PY = HERE / ".venv-recbole" / "bin" / "python"
RECBOLE_SCRIPT = HERE / "peers" / "recbole_multvae.py"

# chosen on validation users only (never test users), in two rounds. First, on splits 0
# and 1, from a grid with one hidden layer (code size 16-200, KL cap 0.05-0.5, batch
# 25-100, dropout 0.3-0.7, weight decay 0-0.01, lr 3e-4-3e-3): the paper's
# [I-600-200-600-I] with cap 0.2 overfits the ~740 training users of ML-100K; [I-600-64-
# 600-I], cap 0.05, batch 25 validated best (NDCG@100 0.4237 on splits 0-1). Second, the
# depth (Liang et al. found deeper networks no better): with no hidden layer, a linear
# encoder and decoder around a wide code ([I-400-I]), validation NDCG@100 rose to 0.4381
# on splits 0-1 (EASE: 0.4375) and 0.4594 on splits 2-4 (EASE: 0.4541), with batch 50,
# lr 2e-3, weight decay 1e-5 (code 800, dropout 0.4/0.7, cap 0.1/0.2 and batch 100 were no
# better). Third (``movielens_selection.py``, every choice made on one half of the validation
# users and scored on the other, 3 training seeds a split): half the learning rate for 100
# epochs, annealing over 30, with a moving average of the weights (decay 0.7 an epoch) that
# validation and the saved model use, validated 0.4446 against these round-two settings'
# 0.4408 (EASE: 0.4453). Mult-DAE keeps the round-two settings.
ROUND_TWO_SETTINGS = dict(hidden=(), latent_dim=400, dropout=0.5, beta_cap=0.05, anneal_epochs=20,
                          epochs=60, batch_size=50, lr=2e-3, weight_decay=1e-5)
VAE_SETTINGS = dict(ROUND_TWO_SETTINGS, lr=1e-3, epochs=100, anneal_epochs=30, weight_average=0.7)
DAE_SETTINGS = dict(ROUND_TWO_SETTINGS, variant="dae")
EASE_GRID = [50, 100, 200, 300, 500, 1000, 2000]
KNN_GRID = [20, 50, 100, 200, 500]
METHODS = ["vaekit_multvae", "vaekit_multdae", "popularity", "itemknn", "ease", "recbole_multvae"]


PAIRED = ("ndcg_100", "recall_20")


def evaluate(scores_valid, scores_test, split, popularity) -> dict:
    test = ranking_report(scores_test, split.test_in, split.test_out, popularity, per_user=True)
    return {"valid": ranking_report(scores_valid, split.valid_in, split.valid_out, popularity),
            # per-user values: for the paired comparison below, not written to the results file
            "_test_users": test.pop("per_user"), "test": test}


def paired_comparison(ours: np.ndarray, theirs: np.ndarray, seed: int = 0, resamples: int = 10_000) -> dict:
    """Mean per-user difference (ours - theirs) over the test users of all splits, its
    95% paired-bootstrap interval and the Wilcoxon signed-rank p-value: whether a gap in
    the means is larger than what 5 x 100 test users can tell apart."""
    from scipy.stats import wilcoxon

    diff = ours - theirs
    rng = np.random.default_rng(seed)
    boot = diff[rng.integers(0, len(diff), (resamples, len(diff)))].mean(1)
    nonzero = diff[diff != 0]
    return {"mean_difference": float(diff.mean()), "ci95": [float(np.quantile(boot, 0.025)),
                                                           float(np.quantile(boot, 0.975))],
            "wilcoxon_p": float(wilcoxon(nonzero).pvalue) if len(nonzero) else 1.0, "users": int(len(diff))}


def tuned(make, grid, split, popularity):
    """Fit one model per grid value; keep the one with the best validation NDCG@100."""
    best = None
    for value in grid:
        model = make(value).fit(split.train)
        result = evaluate(model.score(split.valid_in), model.score(split.test_in), split, popularity)
        if best is None or result["valid"]["ndcg_100"] > best[1]["valid"]["ndcg_100"]:
            best = (value, result)
    return {**best[1], "chosen": best[0]}


def run_vaekit(settings, split, popularity, seed):
    start = time.perf_counter()
    rec = MultVAERecommender(**settings, seed=seed).fit(split.train, (split.valid_in, split.valid_out))
    result = evaluate(rec.score(split.valid_in), rec.score(split.test_in), split, popularity)
    best = max(rec.history, key=lambda h: h["val_ndcg_100"])
    return {**result, "seconds": time.perf_counter() - start, "best_epoch": best["epoch"] + 1,
            "final_kl": best.get("val_kl")}


def run_recbole(split, split_file: Path, popularity, epochs: int, seed: int) -> dict:
    if not (RECBOLE_PY.exists() and RECBOLE_SCRIPT.exists()):
        return {"error": f"RecBole environment not found ({RECBOLE_PY}); run benchmarks/peers/recbole_env.sh"}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "scores.npz"
        start = time.perf_counter()
        proc = subprocess.run([str(RECBOLE_PY), str(RECBOLE_SCRIPT), "--split", str(split_file), "--out", str(out),
                               "--epochs", str(epochs), "--seed", str(seed)], capture_output=True, text=True)
        if proc.returncode != 0:
            return {"error": (proc.stderr or proc.stdout)[-1500:]}
        with np.load(out, allow_pickle=False) as z:
            result = evaluate(z["valid_scores"], z["test_scores"], split, popularity)
    return {**result, "seconds": time.perf_counter() - start}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--splits", type=int, default=5)
    ap.add_argument("--heldout-users", type=int, default=100)
    ap.add_argument("--recbole-epochs", type=int, default=200)
    ap.add_argument("--no-recbole", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = movielens_100k()
    per_split = []
    for s in range(args.splits):
        split = strong_generalization_split(data.matrix, args.heldout_users, seed=s)
        popularity = np.asarray(split.train.sum(0)).ravel() / split.train.shape[0]
        row = {"seed": s}
        row["vaekit_multvae"] = run_vaekit(VAE_SETTINGS, split, popularity, s)
        row["vaekit_multdae"] = run_vaekit(DAE_SETTINGS, split, popularity, s)
        pop = Popularity().fit(split.train)
        row["popularity"] = evaluate(pop.score(split.valid_in), pop.score(split.test_in), split, popularity)
        row["itemknn"] = tuned(lambda k: ItemKNN(k), KNN_GRID, split, popularity)
        row["ease"] = tuned(lambda l2: EASE(l2), EASE_GRID, split, popularity)
        if not args.no_recbole:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "split.npz"
                split.save(path)
                row["recbole_multvae"] = run_recbole(split, path, popularity, args.recbole_epochs, s)
        per_split.append(row)
        print(f"split {s}: " + ", ".join(f"{m} {row[m]['test']['ndcg_100']:.4f}" for m in METHODS
                                          if m in row and "test" in row[m]), flush=True)

    metrics = {name: {} for name in ("ndcg_100", "recall_20", "recall_50", "coverage_20", "popularity_20")}
    errors = {}
    for m in METHODS:
        runs = [r[m] for r in per_split if m in r and "test" in r[m]]
        if not runs:
            errors[m] = next((r[m].get("error") for r in per_split if m in r), "not run")
            continue
        for key in metrics:
            values = [r["test"][key] for r in runs]
            metrics[key][m] = {"mean": float(np.mean(values)), "std": float(np.std(values)), "n": len(values)}
    paired = {}
    for key in PAIRED:
        users = {m: np.concatenate([r[m]["_test_users"][key] for r in per_split]) for m in METHODS
                 if all(m in r and "_test_users" in r[m] for r in per_split)}
        paired[key] = {p: paired_comparison(users["vaekit_multvae"], users[p]) for p in users
                       if p != "vaekit_multvae"}
    for r in per_split:  # per-user arrays stay out of the results file
        for m in METHODS:
            if m in r:
                r[m].pop("_test_users", None)
    vae_seconds = [r["vaekit_multvae"]["seconds"] for r in per_split]
    # the peers: other systems on the same splits (Mult-DAE is vaekit's own variant, reported beside)
    peers = [m for m in METHODS if not m.startswith("vaekit_") and m in metrics["ndcg_100"]]
    goal = {key: all(metrics[key]["vaekit_multvae"]["mean"] > metrics[key][p]["mean"] for p in peers)
            for key in ("ndcg_100", "recall_20")}
    payload = {
        "benchmark": "movielens", "date": now(), "machine": machine(), "versions": versions("scikit-learn", "scipy"),
        "protocol": {"data": "MovieLens-100K u.data, rating >= 4, users with >= 5 positives",
                     "users": data.n_users, "items": data.n_items, "interactions": int(data.matrix.nnz),
                     "splits": args.splits, "heldout_users": args.heldout_users, "fold_in": 0.8,
                     "selection": "validation users only"},
        "settings": {"vaekit_multvae": VAE_SETTINGS, "vaekit_multdae": DAE_SETTINGS, "ease_grid": EASE_GRID,
                     "itemknn_grid": KNN_GRID, "recbole_epochs": args.recbole_epochs},
        "metrics": {**metrics, "vaekit_train_eval_seconds_total": float(np.sum(vae_seconds)),
                    "goal_beats_all_peers": goal, "paired_vs_peers": paired},
        "errors": errors,
        "per_split": per_split,
    }
    write_results("movielens", payload, markdown(payload))
    print(markdown(payload))


def markdown(p: dict) -> str:
    m = p["metrics"]
    lines = [f"MovieLens-100K, strong generalization (Liang et al. 2018), {p['protocol']['splits']} splits x "
             f"{p['protocol']['heldout_users']} test users; mean ± std over splits. {p['date']}, {p['machine']['cpu']}.",
             "", "| method | NDCG@100 | Recall@20 | Recall@50 | coverage@20 | popularity@20 |", "|---|---|---|---|---|---|"]
    for meth in METHODS:
        if meth not in m["ndcg_100"]:
            lines.append(f"| {meth} | not run: {p['errors'].get(meth, '')[:120].replace(chr(10), ' ')} | | | | |")
            continue
        cells = [f"{m[k][meth]['mean']:.4f} ± {m[k][meth]['std']:.4f}" for k in ("ndcg_100", "recall_20", "recall_50")]
        cells += [f"{m[k][meth]['mean']:.3f}" for k in ("coverage_20", "popularity_20")]
        lines.append(f"| {meth} | " + " | ".join(cells) + " |")
    lines += ["", f"vaekit Mult-VAE training + evaluation, all splits: {m['vaekit_train_eval_seconds_total']:.0f} s. "
              f"Beats every peer (popularity, item-kNN, EASE, RecBole) on NDCG@100: "
              f"{m['goal_beats_all_peers']['ndcg_100']}; on Recall@20: {m['goal_beats_all_peers']['recall_20']}.", "",
              "Paired per test user (all splits): vaekit Mult-VAE minus each peer, 95% bootstrap interval, "
              "Wilcoxon signed-rank p.", "", "| peer | NDCG@100 difference | p | Recall@20 difference | p |",
              "|---|---|---|---|---|"]
    for peer, nd in m["paired_vs_peers"]["ndcg_100"].items():
        rc = m["paired_vs_peers"]["recall_20"][peer]
        lines.append(f"| {peer} | {nd['mean_difference']:+.4f} [{nd['ci95'][0]:+.4f}, {nd['ci95'][1]:+.4f}] | "
                     f"{nd['wilcoxon_p']:.3f} | {rc['mean_difference']:+.4f} [{rc['ci95'][0]:+.4f}, "
                     f"{rc['ci95'][1]:+.4f}] | {rc['wilcoxon_p']:.3f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
