"""Trustworthiness (Venna & Kaski 2001) equals scikit-learn's; k-NN accuracy is sane."""

import numpy as np
import pytest
from sklearn.manifold import trustworthiness as sk_trustworthiness

from vaekit.reduction.metrics import InputNeighborhoods, knn_accuracy, trustworthiness


@pytest.mark.parametrize("k", [1, 5, 10])
def test_trustworthiness_equals_scikit_learn(k):
    rng = np.random.RandomState(0)
    x = rng.randn(150, 12)
    for emb in (x[:, :2], rng.randn(150, 2), x @ rng.randn(12, 3)):
        assert trustworthiness(x, emb, k) == pytest.approx(sk_trustworthiness(x, emb, n_neighbors=k), abs=1e-12)


def test_input_distances_are_reused_across_embeddings():
    rng = np.random.RandomState(1)
    x = rng.randn(2100, 5)  # more rows than one block
    inputs = InputNeighborhoods(x)
    assert trustworthiness(x, x, 10, inputs=inputs) == pytest.approx(1.0)
    emb = x[:, :2]
    assert trustworthiness(x, emb, 10, inputs=inputs) == pytest.approx(sk_trustworthiness(x, emb, n_neighbors=10))


def test_trustworthiness_refuses_bad_sizes():
    x = np.random.RandomState(0).randn(20, 3)
    with pytest.raises(ValueError):
        trustworthiness(x, x[:10], 5)
    with pytest.raises(ValueError):
        trustworthiness(x, x, 10)


def test_knn_accuracy_separates_informative_from_random_codes():
    rng = np.random.RandomState(0)
    y = np.repeat(np.arange(4), 50)
    good = y[:, None] * 5.0 + rng.randn(200, 2)
    assert knn_accuracy(good, y) > 0.95
    assert knn_accuracy(rng.randn(200, 2), y) < 0.5
