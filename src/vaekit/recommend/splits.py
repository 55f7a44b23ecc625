"""The strong-generalization protocol of Liang et al. 2018 (section 4.2).

Users are shuffled and split into training, validation and test users. Models train on
the training users' full histories only. For each validation/test user, 80% of their
items (chosen at random) are "folded in" as the input and the remaining 20% are held out
to be predicted. Items that no training user has seen are dropped from held-out users,
and held-out users with fewer than 5 items put all their items in the fold-in part (so
they are not scored), exactly as in the authors' preprocessing notebook.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from vaekit.errors import DataError


@dataclass
class Split:
    train: sp.csr_matrix  # training users x items
    valid_in: sp.csr_matrix  # validation users' fold-in items (model input)
    valid_out: sp.csr_matrix  # their held-out items (to predict)
    test_in: sp.csr_matrix
    test_out: sp.csr_matrix
    item_index: np.ndarray  # column j here -> column of the original matrix
    users: dict  # "train" | "valid" | "test" -> rows of the original matrix

    def save(self, path) -> None:
        """One ``.npz`` of plain arrays (no pickle), readable by any NumPy program."""
        arrays = {"item_index": self.item_index}
        for name in ("train", "valid_in", "valid_out", "test_in", "test_out"):
            m = getattr(self, name)
            arrays.update({f"{name}_indptr": m.indptr, f"{name}_indices": m.indices,
                           f"{name}_shape": np.array(m.shape)})
        for k, v in self.users.items():
            arrays[f"users_{k}"] = v
        np.savez_compressed(path, **arrays)

    @classmethod
    def load(cls, path) -> "Split":
        with np.load(path, allow_pickle=False) as z:
            mats = {}
            for name in ("train", "valid_in", "valid_out", "test_in", "test_out"):
                indptr, indices = z[f"{name}_indptr"], z[f"{name}_indices"]
                mats[name] = sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr),
                                           shape=tuple(z[f"{name}_shape"]))
            users = {k: z[f"users_{k}"] for k in ("train", "valid", "test")}
            return cls(**mats, item_index=z["item_index"], users=users)


def _fold_in(rows: sp.csr_matrix, rng: np.random.Generator, test_prop: float, min_items: int):
    """Per user: a random ``test_prop`` of the items held out (users with >= min_items)."""
    fold, held = rows.tolil(copy=True), sp.lil_matrix(rows.shape, dtype=np.float32)
    for u in range(rows.shape[0]):
        items = rows.indices[rows.indptr[u]:rows.indptr[u + 1]]
        if len(items) >= min_items:
            out = rng.choice(items, size=int(test_prop * len(items)), replace=False)
            for i in out:
                fold[u, i] = 0
                held[u, i] = 1
    fold = fold.tocsr()
    fold.eliminate_zeros()
    return fold, held.tocsr()


def strong_generalization_split(matrix: sp.csr_matrix, n_heldout_users: int, seed: int = 98765,
                                test_prop: float = 0.2, min_items: int = 5,
                                n_test_users: int | None = None) -> Split:
    """Split users into train / validation / test and fold in 80% of held-out histories.

    ``n_heldout_users`` validation users and ``n_test_users`` (default: as many) test
    users; ``n_test_users=0`` holds out validation users only (model selection when
    training a model for use rather than for a benchmark).
    """
    n_users = matrix.shape[0]
    n_test = n_heldout_users if n_test_users is None else n_test_users
    if n_heldout_users <= 0 or n_test < 0 or n_heldout_users + n_test >= n_users:
        raise DataError(f"cannot hold out {n_heldout_users} validation + {n_test} test users out of "
                        f"{n_users}: at least one training user must remain")
    if not 0 < test_prop < 1:
        raise DataError(f"test_prop must be in (0, 1), got {test_prop}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_users)
    n_train = n_users - n_heldout_users - n_test
    tr_users = order[:n_train]
    vd_users = order[n_train: n_train + n_heldout_users]
    te_users = order[n_train + n_heldout_users:]
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    train = matrix[tr_users]
    item_index = np.flatnonzero(np.asarray(train.sum(0)).ravel() > 0)  # items seen in training
    train = train[:, item_index]
    valid_in, valid_out = _fold_in(matrix[vd_users][:, item_index], rng, test_prop, min_items)
    test_in, test_out = _fold_in(matrix[te_users][:, item_index], rng, test_prop, min_items)
    return Split(train.tocsr(), valid_in, valid_out, test_in, test_out, item_index,
                 {"train": tr_users, "valid": vd_users, "test": te_users})
