"""The variational autoencoder (Kingma & Welling 2014) and its importance-weighted bound
(Burda et al. 2015, "Importance Weighted Autoencoders").

ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z)), with the KL in closed form. The training
loss is -E_q[log p(x|z)] + beta * KL, with free bits applied per latent dimension when
asked. The IW bound log (1/k) sum_i p(x, z_i) / q(z_i|x) is computed in chunks of samples
with a running logsumexp, so k = 5000 fits in memory.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vaekit.core.distributions import DiagGaussian, Likelihood, StandardNormal
from vaekit.core.schedules import free_bits_kl


@dataclass
class LossOutput:
    """One record per forward pass. Per-example tensors have shape (B,)."""

    loss: Tensor  # scalar training objective (mean over the batch)
    elbo: Tensor  # per example, with beta = 1 and no free bits: the true ELBO
    reconstruction: Tensor  # per example, -E_q[log p(x|z)] (one sample)
    kl: Tensor  # per example, analytic KL(q(z|x) || p(z))
    kl_per_dim: Tensor  # (D,), batch mean of the KL of each latent dimension
    posterior: DiagGaussian


def _positive_int(value, name: str) -> int:
    """An integer-like count (int, NumPy or 0-d tensor integers) as an int, or a ValueError."""
    try:
        count = operator.index(value)
    except TypeError:
        count = None
    if isinstance(value, bool) or count is None or count <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return count


class VAE(nn.Module):
    """A VAE built from an encoder, a decoder and a likelihood, with a N(0, I) prior.

    ``n_classes`` > 0 makes it a conditional VAE (Sohn et al. 2015): the one-hot label is
    given to both the encoder and the decoder. ``config`` is the JSON-able description the
    model was built from (kept for ``save_pretrained``).
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        likelihood: Likelihood,
        latent_dim: int,
        n_classes: int = 0,
        config: dict | None = None,
    ):
        super().__init__()
        if latent_dim <= 0:
            raise ValueError(f"latent_dim must be > 0, got {latent_dim}")
        self.encoder = encoder
        self.decoder = decoder
        self.likelihood = likelihood
        self.latent_dim = latent_dim
        self.n_classes = n_classes
        self.prior = StandardNormal(latent_dim)
        self.config = dict(config or {})

    # -- building blocks -------------------------------------------------------------
    @property
    def autoregressive(self) -> bool:
        return bool(getattr(self.decoder, "autoregressive", False))

    def _cond(self, y: Tensor | None) -> Tensor | None:
        if self.n_classes == 0:
            return None
        if y is None:
            raise ValueError("this is a conditional VAE: pass labels y")
        return F.one_hot(y.long(), self.n_classes).float()

    @property
    def data_shape(self) -> tuple[int, ...] | None:
        """The shape of one example, where the decoder has a fixed one (None: sequences)."""
        shape = getattr(self.decoder, "data_shape", None)
        return None if shape is None else tuple(shape)

    def check_data(self, x, y=None, what: str = "x") -> None:
        """Refuse data this model cannot score, naming the problem: not a tensor, the wrong
        shape for the model, values outside the likelihood's support (pixels outside [0, 1]
        for a Bernoulli model, NaN), labels missing or out of range for a conditional model.

        Called where data enter (``Trainer``, :meth:`iwae_bound`, :meth:`reconstruct`,
        :meth:`interpolate`), not in each training step: without it such data give torch's
        shape errors or, worse, numbers.
        """
        from vaekit.errors import DataError

        if not isinstance(x, Tensor):
            hint = " (torch.from_numpy(x).float() makes one)" if type(x).__module__ == "numpy" else ""
            raise DataError(f"{what}: expected a torch.Tensor, got {type(x).__name__}{hint}")
        shape = self.data_shape
        if shape is not None and tuple(x.shape[1:]) != shape:
            if x.dim() == len(shape) and tuple(x.shape) == shape:
                raise DataError(f"{what}: shape {tuple(x.shape)} is one example; the model takes a batch "
                                f"(B, {', '.join(map(str, shape))}): x.unsqueeze(0) makes one")
            fix = (f": x.reshape(-1, {', '.join(map(str, shape))}) gives it" if x.dim() >= 1 and x.shape[0]
                   and x.numel() % math.prod(shape) == 0 and x.numel() // x.shape[0] == math.prod(shape) else "")
            raise DataError(f"{what}: shape {tuple(x.shape)} does not fit the model, which takes "
                            f"(B, {', '.join(map(str, shape))}){fix}")
        problem = self.likelihood.support_problem(x)
        if problem is not None:
            raise DataError(f"{what}: {problem}")
        if self.n_classes:
            if y is None:
                raise DataError("this is a conditional VAE: pass labels y")
            if (not isinstance(y, Tensor) or y.shape != x.shape[:1] or y.dtype == torch.bool
                    or (y.is_floating_point() and not torch.equal(y, y.round()))):
                raise DataError(f"{what}: labels y must be whole numbers, a tensor of shape ({x.shape[0]},), got "
                                f"{type(y).__name__} {tuple(getattr(y, 'shape', ()))}"
                                f"{' ' + str(y.dtype) if isinstance(y, Tensor) else ''}")
            if y.numel() and (y.min() < 0 or y.max() >= self.n_classes):
                raise DataError(f"{what}: labels must lie in 0..{self.n_classes - 1}, got {int(y.min())} "
                                f"to {int(y.max())}")

    def encode(self, x: Tensor, y: Tensor | None = None) -> DiagGaussian:
        mean, log_var = self.encoder(x, self._cond(y))
        return DiagGaussian(mean, log_var)

    def decode(self, z: Tensor, x: Tensor | None = None, y: Tensor | None = None) -> Tensor:
        """Parameters of p(x|z); an autoregressive decoder also needs x (teacher forcing)."""
        cond = self._cond(y)
        if cond is not None and z.dim() == 3:
            cond = cond.expand(z.shape[0], *cond.shape)
        return self.decoder(z, x, cond)

    # -- objectives ------------------------------------------------------------------
    def forward(self, x: Tensor, beta: float = 1.0, y: Tensor | None = None, free_bits: float = 0.0,
                eps: Tensor | None = None, iwae_k: int = 0) -> LossOutput:
        """The training objective: the ELBO, or the IW bound when ``iwae_k`` > 0.

        Going through ``forward`` lets DistributedDataParallel see the computation.
        """
        if iwae_k > 0:
            return self.iwae_loss(x, iwae_k, y, eps)
        return self.elbo(x, beta, y, free_bits, eps)

    def elbo(self, x: Tensor, beta: float = 1.0, y: Tensor | None = None, free_bits: float = 0.0,
             eps: Tensor | None = None) -> LossOutput:
        q = self.encode(x, y)
        z = q.rsample(eps=eps)
        params = self.decode(z, x, y)
        log_px = self.likelihood.log_prob(x, params)
        kl_dims = q.kl_to_standard_normal()
        kl = kl_dims.sum(-1)
        kl_term = free_bits_kl(kl_dims, free_bits) if free_bits > 0 else kl
        loss = (-log_px + beta * kl_term).mean()
        return LossOutput(loss, log_px - kl, -log_px, kl, kl_dims.mean(0), q)

    def log_weights(self, x: Tensor, k: int, y: Tensor | None = None, q: DiagGaussian | None = None,
                    eps: Tensor | None = None) -> Tensor:
        """log p(x, z_i) - log q(z_i|x) for k samples, shape (k, B)."""
        q = q if q is not None else self.encode(x, y)
        z = q.rsample(k, eps)
        params = self.decode(z, x, y)
        return self.likelihood.log_prob(x, params) + self.prior.log_prob(z) - q.log_prob(z)

    def iwae_loss(self, x: Tensor, k: int, y: Tensor | None = None, eps: Tensor | None = None) -> LossOutput:
        """Training with the IW bound (Burda et al. 2015): loss = -mean_B L_k."""
        q = self.encode(x, y)
        lw = self.log_weights(x, k, y, q, eps)
        bound = torch.logsumexp(lw, 0) - math.log(k)
        kl_dims = q.kl_to_standard_normal()
        kl = kl_dims.sum(-1)
        return LossOutput(-bound.mean(), bound.detach(), (-bound - kl).detach(), kl, kl_dims.mean(0), q)

    @torch.no_grad()
    def iwae_bound(self, x: Tensor, k: int, y: Tensor | None = None, chunk: int = 100,
                   merge_chunk: Callable[..., Tensor] | None = None) -> Tensor:
        """log p(x) estimated with k importance samples, per example, shape (B,).

        Encodes once, then draws samples in chunks and merges chunk logsumexps, so memory
        is O(chunk * B) whatever k is. -iwae_bound(x, 5000) is Burda et al.'s test NLL.
        ``merge_chunk`` stands in for :meth:`merge_chunk` (same arguments), for example a
        compiled copy (``vaekit.metrics.likelihood.CompiledIWChunk``); the noise is drawn
        here either way, so both give the same estimate for the same seed.
        """
        k, chunk = _positive_int(k, "number of importance samples"), _positive_int(chunk, "chunk")
        self.check_data(x, y)
        q = self.encode(x, y)
        merge = merge_chunk or self.merge_chunk
        total = torch.full((x.shape[0],), -math.inf, dtype=q.mean.dtype, device=x.device)
        done = 0
        while done < k:
            c = min(chunk, k - done)
            eps = torch.randn((c, *q.mean.shape), dtype=q.mean.dtype, device=q.mean.device)
            total = merge(total, x, y, q, eps)
            done += c
        return total - math.log(k)

    def merge_chunk(self, total: Tensor, x: Tensor, y: Tensor | None, q: DiagGaussian, eps: Tensor) -> Tensor:
        """One chunk of the IW bound: the running log of summed importance weights per
        example, ``total`` (B,), merged with those of the noise ``eps`` (c, B, D)."""
        return torch.logaddexp(total, torch.logsumexp(self.log_weights(x, eps.shape[0], y, q, eps), 0))

    # -- generation ------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, z: Tensor, y: Tensor | None = None, mean: bool = True) -> Tensor:
        """x from latent codes: the decoder's mean (or a sample) of p(x|z)."""
        cond = self._cond(y)
        if self.autoregressive:
            return self.decoder.generate(z, self.likelihood, cond, mean=mean)
        params = self.decoder(z, None, cond)
        return self.likelihood.mean(params) if mean else self.likelihood.sample(params)

    @torch.no_grad()
    def sample(self, n: int, y: Tensor | None = None, mean: bool = True) -> Tensor:
        if n <= 0:
            raise ValueError(f"number of samples must be > 0, got {n}")
        ref = next(self.parameters())
        z = self.prior.sample(n, device=ref.device, dtype=ref.dtype)
        return self.generate(z, y, mean)

    @torch.no_grad()
    def reconstruct(self, x: Tensor, y: Tensor | None = None, mean: bool = True) -> Tensor:
        self.check_data(x, y)
        return self.generate(self.encode(x, y).mean, y, mean)

    @torch.no_grad()
    def interpolate(self, x_a: Tensor, x_b: Tensor, steps: int = 8, y: Tensor | None = None) -> Tensor:
        """Decoded points on the straight line between the posterior means of x_a and x_b."""
        if steps < 2:
            raise ValueError(f"steps must be >= 2, got {steps}")
        for name, point in (("x_a", x_a), ("x_b", x_b)):
            self.check_data(point.unsqueeze(0) if isinstance(point, Tensor) else point, None if y is None else
                            y[:1] if name == "x_a" else y[1:2], what=f"{name} (one example)")
        za = self.encode(x_a.unsqueeze(0), None if y is None else y[:1]).mean
        zb = self.encode(x_b.unsqueeze(0), None if y is None else y[1:2]).mean
        t = torch.linspace(0, 1, steps, dtype=za.dtype, device=za.device)[:, None]
        z = (1 - t) * za + t * zb
        yy = None if y is None else y[:1].expand(steps)
        return self.generate(z, yy)

    # -- files -----------------------------------------------------------------------
    def save_pretrained(self, directory) -> None:
        from vaekit.io import save_pretrained  # io builds on the core, not the reverse

        save_pretrained(self, directory)

    @classmethod
    def from_pretrained(cls, directory) -> "VAE":
        from vaekit.io import from_pretrained

        return from_pretrained(directory)
