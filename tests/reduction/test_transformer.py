"""VAETransformer: the scikit-learn contract, quality on digits, files, bad input."""

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import check_estimator, parametrize_with_checks

from vaekit import VAE
from vaekit.errors import ModelFileError
from vaekit.reduction import VAETransformer
from vaekit.reduction.metrics import knn_accuracy, trustworthiness

TINY = dict(hidden_layer_sizes=(16,), max_iter=3, batch_size=64)
# check_estimator passes in full: no check is expected to fail
EXPECTED_FAILED_CHECKS: dict[str, str] = {}


@parametrize_with_checks([VAETransformer(**TINY)], expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_scikit_learn_contract(estimator, check):
    check(estimator)


@pytest.mark.slow
def test_check_estimator_with_default_settings():
    check_estimator(VAETransformer(), expected_failed_checks=EXPECTED_FAILED_CHECKS)


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return x / 16.0, y


@pytest.fixture(scope="module")
def fitted(digits):
    x, _ = digits
    return VAETransformer(max_iter=15, random_state=0).fit(x)


def test_beats_pca_on_digits(digits, fitted):
    x, y = digits
    z = fitted.transform(x)
    pca = PCA(2).fit(x)
    zp = pca.transform(x)
    assert fitted.likelihood_ == "gaussian"
    assert knn_accuracy(z, y) > knn_accuracy(zp, y) + 0.15
    assert trustworthiness(x, z) > trustworthiness(x, zp)
    mse = np.mean((fitted.inverse_transform(z) - x) ** 2)
    assert mse < np.mean((pca.inverse_transform(zp) - x) ** 2)


def test_outputs_shapes_names_and_dtypes(digits, fitted):
    x, _ = digits
    assert fitted.transform(x[:7]).shape == (7, 2)
    assert fitted.transform(x[:7].astype(np.float32)).dtype == np.float32
    assert fitted.inverse_transform(np.zeros((3, 2))).shape == (3, 64)
    assert list(fitted.get_feature_names_out()) == ["vaetransformer0", "vaetransformer1"]
    assert fitted.n_iter_ == 15 and len(fitted.history_) == 15
    s = fitted.score_samples(x[:10])
    assert s.shape == (10,) and np.all(np.isfinite(s))
    assert fitted.score(x[:10]) == pytest.approx(s.mean())


def test_set_output_pandas_keeps_the_index(digits):
    pd = pytest.importorskip("pandas")
    x, _ = digits
    frame = pd.DataFrame(x[:200], index=np.arange(200) + 1000, columns=[f"p{i}" for i in range(64)])
    est = VAETransformer(**TINY, random_state=0).set_output(transform="pandas")
    out = est.fit_transform(frame)
    assert list(out.columns) == ["vaetransformer0", "vaetransformer1"]
    assert (out.index == frame.index).all()
    assert list(est.feature_names_in_) == list(frame.columns)


def test_pipeline_and_grid_search(digits):
    x, y = digits
    pipe = Pipeline([("vae", VAETransformer(**TINY, random_state=0)), ("knn", KNeighborsClassifier())])
    search = GridSearchCV(pipe, {"vae__n_components": [2, 3]}, cv=2).fit(x[:300], y[:300])
    assert search.best_params_["vae__n_components"] in (2, 3)
    assert search.predict(x[:5]).shape == (5,)


def test_sampling_transform_is_seeded_and_centred_on_the_mean(digits, fitted):
    x, _ = digits
    a = fitted.transform(x[:50], sample=True, random_state=1)
    assert np.array_equal(a, fitted.transform(x[:50], sample=True, random_state=1))
    assert not np.allclose(a, fitted.transform(x[:50]))
    draws = np.stack([fitted.transform(x[:50], sample=True, random_state=s) for s in range(200)])
    spread = draws.std(0)
    assert np.all(np.abs(draws.mean(0) - fitted.transform(x[:50])) < 5 * spread / np.sqrt(200) + 1e-6)


def test_likelihood_is_chosen_by_data_type():
    rng = np.random.RandomState(0)
    binary = (rng.rand(40, 5) > 0.5).astype(float)
    assert VAETransformer(**TINY, random_state=0).fit(binary).likelihood_ == "bernoulli"
    assert VAETransformer(**TINY, random_state=0).fit(rng.rand(40, 5)).likelihood_ == "gaussian"  # grey levels
    assert VAETransformer(**TINY, random_state=0).fit(rng.randn(40, 5)).likelihood_ == "gaussian"
    assert VAETransformer(**TINY, likelihood="bernoulli", random_state=0).fit(rng.rand(40, 5)).likelihood_ == "bernoulli"
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        VAETransformer(**TINY, likelihood="bernoulli").fit(rng.randn(40, 5))


def test_gaussian_scores_are_densities_in_the_input_units():
    """Fitting c * X gives the same network; log p gains -D log c (the Jacobian)."""
    x = np.random.RandomState(0).randn(60, 4)
    a = VAETransformer(**TINY, random_state=0).fit(x)
    b = VAETransformer(**TINY, random_state=0).fit(10.0 * x)
    np.testing.assert_allclose(b.transform(10.0 * x), a.transform(x), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(b.score_samples(10.0 * x), a.score_samples(x) - 4 * np.log(10.0), rtol=1e-5)
    np.testing.assert_allclose(b.inverse_transform(a.transform(x)), 10.0 * a.inverse_transform(a.transform(x)),
                               rtol=1e-4, atol=1e-4)


def test_same_seed_same_model_and_global_rng_untouched():
    x = np.random.RandomState(0).rand(50, 6)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = VAETransformer(**TINY, random_state=3).fit(x)
    assert torch.equal(torch.get_rng_state(), before)
    b = VAETransformer(**TINY, random_state=3).fit(x)
    np.testing.assert_array_equal(a.transform(x), b.transform(x))
    c = VAETransformer(**TINY, random_state=4).fit(x)
    assert not np.allclose(a.transform(x), c.transform(x))


def test_sparse_input_is_densified():
    x = sp.random(60, 8, density=0.3, random_state=0, format="csr")
    dense = VAETransformer(**TINY, random_state=0).fit(x.toarray())
    sparse = VAETransformer(**TINY, random_state=0).fit(x)
    np.testing.assert_array_equal(sparse.transform(x), dense.transform(x.toarray()))


def test_early_stopping_keeps_the_best_validation_weights(digits):
    x, _ = digits
    est = VAETransformer(**{**TINY, "max_iter": 6}, early_stopping=True, n_iter_no_change=2, random_state=0).fit(x[:300])
    assert 1 <= est.n_iter_ <= 6
    assert all("val_loss" in r for r in est.history_)


def test_save_load_round_trip_without_pickle(tmp_path, digits, fitted):
    x, _ = digits
    fitted.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    again = VAETransformer.load(tmp_path / "m")
    np.testing.assert_array_equal(again.transform(x[:20]), fitted.transform(x[:20]))
    np.testing.assert_array_equal(again.score_samples(x[:20]), fitted.score_samples(x[:20]))
    z = fitted.transform(x[:5])
    np.testing.assert_array_equal(again.inverse_transform(z), fitted.inverse_transform(z))
    assert again.get_params() == {**fitted.get_params(), "hidden_layer_sizes": (256, 128)}
    assert isinstance(VAE.from_pretrained(tmp_path / "m"), VAE)


def test_damaged_model_files_are_refused(tmp_path, fitted):
    fitted.save(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ModelFileError, match="pickle"):
        VAETransformer.load(tmp_path / "m")
    with pytest.raises(ModelFileError):
        VAETransformer.load(tmp_path / "missing")


def test_pickle_and_clone_in_memory(digits, fitted):
    x, _ = digits
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.transform(x[:20]), fitted.transform(x[:20]))
    fresh = clone(fitted)
    assert not hasattr(fresh, "vae_") and fresh.get_params() == fitted.get_params()


@pytest.mark.parametrize("bad, match", [
    (np.array([[np.nan] * 64]), "NaN"),
    (np.array([[np.inf] * 64]), "infinity"),
    (np.ones((2, 64)) + 1j, "[Cc]omplex"),
    (np.ones(64), "2D array"),
    (np.ones((0, 64)), "0 sample"),
    (np.ones((2, 63)), "63 features"),
])
def test_bad_input_at_transform_is_refused(fitted, bad, match):
    with pytest.raises(ValueError, match=match):
        fitted.transform(bad)


def test_bad_codes_for_inverse_transform(fitted):
    with pytest.raises(ValueError, match="n_components"):
        fitted.inverse_transform(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        fitted.inverse_transform(np.full((2, 2), np.nan))


def test_n_components_is_validated():
    x = np.random.RandomState(0).rand(30, 3)
    for bad in (0, -1):
        with pytest.raises(ValueError, match="n_components"):
            VAETransformer(bad).fit(x)
    with pytest.warns(UserWarning, match="larger than the number of features"):
        est = VAETransformer(5, **TINY).fit(x)
    assert est.transform(x).shape == (30, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        VAETransformer(3, **TINY).fit(x)


def test_auto_neighbor_weight_is_strong_in_2d_and_light_in_10d():
    from vaekit.reduction.transformer import auto_neighbor_weight

    assert auto_neighbor_weight(2) == 3.0 and auto_neighbor_weight(1) == 3.0
    assert auto_neighbor_weight(10) == pytest.approx(0.04)
    assert auto_neighbor_weight(3) < auto_neighbor_weight(2)
