"""Anomaly scores of a fitted :class:`~vaekit.anomaly.model.MaskedVAE`; higher = more abnormal.

Three scores, each a Monte-Carlo estimate with ``n_samples`` draws z_l ~ q(z|x):

- ``"nelbo"`` (default): the negative ELBO, -E_q[log p(x|z)] + KL(q(z|x) || p(z))
  (Kingma & Welling 2014). It adds to the reconstruction term how far the code of x
  lies from the prior, which catches points that reconstruct well but sit in an empty
  region of the latent space.
- ``"recon_prob"``: the reconstruction probability of An & Cho 2015 ("Variational
  Autoencoder based Anomaly Detection using Reconstruction Probability"), reported as
  -log (1/L) sum_l p(x|z_l).
- ``"iw_nll"``: the importance-weighted estimate of -log p(x) (Burda et al. 2015),
  -log (1/L) sum_l p(x, z_l) / q(z_l|x), the tightest of the three.

The draws come from ``seed``, so the same table always gets the same scores. By default
each row has draws of its own (its Monte-Carlo error independent of the other rows'),
which depend on where the row sits in the table. With ``shared_noise`` every row is
scored with the same ``n_samples`` standard-normal draws eps_l (z_l = mu(x) + sigma(x) *
eps_l, common random numbers): a row's score then depends on the row alone, which the
service needs, as a request is batched with whatever other requests arrive with it.

A row with missing entries is scored on its observed entries; for ``nelbo`` and
``recon_prob`` its reconstruction term is multiplied by D / (number observed), so that
it stays on the scale of a complete row.

Explanations split the reconstruction term into features: the share of feature j is
E_q[((x_j - mu_j(z)) / sigma_j(z))^2] over the sum of these squared standardized
residuals, summed over the one-hot slots of a categorical column.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from vaekit.anomaly.model import pack

SCORES = ("nelbo", "recon_prob", "iw_nll")


@torch.no_grad()
def score_batches(model, values: np.ndarray, observed: np.ndarray, score: str = "nelbo", n_samples: int = 16,
                  seed: int = 0, batch_size: int = 2048, explain: bool = False, shared_noise: bool = False):
    """Scores (n,) and, with ``explain``, squared standardized residuals (n, D)."""
    if score not in SCORES:
        raise ValueError(f"unknown score {score!r}; choose one of {', '.join(SCORES)}")
    model.eval()
    eps = common_draws(n_samples, model.latent_dim, seed) if shared_noise else None
    scores, residuals = [], []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the same data always get the same scores
        for i in range(0, len(values), batch_size):
            x = pack(torch.from_numpy(values[i : i + batch_size]), torch.from_numpy(observed[i : i + batch_size]))
            s, r = _score(model, x, score, n_samples, eps, explain)
            scores.append(s.double().numpy())
            if explain:
                residuals.append(r.numpy())
    out = np.concatenate(scores)
    return (out, np.concatenate(residuals)) if explain else out


def common_draws(n_samples: int, latent_dim: int, seed: int) -> torch.Tensor:
    """The (n_samples, 1, latent_dim) standard-normal draws every row is scored with under
    ``shared_noise``."""
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randn(int(n_samples), int(latent_dim), generator=gen)[:, None, :]


def _score(model, x: torch.Tensor, score: str, n: int, eps: torch.Tensor | None, explain: bool):
    q = model.encode(x)
    z = q.rsample(n) if eps is None else q.rsample(n, eps.expand(n, *q.mean.shape))  # (n, B, k)
    params = model.decode(z)
    lp = model.likelihood.log_prob_per_feature(x, params)  # (n, B, D)
    observed = x[:, 1]
    rescale = observed.shape[-1] / observed.sum(-1).clamp_min(1.0)
    log_px = lp.sum(-1)  # (n, B)
    if score == "nelbo":
        s = -log_px.mean(0) * rescale + q.kl_to_standard_normal().sum(-1)
    elif score == "recon_prob":
        s = -(torch.logsumexp(log_px, 0) - math.log(n)) * rescale
    else:
        ratio = model.observed_ratio(x)
        lw = log_px + ratio * model.prior.log_prob(z) - q.log_prob(z)
        s = -(torch.logsumexp(lw, 0) - math.log(n))
    resid = None
    if explain:
        mean, std = model.likelihood.split(params)
        resid = (((x[:, 0] - mean) / std) ** 2 * observed).mean(0)
    return s, resid


def shares(residuals: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per-column share of the reconstruction term: residuals (n, D) @ groups (D, F), rows sum to 1."""
    per_col = residuals @ groups
    total = per_col.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total > 0, per_col / total, 1.0 / per_col.shape[1])
    return out

