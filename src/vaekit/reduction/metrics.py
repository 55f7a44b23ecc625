"""How good is an embedding: trustworthiness and k-NN accuracy.

Trustworthiness (Venna & Kaski 2001, "Neighborhood preservation in nonlinear projection
methods"; the measure scikit-learn and van der Maaten et al. 2009 report) penalises points
that are among the k nearest neighbours in the embedding but not in the input space, by how
far down the input-space ranking they are:

    T(k) = 1 - 2 / (n k (2n - 3k - 1)) * sum_i sum_{j in U_k(i)} (r(i, j) - k)

where r(i, j) is the rank of j among the input-space neighbours of i (1 = nearest). It is
1 for a perfect embedding. :func:`trustworthiness` equals
``sklearn.manifold.trustworthiness`` but works in row blocks, so 10,000 MNIST images need
a block of the distance matrix at a time, not two full n x n arrays; the input-space
distances can be computed once (:class:`InputNeighborhoods`) and reused for every method.
"""

from __future__ import annotations

import numpy as np

BLOCK = 1000  # rows of the distance matrix at a time


def _sq_distances(a: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0)


class InputNeighborhoods:
    """Input-space squared distances of X (float64, n x n), kept for repeated ranking."""

    def __init__(self, X):
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or len(X) < 3:
            raise ValueError(f"X must be 2-D with at least 3 rows, got shape {X.shape}")
        self.n = len(X)
        sq = (X * X).sum(1)
        self.dist = np.empty((self.n, self.n))
        for i in range(0, self.n, BLOCK):
            self.dist[i:i + BLOCK] = _sq_distances(X[i:i + BLOCK], X, sq)
        np.fill_diagonal(self.dist, -np.inf)  # a point is its own rank-0 neighbour

    def ranks(self, rows: np.ndarray, neighbors: np.ndarray) -> np.ndarray:
        """r(i, j) for i in ``rows`` and j in ``neighbors`` (len(rows), k): 1 = nearest."""
        d = self.dist[rows]
        target = np.take_along_axis(d, neighbors, axis=1)
        return (d[:, None, :] < target[:, :, None]).sum(-1)


def trustworthiness(X, embedding, n_neighbors: int = 10, inputs: InputNeighborhoods | None = None) -> float:
    """T(k) of ``embedding`` for data ``X`` (Venna & Kaski 2001); ``inputs`` reuses X's distances."""
    from sklearn.neighbors import NearestNeighbors

    inputs = inputs if inputs is not None else InputNeighborhoods(X)
    emb = np.asarray(embedding, dtype=np.float64)
    n, k = inputs.n, n_neighbors
    if emb.shape[0] != n:
        raise ValueError(f"embedding has {emb.shape[0]} rows, X has {n}")
    if not 1 <= k < n / 2:
        raise ValueError(f"n_neighbors must be in [1, n/2), got {k} for n={n}")
    nn_emb = NearestNeighbors(n_neighbors=k).fit(emb).kneighbors(return_distance=False)
    total = 0.0
    for i in range(0, n, BLOCK):
        rows = np.arange(i, min(i + BLOCK, n))
        r = inputs.ranks(rows, nn_emb[rows]) - k
        total += float(r[r > 0].sum())
    return 1.0 - total * (2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0)))


def knn_accuracy(embedding, labels, n_neighbors: int = 5, folds: int = 5, seed: int = 0) -> float:
    """Mean accuracy of a k-NN classifier in the embedding, stratified ``folds``-fold CV."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(cross_val_score(KNeighborsClassifier(n_neighbors), embedding, labels, cv=cv).mean())
