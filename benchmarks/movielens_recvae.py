"""Do RecVAE's training refinements help vaekit's Mult-VAE? Validation users of the
MovieLens-100K splits of ``movielens.py``, scored honestly as in ``movielens_selection.py``.

RecVAE (Shenbin et al. 2020, "RecVAE: a new variational autoencoder for Top-N
recommendations with implicit feedback", WSDM) keeps Mult-VAE's model (Liang et al. 2018,
"Variational autoencoders for collaborative filtering", WWW) and changes its training:

* a per-user KL weight beta_u = gamma * |x_u| (gamma = 0.005 by default) instead of one
  annealed beta, so that users with long histories are regularised more;
* a composite prior: 3/20 N(0, I) + 3/4 q_old(z | x) + 1/10 N(0, e^10 I), where q_old is
  the encoder from before the current epoch (KL by one Monte Carlo sample);
* alternating updates: a few passes over the data that update only the encoder (input
  dropout on), then the prior is refreshed and passes that update only the decoder (input
  dropout off), each with its own Adam (3 encoder passes + 1 decoder pass by default).

Each is added here to the current settings (``VAE_SETTINGS`` in ``movielens.py``: no hidden
layer, code 400, lr 1e-3 for 100 epochs, annealing over 30 epochs, a moving average of the
weights with decay 0.7 an epoch), and RecVAE's own model changes (a deeper, densely
connected encoder with layer norm) are left out: the question is whether the training
changes pay on 738 training users. gamma 0.005 is RecVAE's default; as the training users
here have ~59 items on average (ratings of 4 and 5), it weights KL ~0.3, six times the
current cap of 0.05, so the scaled form beta_u = 0.05 * |x_u| / mean_u |x_u| (the current
cap on average, but per user and without annealing) is also measured.

Measure (``movielens_selection.select_on_half``): the epoch is chosen on one random half
of a split's 100 validation users and scored on the other half (100 random halvings a
split, both ways), without touching a test user; 5 splits x ``--seeds`` training seeds
(the split's seed s, then s + 100, s + 200). Every candidate is compared with the current
settings on the same (split, seed) and the same halvings: the paired difference and its
standard error over the 15 (split, seed) pairs; the difference to EASE (lambda chosen the
same way, ``movielens_selection.ease_curve``) is taken per split, over the 5 splits, as
the seeds of a split share its users.

The training loop below is a port of ``MultVAERecommender.fit`` (the shared ``Trainer``:
same initialisation, shuffling and noise generators, fused Adam, beta schedule, flushed
denormals, weight average) with the refinements as switches. With none of them on, it
reproduces the recommender: on split 0, seed 0, 4 epochs, the per-user validation curve of
the reference candidate equals ``movielens_selection.vae_curve(VAE_SETTINGS)`` exactly
(maximum absolute difference 0.0; ``--check`` repeats this).

    python benchmarks/movielens_recvae.py --threads 1   # writes benchmarks/results/movielens_recvae.{json,md}
                                                        # (~34 min on one core)
    python benchmarks/movielens_recvae.py --check       # the reproduction check only
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, now, versions, write_results  # noqa: E402
from movielens import EASE_GRID, VAE_SETTINGS  # noqa: E402
from movielens_selection import ease_curve, per_user_ndcg, select_on_half, vae_curve  # noqa: E402
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn  # noqa: E402

from vaekit.builders import build_vae  # noqa: E402
from vaekit.data.ratings import movielens_100k  # noqa: E402
from vaekit.recommend import MultVAERecommender, strong_generalization_split  # noqa: E402
from vaekit.recommend.model import multvae_description  # noqa: E402
from vaekit.train.acceleration import fused_adam_ok  # noqa: E402
from vaekit.train.denormals import flush_denormals  # noqa: E402

LOG_2PI = math.log(2 * math.pi)
MIXTURE = (3 / 20, 3 / 4, 1 / 10)  # RecVAE's composite prior: N(0, I), q_old(z|x), N(0, e^10 I)
REFERENCE = "current"

# Each candidate: kl = "anneal" (vaekit: one beta, linear from 0 to beta_cap over anneal_epochs),
# ("gamma", g) (RecVAE: beta_u = g * |x_u|) or ("scaled", c) (beta_u = c * |x_u| / mean |x_u|
# over the training users); prior = "normal" (closed-form KL to N(0, I)) or "composite";
# alternate = None (joint updates) or (encoder passes, decoder passes) an epoch.
# In run order: the reference and the ones the study's conclusion rests on come first.
CANDIDATES = {
    "current": dict(label="current settings (VAE_SETTINGS)", kl="anneal", prior="normal", alternate=None),
    "gamma": dict(label="per-user KL weight, gamma 0.005 (RecVAE's default)", kl=("gamma", 0.005),
                  prior="normal", alternate=None),
    "alt11": dict(label="alternating 1+1", kl="anneal", prior="normal", alternate=(1, 1)),
    "alt11_scaled_composite": dict(label="alternating 1+1, scaled KL weight, composite prior",
                                   kl=("scaled", 0.05), prior="composite", alternate=(1, 1)),
    "scaled": dict(label="per-user KL weight, scaled: 0.05 |x_u| / mean |x|", kl=("scaled", 0.05),
                   prior="normal", alternate=None),
    "composite": dict(label="composite prior", kl="anneal", prior="composite", alternate=None),
    "alt31": dict(label="alternating 3+1 (RecVAE's default)", kl="anneal", prior="normal", alternate=(3, 1)),
}


def log_normal(z: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """Log density of a diagonal Gaussian, per dimension."""
    return -0.5 * (log_var + LOG_2PI + (z - mean).pow(2) / log_var.exp())


def composite_log_prior(z: torch.Tensor, old_mean: torch.Tensor, old_log_var: torch.Tensor) -> torch.Tensor:
    """RecVAE's composite prior, per dimension (as RecVAE sums it): a standard normal, the
    previous encoder's posterior (which keeps the code from drifting between epochs) and a
    wide normal (which lets it move)."""
    zeros = torch.zeros_like(z)
    parts = [log_normal(z, zeros, zeros) + math.log(MIXTURE[0]),
             log_normal(z, old_mean, old_log_var) + math.log(MIXTURE[1]),
             log_normal(z, zeros, zeros + 10.0) + math.log(MIXTURE[2])]
    return torch.logsumexp(torch.stack(parts, -1), -1)


def frozen_copy(model):
    """The model as it is now, for q_old: evaluation mode (no dropout), no gradients."""
    old = copy.deepcopy(model)
    old.eval()
    for p in old.parameters():
        p.requires_grad_(False)
    return old


class KLWeight:
    """The KL term's weight for a batch: one annealed beta, or one per user.

    ``anneal`` follows vaekit's schedule by optimiser step; with alternating updates an
    epoch has several passes, so there it is ramped by epoch (the same ramp in data seen
    by the encoder, not in steps)."""

    def __init__(self, kind, settings: dict, counts: torch.Tensor, steps_per_epoch: int, by_epoch: bool):
        self.kind, self.s, self.counts, self.by_epoch = kind, settings, counts, by_epoch
        self.mean_count = float(counts.mean())
        self.spe = steps_per_epoch
        self.warm = round(settings["anneal_epochs"] * steps_per_epoch)  # as the Trainer's BetaSchedule

    def __call__(self, idx: torch.Tensor, step: int, epoch: int, batch: int):
        if self.kind == "anneal" and self.by_epoch:
            return self.s["beta_cap"] * min(1.0, (epoch + batch / self.spe) / self.s["anneal_epochs"])
        if self.kind == "anneal":
            return self.s["beta_cap"] * min(1.0, step / self.warm)
        name, value = self.kind
        if name == "gamma":
            return value * self.counts[idx]
        if name == "scaled":
            return value * self.counts[idx] / self.mean_count
        raise ValueError(f"unknown KL weight {self.kind!r}")


def train_curve(split, seed: int, candidate: dict, settings: dict = VAE_SETTINGS,
                epochs: int | None = None) -> np.ndarray:
    """Train Mult-VAE with ``candidate``'s switches on ``split.train``; per-user validation
    NDCG@100 after every epoch (of the weight average when the settings keep one), shape
    (epochs, validation users). Draws its random numbers in the recommender's order, so
    that with no switch on it is ``vae_curve`` of the same settings and seed."""
    s = settings
    epochs = epochs or s["epochs"]
    x = split.train.toarray().astype(np.uint8)
    n, n_items = x.shape
    torch.manual_seed(seed)  # as MultVAERecommender.fit, before building the model
    model = build_vae(multvae_description(n_items, "vae", s["hidden"], s["latent_dim"], s["dropout"]))
    adam = dict(lr=s["lr"], weight_decay=s["weight_decay"], fused=fused_adam_ok(torch.device("cpu")))
    alternate = candidate["alternate"]
    if alternate:  # RecVAE: one Adam each for the encoder and the decoder
        opt_enc = torch.optim.Adam(model.encoder.parameters(), **adam)
        opt_dec = torch.optim.Adam(model.decoder.parameters(), **adam)
    else:
        opt = torch.optim.Adam(model.parameters(), **adam)
    torch.manual_seed(seed)  # as Trainer.fit, which reseeds
    shuffle_gen = torch.Generator().manual_seed(seed)
    noise_gen = torch.Generator().manual_seed(seed + 1)
    train = torch.from_numpy(x)
    bs = s["batch_size"]
    spe = math.ceil(n / bs)
    kl_weight = KLWeight(candidate["kl"], s, train.sum(1).float(), spe, by_epoch=bool(alternate))
    composite = candidate["prior"] == "composite"
    average = (AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(s["weight_average"]), use_buffers=True)
               if s.get("weight_average") is not None else None)
    state = {"step": 0, "old": None}

    def one_pass(optimisers, epoch: int, dropout: bool) -> None:
        """One shuffled pass over the training users, stepping only ``optimisers``."""
        order = torch.randperm(n, generator=shuffle_gen)
        model.encoder.dropout.p = s["dropout"] if dropout else 0.0
        for b in range(spe):
            idx = order[b * bs:(b + 1) * bs]
            xb = train.index_select(0, idx)
            eps = torch.randn((xb.shape[0], model.latent_dim), generator=noise_gen)
            for o in optimisers:
                o.zero_grad()  # the other half's gradients are cleared before its own pass uses them
            q = model.encode(xb)
            z = q.mean + torch.exp(0.5 * q.log_var) * eps
            log_px = model.likelihood.log_prob(xb, model.decode(z, xb))
            if composite:
                with torch.no_grad():
                    q_old = state["old"].encode(xb)
                kl = (log_normal(z, q.mean, q.log_var) - composite_log_prior(z, q_old.mean, q_old.log_var)).sum(-1)
            else:
                kl = q.kl_to_standard_normal().sum(-1)
            loss = (-log_px + kl_weight(idx, state["step"], epoch, b) * kl).mean()
            loss.backward()
            for o in optimisers:
                o.step()
            state["step"] += 1
        model.encoder.dropout.p = s["dropout"]

    def refresh_prior() -> None:
        if composite:
            state["old"] = frozen_copy(model)

    rows = []
    model.train()
    with flush_denormals(True):
        for epoch in range(epochs):
            if alternate:  # RecVAE: encoder passes, refresh q_old, decoder passes without dropout
                if state["old"] is None:
                    refresh_prior()
                for _ in range(alternate[0]):
                    one_pass([opt_enc], epoch, dropout=True)
                refresh_prior()
                for _ in range(alternate[1]):
                    one_pass([opt_dec], epoch, dropout=False)
            else:
                refresh_prior()  # q_old: the encoder at the end of the previous epoch
                one_pass([opt], epoch, dropout=True)
            scored = model
            if average is not None:
                average.update_parameters(model)
                scored = average.module
            rows.append(per_user_ndcg(MultVAERecommender._scores(scored, split.valid_in),
                                      split.valid_in, split.valid_out))
    return np.stack(rows)


def check_reference(epochs: int = 4) -> float:
    """Largest absolute difference between the reference candidate's per-user curve and
    ``vae_curve`` on split 0, seed 0, ``epochs`` epochs (0.0: the port is exact)."""
    split = strong_generalization_split(movielens_100k().matrix, 100, seed=0)
    settings = dict(VAE_SETTINGS, epochs=epochs)
    ours = train_curve(split, 0, CANDIDATES[REFERENCE], settings)
    theirs = vae_curve(settings, split, 0)
    return float(np.abs(ours - theirs).max())


def paired(values: np.ndarray, reference: np.ndarray) -> dict:
    """Mean difference and its standard error over matched entries."""
    d = (np.asarray(values) - np.asarray(reference)).ravel()
    return {"mean": float(d.mean()), "se": float(d.std(ddof=1) / np.sqrt(d.size)) if d.size > 1 else None}


def summarise(curves: list[list[np.ndarray]], halvings: int) -> dict:
    """``curves[j][s]``: seed j's curve on split s. Honest score per seed, per (seed, split)
    and their means; every seed sees the same halvings (``select_on_half`` reseeds)."""
    by_seed = [select_on_half(c, halvings) for c in curves]
    per_run = np.array([r["per_split"] for r in by_seed])  # seeds x splits
    return {"per_seed": [r["mean"] for r in by_seed], "mean": float(per_run.mean()),
            "per_split": per_run.mean(0).tolist(), "per_run": per_run.tolist(),
            "biased_best": float(np.mean([r["biased_best"] for r in by_seed])),
            "mean_curve_every_10": [round(float(v), 4) for v in np.mean([r["mean_curve"] for r in by_seed], 0)[9::10]]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--splits", type=int, default=5)
    ap.add_argument("--halvings", type=int, default=100)
    ap.add_argument("--seeds", type=int, default=3, help="training seeds a split")
    ap.add_argument("--candidates", default=",".join(CANDIDATES),
                    help=f"comma-separated subset of {', '.join(CANDIDATES)} ({REFERENCE} is always run)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--check", action="store_true",
                    help="only check the port against vae_curve (split 0, seed 0, 4 epochs)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.check:
        diff = check_reference()
        print(f"reference vs vae_curve, split 0, seed 0, 4 epochs: max |difference| = {diff}")
        sys.exit(0 if diff == 0.0 else 1)
    names = [REFERENCE] + [c for c in args.candidates.split(",") if c and c != REFERENCE]
    unknown = [c for c in names if c not in CANDIDATES]
    if unknown:
        ap.error(f"unknown candidates {unknown}; choose from {list(CANDIDATES)}")
    start = time.perf_counter()
    data = movielens_100k()
    splits = [strong_generalization_split(data.matrix, 100, seed=s) for s in range(args.splits)]
    ease = select_on_half([ease_curve(split) for split in splits], args.halvings)
    results = {}
    for name in names:
        t = time.perf_counter()
        curves = [[train_curve(split, s + 100 * j, CANDIDATES[name]) for s, split in enumerate(splits)]
                  for j in range(args.seeds)]
        results[name] = {"settings": {k: v for k, v in CANDIDATES[name].items() if k != "label"},
                         "label": CANDIDATES[name]["label"], **summarise(curves, args.halvings),
                         "seconds": round(time.perf_counter() - t, 1)}
        print(f"{name}: {results[name]['mean']:.4f} ({results[name]['seconds']} s)", flush=True)
    ref = results[REFERENCE]
    for r in results.values():
        r["vs_current"] = paired(r["per_run"], ref["per_run"])  # 15 (split, seed) pairs
        r["vs_ease"] = paired(r["per_split"], ease["per_split"])  # 5 splits: a split's seeds share its users
    payload = {"benchmark": "movielens_recvae", "date": now(), "machine": machine(),
               "versions": versions("scikit-learn", "scipy"), "command": " ".join(sys.argv), "config": vars(args),
               "base_settings": VAE_SETTINGS, "ease_grid": EASE_GRID,
               "metrics": {"validation_ndcg_100_selected_on_other_half": {n: r["mean"] for n, r in results.items()},
                           "ease": ease["mean"], "seconds": round(time.perf_counter() - start, 1)},
               "ease": ease, "candidates": results}
    write_results("movielens_recvae", payload, markdown(payload))
    print(markdown(payload))


def markdown(p: dict) -> str:
    c = p["config"]
    lines = [f"RecVAE's training refinements (Shenbin et al. 2020) on vaekit's Mult-VAE (VAE_SETTINGS). Validation "
             f"users only, MovieLens-100K, {c['splits']} splits x 100 validation users x {c['seeds']} training "
             f"seed(s). NDCG@100 of the epoch chosen on one half of a split's validation users, scored on the other "
             f"({c['halvings']} random halvings a split, both ways). vs current: paired over (split, seed), "
             "± standard error; vs EASE: over splits.", "",
             "| candidate | per seed | mean | vs current | vs EASE | best on all (biased) | s |",
             "|---|---|---|---|---|---|---|"]
    for r in p["candidates"].values():
        vc, ve = r["vs_current"], r["vs_ease"]
        label = r["label"].replace("|", "\\|")  # a bare | would end the table's cell
        lines.append(f"| {label} | {', '.join(f'{v:.4f}' for v in r['per_seed'])} | {r['mean']:.4f} | "
                     f"{vc['mean']:+.4f} ± {vc['se'] or 0:.4f} | {ve['mean']:+.4f} ± {ve['se'] or 0:.4f} | "
                     f"{r['biased_best']:.4f} | {r['seconds']:.0f} |")
    lines += ["", f"EASE (lambda chosen the same way): {p['ease']['mean']:.4f}; per split "
              + ", ".join(f"{v:.4f}" for v in p["ease"]["per_split"]) + ".", "",
              "Validation NDCG@100 after epochs 10, 20, ..., 100 (mean over splits and seeds):", ""]
    lines += [f"- {r['label']}: " + ", ".join(f"{v:.4f}" for v in r["mean_curve_every_10"])
              for r in p["candidates"].values()]
    lines += ["", f"{p['date']}, {p['machine']['cpu']}, {p['machine']['torch_threads']} thread(s), "
              f"torch {p['versions']['torch']}, vaekit {p['versions']['vaekit']} "
              f"({p['versions'].get('git_commit')}{', dirty' if p['versions'].get('git_dirty') else ''}); "
              f"{p['metrics']['seconds']} s.", "",
              f"    {p['command']}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
