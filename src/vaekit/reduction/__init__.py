"""Dimensionality reduction with a VAE: a scikit-learn transformer, its metrics and figures.

    from vaekit.reduction import VAETransformer
    z = VAETransformer(n_components=2, random_state=0).fit_transform(X)
"""

from vaekit.reduction.transformer import VAETransformer

__all__ = ["VAETransformer"]
