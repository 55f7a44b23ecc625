"""Mult-VAE and Mult-DAE (Liang et al. 2018) built on the core.

Both use the core's :class:`~vaekit.core.MultinomialLikelihood` over a user's bag of
items and the paper's network [I -> 600 -> 200 -> 600 -> I] with tanh, an L2-normalised
input and input dropout 0.5. Mult-VAE is the core VAE trained with beta annealed linearly
to a cap (0.2 in the paper) by the core's beta schedule. Mult-DAE is the same network
without sampling and without the KL term: z is the encoder mean (a denoising autoencoder
whose corruption is the input dropout).
"""

from __future__ import annotations

import torch
from torch import Tensor

from vaekit.builders import register
from vaekit.core import VAE, MultinomialLikelihood
from vaekit.core.model import LossOutput
from vaekit.core.networks import BagEncoder, MLPDecoder


class MultDAE(VAE):
    """The deterministic variant: loss = -sum_i x_i log softmax(f(g(x)))_i, no KL."""

    def elbo(self, x: Tensor, beta: float = 1.0, y: Tensor | None = None, free_bits: float = 0.0,
             eps: Tensor | None = None) -> LossOutput:
        q = self.encode(x, y)
        params = self.decode(q.mean, x, y)
        log_px = self.likelihood.log_prob(x, params)
        zeros = torch.zeros_like(log_px)
        return LossOutput(-log_px.mean(), log_px, -log_px, zeros, torch.zeros_like(q.mean[0]), q)


def multvae_description(n_items: int, variant: str = "vae", hidden=(600,), latent_dim: int = 200,
                        dropout: float = 0.5) -> dict:
    return {"kind": "multvae", "variant": variant, "n_items": int(n_items), "hidden": [int(h) for h in hidden],
            "latent_dim": int(latent_dim), "dropout": float(dropout)}


@register("multvae")
def build_multvae(description: dict) -> VAE:
    variant = description.get("variant", "vae")
    if variant not in ("vae", "dae"):
        raise ValueError(f"variant must be 'vae' or 'dae', got {variant!r}")
    n_items, hidden, latent = description["n_items"], list(description["hidden"]), description["latent_dim"]
    if not isinstance(n_items, int) or n_items <= 0:
        raise ValueError(f"n_items must be a positive integer, got {n_items!r}")
    enc = BagEncoder(n_items, hidden, latent, description.get("dropout", 0.5))
    dec = MLPDecoder(latent, list(reversed(hidden)), (n_items,), activation="tanh")
    cls = MultDAE if variant == "dae" else VAE
    return cls(enc, dec, MultinomialLikelihood(), latent, config=description)
