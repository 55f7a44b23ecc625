"""Posterior, prior and likelihoods of a VAE (Kingma & Welling 2014, "Auto-Encoding
Variational Bayes").

Every ``log_prob`` sums over the data (or latent) dimensions and returns one value per
example, so that every loss built from them is in nats per example.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LOG_2PI = math.log(2.0 * math.pi)


class DiagGaussian:
    """A diagonal Gaussian q(z|x) = N(mean, diag(exp(log_var))), batch shape (B, D)."""

    def __init__(self, mean: Tensor, log_var: Tensor):
        self.mean = mean
        self.log_var = log_var

    @property
    def std(self) -> Tensor:
        return torch.exp(0.5 * self.log_var)

    def rsample(self, n: int | None = None, eps: Tensor | None = None) -> Tensor:
        """Reparameterized sample z = mean + std * eps; shape (B, D) or (n, B, D).

        ``eps`` may be given (standard normal noise of that shape), so that a caller who
        owns the random stream, such as the distributed trainer, decides every draw.
        """
        shape = self.mean.shape if n is None else (n, *self.mean.shape)
        if eps is None:
            eps = torch.randn(shape, dtype=self.mean.dtype, device=self.mean.device)
        elif eps.shape != shape:
            raise ValueError(f"eps has shape {tuple(eps.shape)}, expected {tuple(shape)}")
        return self.mean + self.std * eps

    def log_prob(self, z: Tensor) -> Tensor:
        """log q(z|x) summed over the latent dimension; broadcasts over leading sample dims."""
        return -0.5 * (
            LOG_2PI + self.log_var + (z - self.mean) ** 2 * torch.exp(-self.log_var)
        ).sum(-1)

    def kl_to_standard_normal(self) -> Tensor:
        """Analytic KL(q || N(0, I)) per latent dimension, shape (B, D)."""
        return 0.5 * (self.mean**2 + torch.exp(self.log_var) - 1.0 - self.log_var)


class StandardNormal:
    """The prior p(z) = N(0, I)."""

    def __init__(self, dim: int):
        self.dim = dim

    def log_prob(self, z: Tensor) -> Tensor:
        return -0.5 * (LOG_2PI + z**2).sum(-1)

    def sample(self, n: int, device=None, dtype=torch.float32) -> Tensor:
        return torch.randn(n, self.dim, device=device, dtype=dtype)


class Likelihood(nn.Module):
    """p(x|z) given the decoder's output ``params``; subclasses define the family.

    ``event_dims`` is the number of trailing dimensions of x that form one example.
    """

    def __init__(self, event_dims: int = 1):
        super().__init__()
        self.event_dims = event_dims

    def _sum_event(self, t: Tensor) -> Tensor:
        return t.flatten(start_dim=t.dim() - self.event_dims).sum(-1)

    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def support_problem(self, x: Tensor) -> str | None:
        """What makes ``x`` data this family cannot score, or None: a log-likelihood of data
        outside the support is a number, but a meaningless one (a check for data entry
        points, not for every step). The default: every value finite."""
        if x.is_floating_point() and not torch.isfinite(x).all():
            return f"{int((~torch.isfinite(x)).sum())} value(s) are NaN or infinite"
        return None

    def mean(self, params: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def sample(self, params: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


def _bernoulli_log_prob_one_pass(logits: Tensor, x: Tensor) -> Tensor:
    """sum_d x_d l_d - softplus(l_d) for k samples of logits against one x, written for
    torch.compile: one fused pass over the logits, with one exp and 1/16 of a log a pixel.

    softplus(l) = max(l, 0) + log(1 + e^-|l|), and each factor 1 + e^-|l| lies in (1, 2], so
    the logs of 16 of them are taken as the log of their product (at most 2^16, no overflow;
    fp32 rounding of the product moves a pixel group's term by ~1e-6, below the error of the
    fp32 sum over pixels). For the MNIST decoder's 5000 x 784 logits of an importance-sampling
    chunk, compiled, 1.5 ms against 2.6-2.8 ms for the fused softplus form, whose exp and log1p
    per pixel bound it (``benchmarks/step_costs.py``). Eagerly, the BCE and einsum forms
    are faster and stay in use. Where gradients flow, :class:`_BernoulliOnePass` gives the
    analytic gradient (the product's own backward would only slow it down).
    """
    d = logits.shape[-1]
    groups = 16 if d % 16 == 0 else 1
    factors = torch.exp(-logits.abs()) + 1
    log_terms = torch.log(factors.view(*logits.shape[:-1], groups, d // groups).prod(-2)).sum(-1)
    return (logits * x - logits.clamp(min=0)).sum(-1) - log_terms


class _BernoulliOnePass(torch.autograd.Function):
    """:func:`_bernoulli_log_prob_one_pass` with its analytic gradient x - sigmoid(l) (the
    gradient BCE-with-logits has), for a compiled training step: the forward's log1p a pixel
    becomes 1/16 of a log. Compiled, forward and backward for a batch of 1024 MNIST images
    take 1.09 ms against 1.27 ms for BCE-with-logits (``benchmarks/step_costs.py``). x
    broadcasts against the logits (k samples of them for the IWAE objective); no gradient
    flows to x."""

    @staticmethod
    def forward(ctx, logits: Tensor, x: Tensor) -> Tensor:
        ctx.save_for_backward(logits, x)
        return _bernoulli_log_prob_one_pass(logits, x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        logits, x = ctx.saved_tensors
        return (x - torch.sigmoid(logits)) * grad.unsqueeze(-1), None


class BernoulliLikelihood(Likelihood):
    """Bernoulli pixels with logits ``params``; x in [0, 1] (binary or probabilities)."""

    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:
        # log p = sum_d x_d l_d - softplus(l_d), in fp32 even under bf16 autocast: a sum
        # over every pixel must not round to bf16. Two shapes, two fastest forms:
        # - one x per logit row (training): the fused BCE-with-logits kernel; an einsum
        #   here becomes a batched 1x784 @ 784x1 matmul, ~3x slower with its backward;
        # - k importance samples of logits for one x: one fused reduction for the x-term
        #   (no x expanded over the samples) and one softplus pass, ~1.8x faster than
        #   BCE-with-logits on the expanded x.
        # Compiled, both shapes take the one-pass form (_bernoulli_log_prob_one_pass), with
        # its analytic gradient where gradients flow.
        with torch.autocast(params.device.type, enabled=False):
            p = params.float().flatten(start_dim=params.dim() - self.event_dims)
            xf = x.flatten(start_dim=x.dim() - self.event_dims).to(p.dtype)
            if torch.compiler.is_compiling() and not xf.requires_grad:
                if p.requires_grad:  # a training step
                    return _BernoulliOnePass.apply(p, xf)
                return _bernoulli_log_prob_one_pass(p, xf)  # evaluation (IW NLL)
            if xf.shape == p.shape:
                return -F.binary_cross_entropy_with_logits(p, xf, reduction="none").sum(-1)
            return torch.einsum("...d,...d->...", p, xf) - F.softplus(p).sum(-1)

    def support_problem(self, x: Tensor) -> str | None:
        problem = super().support_problem(x)
        if problem is None and x.numel() and (x.min() < 0 or x.max() > 1):
            outside = int(((x < 0) | (x > 1)).sum())
            problem = (f"{outside} value(s) lie outside [0, 1] (range {float(x.min()):g} to {float(x.max()):g}); "
                       "a Bernoulli likelihood needs pixels scaled to [0, 1]")
        return problem

    def mean(self, params: Tensor) -> Tensor:
        return torch.sigmoid(params)

    def sample(self, params: Tensor) -> Tensor:
        return torch.bernoulli(torch.sigmoid(params))


class GaussianLikelihood(Likelihood):
    """Gaussian with mean ``params`` and a fixed or learned scale.

    With a fixed scale sigma the negative log-likelihood is MSE / (2 sigma^2) plus a
    constant, so MSE training is the special case. A learned scale is one log-sigma per
    data dimension (``n_features`` of them), shared across examples.
    """

    def __init__(self, scale: float | None = 1.0, n_features: int = 1, event_dims: int = 1):
        super().__init__(event_dims)
        if scale is None:
            self.log_scale = nn.Parameter(torch.zeros(n_features))
        else:
            if scale <= 0:
                raise ValueError(f"Gaussian scale must be > 0, got {scale}")
            self.register_buffer("log_scale", torch.full((1,), math.log(scale)))

    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:
        log_scale = self.log_scale.reshape(params.shape[-self.event_dims :]) if (
            self.log_scale.numel() > 1
        ) else self.log_scale
        z = (x - params) * torch.exp(-log_scale)
        return self._sum_event(-0.5 * (LOG_2PI + z**2) - log_scale)

    def mean(self, params: Tensor) -> Tensor:
        return params

    def sample(self, params: Tensor) -> Tensor:
        scale = torch.exp(self.log_scale)
        if scale.numel() > 1:
            scale = scale.reshape(params.shape[-self.event_dims :])
        return params + scale * torch.randn_like(params)


class CategoricalLikelihood(Likelihood):
    """Token sequences: logits (B, T, V), x (B, T) integer ids; ``pad_id`` positions ignored."""

    def __init__(self, pad_id: int | None = None):
        super().__init__(event_dims=1)
        self.pad_id = pad_id

    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:
        logp = torch.log_softmax(params, dim=-1)
        token_logp = logp.gather(-1, x.expand(params.shape[:-1]).unsqueeze(-1)).squeeze(-1)
        if self.pad_id is not None:
            token_logp = token_logp.masked_fill(x == self.pad_id, 0.0)
        return token_logp.sum(-1)

    def support_problem(self, x: Tensor) -> str | None:
        if x.is_floating_point() or x.dtype == torch.bool:
            return f"token ids must be integers, got dtype {x.dtype}"
        if x.numel() and x.min() < 0:
            return f"token ids must be >= 0, got {int(x.min())}"
        return None

    def mean(self, params: Tensor) -> Tensor:
        return params.argmax(-1)

    def sample(self, params: Tensor) -> Tensor:
        return torch.distributions.Categorical(logits=params).sample()


class MultinomialLikelihood(Likelihood):
    """A bag of items (Liang et al. 2018, Mult-VAE): x (B, I) counts, logits (B, I).

    log p(x|z) = sum_i x_i log softmax(logits)_i, without the multinomial coefficient,
    which does not depend on z (the convention of the paper).
    """

    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:
        return (torch.log_softmax(params, dim=-1) * x).sum(-1)

    def support_problem(self, x: Tensor) -> str | None:
        problem = super().support_problem(x)
        if problem is None and x.numel() and x.min() < 0:
            problem = f"{int((x < 0).sum())} count(s) are negative (min {float(x.min()):g})"
        return problem

    def mean(self, params: Tensor) -> Tensor:
        return torch.softmax(params, dim=-1)

    def sample(self, params: Tensor) -> Tensor:
        return torch.softmax(params, dim=-1)
