"""Test log-likelihood by importance sampling (Burda et al. 2015, section 5.1).

NLL(x) = -log (1/k) sum_i p(x, z_i) / q(z_i|x), z_i ~ q(z|x); k = 5000 for the published
MNIST numbers. Computed per batch of examples and in chunks of samples with a running
logsumexp (:meth:`vaekit.core.VAE.iwae_bound`), so memory does not grow with k.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from vaekit.core import VAE
from vaekit.train import Tensors


@torch.inference_mode()
def iw_nll(
    model: VAE,
    data: Tensors,
    k: int = 5000,
    chunk: int = 500,
    batch_size: int = 100,
    seed: int = 0,
    on_batch: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Per-example importance-weighted NLL in nats, shape (N,)."""
    model.eval()
    out = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i in range(0, len(data), batch_size):
            x, y = data.batch(torch.arange(i, min(i + batch_size, len(data))))
            out.append(-model.iwae_bound(x, k, y, chunk=chunk))
            if on_batch:
                on_batch(x.shape[0])
    return torch.cat(out)


def bits_per_dim(nll_nats: float, n_dims: int) -> float:
    return nll_nats / (n_dims * math.log(2.0))
