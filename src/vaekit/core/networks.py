"""Encoder and decoder networks.

Encoders map x (and an optional conditioning vector, e.g. a one-hot label for the
conditional VAE of Sohn et al. 2015) to the mean and log-variance of q(z|x). Decoders map
z (and the conditioning vector) to the parameters of p(x|z), shaped like x.

An *autoregressive* decoder also reads x itself, shifted so that output i only sees x_<i
(teacher forcing): ``MADEDecoder`` (Germain et al. 2015, "MADE: Masked Autoencoder for
Distribution Estimation") gives p(x|z) = prod_i p(x_i | x_<i, z) in one pass, as in the
variational lossy autoencoder family (Chen et al. 2017). Its log-likelihood is exact and as
cheap as an MLP's; sampling takes one pass per dimension.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU, "silu": nn.SiLU}


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def mlp(sizes: list[int], activation: str = "relu", final_activation: bool = False) -> nn.Sequential:
    """Linear layers between consecutive ``sizes`` with ``activation`` between them."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or final_activation:
            layers.append(_activation(activation))
    return nn.Sequential(*layers)


class GaussianHead(nn.Module):
    """Linear map from features to (mean, log_var) of a diagonal Gaussian."""

    def __init__(self, in_features: int, latent_dim: int):
        super().__init__()
        self.mean = nn.Linear(in_features, latent_dim)
        self.log_var = nn.Linear(in_features, latent_dim)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        return self.mean(h), self.log_var(h)


def _with_cond(h: Tensor, cond: Tensor | None) -> Tensor:
    return h if cond is None else torch.cat([h, cond.to(h.dtype)], dim=-1)


class MLPEncoder(nn.Module):
    def __init__(self, data_shape, hidden, latent_dim, cond_dim=0, activation="relu"):
        super().__init__()
        n_in = math.prod(data_shape)
        self.body = mlp([n_in + cond_dim, *hidden], activation, final_activation=True)
        self.head = GaussianHead(hidden[-1] if hidden else n_in + cond_dim, latent_dim)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.head(self.body(_with_cond(x.flatten(1).float(), cond)))


class BagEncoder(nn.Module):
    """Encoder for a bag of items (Liang et al. 2018, Mult-VAE): the user's item vector is
    L2-normalised, then input dropout (rate ``dropout``, training only) hides items, then
    an MLP (tanh in the paper) gives the mean and log-variance of q(z|x)."""

    def __init__(self, n_items: int, hidden, latent_dim: int, dropout: float = 0.5, activation: str = "tanh"):
        super().__init__()
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.dropout = nn.Dropout(dropout)
        self.body = mlp([n_items, *hidden], activation, final_activation=True)
        self.head = GaussianHead(hidden[-1] if hidden else n_items, latent_dim)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x = F.normalize(x.float(), dim=-1)
        return self.head(self.body(self.dropout(x)))


class MLPDecoder(nn.Module):
    autoregressive = False

    def __init__(self, latent_dim, hidden, data_shape, cond_dim=0, activation="relu"):
        super().__init__()
        self.data_shape = tuple(data_shape)
        self.net = mlp([latent_dim + cond_dim, *hidden, math.prod(data_shape)], activation)

    def forward(self, z: Tensor, x: Tensor | None = None, cond: Tensor | None = None) -> Tensor:
        out = self.net(_with_cond(z, cond))
        return out.reshape(*z.shape[:-1], *self.data_shape)


def _conv_out(size: int, n_layers: int) -> int:
    for _ in range(n_layers):
        size = (size + 2 * 1 - 4) // 2 + 1  # kernel 4, stride 2, padding 1
    return size


class ConvEncoder(nn.Module):
    """Strided 4x4 convolutions (stride 2) then a dense layer, for (C, H, W) images."""

    def __init__(self, data_shape, channels, latent_dim, hidden=256, cond_dim=0, activation="relu"):
        super().__init__()
        c, h, w = data_shape
        layers: list[nn.Module] = []
        for cin, cout in zip([c, *channels[:-1]], channels):
            layers += [nn.Conv2d(cin, cout, 4, 2, 1), _activation(activation)]
        self.conv = nn.Sequential(*layers)
        flat = channels[-1] * _conv_out(h, len(channels)) * _conv_out(w, len(channels))
        self.dense = nn.Sequential(nn.Linear(flat + cond_dim, hidden), _activation(activation))
        self.head = GaussianHead(hidden, latent_dim)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h = self.conv(x.float()).flatten(1)
        return self.head(self.dense(_with_cond(h, cond)))


