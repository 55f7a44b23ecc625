"""MultVAERecommender on a block-structured toy catalogue: two taste groups, two item sets."""

import numpy as np
import pytest
import scipy.sparse as sp

from vaekit.errors import DataError, ModelFileError
from vaekit.recommend import MultVAERecommender, strong_generalization_split
from vaekit.recommend.baselines import EASE, ItemKNN, Popularity
from vaekit.recommend.metrics import ranking_report


def block_data(users=120, items=30, seed=0):
    """Group A likes items 0-14, group B items 15-29 (each user has 8 of their group's)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((users, items), np.float32)
    for u in range(users):
        half = 0 if u % 2 == 0 else items // 2
        x[u, half + rng.choice(items // 2, 8, replace=False)] = 1
    return sp.csr_matrix(x)


@pytest.fixture(scope="module")
def fitted():
    x = block_data()
    split = strong_generalization_split(x, 20, seed=0)
    rec = MultVAERecommender(hidden=[32], latent_dim=8, epochs=30, batch_size=20, lr=3e-3)
    rec.fit(split.train, (split.valid_in, split.valid_out), item_ids=[f"i{j}" for j in split.item_index])
    return rec, split


def test_learns_the_taste_groups_and_selects_by_validation_ndcg(fitted):
    rec, split = fitted
    assert all("val_ndcg_100" in h for h in rec.history)
    rep = ranking_report(rec.score(split.test_in), split.test_in, split.test_out)
    pop = ranking_report(Popularity().fit(split.train).score(split.test_in), split.test_in, split.test_out)
    assert rep["recall_20"] > 0.9 and rep["ndcg_100"] > pop["ndcg_100"]
    top = rec.recommend(["i0", "i1", "i2"], k=5)
    assert all(int(i[1:]) < 15 for i in top.items) and not {"i0", "i1", "i2"} & set(top.items)


def test_unknown_items_are_ignored_and_reported(fitted):
    rec, _ = fitted
    out = rec.recommend(["i0", "nope", "i1"], k=3)
    assert out.unknown == ["nope"] and "1 unknown" in out.note


def test_empty_history_falls_back_to_popularity(fitted):
    rec, _ = fitted
    out = rec.recommend([], k=3)
    assert "most popular" in out.note
    assert out.items == [str(rec.item_ids[i]) for i in np.argsort(-rec.item_popularity, kind="stable")[:3]]


@pytest.mark.parametrize("k", [0, -1, 31, 2.5])
def test_bad_k_is_refused(fitted, k):
    rec, _ = fitted
    with pytest.raises(DataError, match="k"):
        rec.recommend(["i0"], k=k)


def test_similar_items_come_from_the_same_group(fitted):
    rec, _ = fitted
    sims = rec.similar_items("i3", k=4)
    assert "i3" not in sims.items and sum(int(i[1:]) < 15 for i in sims.items) >= 3
    with pytest.raises(DataError, match="unknown item id 'zz'"):
        rec.similar_items("zz")


def test_save_load_round_trip_scores_identically(fitted, tmp_path):
    rec, split = fitted
    rec.save(tmp_path / "run")
    back = MultVAERecommender.load(tmp_path / "run")
    np.testing.assert_allclose(back.score(split.test_in), rec.score(split.test_in), rtol=1e-6)
    assert back.recommend_user(back.user_ids[0], k=3).items == rec.recommend_user(rec.user_ids[0], k=3).items
    with pytest.raises(DataError, match="unknown user id"):
        back.recommend_user("no-such-user")


def test_a_pickle_in_place_of_the_histories_is_refused(fitted, tmp_path):
    import pickle

    rec, _ = fitted
    rec.save(tmp_path / "run")
    (tmp_path / "run" / "histories.safetensors").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ModelFileError, match="histories.safetensors"):
        MultVAERecommender.load(tmp_path / "run")


def test_linear_mult_vae_without_hidden_layers_learns_and_round_trips(tmp_path):
    x = block_data()
    split = strong_generalization_split(x, 20, seed=0)
    rec = MultVAERecommender(hidden=(), latent_dim=16, epochs=30, batch_size=20, lr=3e-3, weight_decay=1e-5)
    rec.fit(split.train, (split.valid_in, split.valid_out))
    rep = ranking_report(rec.score(split.test_in), split.test_in, split.test_out)
    pop = ranking_report(Popularity().fit(split.train).score(split.test_in), split.test_in, split.test_out)
    assert rep["recall_20"] > 0.9 and rep["ndcg_100"] > pop["ndcg_100"]
    top = rec.recommend(["0", "1", "2"], k=5)  # a group-A history: group-A items come first
    assert all(int(i) < 15 for i in top.items)
    rec.save(tmp_path / "linear")
    again = MultVAERecommender.load(tmp_path / "linear")
    assert again.hidden == [] and np.allclose(again.score(split.test_in), rec.score(split.test_in))


def test_mult_dae_trains_without_kl():
    x = block_data(60)
    rec = MultVAERecommender(variant="dae", hidden=[16], latent_dim=4, epochs=3, batch_size=20).fit(x)
    assert all(h["train_kl"] == 0 for h in rec.history)
    assert rec.recommend(["3"], k=2).items


def test_bad_matrices_are_refused():
    with pytest.raises(DataError, match="finite"):
        MultVAERecommender(epochs=1).fit(np.array([[1.0, np.nan], [0, 1]]))
    with pytest.raises(DataError, match="nothing to learn"):
        MultVAERecommender(epochs=1).fit(np.zeros((3, 4)))
    with pytest.raises(DataError, match="not fitted"):
        MultVAERecommender().recommend(["a"])


def test_baselines_rank_the_right_group():
    x = block_data()
    hist = sp.csr_matrix(np.eye(1, 30, 2, dtype=np.float32))
    for model in (EASE(10.0), ItemKNN(10)):
        scores = model.fit(x).score(hist)[0]
        scores[2] = -np.inf
        assert all(i < 15 for i in np.argsort(-scores)[:5]), type(model).__name__
    b = EASE(10.0).fit(x).weights
    assert np.allclose(np.diag(b), 0)
