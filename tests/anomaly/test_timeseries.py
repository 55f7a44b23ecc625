"""SeriesDetector (Donut): windows, timestamps, injection, per-point scores, files."""

import numpy as np
import pandas as pd
import pytest
import torch

from vaekit.anomaly import SeriesDetector
from vaekit.anomaly.model import pack
from vaekit.anomaly.timeseries import events, injection, regular_grid, windows
from vaekit.errors import DataError


def sine(n=480, spike_at=400, seed=0):
    rng = np.random.default_rng(seed)
    v = np.sin(np.arange(n) * 2 * np.pi / 24) + rng.normal(scale=0.05, size=n)
    if spike_at is not None:
        v[spike_at] += 4.0
    return pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=n, freq="h"), "value": v})


@pytest.fixture(scope="module")
def series_fit():
    df = sine()
    det = SeriesDetector(window=24, max_steps=200, contamination=0.01, n_samples=8)
    return df, det.fit(df[["value"]], timestamps=df["timestamp"])


def test_windows_are_time_major():
    v = np.arange(10.0).reshape(5, 2)
    w, o = windows(v, np.ones_like(v), 3)
    assert w.shape == (3, 6) and w[1].tolist() == [2, 3, 4, 5, 6, 7] and o.min() == 1


def test_gaps_become_missing_points_and_bad_timestamps_are_named():
    ts = pd.to_datetime(["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 04:00", "2024-01-01 05:00"])
    pos, interval, length = regular_grid(ts, 4)
    assert interval == 3600 and pos.tolist() == [0, 1, 4, 5] and length == 6
    with pytest.raises(DataError, match="not sorted: row 2"):
        regular_grid(ts[[0, 2, 1, 3]], 4)
    with pytest.raises(DataError, match="duplicated timestamp"):
        regular_grid(ts[[0, 1, 1, 3]], 4)
    with pytest.raises(DataError, match="row 1 is missing or not a date"):
        regular_grid(["2024-01-01", "yesterday"], 2)


def test_injection_drops_about_the_rate():
    x = pack(torch.randn(200, 50))
    out = injection(0.1)(x, torch.Generator().manual_seed(0))
    dropped = 1 - out[:, 1].mean().item()
    assert 0.08 < dropped < 0.12
    assert (out[:, 0][out[:, 1] == 0] == 0).all() and x[:, 1].min() == 1  # input untouched


def test_events():
    assert events(np.array([0, 1, 1, 0, 1])) == [(1, 2), (4, 4)]
    assert events(np.zeros(3)) == []


def test_spike_scores_highest_and_contract(series_fit):
    df, det = series_fit
    s = det.decision_scores_
    assert s.shape == (len(df),) and np.isfinite(s).all()
    assert abs(int(np.argmax(s)) - 400) <= 1
    assert det.predict(df[["value"]], timestamps=df["timestamp"])[400] == 1
    assert det.predict_proba(df[["value"]], timestamps=df["timestamp"]).shape == (len(df), 2)
    assert np.allclose(det.explain(df[["value"]], timestamps=df["timestamp"]).sum(1), 1)


def test_gaps_in_the_scored_series(series_fit):
    df, det = series_fit
    gappy = df.drop(index=range(100, 110)).reset_index(drop=True)
    scores = det.decision_function(gappy[["value"]], timestamps=gappy["timestamp"])
    assert len(scores) == len(gappy) and det.last_report_["inserted_missing_points"] == 10


def test_save_and_load(series_fit, tmp_path):
    df, det = series_fit
    det.save(tmp_path / "s")
    again = SeriesDetector.load(tmp_path / "s")
    assert np.array_equal(again.decision_function(df[["value"]], timestamps=df["timestamp"]),
                          det.decision_function(df[["value"]], timestamps=df["timestamp"]))


