"""The molecule VAE (Gómez-Bombarelli et al. 2018): a sequence VAE over SMILES or SELFIES
tokens, with an optional head that predicts molecular properties from z.

- Encoder: the bidirectional GRU/LSTM of the sentence VAE (:class:`SentenceEncoder`), or
  :class:`ConvSequenceEncoder`, the paper's 1-D convolutions over one-hot-like token
  embeddings (three layers, kernels 9, 9, 11), max-pooled over the real tokens.
- Decoder: the autoregressive GRU/LSTM of the sentence VAE, conditioned on z through its
  initial state and at every step (:class:`SentenceDecoder`).
- :class:`PropertyVAE`: the property head, an MLP from the posterior mean to the
  standardized properties, trained jointly with the ELBO (the paper's section 2.2: it
  organizes the latent space by property, which gradient-based and Bayesian search
  then exploit). The property loss enters the training objective only; the ELBO that
  is reported is the plain one.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vaekit.builders import register
from vaekit.core import VAE, CategoricalLikelihood
from vaekit.core.networks import GaussianHead
from vaekit.text.model import SentenceDecoder, SentenceEncoder
from vaekit.text.vocab import PAD_ID


class ConvSequenceEncoder(nn.Module):
    """1-D convolutions over the token embeddings, max-pooled over the sequence."""

    def __init__(self, vocab_size: int, embedding_dim: int, hidden: int, latent_dim: int,
                 channels: tuple[int, ...] = (9, 9, 10), kernels: tuple[int, ...] = (9, 9, 11)):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD_ID)
        layers, c_in = [], embedding_dim
        for c, k in zip(channels, kernels):
            layers.append(nn.Conv1d(c_in, c * 16, k, padding=k // 2))
            c_in = c * 16
        self.conv = nn.ModuleList(layers)
        self.fc = nn.Sequential(nn.Linear(c_in, hidden), nn.ReLU())
        self.head = GaussianHead(hidden, latent_dim)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        mask = (x != PAD_ID).unsqueeze(1)  # (B, 1, T)
        h = self.embed(x).transpose(1, 2)  # (B, E, T)
        for conv in self.conv:
            # zero at the padding after every layer: a molecule's code does not depend on
            # how much padding its batch holds
            h = torch.relu(conv(h)).masked_fill(~mask, 0.0)
        h = h.masked_fill(~mask, float("-inf")).amax(-1)
        return self.head(self.fc(torch.nan_to_num(h, neginf=0.0)))


class PropertyVAE(VAE):
    """A VAE whose training loss adds ``weight`` x the squared error of a property head.

    The targets ``y`` are the standardized properties (B, P) the data set carries; the
    head reads the posterior mean. ``predict_properties`` returns them in their own units.
    """

    def __init__(self, encoder, decoder, likelihood, latent_dim: int, property_names: list[str],
                 property_mean: list[float], property_std: list[float], hidden: int = 256, weight: float = 1.0,
                 config: dict | None = None):
        super().__init__(encoder, decoder, likelihood, latent_dim, config=config)
        self.property_names = list(property_names)
        self.property_weight = float(weight)
        p = len(self.property_names)
        self.property_head = nn.Sequential(nn.Linear(latent_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden),
                                           nn.Tanh(), nn.Linear(hidden, p)) if p else None
        self.register_buffer("property_mean", torch.tensor(property_mean, dtype=torch.float32).reshape(p))
        self.register_buffer("property_std", torch.tensor(property_std, dtype=torch.float32).reshape(p))

    def elbo(self, x: Tensor, beta: float = 1.0, y: Tensor | None = None, free_bits: float = 0.0,
             eps: Tensor | None = None):
        out = super().elbo(x, beta, None, free_bits, eps)
        if self.property_head is not None and y is not None and y.is_floating_point() and y.shape[-1]:
            pred = self.property_head(out.posterior.mean).float()
            out.loss = out.loss + self.property_weight * ((pred - y.float()) ** 2).mean()
        return out

    def predict_properties(self, z: Tensor) -> Tensor:
        """Predicted properties (..., P) of latent codes, in the properties' own units."""
        if self.property_head is None:
            raise ValueError("this model has no property head (train it with data.properties set)")
        return self.property_head(z) * self.property_std + self.property_mean


def molecule_vae_description(vocab_size: int, model: dict, representation: str, properties: list[str],
                             mean: list[float], std: list[float]) -> dict:
    return {"kind": "molecule", "vocab_size": int(vocab_size), "model": dict(model),
            "representation": representation,
            "properties": {"names": list(properties), "mean": [float(v) for v in mean],
                           "std": [float(v) for v in std]}}


@register("molecule")
def build_molecule_vae(description: dict) -> PropertyVAE:
    m, v = description["model"], int(description["vocab_size"])
    if m["encoder"] == "conv":
        enc = ConvSequenceEncoder(v, m["embedding_dim"], m["hidden"], m["latent_dim"])
    else:
        enc = SentenceEncoder(v, m["embedding_dim"], m["hidden"], m["latent_dim"], m["cell"], True)
    dec = SentenceDecoder(v, m["embedding_dim"], m["hidden"], m["latent_dim"], m["cell"], m["word_dropout"],
                          True, False)
    props = description.get("properties") or {"names": [], "mean": [], "std": []}
    return PropertyVAE(enc, dec, CategoricalLikelihood(pad_id=PAD_ID), m["latent_dim"], props["names"],
                       props["mean"], props["std"], m["property_hidden"], m["property_weight"], config=description)
