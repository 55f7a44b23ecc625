"""VAEDetector: PyOD's contract, scores, explanations, files."""

import json

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from vaekit.anomaly import ParameterError, VAEDetector
from vaekit.errors import DataError, ModelFileError, VaekitError

from .conftest import mixed_table


def test_fitted_attributes_follow_pyod(fitted, cancer):
    X, y = cancer
    s = fitted.decision_scores_
    assert s.shape == (len(X),) and np.isfinite(s).all()
    assert fitted.threshold_ == pytest.approx(np.percentile(s, 95))
    assert np.array_equal(fitted.labels_, (s > fitted.threshold_).astype(int))
    assert fitted.labels_.mean() == pytest.approx(0.05, abs=0.01)
    assert roc_auc_score(y, s) > 0.8  # malignant rows score higher than benign ones


def test_predict_proba_and_confidence(fitted, cancer):
    X = cancer[0][:40]
    scores = fitted.decision_function(X)
    assert np.array_equal(fitted.predict(X), (scores > fitted.threshold_).astype(int))
    for method in ("linear", "unify"):
        p = fitted.predict_proba(X, method=method)
        assert p.shape == (40, 2) and np.allclose(p.sum(1), 1) and (p >= 0).all() and (p <= 1).all()
    labels, conf = fitted.predict(X, return_confidence=True)
    assert conf.shape == (40,) and ((conf >= 0) & (conf <= 1)).all()
    assert np.allclose(fitted.predict_confidence(X), conf)
    with pytest.raises(ValueError, match="linear"):
        fitted.predict_proba(X, method="nope")


def test_same_labels_probabilities_and_confidence_as_pyod(fitted, cancer):
    """PyOD's BaseDetector given our scores gives our threshold, labels, probabilities."""
    pyod_base = pytest.importorskip("pyod.models.base")

    class Fixed(pyod_base.BaseDetector):
        def __init__(self, contamination, det):
            super().__init__(contamination=contamination)
            self.det = det

        def fit(self, X, y=None):
            self._set_n_classes(y)
            self.decision_scores_ = self.det.decision_scores_
            self._process_decision_scores()
            return self

        def decision_function(self, X):
            return self.det.decision_function(X)

    X = cancer[0][:60]
    ref = Fixed(0.05, fitted).fit(X)
    assert ref.threshold_ == pytest.approx(fitted.threshold_)
    assert np.array_equal(ref.labels_, fitted.labels_)
    assert np.array_equal(ref.predict(X), fitted.predict(X))
    for method in ("linear", "unify"):
        assert np.allclose(ref.predict_proba(X, method=method), fitted.predict_proba(X, method=method))
    assert np.allclose(ref.predict_confidence(X), fitted.predict_confidence(X))


def test_scores_are_deterministic_and_clone_refits_identically(fitted, cancer):
    X = cancer[0][:50]
    assert np.array_equal(fitted.decision_function(X), fitted.decision_function(X))
    twin = clone(fitted)
    assert twin.get_params() == fitted.get_params()
    assert np.allclose(twin.fit(cancer[0]).decision_function(X), fitted.decision_function(X))


@pytest.mark.parametrize("score", ["nelbo", "recon_prob", "iw_nll"])
def test_with_shared_noise_a_rows_score_does_not_depend_on_the_other_rows(fitted, cancer, score):
    det = clone(fitted).set_params(score=score)
    det.model_, det.preprocessor_ = fitted.model_, fitted.preprocessor_

    def scores(X):
        return det.score_encoded(det.preprocessor_.transform(X), shared_noise=True)

    X = cancer[0][:40]
    together = scores(X)
    alone = np.array([scores(X[i : i + 1])[0] for i in range(5)])
    np.testing.assert_allclose(alone, together[:5], rtol=1e-5)
    np.testing.assert_allclose(scores(X[::-1])[::-1], together, rtol=1e-5)
    assert np.corrcoef(together, det.decision_function(X))[0, 1] > 0.99  # per-row draws: Monte-Carlo noise apart


