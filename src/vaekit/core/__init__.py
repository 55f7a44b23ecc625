"""The VAE core: pure PyTorch, imports nothing else from vaekit."""

from vaekit.core.distributions import (
    BernoulliLikelihood,
    CategoricalLikelihood,
    DiagGaussian,
    GaussianLikelihood,
    Likelihood,
    MultinomialLikelihood,
    StandardNormal,
)
from vaekit.core.model import VAE, LossOutput
from vaekit.core.schedules import BetaSchedule, free_bits_kl

__all__ = [
    "VAE",
    "LossOutput",
    "BetaSchedule",
    "free_bits_kl",
    "DiagGaussian",
    "StandardNormal",
    "Likelihood",
    "BernoulliLikelihood",
    "GaussianLikelihood",
    "CategoricalLikelihood",
    "MultinomialLikelihood",
]
