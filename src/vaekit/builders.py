"""Build a VAE from its JSON-able description, the inverse of ``VAE.config``.

``save_pretrained`` writes ``model.config`` to ``config.json``; ``from_pretrained`` calls
:func:`build_vae` on it and loads the weights. Each kind of model registers one builder
here, so a model file never needs code from the file itself (no pickle).
"""

from __future__ import annotations

import math
from typing import Callable

from vaekit.config import ModelConfig
from vaekit.core import VAE, BernoulliLikelihood, GaussianLikelihood
from vaekit.core.networks import (
    ConvDecoder,
    ConvEncoder,
    MADEDecoder,
    MLPDecoder,
    MLPEncoder,
)
from vaekit.errors import ConfigError, ModelFileError

BUILDERS: dict[str, Callable[[dict], VAE]] = {}


def register(kind: str):
    def wrap(fn):
        BUILDERS[kind] = fn
        return fn

    return wrap


# kinds whose builder lives in an application package, imported on first use
LAZY_BUILDERS = {"multvae": "vaekit.recommend.model", "anomaly": "vaekit.anomaly.model", "text": "vaekit.text.model",
                 "molecule": "vaekit.molecules.model"}


def builder_for(description: dict):
    """The builder of a description's ``kind``, importing its application package if needed."""
    kind = description.get("kind")
    if kind not in BUILDERS and kind in LAZY_BUILDERS:
        import importlib

        importlib.import_module(LAZY_BUILDERS[kind])
    if kind not in BUILDERS:
        raise ModelFileError(f"unknown model kind {kind!r} in config; known: {sorted(BUILDERS)}")
    return BUILDERS[kind]


def build_vae(description: dict) -> VAE:
    return builder_for(description)(description)


def image_vae_description(model: ModelConfig, data_shape, n_classes: int = 0) -> dict:
    if model.conditional and n_classes <= 0:
        raise ConfigError("model.conditional needs labelled data; this dataset has no labels")
    return {
        "kind": "image",
        "model": model.model_dump(),
        "data_shape": list(data_shape),
        "n_classes": n_classes if model.conditional else 0,
    }


@register("image")
def build_image_vae(description: dict) -> VAE:
    """MLP, convolutional or MADE-decoder VAE for images of shape (C, H, W)."""
    cfg = ModelConfig.model_validate(description["model"])
    shape = description["data_shape"]
    if not isinstance(shape, list) or not shape or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ValueError(f"data_shape must be a list of positive integers, got {shape!r}")
    shape = tuple(shape)
    n_classes = description.get("n_classes", 0)
    if not isinstance(n_classes, int) or n_classes < 0:
        raise ValueError(f"n_classes must be a non-negative integer, got {n_classes!r}")
    cond = n_classes
    if cfg.architecture == "conv":
        if len(shape) != 3:
            raise ConfigError(f"architecture 'conv' needs (C, H, W) images, got shape {shape}")
        hidden = cfg.hidden[0] if cfg.hidden else 256
        enc = ConvEncoder(shape, cfg.channels, cfg.latent_dim, hidden, cond, cfg.activation)
        dec = ConvDecoder(cfg.latent_dim, cfg.channels, shape, hidden, cond, cfg.activation)
    else:
        enc = MLPEncoder(shape, cfg.hidden, cfg.latent_dim, cond, cfg.activation)
        dec_cls = MADEDecoder if cfg.architecture == "made" else MLPDecoder
        dec = dec_cls(cfg.latent_dim, list(reversed(cfg.hidden)), shape, cond, cfg.activation)
    if cfg.likelihood == "bernoulli":
        lik = BernoulliLikelihood(event_dims=len(shape))
    else:
        lik = GaussianLikelihood(cfg.gaussian_scale, math.prod(shape), event_dims=len(shape))
    return VAE(enc, dec, lik, cfg.latent_dim, n_classes, config=description)
