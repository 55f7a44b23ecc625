"""Recall@K and NDCG@K as Liang et al. define them, checked on hand-computed cases."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from vaekit.recommend.metrics import coverage_at_k, mask_seen, ndcg_at_k, ranking_report, recall_at_k, top_k


def test_top_k_is_sorted_best_first():
    assert top_k(np.array([[0.1, 0.9, 0.5, 0.7]]), 3).tolist() == [[1, 3, 2]]


def test_recall_is_normalized_by_min_k_and_heldout_count():
    scores = np.array([[4.0, 3, 2, 1, 0]])
    held = sp.csr_matrix(np.array([[1, 0, 0, 1, 1]]))
    assert recall_at_k(scores, held, 2)[0] == pytest.approx(1 / 2)  # 1 hit of min(2, 3)
    assert recall_at_k(scores, held, 5)[0] == pytest.approx(1.0)


def test_ndcg_matches_the_formula():
    scores = np.array([[4.0, 3, 2, 1, 0]])
    held = sp.csr_matrix(np.array([[0, 1, 0, 1, 0]]))
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3)
    assert ndcg_at_k(scores, held, 5)[0] == pytest.approx(dcg / idcg)
    perfect = np.array([[0.0, 3, 0, 2, 0]])
    assert ndcg_at_k(perfect, held, 5)[0] == pytest.approx(1.0)


def test_fold_in_items_are_never_recommended_and_empty_users_are_skipped():
    scores = np.array([[9.0, 1, 2], [1.0, 2, 3]])
    seen = sp.csr_matrix(np.array([[1, 0, 0], [0, 0, 0]]))
    assert top_k(mask_seen(scores, seen), 1).tolist() == [[2], [2]]
    held = sp.csr_matrix(np.array([[0, 0, 1], [0, 0, 0]]))
    rep = ranking_report(scores, seen, held, np.array([0.5, 0.2, 0.1]))
    assert rep["users"] == 1 and rep["ndcg_100"] == pytest.approx(1.0)
    assert coverage_at_k(mask_seen(scores, seen), 1) == pytest.approx(1 / 3)