@pytest.mark.parametrize("score, auc", [("recon_prob", 0.7), ("iw_nll", 0.7)])
def test_other_scores(fitted, cancer, score, auc):
    X = cancer[0]
    det = clone(fitted).set_params(score=score)
    det.model_, det.preprocessor_ = fitted.model_, fitted.preprocessor_  # same network, other score
    s = det.decision_function(X)
    assert np.isfinite(s).all()
    assert roc_auc_score(cancer[1], s) > auc
    if score == "iw_nll":  # the IW bound is tighter than the ELBO: -log p(x) <= -ELBO
        assert np.mean(s) <= np.mean(fitted.decision_function(X)) + 1e-6


def test_explain_points_at_the_broken_column():
    df = mixed_table(400)
    det = VAEDetector(contamination=0.05, max_steps=300).fit(df)
    probe = df.iloc[:5].copy()
    probe.loc[probe.index[0], "c"] = -probe["a"].iloc[0] * 2 + 8  # breaks c = 2a
    shares = det.explain(probe)
    assert list(shares.columns) == ["a", "b", "c", "proto", "const"]
    assert np.allclose(shares.sum(1), 1)
    assert shares.iloc[0].idxmax() in ("a", "c")
    assert shares.iloc[0]["c"] > 0.4
    assert det.top_columns(probe, k=2)[0][0][0] == shares.iloc[0].idxmax()
    assert det.decision_function(probe)[0] > det.threshold_
    changed = df.iloc[5:7].assign(const=[5.0, 6.0])  # constant in training: a new value is an anomaly
    assert det.decision_function(changed)[1] > det.decision_scores_.max()
    assert det.explain(changed).iloc[1].idxmax() == "const"