@pytest.mark.parametrize("name, value, message", [
    ("scale", [-1.0], "every scale must be > 0"),
    ("center", [np.nan], "center must be 1 finite number"),
    ("scale", [1.0, 2.0], "scale must be 1 finite number"),
    ("decision_scores", None, "does not belong to"),
])
def test_tampered_series_files_are_refused(series_fit, tmp_path, name, value, message):
    from safetensors.numpy import load_file
    from safetensors.numpy import save as save_numpy

    from vaekit.errors import ModelFileError

    _, det = series_fit
    d = det.save(tmp_path / "s")
    arrays = load_file(d / "detector.safetensors")
    arrays[name] = arrays[name] * 3 + 1 if value is None else np.asarray(value, np.float64)
    (d / "detector.safetensors").write_bytes(save_numpy(arrays))
    with pytest.raises(ModelFileError, match=message):
        SeriesDetector.load(d)


def test_several_series_and_labels_in_fit():
    df = sine(200, spike_at=150)
    two = pd.DataFrame({"a": df["value"], "b": -df["value"]})
    y = np.zeros(200, int)
    y[150] = 1
    det = SeriesDetector(window=12, max_steps=60, n_samples=4).fit(two, y=y)
    assert det.fit_report_["labelled_anomalies_masked"] == 1
    assert list(det.explain(two).columns) == ["a", "b"]
    with pytest.raises(DataError, match="1 series given, the detector was fitted on 2"):
        det.decision_function(two[["a"]])


@pytest.mark.parametrize("make, message", [
    (lambda: (np.arange(10.0), None), "shorter than the window"),
    (lambda: (pd.DataFrame({"v": ["1", "2", "x"] * 20}), None), "row 2 holds 'x'"),
    (lambda: (np.ones((30, 2, 2)), None), "expected a series"),
])
def test_bad_series(make, message):
    X, ts = make()
    with pytest.raises(DataError, match=message):
        SeriesDetector(window=24, max_steps=5).fit(X, timestamps=ts)


def test_window_must_be_at_least_two():
    with pytest.raises(ValueError, match="window must be >= 2"):
        SeriesDetector(window=1).fit(np.arange(10.0))


def test_mcmc_imputation_fills_only_missing_values(series_fit):
    _, det = series_fit
    v = torch.randn(6, 24)
    o = torch.ones(6, 24)
    o[0, 5:9] = 0
    o[3, -1] = 0
    x = pack(v, o)
    filled = det._impute(det.model_, x)
    missing = o < 1
    assert torch.equal(filled[:, 0][~missing], x[:, 0][~missing])  # observed values untouched
    assert torch.equal(filled[:, 1], x[:, 1])  # the mask still says which points were missing
    assert (filled[:, 0][missing] != 0).all()  # gaps now hold the model's reconstruction
    det.set_params(mcmc_steps=0)
    try:
        assert torch.equal(det._impute(det.model_, x), x)
    finally:
        det.set_params(mcmc_steps=10)


def test_mcmc_imputation_changes_the_scores_around_a_gap(series_fit):
    df, det = series_fit
    gappy = df.drop(index=range(200, 212)).reset_index(drop=True)
    with_mcmc = det.decision_function(gappy[["value"]], timestamps=gappy["timestamp"])
    det.set_params(mcmc_steps=0)
    try:
        without = det.decision_function(gappy[["value"]], timestamps=gappy["timestamp"])
    finally:
        det.set_params(mcmc_steps=10)
    after_gap = slice(200, 200 + 24)  # rows whose window still contains the gap
    assert not np.allclose(with_mcmc[after_gap], without[after_gap])
    assert np.allclose(with_mcmc[:150], without[:150])  # windows without a gap are unchanged


@pytest.mark.parametrize("steps", [-1, 1.5, True])
def test_bad_mcmc_steps(steps):
    with pytest.raises(ValueError, match="mcmc_steps must be an integer >= 0"):
        SeriesDetector(window=12, mcmc_steps=steps).fit(np.sin(np.arange(60.0)))
