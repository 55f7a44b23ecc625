"""How much of a validation score is model selection: Mult-VAE, Mult-DAE and EASE on the
validation users of the MovieLens-100K splits of ``movielens.py``, scored honestly.

``movielens.py`` picks Mult-VAE's epoch (of 60) and EASE's lambda (of 7) by validation
NDCG@100, and the best validation score is then biased upwards: the more choices and the
noisier each one's score, the more the maximum gains from noise. Here every choice is
made on one random half of a split's 100 validation users and scored on the other half
(both ways, 100 random halvings per split), which measures what the selection rule will
give on users it has not seen, without touching a test user. Also reported: the biased
score (best choice on all validation users) and the mean validation curve over epochs.

The same measure compares candidate settings for Mult-VAE (``CANDIDATES``), each trained
with ``--seeds`` seeds a split (the benchmark's seed s, then s + 100, s + 200, ...), as
the training seed moves a split's score by as much as the settings do.

    python benchmarks/movielens_selection.py    # writes benchmarks/results/movielens_selection.{json,md}
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
from movielens import DAE_SETTINGS, EASE_GRID, ROUND_TWO_SETTINGS  # noqa: E402
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn  # noqa: E402

from vaekit.data.ratings import movielens_100k  # noqa: E402
from vaekit.recommend import MultVAERecommender, strong_generalization_split  # noqa: E402
from vaekit.recommend.baselines import EASE  # noqa: E402
from vaekit.recommend.metrics import mask_seen, ndcg_at_k  # noqa: E402


def per_user_ndcg(scores: np.ndarray, fold_in, held_out) -> np.ndarray:
    return np.asarray(ndcg_at_k(mask_seen(scores, fold_in), held_out, 100))


SLOW = dict(lr=1e-3, epochs=100, anneal_epochs=30)  # half the step size, for longer
CANDIDATES = {
    "round two (ROUND_TWO_SETTINGS)": {},
    "weight_average 0.7": dict(weight_average=0.7),
    "lr 1e-3, 100 epochs, anneal over 30": SLOW,
    "lr 1e-3, 100 epochs, anneal over 30, weight_average 0.7": dict(SLOW, weight_average=0.7),
}


def vae_curve(settings: dict, split, seed: int) -> np.ndarray:
    """Per-user validation NDCG@100 after every epoch, shape (epochs, users), of the model
    the recommender validates: the weights, or their moving average (``weight_average``)."""
    rows = []
    settings = dict(settings)
    decay = settings.pop("weight_average", None)  # averaged here as the recommender does, to score every epoch
    rec = MultVAERecommender(**settings, seed=seed)
    average = None

    def after_epoch(_record):
        nonlocal average
        scored = rec.model
        if decay is not None:
            average = average or AveragedModel(rec.model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
            average.update_parameters(rec.model)
            scored = average.module
        rows.append(per_user_ndcg(rec._scores(scored, split.valid_in), split.valid_in, split.valid_out))

    rec.fit(split.train, (split.valid_in, split.valid_out), callbacks=[after_epoch])
    return np.stack(rows)


def ease_curve(split) -> np.ndarray:
    """Per-user validation NDCG@100 for every lambda of the grid, shape (grid, users)."""
    return np.stack([per_user_ndcg(EASE(l2).fit(split.train).score(split.valid_in), split.valid_in, split.valid_out)
                     for l2 in EASE_GRID])


def select_on_half(curves: list[np.ndarray], halvings: int, seed: int = 0) -> dict:
    """Choose the best row on one half of each split's users, score it on the other half."""
    rng = np.random.default_rng(seed)
    per_split = []
    for scores in curves:
        n = scores.shape[1]
        values = []
        for _ in range(halvings):
            perm = rng.permutation(n)
            for pick, judge in ((perm[:n // 2], perm[n // 2:]), (perm[n // 2:], perm[:n // 2])):
                values.append(scores[int(np.argmax(scores[:, pick].mean(1))), judge].mean())
        per_split.append(float(np.mean(values)))
    return {"mean": float(np.mean(per_split)), "per_split": per_split,
            "biased_best": float(np.mean([s.mean(1).max() for s in curves])),
            "mean_curve": [round(float(v), 4) for v in np.mean([s.mean(1) for s in curves], 0)]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--splits", type=int, default=5)
    ap.add_argument("--halvings", type=int, default=100)
    ap.add_argument("--seeds", type=int, default=3, help="training seeds a split for the candidate settings")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    data = movielens_100k()
    curves = {"vaekit_multvae": [], "vaekit_multdae": [], "ease": []}
    candidates = {(name, j): [] for name in CANDIDATES for j in range(args.seeds)}
    for s in range(args.splits):
        split = strong_generalization_split(data.matrix, 100, seed=s)
        curves["vaekit_multvae"].append(vae_curve(ROUND_TWO_SETTINGS, split, s))
        curves["vaekit_multdae"].append(vae_curve(DAE_SETTINGS, split, s))
        curves["ease"].append(ease_curve(split))
        for (name, j), runs in candidates.items():
            runs.append(curves["vaekit_multvae"][-1] if (name, j) == ("round two (ROUND_TWO_SETTINGS)", 0)
                        else vae_curve({**ROUND_TWO_SETTINGS, **CANDIDATES[name]}, split, s + 100 * j))
        print(f"split {s} done", flush=True)
    results = {m: select_on_half(c, args.halvings) for m, c in curves.items()}
    by_seed = {key: select_on_half(c, args.halvings) for key, c in candidates.items()}
    candidate_results = {name: {"settings": {**ROUND_TWO_SETTINGS, **CANDIDATES[name]},
                                "per_seed": [by_seed[name, j]["mean"] for j in range(args.seeds)],
                                "mean": float(np.mean([by_seed[name, j]["mean"] for j in range(args.seeds)])),
                                "biased_best": float(np.mean([by_seed[name, j]["biased_best"]
                                                              for j in range(args.seeds)]))}
                         for name in CANDIDATES}
    payload = {"benchmark": "movielens_selection", "date": now(), "machine": machine(),
               "versions": versions("scikit-learn", "scipy"), "command": " ".join(sys.argv), "config": vars(args),
               "choices": {"vaekit_multvae": f"epoch 1-{ROUND_TWO_SETTINGS['epochs']}",
                           "vaekit_multdae": f"epoch 1-{DAE_SETTINGS['epochs']}", "ease": f"lambda in {EASE_GRID}"},
               "metrics": {"validation_ndcg_100_selected_on_other_half": {m: r["mean"] for m, r in results.items()},
                           "validation_ndcg_100_best_on_all": {m: r["biased_best"] for m, r in results.items()},
                           "candidates_selected_on_other_half": {n: r["mean"] for n, r in candidate_results.items()},
                           "seconds": round(time.perf_counter() - start, 1)},
               "per_method": results, "candidates": candidate_results}
    write_results("movielens_selection", payload, markdown(payload))
    print(markdown(payload))


def markdown(p: dict) -> str:
    honest = p["metrics"]["validation_ndcg_100_selected_on_other_half"]
    best = p["metrics"]["validation_ndcg_100_best_on_all"]
    lines = [f"Validation users only, MovieLens-100K, {p['config']['splits']} splits x 100 validation users. "
             f"NDCG@100 of the choice made on one half of a split's validation users, scored on the other "
             f"({p['config']['halvings']} random halvings a split, both ways), against the best choice "
             "scored on the users that chose it.", "",
             "| method | chosen among | selected on the other half | best on all (biased) | bias |", "|---|---|---|---|---|"]
    for m in honest:
        lines.append(f"| {m} | {p['choices'][m]} | {honest[m]:.4f} | {best[m]:.4f} | {best[m] - honest[m]:+.4f} |")
    lines += ["", f"Mult-VAE settings, {p['config']['seeds']} training seed(s) a split; EASE: "
              f"{honest['ease']:.4f} on the same measure.", "",
              "| Mult-VAE settings | selected on the other half (per seed) | mean | best on all (biased) |",
              "|---|---|---|---|"]
    for name, r in p["candidates"].items():
        lines.append(f"| {name} | {', '.join(f'{v:.4f}' for v in r['per_seed'])} | {r['mean']:.4f} | "
                     f"{r['biased_best']:.4f} |")
    curve = p["per_method"]["vaekit_multvae"]["mean_curve"]
    lines += ["", "Mult-VAE's validation NDCG@100 after epochs 10, 20, ..., 60 (mean over splits): "
              + ", ".join(f"{v:.4f}" for v in curve[9::10]) + ".", "",
              f"{p['date']}, {p['machine']['cpu']}, torch {p['versions']['torch']}; {p['metrics']['seconds']} s."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
