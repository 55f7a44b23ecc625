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
    assert rec.similar_items(" i3 ", k=4).items == sims.items  # stripped, as history ids are


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


def _ema(states, decay):
    """The exponential moving average of a list of state dicts (the first one copied)."""
    average = {k: v.clone() for k, v in states[0].items()}
    for state in states[1:]:
        for k in average:
            average[k] = decay * average[k] + (1 - decay) * state[k]
    return average


def _record_weights(rec, into):
    return lambda _record: into.append({k: v.detach().clone() for k, v in rec.model.state_dict().items()})


def test_weight_average_is_the_model_at_the_epoch_it_validated_best(tmp_path):
    x = block_data()
    split = strong_generalization_split(x, 20, seed=0)
    rec = MultVAERecommender(hidden=(), latent_dim=8, epochs=8, batch_size=20, lr=3e-3, weight_average=0.6)
    raw = []
    rec.fit(split.train, (split.valid_in, split.valid_out), callbacks=[_record_weights(rec, raw)])
    scores = [h["val_ndcg_100"] for h in rec.history]
    best = scores.index(max(scores))  # the first best epoch
    expected = _ema(raw[:best + 1], 0.6)
    assert all(np.allclose(v.numpy(), expected[k].numpy(), atol=1e-6) for k, v in rec.model.state_dict().items())
    assert not np.allclose(rec.model.state_dict()["decoder.net.0.weight"], raw[best]["decoder.net.0.weight"])
    rec.save(tmp_path / "averaged")
    again = MultVAERecommender.load(tmp_path / "averaged")
    assert again.weight_average == 0.6 and np.allclose(again.score(split.test_in), rec.score(split.test_in))


def test_weight_average_without_validation_is_the_last_average():
    x = block_data(60)
    rec = MultVAERecommender(hidden=(), latent_dim=4, epochs=4, batch_size=20, weight_average=0.5)
    raw = []
    rec.fit(x, callbacks=[_record_weights(rec, raw)])
    expected = _ema(raw, 0.5)
    assert all(np.allclose(v.numpy(), expected[k].numpy(), atol=1e-6) for k, v in rec.model.state_dict().items())


@pytest.mark.parametrize("value", [1.0, -0.1, True, "0.5", float("nan")])
def test_a_bad_weight_average_is_refused(value):
    with pytest.raises(DataError, match="weight_average"):
        MultVAERecommender(epochs=1, weight_average=value).fit(block_data(20))


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


def test_a_table_or_a_string_is_refused_where_a_matrix_or_a_list_is_meant(fitted):
    import pandas as pd

    rec, _ = fitted
    with pytest.raises(DataError, match="DataFrame.*interactions_from_table"):
        MultVAERecommender(epochs=1).fit(pd.DataFrame({"user": ["a", "b"], "item": ["x", "y"]}))
    with pytest.raises(DataError, match="list of item ids, not the string 'i15'"):
        rec.recommend("i15")
    with pytest.raises(DataError, match="item ids must be unique; 'a' appears 2 times"):
        MultVAERecommender(epochs=1).fit(np.eye(3), item_ids=["a", "a", "b"])


def test_recommend_all_never_returns_a_seen_item(fitted):
    rec, split = fitted
    seen = int(np.diff(split.test_in.indptr).max())
    idx, scores = rec.recommend_all(split.test_in, k=30 - seen)
    assert np.isfinite(scores).all()
    assert not any(split.test_in[u, i] for u in range(idx.shape[0]) for i in idx[u])
    with pytest.raises(DataError, match="larger than"):
        rec.recommend_all(split.test_in, k=31 - seen)
    with pytest.raises(DataError, match="not fitted"):
        MultVAERecommender().recommend_all(split.test_in, k=1)


def test_kept_histories_cover_users_held_out_of_training(fitted):
    rec, split = fitted
    rec = MultVAERecommender(hidden=[32], latent_dim=8)
    rec.model, rec.item_ids = fitted[0].model, fitted[0].item_ids
    everyone = sp.vstack([split.train, split.valid_in + split.valid_out]).tocsr()
    rec.keep_histories(everyone, [f"u{j}" for j in range(everyone.shape[0])])
    assert rec.recommend_user(f"u{everyone.shape[0] - 1}", k=2).items
    assert np.isclose(rec.item_popularity.sum(), everyone.sum() / everyone.shape[0])


def test_a_save_that_stopped_halfway_is_refused_on_loading(fitted, tmp_path, monkeypatch):
    import vaekit.recommend.recommender as module

    rec, split = fitted
    rec.save(tmp_path / "run")
    other = MultVAERecommender(hidden=[32], latent_dim=8, epochs=1, seed=1).fit(split.train, item_ids=rec.item_ids)

    def disk_full(path, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(module, "atomic_write_text", disk_full)
    with pytest.raises(OSError):
        other.save(tmp_path / "run")  # new weights written, recommender.json not
    monkeypatch.undo()
    with pytest.raises(ModelFileError, match="model.safetensors is not the file recommender.json was saved with"):
        MultVAERecommender.load(tmp_path / "run")


def test_saving_over_another_kind_of_run_is_refused(fitted, tmp_path):
    rec, _ = fitted
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text('{"kind": "mlp"}')
    with pytest.raises(DataError, match="holds a mlp run, not a recommender"):
        rec.save(tmp_path / "other")
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["config.json"]


def _edit_json(path, **changes):
    import json

    meta = json.loads(path.read_text())
    meta.update(changes)
    meta.pop("sha256", None)
    path.write_text(json.dumps(meta))


@pytest.mark.parametrize("damage, message", [
    (lambda d: _edit_json(d / "recommender.json", item_ids=None), "'item_ids' must be a list of strings"),
    (lambda d: _edit_json(d / "recommender.json", item_ids=["i0"] * 30), "item_ids must be unique"),
    (lambda d: _damage_histories(d, indices=np.full(5, 99)), "damaged histories"),
    (lambda d: _damage_histories(d, indptr=np.arange(5)), "damaged histories"),
    (lambda d: _damage_histories(d, item_popularity=np.ones(5)), "item_popularity must be 30 finite numbers"),
    (lambda d: _damage_histories(d, item_popularity=np.full(30, np.nan)), "item_popularity must be 30 finite"),
    (lambda d: _damage_weights(d), "holds NaN or infinite values"),
])
def test_damaged_files_are_refused_naming_them(fitted, tmp_path, damage, message):
    rec, _ = fitted
    rec.save(tmp_path / "run")
    meta = tmp_path / "run" / "recommender.json"
    _edit_json(meta)  # drop the checksums: these files are damaged in ways a checksum would not catch
    damage(tmp_path / "run")
    with pytest.raises(ModelFileError, match=message):
        MultVAERecommender.load(tmp_path / "run")


def _damage_histories(directory, **arrays):
    from safetensors.numpy import load_file, save_file

    path = directory / "histories.safetensors"
    saved = load_file(str(path))
    saved.update({k: v.astype(saved[k].dtype) for k, v in arrays.items()})
    save_file(saved, str(path))


def _damage_weights(directory):
    from safetensors.torch import load_file, save_file

    path = directory / "model.safetensors"
    weights = load_file(str(path))
    name = next(iter(weights))
    weights[name][...] = float("nan")
    save_file(weights, str(path), metadata={"format": "vaekit"})


def test_a_file_in_place_of_the_run_directory_is_refused(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ModelFileError, match="is a file, not a recommender run directory"):
        MultVAERecommender.load(tmp_path / "afile")
