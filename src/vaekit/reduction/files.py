"""Fitted transformers on disk: ``config.json`` + ``model.safetensors``, never pickle.

``config.json`` is the model description of :func:`vaekit.reduction.model.description`
(so ``vaekit.VAE.from_pretrained`` also reads the directory once :mod:`vaekit.reduction` is
imported) plus a ``transformer`` section: the estimator's parameters and its fitted
scaling (per-feature offset and global scale, stored as JSON numbers, which round-trip
float64 exactly), the feature names and the training history.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from vaekit.errors import ModelFileError
from vaekit.io import from_pretrained, read_config, save_pretrained
from vaekit.reduction.model import KIND

FORMAT = 1


def _json_params(params: dict) -> dict:
    out = dict(params)
    out["hidden_layer_sizes"] = [int(h) for h in np.atleast_1d(np.asarray(params["hidden_layer_sizes"]))]
    rs = params["random_state"]
    out["random_state"] = int(rs) if isinstance(rs, (int, np.integer)) else None  # a RandomState is not data
    return out


def save_transformer(est, directory) -> Path:
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(est)
    directory = Path(directory)
    fitted = {
        "format": FORMAT,
        "params": _json_params(est.get_params()),
        "likelihood": est.likelihood_,
        "neighbor_weight": float(est.neighbor_weight_),
        "mean": [float(v) for v in est.mean_],
        "scale": float(est.scale_),
        "seed": int(est.seed_),
        "n_iter": int(est.n_iter_),
        "n_features_in": int(est.n_features_in_),
        "feature_names_in": [str(f) for f in est.feature_names_in_] if hasattr(est, "feature_names_in_") else None,
        "history": est.history_,
    }
    model = est.vae_
    original = model.config
    model.config = {**original, "transformer": fitted}
    try:
        save_pretrained(model, directory)
    finally:
        model.config = original
    return directory


def load_transformer(directory):
    from vaekit.reduction.transformer import VAETransformer

    directory = Path(directory)
    doc = read_config(directory)
    if doc.get("kind") != KIND or not isinstance(doc.get("transformer"), dict):
        raise ModelFileError(f"{directory} does not hold a vaekit.reduction transformer "
                             f"(config.json kind {doc.get('kind')!r})")
    fitted = doc["transformer"]
    try:
        params = dict(fitted["params"])
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
        est = VAETransformer(**params)
        d = int(fitted["n_features_in"])
        mean = np.asarray(fitted["mean"], dtype=np.float64)
        scale = float(fitted["scale"])
        if mean.shape != (d,) or not np.all(np.isfinite(mean)) or not (math.isfinite(scale) and scale > 0):
            raise ValueError("scaling does not match n_features_in or is not finite")
        if fitted["likelihood"] not in ("bernoulli", "gaussian"):
            raise ValueError(f"unknown likelihood {fitted['likelihood']!r}")
        est.likelihood_ = fitted["likelihood"]
        est.neighbor_weight_ = float(fitted["neighbor_weight"])
        est.mean_, est.scale_ = mean, scale
        est.seed_ = int(fitted["seed"])
        est.n_iter_ = int(fitted["n_iter"])
        est.n_features_in_ = d
        est.history_ = list(fitted.get("history") or [])
        if fitted.get("feature_names_in") is not None:
            est.feature_names_in_ = np.asarray(fitted["feature_names_in"], dtype=object)
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"{directory / 'config.json'}: invalid transformer section: {e}") from None
    model = from_pretrained(directory)  # rebuilds from the description, loads weights strictly
    if model.n_features != est.n_features_in_ or model.latent_dim != est.n_components:
        raise ModelFileError(f"{directory}: model shape does not match the transformer section")
    model.config = {k: v for k, v in model.config.items() if k not in ("transformer", "vaekit_format")}
    est.vae_ = model
    return est
