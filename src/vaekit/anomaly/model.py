"""The anomaly detectors' VAE: a Gaussian VAE that knows which inputs were observed.

Inputs are packed as ``(B, 2, D)``: channel 0 holds the values (missing ones set to 0,
the training median after scaling), channel 1 the observed mask (1 = observed). This is
the modified ELBO (M-ELBO) of Donut (Xu et al. 2018, "Unsupervised Anomaly Detection via
Variational Auto-Encoder for Seasonal KPIs in Web Applications"):

    M-ELBO(x) = E_q[ sum_j m_j log p(x_j|z) + r log p(z) - log q(z|x) ],  r = sum_j m_j / D,

so missing (or injected-missing, or labelled-anomalous) points give no reconstruction
term and the prior is down-weighted by the share of observed points. With every point
observed it is the ELBO of Kingma & Welling 2014 with its KL in closed form.

p(x|z) is a diagonal Gaussian whose scale is either one learned value per feature
(``scale="feature"``, the default for tables) or an output of the decoder
(``scale="decoder"``, as in An & Cho 2015 and Donut); either way sigma = softplus(.) +
``min_scale``, the floor that keeps a near-constant feature from driving the likelihood
to infinity.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vaekit.builders import register
from vaekit.core import VAE, DiagGaussian, Likelihood
from vaekit.core.model import LossOutput
from vaekit.core.networks import MLPDecoder, MLPEncoder

LOG_2PI = math.log(2.0 * math.pi)
LOG_VAR_MIN, LOG_VAR_MAX = -15.0, 10.0


def pack(values: Tensor, observed: Tensor | None = None) -> Tensor:
    """(B, D) values and (B, D) 0/1 mask -> the (B, 2, D) input of :class:`MaskedVAE`."""
    if observed is None:
        observed = torch.ones_like(values)
    return torch.stack([torch.where(observed > 0, values, torch.zeros_like(values)), observed.to(values.dtype)], 1)


class MaskedGaussian(Likelihood):
    """Diagonal Gaussian over the observed entries of a packed ``(..., 2, D)`` input.

    ``params`` is the mean ``(..., D)`` (``scale="feature"``) or mean and raw scale
    concatenated ``(..., 2D)`` (``scale="decoder"``).
    """

    def __init__(self, n_features: int, scale: str = "feature", min_scale: float = 1e-2):
        super().__init__(event_dims=1)
        if scale not in ("feature", "decoder"):
            raise ValueError(f"scale must be 'feature' or 'decoder', got {scale!r}")
        if min_scale <= 0:
            raise ValueError(f"min_scale must be > 0, got {min_scale}")
        self.n_features, self.scale_mode, self.min_scale = n_features, scale, float(min_scale)
        self.raw_scale = nn.Parameter(torch.full((n_features,), 0.5413)) if scale == "feature" else None  # sigma ~ 1

    def split(self, params: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and standard deviation of p(x|z), each shaped like the values."""
        if self.scale_mode == "decoder":
            mean, raw = params[..., : self.n_features], params[..., self.n_features :]
        else:
            mean, raw = params, self.raw_scale.expand_as(params)
        return mean, F.softplus(raw) + self.min_scale

    def log_prob_per_feature(self, x: Tensor, params: Tensor) -> Tensor:
        """log N(x_j; mu_j, sigma_j) times the observed mask, shape (..., D)."""
        values, observed = x[..., 0, :], x[..., 1, :]
        mean, std = self.split(params)
        lp = -0.5 * (LOG_2PI + ((values - mean) / std) ** 2) - torch.log(std)
        return lp * observed

    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:
        return self.log_prob_per_feature(x, params).sum(-1)

    def mean(self, params: Tensor) -> Tensor:
        return self.split(params)[0]

    def sample(self, params: Tensor) -> Tensor:
        mean, std = self.split(params)
        return mean + std * torch.randn_like(mean)


class MaskedVAE(VAE):
    """A VAE on packed ``(B, 2, D)`` inputs, trained on the M-ELBO (see the module docstring).

    The posterior log-variance is clamped to [-15, 10]: a far-out training row (robust-scaled
    values in the thousands occur, e.g. in ADBench's shuttle) must not overflow exp(log_var).
    """

    @property
    def data_shape(self) -> tuple[int, ...] | None:
        """Packed rows: values and observed mask (the decoder's output is twice as wide)."""
        return (2, int(self.config["n_features"])) if "n_features" in self.config else None

    def encode(self, x: Tensor, y: Tensor | None = None):
        q = super().encode(x[:, 0], y)
        return DiagGaussian(q.mean, q.log_var.clamp(LOG_VAR_MIN, LOG_VAR_MAX))

    @staticmethod
    def observed_ratio(x: Tensor) -> Tensor:
        return x[:, 1].mean(-1)

    def elbo(self, x: Tensor, beta: float = 1.0, y: Tensor | None = None, free_bits: float = 0.0,
             eps: Tensor | None = None) -> LossOutput:
        q = self.encode(x, y)
        z = q.rsample(eps=eps)
        log_px = self.likelihood.log_prob(x, self.decode(z, None, y))
        kl_dims = q.kl_to_standard_normal()
        # Donut's prior weight r: -KL = E_q[log p(z)] - E_q[log q]; r scales only log p(z)
        ratio = self.observed_ratio(x)
        neg_log_prior = 0.5 * (LOG_2PI + q.mean**2 + q.log_var.exp()).sum(-1)
        entropy = 0.5 * (LOG_2PI + 1.0 + q.log_var).sum(-1)
        kl_term = ratio * neg_log_prior - entropy  # equals the KL when every point is observed
        kl = kl_dims.sum(-1)
        loss = (-log_px + beta * kl_term).mean()
        return LossOutput(loss, log_px - kl_term, -log_px, kl, kl_dims.mean(0), q)

    def log_weights(self, x: Tensor, k: int, y: Tensor | None = None, q=None, eps: Tensor | None = None) -> Tensor:
        q = q if q is not None else self.encode(x, y)
        z = q.rsample(k, eps)
        params = self.decode(z, None, y)
        ratio = self.observed_ratio(x)
        return self.likelihood.log_prob(x, params) + ratio * self.prior.log_prob(z) - q.log_prob(z)


def detector_description(n_features: int, hidden=(64, 64), latent_dim: int = 8, scale: str = "feature",
                         min_scale: float = 1e-2, activation: str = "relu") -> dict:
    return {"kind": "anomaly", "n_features": int(n_features), "hidden": [int(h) for h in hidden],
            "latent_dim": int(latent_dim), "scale": scale, "min_scale": float(min_scale), "activation": activation}


@register("anomaly")
def build_anomaly_vae(description: dict) -> VAE:
    d, hidden, latent = description["n_features"], list(description["hidden"]), description["latent_dim"]
    if not isinstance(d, int) or d <= 0:
        raise ValueError(f"n_features must be a positive integer, got {d!r}")
    scale = description.get("scale", "feature")
    out = 2 * d if scale == "decoder" else d
    enc = MLPEncoder((d,), hidden, latent, activation=description.get("activation", "relu"))
    dec = MLPDecoder(latent, list(reversed(hidden)), (out,), activation=description.get("activation", "relu"))
    lik = MaskedGaussian(d, scale, description.get("min_scale", 1e-2))
    return MaskedVAE(enc, dec, lik, latent, config=description)
