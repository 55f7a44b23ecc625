"""Recommender systems with Mult-VAE / Mult-DAE (Liang et al. 2018) on the vaekit core."""

from vaekit.recommend.recommender import MultVAERecommender, Recommendation
from vaekit.recommend.splits import Split, strong_generalization_split

__all__ = ["MultVAERecommender", "Recommendation", "Split", "strong_generalization_split"]
