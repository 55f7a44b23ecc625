"""PyOD's detector contract, shared by the table and the time-series detectors.

A detector defines ``decision_function`` (higher = more abnormal) and sets
``decision_scores_`` on its training data; this mixin derives ``threshold_`` and
``labels_`` from them and provides ``predict``, ``predict_proba`` and
``predict_confidence`` with the formulas of PyOD's ``BaseDetector`` (Zhao et al. 2019),
so the two libraries give the same labels and probabilities for the same scores.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.special import erf
from scipy.stats import binom

from vaekit.errors import ConfigError, DataError, ModelFileError
from vaekit.train.checkpoint import load_tensors, read_json

META_FILE = "detector.json"
SCORES_FILE = "detector.safetensors"


class ParameterError(ConfigError, ValueError):
    """An invalid detector setting (a ``ValueError`` too, as scikit-learn and PyOD raise)."""


def plain(value):
    """A NumPy scalar as the Python value it holds, so that messages show ``22``, not ``np.int64(22)``."""
    return value.item() if isinstance(value, np.generic) else value


def check_contamination(contamination) -> float:
    if isinstance(contamination, bool) or not isinstance(contamination, (int, float, np.floating)) or not (
            0.0 < float(contamination) <= 0.5):
        raise ParameterError(f"contamination must be in (0, 0.5], got {plain(contamination)!r}")
    return float(contamination)


def check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ParameterError(f"{name} must be a positive integer, got {plain(value)!r}")


class DetectorContract:
    """``threshold_``, ``labels_``, ``predict``, ``predict_proba``, ``predict_confidence``."""

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise DataError("this detector is not fitted: call fit() or load() first")

    def _restore_decision_scores(self, scores: np.ndarray, meta: dict, directory: str | Path) -> None:
        """``decision_scores_`` read back from ``detector.safetensors``, checked against
        ``detector.json``: one finite score a training row, and the threshold they give
        equal to the one saved (a scores file from another run would silently move every
        decision)."""
        path = Path(directory) / SCORES_FILE
        if scores.ndim != 1 or len(scores) == 0:
            raise ModelFileError(f"{path}: decision_scores must be a non-empty 1-D array, got shape {scores.shape}")
        if not np.isfinite(scores).all():
            raise ModelFileError(f"{path}: decision_scores holds NaN or infinite values")
        self.decision_scores_ = scores.astype(np.float64)
        self._process_decision_scores()
        saved = meta.get("threshold")
        if isinstance(saved, bool) or not isinstance(saved, (int, float)) or not np.isfinite(saved):
            raise ModelFileError(f"{Path(directory) / META_FILE}: 'threshold' must be a finite number, got {saved!r}")
        if not np.isclose(self.threshold_, saved, rtol=1e-9, atol=1e-12):
            raise ModelFileError(f"{path} does not belong to {Path(directory) / META_FILE}: its scores give the "
                                 f"threshold {self.threshold_:.6g}, the detector was saved with {saved:.6g} "
                                 "(a file copied in from another detector?)")

    def _saved_threshold(self) -> float:
        """The threshold that ``decision_scores_`` and ``contamination`` give: what a saved
        detector stores and what loading it recomputes and checks."""
        c = check_contamination(self.contamination)
        return float(np.percentile(self.decision_scores_, 100 * (1 - c)))

    def _process_decision_scores(self) -> None:
        """threshold_ and labels_ from decision_scores_, exactly as PyOD's BaseDetector."""
        self.threshold_ = self._saved_threshold()
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(int).ravel()
        self._mu = float(np.mean(self.decision_scores_))
        self._sigma = float(np.std(self.decision_scores_))

    def predict(self, X, return_confidence: bool = False, **kwargs):
        """1 for points scoring above ``threshold_``, else 0."""
        scores = self.decision_function(X, **kwargs)
        labels = (scores > self.threshold_).astype(int).ravel()
        return (labels, self._confidence(scores, labels)) if return_confidence else labels

    def predict_proba(self, X, method: str = "linear", return_confidence: bool = False, **kwargs) -> np.ndarray:
        """(n, 2) [P(normal), P(anomaly)]: min-max scaled by the training scores ('linear')
        or through the Gaussian error function of the standardized score ('unify',
        Kriegel et al. 2011), as in PyOD."""
        self._check_fitted()
        if method not in ("linear", "unify"):
            raise ParameterError(f"method must be 'linear' or 'unify', got {method!r}")
        scores = self.decision_function(X, **kwargs)
        probs = np.zeros((len(scores), 2))
        if method == "linear":
            lo, hi = float(self.decision_scores_.min()), float(self.decision_scores_.max())
            probs[:, 1] = ((scores - lo) / (hi - lo) if hi > lo else np.zeros_like(scores)).clip(0, 1)
        else:
            probs[:, 1] = erf((scores - self._mu) / (max(self._sigma, 1e-12) * np.sqrt(2))).clip(0, 1)
        probs[:, 0] = 1 - probs[:, 1]
        if return_confidence:
            return probs, self._confidence(scores, (scores > self.threshold_).astype(int))
        return probs

    def predict_confidence(self, X, **kwargs) -> np.ndarray:
        """How consistently a point would get the same label under a perturbed training
        set (Perini et al. 2020, ExCeeD), as PyOD computes it."""
        self._check_fitted()
        scores = self.decision_function(X, **kwargs)
        return self._confidence(scores, (scores > self.threshold_).astype(int))

    def _confidence(self, scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
        n = len(self.decision_scores_)
        below = np.searchsorted(np.sort(self.decision_scores_), scores, side="right")
        posterior = (1 + below) / (2 + n)
        conf = 1 - binom.cdf(n - int(n * float(self.contamination)), n, posterior)
        return np.where(labels == 0, 1 - conf, conf)

    def fit_predict(self, X, y=None, **kwargs) -> np.ndarray:
        return self.fit(X, y, **kwargs).labels_


def json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, (np.ndarray, tuple)):
        return list(o)
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def dumps(meta: dict) -> str:
    return json.dumps(meta, default=json_default)


def read_meta(directory: str | Path, kind: str) -> dict:
    path = Path(directory) / META_FILE
    if not Path(directory).is_dir():
        raise ModelFileError(f"detector directory {directory} does not exist")
    meta = read_json(path, missing=f"{directory} is not an anomaly detector directory")
    if not isinstance(meta, dict) or meta.get("kind") != kind:
        found = meta.get("kind") if isinstance(meta, dict) else None
        raise ModelFileError(f"{path}: a {found!r} detector, expected {kind!r}")
    return meta


def read_kind(directory: str | Path) -> str:
    """'tabular' or 'series': which detector a directory holds."""
    path = Path(directory) / META_FILE
    meta = read_json(path, missing=f"{directory} is not an anomaly detector directory")
    kind = meta.get("kind") if isinstance(meta, dict) else None
    if kind not in ("tabular", "series"):
        raise ModelFileError(f"{path}: unknown detector kind {kind!r}")
    return kind


def read_arrays(directory: str | Path, names: tuple[str, ...] = ("decision_scores",)) -> dict[str, np.ndarray]:
    path = Path(directory) / SCORES_FILE
    tensors, _ = load_tensors(path)
    missing = [n for n in names if n not in tensors]
    if missing:
        raise ModelFileError(f"{path}: no array {missing[0]!r}")
    return {n: tensors[n].numpy() for n in tensors}
