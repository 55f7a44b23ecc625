"""Reference recommenders that Mult-VAE is compared with, all in strong generalization
(they score a held-out user from their fold-in items alone).

- :class:`Popularity`: items ranked by the share of training users who have them.
- :class:`ItemKNN`: item-item cosine similarity on the training matrix, each item keeping
  its ``neighbors`` most similar items (Sarwar et al. 2001); score = history @ S.
- :class:`EASE`: Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data": the
  closed-form item-item model B = I - P diag(1/diag(P)) with P = (X^T X + lambda I)^-1 and
  a zero diagonal.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


class Popularity:
    def fit(self, train: sp.csr_matrix) -> "Popularity":
        self.popularity = np.asarray(train.sum(0)).ravel() / train.shape[0]
        return self

    def score(self, histories: sp.csr_matrix) -> np.ndarray:
        return np.broadcast_to(self.popularity, histories.shape).copy()


class ItemKNN:
    def __init__(self, neighbors: int = 100, shrink: float = 0.0):
        self.neighbors, self.shrink = neighbors, shrink

    def fit(self, train: sp.csr_matrix) -> "ItemKNN":
        x = sp.csr_matrix(train, dtype=np.float64)
        gram = (x.T @ x).toarray()
        norms = np.sqrt(np.diag(gram))
        sim = gram / (np.outer(norms, norms) + self.shrink + 1e-12)
        np.fill_diagonal(sim, 0.0)
        if self.neighbors < sim.shape[0]:
            drop = np.argpartition(-sim, self.neighbors, axis=0)[self.neighbors:]
            np.put_along_axis(sim, drop, 0.0, axis=0)
        self.similarity = sim
        return self

    def score(self, histories: sp.csr_matrix) -> np.ndarray:
        return np.asarray(histories @ self.similarity)


class EASE:
    def __init__(self, l2: float = 500.0):
        self.l2 = l2

    def fit(self, train: sp.csr_matrix) -> "EASE":
        x = sp.csr_matrix(train, dtype=np.float64)
        gram = (x.T @ x).toarray()
        gram[np.diag_indices_from(gram)] += self.l2
        p = np.linalg.inv(gram)
        b = -p / np.diag(p)[None, :]
        np.fill_diagonal(b, 0.0)
        self.weights = b
        return self

    def score(self, histories: sp.csr_matrix) -> np.ndarray:
        return np.asarray(histories @ self.weights)
