"""Anomaly figures, and the data-independent logic of the anomaly benchmark scripts."""

import sys
from pathlib import Path

import numpy as np
import pytest

from vaekit.anomaly.plots import score_histogram, series_figure

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import adbench  # noqa: E402
import kddcup99  # noqa: E402
import nab  # noqa: E402


def test_histogram_and_series_figures(tmp_path):
    rng = np.random.default_rng(0)
    s = np.r_[rng.normal(size=200), 1e6]  # one huge score must not squash the rest
    y = np.r_[np.zeros(200, int), 1]
    assert score_histogram(s, 2.0, tmp_path / "h.png", labels=y).stat().st_size > 1000
    v = np.sin(np.arange(100) / 5)
    labels = np.zeros(100, int)
    labels[40:45] = 1
    path = series_figure(v, np.abs(v), labels, tmp_path / "s.png", true_labels=labels, threshold=0.9)
    assert path.stat().st_size > 1000
    with pytest.raises(ValueError, match="finite"):
        score_histogram([np.nan], 0.0, tmp_path / "x.png")
    with pytest.raises(ValueError, match="100 values but 3 scores"):
        series_figure(v, [1, 2, 3], labels, tmp_path / "y.png")


def test_adbench_split_and_summary():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(300, 4)), (rng.random(300) < 0.1).astype(int)
    X_tr, X_te, y_te = adbench.split(X, y, seed=0, cap=100)
    assert X_tr.shape == (100, 4) and len(X_te) == 90 and abs(X_tr.mean()) < 0.2
    partial = {f"a|{s}|{m}": {"roc_auc": 0.5 + s / 10, "ap": 0.1, "fit_seconds": 1.0, "score_seconds": 0.1}
               for s in (0, 1) for m in ("vaekit", "iforest")}
    metrics = adbench.summarise(partial, ["a"], ["vaekit", "iforest"], [0, 1])
    assert metrics["mean_roc_auc"] == {"vaekit": pytest.approx(0.55), "iforest": pytest.approx(0.55)}
    assert "| a | **0.550** | **0.550** |" in adbench.markdown(metrics, ["a"], ["vaekit", "iforest"], "t")


def test_nab_baselines_and_event_metrics():
    v = np.r_[np.zeros(50), 10.0, np.zeros(49)] + np.random.default_rng(0).normal(scale=0.1, size=100)
    z = nab.rolling_zscore(v, 10)
    assert int(np.argmax(z)) == 50
    y = np.zeros(100, int)
    y[48:53] = 1
    m = nab.event_metrics(y, z, 0.01)
    assert m == {"windows": 1, "detected": 1, "false_alarm_events": 0, "flagged_points": 1}


def test_kdd_threshold_metrics():
    y = np.r_[np.zeros(90, int), np.ones(10, int)]
    scores = np.r_[np.zeros(90), np.ones(10)]
    r = kddcup99.evaluate(y, scores, np.zeros(50))
    assert r["roc_auc"] == 1.0 and r["at_contamination_0.05"]["f1"] == 1.0
    assert kddcup99.FAMILY_OF["smurf"] == "dos"