def test_save_and_load_give_the_same_scores(fitted, cancer, tmp_path):
    fitted.save(tmp_path / "det", extra={"source": "x"})
    assert json.loads((tmp_path / "det" / "config.json").read_text())["kind"] == "anomaly"
    loaded = VAEDetector.load(tmp_path / "det")
    X = cancer[0][:30]
    assert np.array_equal(loaded.decision_function(X), fitted.decision_function(X))
    assert loaded.threshold_ == fitted.threshold_ and loaded.extra_ == {"source": "x"}
    (tmp_path / "det" / "detector.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        VAEDetector.load(tmp_path / "det")
    with pytest.raises(ModelFileError, match="does not exist"):
        VAEDetector.load(tmp_path / "nowhere")


@pytest.mark.parametrize("damage, message", [
    ("scores of another detector", "does not belong to"),
    ("NaN score", "decision_scores holds NaN or infinite values"),
    ("2-D scores", "decision_scores must be a non-empty 1-D array"),
    ("no scores", "decision_scores must be a non-empty 1-D array"),
    ("NaN threshold", "'threshold' must be a finite number"),
    ("contamination edited", "does not belong to"),
    ("columns cut", "is used but not listed in 'columns'"),
    ("nested detector.json", "detector.json is not a valid description: its JSON is nested too deeply"),
    ("detector.json directory", "detector.json is a directory, not a file"),
])
def test_a_tampered_detector_is_refused(fitted, tmp_path, damage, message):
    from safetensors.numpy import save as save_numpy

    d = fitted.save(tmp_path / "det")
    meta = json.loads((d / "detector.json").read_text())
    scores = fitted.decision_scores_.copy()
    if damage == "scores of another detector":
        scores = scores[::-1] * 1.5
    elif damage == "NaN score":
        scores[3] = np.nan
    elif damage == "2-D scores":
        scores = np.stack([scores, scores])
    elif damage == "no scores":
        scores = scores[:0]
    elif damage == "NaN threshold":
        meta["threshold"] = float("nan")
    elif damage == "contamination edited":
        meta["params"]["contamination"] = 0.3
    elif damage == "columns cut":
        meta["preprocessor"]["columns"] = meta["preprocessor"]["columns"][:5]
    (d / "detector.safetensors").write_bytes(save_numpy({"decision_scores": np.ascontiguousarray(scores)}))
    (d / "detector.json").write_text(json.dumps(meta))
    if damage == "nested detector.json":
        (d / "detector.json").write_text("[" * 100_000 + "]" * 100_000)
    elif damage == "detector.json directory":
        (d / "detector.json").unlink()
        (d / "detector.json").mkdir()
    with pytest.raises(ModelFileError, match=message):
        VAEDetector.load(d)


def test_a_detector_saved_after_set_params_loads(fitted, cancer, tmp_path):
    """The saved threshold is the one its scores and contamination give, so a detector
    whose contamination was changed after fitting still loads, with that contamination."""
    import copy

    det = copy.deepcopy(fitted).set_params(contamination=0.2)
    loaded = VAEDetector.load(det.save(tmp_path / "det"))
    assert loaded.contamination == 0.2
    assert loaded.threshold_ == pytest.approx(np.percentile(fitted.decision_scores_, 80))


@pytest.mark.parametrize("value", [0, 0.0, 0.51, 1, -0.1, True, "0.1", None])
def test_contamination_outside_range_is_refused(value):
    with pytest.raises(ParameterError, match=r"contamination must be in \(0, 0.5\]"):
        VAEDetector(contamination=value)
    assert issubclass(ParameterError, ValueError) and issubclass(ParameterError, VaekitError)


def test_contamination_half_is_allowed():
    assert VAEDetector(contamination=0.5).contamination == 0.5


def test_bad_settings_are_refused_at_fit(cancer):
    for params, msg in [({"score": "mse"}, "score must be one of"), ({"n_samples": 0}, "n_samples"),
                        ({"max_steps": 1.5}, "max_steps"), ({"val_size": 0.7}, "val_size")]:
        with pytest.raises(ParameterError, match=msg):
            VAEDetector(**params).fit(cancer[0])


def test_unfitted_detector_says_so(cancer):
    with pytest.raises(DataError, match="not fitted"):
        VAEDetector().decision_function(cancer[0])


def test_bad_rows_at_scoring_time(fitted, cancer):
    X = cancer[0][:6].copy()
    X[0, 3] = np.nan
    X[1, :] = np.inf  # every value missing: nothing to score
    with pytest.raises(DataError, match="row 1 has no observed value"):
        fitted.decision_function(X)
    X[1, :] = cancer[0][1]
    X[2, 0] = -np.inf
    s = fitted.decision_function(X)
    assert np.isfinite(s).all()
    assert fitted.last_report_["missing_values"] == {"x0": 1, "x3": 1}
    with pytest.raises(DataError, match="5 columns, the detector was fitted on 30"):
        fitted.decision_function(X[:, :5])


def test_missing_values_in_training_are_masked_and_reported(cancer):
    X = cancer[0].copy()
    X[::7, 2] = np.nan
    det = VAEDetector(contamination=0.05, max_steps=100).fit(X)
    assert det.fit_report_["missing_values"] == {"x2": int(np.isnan(X[:, 2]).sum())}
    assert np.isfinite(det.decision_scores_).all()
    strict = VAEDetector(missing="error", max_steps=10)
    with pytest.raises(DataError, match="column 'x2' has .* missing or infinite value"):
        strict.fit(X)


def test_far_out_training_rows_do_not_break_training(cancer):
    """Robust-scaled values in the thousands (ADBench's shuttle has them) once overflowed exp(log_var)."""
    X = cancer[0].copy()
    X[:3] *= 1e5
    X[3, 0] = 1e300  # clipped to a million robust units, still finite in float32
    det = VAEDetector(contamination=0.05, max_steps=100).fit(X)
    assert np.isfinite(det.decision_scores_).all()
    assert set(np.argsort(-det.decision_scores_)[:4]) == {0, 1, 2, 3}
