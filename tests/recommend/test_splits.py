"""The strong-generalization split: disjoint users, 80/20 fold-in, files without pickle."""

import numpy as np
import scipy.sparse as sp

from vaekit.recommend.splits import Split, strong_generalization_split


def random_matrix(users=60, items=40, seed=0):
    rng = np.random.default_rng(seed)
    return sp.csr_matrix((rng.random((users, items)) < 0.3).astype(np.float32))


def test_users_are_disjoint_and_fold_in_plus_heldout_is_the_history(tmp_path):
    x = random_matrix()
    s = strong_generalization_split(x, 10, seed=1)
    u = s.users
    assert len(set(u["train"]) | set(u["valid"]) | set(u["test"])) == 60
    assert len(u["valid"]) == len(u["test"]) == 10
    assert s.train.shape[1] == len(s.item_index)
    full = x[u["test"]][:, s.item_index].toarray()
    assert np.array_equal(s.test_in.toarray() + s.test_out.toarray(), full)
    assert (s.test_in.toarray() * s.test_out.toarray()).sum() == 0
    n = full.sum(1)
    held = s.test_out.toarray().sum(1)
    assert np.array_equal(held[n >= 5], (0.2 * n[n >= 5]).astype(int))
    s.save(tmp_path / "split.npz")
    back = Split.load(tmp_path / "split.npz")
    assert (back.valid_out != s.valid_out).nnz == 0 and np.array_equal(back.users["test"], u["test"])


def test_heldout_items_unseen_in_training_are_dropped():
    x = random_matrix().tolil()
    x[:, 0] = 0
    x[0, 0] = 1  # item 0 only in user 0
    s = strong_generalization_split(sp.csr_matrix(x), 10, seed=3)
    assert (0 in s.item_index) == (0 in s.users["train"])


def test_validation_only_split_keeps_every_other_user_for_training():
    s = strong_generalization_split(random_matrix(), 10, seed=0, n_test_users=0)
    assert len(s.users["train"]) == 50 and s.test_in.shape[0] == 0


def test_impossible_holdouts_are_refused():
    import pytest

    from vaekit.errors import DataError

    with pytest.raises(DataError, match="at least one training user"):
        strong_generalization_split(random_matrix(users=20), 10, seed=0)
