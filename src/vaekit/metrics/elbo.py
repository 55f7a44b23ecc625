"""The ELBO of a trained VAE over a dataset, with what the latent diagnostics need.

One pass, beta = 1, one z sample per example from a fixed seed (so that the numbers of
a run can be recomputed): the mean ELBO, reconstruction term and KL, the KL of each
latent dimension, and the posterior means and log-variances from which active units
(Burda et al. 2015) and the mutual information I(x; z) (He et al. 2019) are computed.
The trainer's validation and every application's evaluation use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from vaekit.core import VAE
from vaekit.core.distributions import DiagGaussian
from vaekit.metrics.latent import active_units, mutual_information


@dataclass
class ElboPass:
    n: int
    elbo: float  # mean over the examples, nats
    reconstruction: float  # mean -E_q[log p(x|z)], one sample
    kl: float  # mean KL(q(z|x) || p(z))
    kl_per_dim: Tensor  # (D,): mean KL of each latent dimension
    means: Tensor  # (N, D) posterior means, on the CPU
    log_vars: Tensor  # (N, D) posterior log-variances, on the CPU

    @property
    def active_units(self) -> int:
        return active_units(self.means)

    def mutual_information(self, block: int = 500, seed: int = 0) -> float:
        """I(x; z) per block of ``block`` examples, averaged (as He et al. 2019 do per batch)."""
        with torch.random.fork_rng(devices=[]):  # the moments are on the CPU
            torch.manual_seed(seed)
            total = sum(mutual_information(DiagGaussian(self.means[i : i + block], self.log_vars[i : i + block]))
                        * len(self.means[i : i + block]) for i in range(0, self.n, block))
        return total / self.n


@torch.no_grad()
def elbo_pass(model: VAE, data, batch_size: int = 500, seed: int = 0, device: torch.device | None = None,
              labels: bool = True) -> ElboPass:
    """The ELBO of ``model`` on ``data`` (anything with ``len`` and ``batch(idx) -> (x, y)``).

    Batches go to ``device`` (default: the model's). ``labels=False`` leaves the data's
    labels out, for models whose labels are prediction targets rather than conditions.
    The random streams of the model's device are restored afterwards.
    """
    device = device if device is not None else next(model.parameters()).device
    elbo = rec = kl = 0.0
    kl_dims: Tensor | float = 0.0
    means, log_vars = [], []
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for i in range(0, len(data), batch_size):
            x, y = data.batch(torch.arange(i, min(i + batch_size, len(data))))
            y = y if labels else None
            x, y = x.to(device), None if y is None else y.to(device)
            out = model.elbo(x, 1.0, y)
            elbo += float(out.elbo.sum())
            rec += float(out.reconstruction.sum())
            kl += float(out.kl.sum())
            kl_dims = kl_dims + out.kl_per_dim.float() * x.shape[0]
            means.append(out.posterior.mean.float().cpu())
            log_vars.append(out.posterior.log_var.float().cpu())
    n = len(data)
    return ElboPass(n, elbo / n, rec / n, kl / n, (kl_dims / n).cpu(), torch.cat(means), torch.cat(log_vars))
