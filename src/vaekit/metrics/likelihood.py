"""Test log-likelihood by importance sampling (Burda et al. 2015, section 5.1).

NLL(x) = -log (1/k) sum_i p(x, z_i) / q(z_i|x), z_i ~ q(z|x); k = 5000 for the published
MNIST numbers. Computed per batch of examples and in chunks of samples with a running
logsumexp (:meth:`vaekit.core.VAE.iwae_bound`), so memory does not grow with k.
"""

from __future__ import annotations

import math
import sys
from typing import Callable

import torch

from vaekit.core import VAE
from vaekit.core.distributions import DiagGaussian
from vaekit.train import Tensors
from vaekit.train.acceleration import Compiled


# below this many importance samples in all (examples x k) compiling costs more than it saves
COMPILE_WORTH_IT = 20_000_000


class CompiledIWChunk:
    """:meth:`VAE.merge_chunk` under ``torch.compile``: one chunk of the IW bound (its log
    weights and their merge into the running logsumexp) as one compiled call.

    Eagerly, a chunk makes several passes over a (chunk, batch, D) tensor of decoder
    outputs (bias, softplus, the x-term, the sum), then a handful of small calls for the
    merge; compiled, the likelihood is one fused pass after the decoder's matmuls, and the
    merge joins it (``benchmarks/iw_eval.py`` measures it against compiling the log
    weights alone). Same noise, same maths: only float rounding differs. The weights are
    inputs of the graph, not constants, so a graph kept for the next evaluation reads them
    as they are then. Falls back to eager execution, reported once, where the compiler is
    missing or fails on this model.
    """

    def __init__(self, model: VAE, log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)):
        def step(total, x, mean, log_var, eps, y):
            return model.merge_chunk(total, x, y, DiagGaussian(mean, log_var), eps)

        self.step = Compiled(step, log, doing="evaluating")

    def __call__(self, total, x, y, q: DiagGaussian, eps):
        return self.step(total, x, q.mean, q.log_var, eps, y)


@torch.inference_mode()
def iw_nll(
    model: VAE,
    data: Tensors,
    k: int = 5000,
    chunk: int = 100,
    batch_size: int = 100,
    seed: int = 0,
    on_batch: Callable[[int], None] | None = None,
    compile: bool | None = None,
) -> torch.Tensor:
    """Per-example importance-weighted NLL in nats, shape (N,).

    ``compile``: evaluate the chunks with :class:`CompiledIWChunk`; ``None`` (default)
    compiles when the whole evaluation has at least ``COMPILE_WORTH_IT`` importance
    samples (10,000 MNIST test images x k = 5000 do; a quick check does not).
    """
    model.eval()
    if compile is None:
        compile = len(data) * k >= COMPILE_WORTH_IT
    step = CompiledIWChunk(model) if compile else None
    out = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i in range(0, len(data), batch_size):
            x, y = data.batch(torch.arange(i, min(i + batch_size, len(data))))
            out.append(-model.iwae_bound(x, k, y, chunk=chunk, merge_chunk=step))
            if on_batch:
                on_batch(x.shape[0])
    return torch.cat(out)


def bits_per_dim(nll_nats: float, n_dims: int) -> float:
    return nll_nats / (n_dims * math.log(2.0))
