"""Diagnostics of the latent space and of posterior collapse.

- Active units (Burda et al. 2015, section 5.2): dimension j is active when
  Cov_x(E_q[z_j|x]) > 0.01.
- KL per dimension: the batch mean of KL(q(z_j|x) || N(0, 1)).
- Mutual information I(x; z) under the aggregate posterior, estimated as in Hoffman &
  Johnson 2016 / He et al. 2019: E_x[KL(q(z|x)||p(z))] - KL(q(z)||p(z)), with the
  aggregate q(z) approximated by the mixture of the batch's posteriors.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from vaekit.core.distributions import DiagGaussian

ACTIVE_THRESHOLD = 0.01
COLLAPSE_KL_NATS = 0.05


def active_units(means: Tensor, threshold: float = ACTIVE_THRESHOLD) -> int:
    """Number of latent dimensions whose posterior mean varies across the data."""
    if means.shape[0] < 2:
        return 0
    return int((means.var(0, unbiased=True) > threshold).sum())


def mutual_information(q: DiagGaussian) -> float:
    """I(x; z) estimate for a batch of posteriors (B, D)."""
    b, d = q.mean.shape
    z = q.rsample()  # one sample per x
    # log q(z_i | x_j) for all pairs: (B_i, B_j)
    diff = z[:, None, :] - q.mean[None, :, :]
    log_q_pairs = -0.5 * (math.log(2 * math.pi) + q.log_var[None] + diff**2 * torch.exp(-q.log_var[None])).sum(-1)
    log_qz = torch.logsumexp(log_q_pairs, 1) - math.log(b)
    neg_entropy = (-0.5 * (math.log(2 * math.pi) + 1 + q.log_var).sum(-1)).mean()
    return float(neg_entropy - log_qz.mean())


def collapse_warning(kl_per_dim: Tensor, n_active: int) -> str | None:
    """A message when the posterior has collapsed onto the prior, else None."""
    total = float(kl_per_dim.sum())
    if total < COLLAPSE_KL_NATS or n_active == 0:
        return (
            f"posterior collapse: KL = {total:.4f} nats, {n_active} active units; the decoder "
            "ignores z (try KL annealing, free bits or a weaker decoder)"
        )
    return None
