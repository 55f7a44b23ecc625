"""Ranking metrics of Liang et al. 2018, computed exactly as in the authors' code.

Scores of fold-in items are set to -inf before ranking. Recall@K divides the hits in the
top K by min(K, number of held-out items), so a perfect ranking scores 1 whatever the
user's history length; NDCG@K uses binary relevance and the ideal DCG of min(K, n)
items. Users with no held-out item are not scored. Beyond accuracy: catalogue coverage
of the top-K lists and their average item popularity (popularity bias).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k highest scores per row, best first."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, 1), axis=1, kind="stable")
    return np.take_along_axis(part, order, 1)


def mask_seen(scores: np.ndarray, seen: sp.csr_matrix) -> np.ndarray:
    scores = np.array(scores, dtype=np.float64, copy=True)
    rows, cols = seen.nonzero()
    scores[rows, cols] = -np.inf
    return scores


def _hits(scores: np.ndarray, heldout: sp.csr_matrix, k: int):
    idx = top_k(scores, k)
    heldout = sp.csr_matrix(heldout)
    hits = np.asarray(heldout[np.arange(len(idx))[:, None], idx].todense()) > 0
    n_true = np.asarray(heldout.getnnz(axis=1))
    return idx, hits, n_true


def recall_at_k(scores: np.ndarray, heldout: sp.csr_matrix, k: int) -> np.ndarray:
    """Per scored user: hits in the top k / min(k, held-out count)."""
    _, hits, n_true = _hits(scores, heldout, k)
    ok = n_true > 0
    return hits[ok].sum(1) / np.minimum(k, n_true[ok])


def ndcg_at_k(scores: np.ndarray, heldout: sp.csr_matrix, k: int) -> np.ndarray:
    """Per scored user: binary-relevance NDCG of the top k."""
    idx, hits, n_true = _hits(scores, heldout, k)
    discount = 1.0 / np.log2(np.arange(2, idx.shape[1] + 2))
    dcg = (hits * discount).sum(1)
    ideal = np.cumsum(discount)
    ok = n_true > 0
    return dcg[ok] / ideal[np.minimum(n_true[ok], idx.shape[1]) - 1]


def coverage_at_k(scores: np.ndarray, k: int) -> float:
    """Share of the catalogue that appears in at least one user's top k."""
    return float(len(np.unique(top_k(scores, k))) / scores.shape[1])


def popularity_at_k(scores: np.ndarray, item_popularity: np.ndarray, k: int) -> float:
    """Mean training popularity (share of training users) of the recommended items."""
    return float(item_popularity[top_k(scores, k)].mean())


def ranking_report(scores: np.ndarray, fold_in: sp.csr_matrix, heldout: sp.csr_matrix,
                   item_popularity: np.ndarray | None = None, per_user: bool = False) -> dict:
    """Recall@20, Recall@50, NDCG@100 (the paper's table), and coverage/popularity at 20;
    with ``per_user``, also each scored user's Recall@20 and NDCG@100 (for paired tests)."""
    s = mask_seen(scores, fold_in)
    recall_20, ndcg_100 = recall_at_k(s, heldout, 20), ndcg_at_k(s, heldout, 100)
    out = {
        "recall_20": float(recall_20.mean()),
        "recall_50": float(recall_at_k(s, heldout, 50).mean()),
        "ndcg_100": float(ndcg_100.mean()),
        "coverage_20": coverage_at_k(s, 20),
        "users": int((heldout.getnnz(axis=1) > 0).sum()),
    }
    if item_popularity is not None:
        out["popularity_20"] = popularity_at_k(s, item_popularity, 20)
    if per_user:
        out["per_user"] = {"recall_20": recall_20, "ndcg_100": ndcg_100}
    return out
