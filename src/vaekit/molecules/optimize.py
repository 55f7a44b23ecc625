"""Property-guided design: search the latent space for molecules with a high score.

Two searches, both scored by RDKit on the decoded molecules (never by the model's own
prediction), within a budget of decoded candidates:

- ``gradient``: gradient ascent on the property head's prediction from each start code
  (Gómez-Bombarelli et al. 2018, section 2.3), decoding every step; needs a model
  trained with the objective among ``data.properties``.
- ``bo``: Bayesian optimization over the latent space as in Kusner et al. 2017 and Jin et
  al. 2018: a Gaussian process (scikit-learn, Matérn 5/2 plus noise) on the scores of
  the decoded codes, batches chosen by expected improvement among prior draws and
  perturbations of the best codes. Needs no property head.

Objectives: ``qed``, ``plogp`` (penalized logP, normalized as in those papers) and
``logp``. The report lists the best distinct molecules with their score, properties,
novelty against the training set and Tanimoto similarity (Morgan radius 2) to the
molecule the search started from.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from vaekit.errors import DataError
from vaekit.molecules.chem import canonical, mol, properties, property_of

OBJECTIVES = ("qed", "plogp", "logp")
METHODS = ("gradient", "bo")


def check_objective(objective: str, method: str) -> None:
    if objective not in OBJECTIVES:
        raise DataError(f"unknown objective {objective!r}; known: {', '.join(OBJECTIVES)}")
    if method not in METHODS:
        raise DataError(f"unknown method {method!r}; known: {', '.join(METHODS)}")


def tanimoto(a: str | None, b: str | None) -> float | None:
    from rdkit import DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    ma, mb = mol(a) if a else None, mol(b) if b else None
    if ma is None or mb is None:
        return None
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    return float(DataStructs.TanimotoSimilarity(gen.GetFingerprint(ma), gen.GetFingerprint(mb)))


class _Scored:
    """Every decoded candidate: its score (None when invalid) and where its search started."""

    def __init__(self, objective: str):
        self.objective = objective
        self.best: dict[str, tuple[float, str | None]] = {}
        self.evaluated = self.valid = 0
        self.cache: dict[str, float] = {}

    def score(self, smiles: list[str | None], starts: list[str | None]) -> list[float | None]:
        out = []
        for s, start in zip(smiles, starts):
            self.evaluated += 1
            m = mol(s) if s else None
            if m is None:
                out.append(None)
                continue
            self.valid += 1
            if s not in self.cache:
                self.cache[s] = property_of(self.objective, m)
            v = self.cache[s]
            if s not in self.best or v > self.best[s][0]:
                self.best[s] = (v, start)
            out.append(v)
        return out


def _gradient(model, scored: _Scored, z0: torch.Tensor, starts: list[str | None], budget: int, lr: float) -> None:
    vae = model.vae
    names = list(getattr(vae, "property_names", []))
    if scored.objective not in names:
        raise DataError(f"the gradient search needs a property head for {scored.objective!r}; this model predicts "
                        f"{names or 'no property'} (train with data.properties including it, or use --method bo)")
    j = names.index(scored.objective)
    z = z0.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    while scored.evaluated < budget:
        opt.zero_grad()
        (-vae.predict_properties(z)[:, j].sum()).backward()
        opt.step()
        room = budget - scored.evaluated
        with torch.no_grad():
            decoded = model.decode(z.detach()[:room])
        scored.score(decoded, starts[:room])


def _expected_improvement(mu: np.ndarray, sd: np.ndarray, best: float) -> np.ndarray:
    from scipy.stats import norm

    sd = np.maximum(sd, 1e-9)
    u = (mu - best) / sd
    return sd * (u * norm.cdf(u) + norm.pdf(u))


def _bo(model, scored: _Scored, z0: torch.Tensor, starts: list[str | None], values: list[float | None], budget: int,
        batch: int, generator: torch.Generator) -> None:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    zs, ys, origin = [], [], []
    floor = min([v for v in values if v is not None], default=0.0)
    for z, v, s in zip(z0, values, starts):
        zs.append(z.numpy())
        ys.append(v)
        origin.append(s)
    latent = z0.shape[1]
    while scored.evaluated < budget:
        valid = [v for v in ys if v is not None]
        floor = min(valid + [floor])
        y = np.array([v if v is not None else floor for v in ys])
        X = np.stack(zs)
        keep = np.argsort(-y)[:500]  # the GP on the best 500 points keeps each round fast
        kernel = ConstantKernel(1.0) * Matern(length_scale=math.sqrt(latent), nu=2.5) + WhiteKernel(0.1)
        with warnings.catch_warnings():  # hyperparameters at their bounds are fine for ranking candidates
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp = GaussianProcessRegressor(kernel, normalize_y=True, random_state=0).fit(X[keep], y[keep])
        top = X[np.argsort(-y)[:10]]
        pool = np.concatenate([
            torch.randn(1000, latent, generator=generator).numpy(),
            np.repeat(top, 100, 0) + 0.5 * torch.randn(len(top) * 100, latent, generator=generator).numpy(),
        ])
        mu, sd = gp.predict(pool, return_std=True)
        pick = np.argsort(-_expected_improvement(mu, sd, y.max()))[: min(batch, budget - scored.evaluated)]
        z = torch.from_numpy(pool[pick]).float()
        # a candidate's start is the start of the nearest code already evaluated
        near = np.argmin(((pool[pick][:, None, :] - X[None, :, :]) ** 2).sum(-1), 1)
        cand_starts = [origin[i] for i in near]
        values = scored.score(model.decode(z), cand_starts)
        zs += list(z.numpy())
        ys += values
        origin += cand_starts


def optimize(model, objective: str = "plogp", budget: int = 1000, method: str = "bo", starts: list[str] | None = None,
             n_starts: int = 50, lr: float = 0.05, batch: int = 50, train: set[str] | None = None, top: int = 10,
             seed: int = 0) -> dict:
    """Search ``budget`` decoded candidates for the best ``objective``; the top molecules and their scores.

    ``starts``: SMILES to start from (their posterior means); default ``n_starts`` codes
    from the prior (their decodings are the starts).
    """
    check_objective(objective, method)
    if budget < 1:
        raise DataError(f"budget must be >= 1, got {budget}")
    g = torch.Generator().manual_seed(seed)
    model.vae.eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if starts:
            z0 = model.encode(starts)
            start_smiles = [canonical(s) for s in starts]
        else:
            z0 = torch.randn(n_starts, model.vae.latent_dim, generator=g)
            start_smiles = model.decode(z0)
        scored = _Scored(objective)
        initial = scored.score([s for s in start_smiles], start_smiles)
        if method == "gradient":
            _gradient(model, scored, z0, start_smiles, budget + len(start_smiles), lr)
        else:
            _bo(model, scored, z0, start_smiles, initial, budget + len(start_smiles), batch, g)
    ranked = sorted(scored.best.items(), key=lambda kv: kv[1][0], reverse=True)[:top]
    best = []
    for s, (v, start) in ranked:
        row = {"smiles": s, "score": round(v, 4), **{k: round(x, 4) for k, x in properties(mol(s)).items()},
               "start": start, "similarity_to_start": tanimoto(s, start)}
        if train is not None:
            row["novel"] = s not in train
        best.append(row)
    start_scores = [v for v in initial if v is not None]
    return {"objective": objective, "method": method, "budget": budget,
            "evaluated": scored.evaluated - len(start_smiles),
            "valid_fraction": (scored.valid - len(start_scores)) / max(scored.evaluated - len(start_smiles), 1),
            "distinct_valid": len(scored.best), "best_start_score": max(start_scores, default=None),
            "best": best}