class ConvDecoder(nn.Module):
    """Mirror of :class:`ConvEncoder` with transposed convolutions, cropped to (H, W)."""

    autoregressive = False

    def __init__(self, latent_dim, channels, data_shape, hidden=256, cond_dim=0, activation="relu"):
        super().__init__()
        c, h, w = data_shape
        self.data_shape = tuple(data_shape)
        n = len(channels)
        self.start = (channels[-1], math.ceil(h / 2**n), math.ceil(w / 2**n))
        self.dense = nn.Sequential(
            nn.Linear(latent_dim + cond_dim, hidden),
            _activation(activation),
            nn.Linear(hidden, math.prod(self.start)),
            _activation(activation),
        )
        rev = list(reversed(channels))
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(rev, [*rev[1:], c])):
            layers.append(nn.ConvTranspose2d(cin, cout, 4, 2, 1))
            if i < n - 1:
                layers.append(_activation(activation))
        self.deconv = nn.Sequential(*layers)

    def forward(self, z: Tensor, x: Tensor | None = None, cond: Tensor | None = None) -> Tensor:
        lead = z.shape[:-1]
        h = self.dense(_with_cond(z.reshape(-1, z.shape[-1]), None if cond is None else cond.reshape(-1, cond.shape[-1])))
        out = self.deconv(h.reshape(-1, *self.start))
        out = out[..., : self.data_shape[1], : self.data_shape[2]]
        return out.reshape(*lead, *self.data_shape)


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask (MADE)."""

    def __init__(self, in_features: int, out_features: int, mask: Tensor, bias: bool = True):
        super().__init__(in_features, out_features, bias)
        self.register_buffer("mask", mask.to(torch.float32))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class MADEDecoder(nn.Module):
    """p(x|z) = prod_i p(x_i | x_<i, z) in raster order, by masked dense layers.

    Hidden units get evenly spread degrees in 1..D-1 (deterministic, so masks need no
    seed); output i sees hidden units of degree < i and, through a direct masked
    connection, inputs x_<i. z (and the condition) enter every layer through unmasked
    linear maps, so every conditional depends on z.
    """

    autoregressive = True

    def __init__(self, latent_dim, hidden, data_shape, cond_dim=0, activation="relu"):
        super().__init__()
        self.data_shape = tuple(data_shape)
        d = math.prod(data_shape)
        in_deg = torch.arange(1, d + 1)
        degs = [in_deg]
        for size in hidden:
            degs.append(torch.arange(size) % max(d - 1, 1) + 1)
        self.masked = nn.ModuleList()
        self.context = nn.ModuleList()
        for prev, cur in zip(degs[:-1], degs[1:]):
            self.masked.append(MaskedLinear(len(prev), len(cur), cur[:, None] >= prev[None, :]))
            self.context.append(nn.Linear(latent_dim + cond_dim, len(cur), bias=False))
        self.out = MaskedLinear(len(degs[-1]), d, in_deg[:, None] > degs[-1][None, :])
        self.direct = MaskedLinear(d, d, in_deg[:, None] > in_deg[None, :], bias=False)
        self.out_context = nn.Linear(latent_dim + cond_dim, d)
        self.act = _activation(activation)

    def forward(self, z: Tensor, x: Tensor | None = None, cond: Tensor | None = None) -> Tensor:
        if x is None:
            raise ValueError("MADEDecoder is autoregressive: forward needs x; use generate()")
        zc = _with_cond(z, cond)
        # terms that depend on x only are computed once per x and broadcast over the
        # leading sample dimension of z (k importance samples cost k context passes only)
        xf = x.reshape(*x.shape[: x.dim() - len(self.data_shape)], -1).to(z.dtype)
        h = self.act(self.masked[0](xf) + self.context[0](zc))
        for masked, context in zip(self.masked[1:], self.context[1:]):
            h = self.act(masked(h) + context(zc))
        out = self.out(h) + self.direct(xf) + self.out_context(zc)
        return out.reshape(*z.shape[:-1], *self.data_shape)

    @torch.no_grad()
    def generate(self, z: Tensor, likelihood, cond: Tensor | None = None, mean: bool = False) -> Tensor:
        """Sample x one dimension at a time; with ``mean`` return the final probabilities."""
        d = math.prod(self.data_shape)
        x = torch.zeros(z.shape[0], d, dtype=z.dtype, device=z.device)
        for i in range(d):
            params = self.forward(z, x.reshape(-1, *self.data_shape), cond).reshape(z.shape[0], d)
            x[:, i] = likelihood.sample(params[:, i])
        params = self.forward(z, x.reshape(-1, *self.data_shape), cond)
        return likelihood.mean(params) if mean else x.reshape(-1, *self.data_shape)
