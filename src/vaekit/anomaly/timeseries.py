"""``SeriesDetector``: Donut-style VAE anomaly detection on one or more time series.

Donut (Xu et al. 2018, "Unsupervised Anomaly Detection via Variational Auto-Encoder for
Seasonal KPIs in Web Applications") trains a VAE on sliding windows of a series and
scores each point by how badly the window ending at it reconstructs that point. Its
three tricks are here:

- **Modified ELBO**: missing points (gaps in the timestamps, NaN) and, when labels are
  given to ``fit``, known anomalies are left out of the likelihood, and the prior term
  is weighted by the share of observed points (:class:`~vaekit.anomaly.model.MaskedVAE`).
- **Missing-point injection**: during training a share ``injection`` of the observed
  points of each batch is marked missing (a trainer ``transform``), so the model learns
  to reconstruct normal patterns around the gaps and anomalies it cannot see.
- **Per-point score from the last point of each window**: the score of point t is
  -E_q[log p(x_t | z)] on the window that ends at t (the reconstruction probability of
  An & Cho 2015 in Donut's form), so detection is online. Points before the first full
  window take their position in the first window. Missing points get the score 0 (no
  evidence).
- **MCMC imputation at scoring time**: a window with missing points is encoded from
  values where those points are replaced by the model's own reconstruction, refined
  ``mcmc_steps`` times (z ~ q(z|x), then the missing values <- the mean of p(x|z); Donut
  takes a sample of p(x|z), the mean keeps the decoder's noise out of the encoder's
  input). The likelihood of the score still covers only the observed points, so a gap
  is not scored as an anomaly while the points around it are judged with the gap
  filled by what the model expects there.

Several series (columns) share one window; the per-channel terms of the last point add
up, and ``explain`` gives each series' share. Timestamps must be sorted and unique; the
sampling interval is their median difference and gaps become missing points.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from safetensors.numpy import save as save_numpy
from sklearn.base import BaseEstimator

from vaekit.anomaly.base import (
    META_FILE,
    SCORES_FILE,
    DetectorContract,
    ParameterError,
    check_contamination,
    check_positive_int,
    dumps,
    read_arrays,
    read_meta,
)
from vaekit.anomaly.fitting import train_packed
from vaekit.anomaly.model import MaskedVAE, detector_description, pack
from vaekit.builders import build_vae
from vaekit.errors import DataError, ModelFileError
from vaekit.io import from_pretrained, save_pretrained
from vaekit.train.checkpoint import atomic_write_bytes, atomic_write_text


# -- series and timestamps ---------------------------------------------------------------
def _as_matrix(X) -> tuple[np.ndarray, list[str]]:
    """(T, C) float values (NaN = missing) and channel names."""
    if isinstance(X, pd.Series):
        X = X.to_frame()
    if isinstance(X, pd.DataFrame):
        names = [str(c) for c in X.columns]
        cols = []
        for c in X.columns:
            v = pd.to_numeric(X[c], errors="coerce")
            bad = np.flatnonzero(v.isna().to_numpy() & X[c].notna().to_numpy()
                                 & ~X[c].astype(str).str.strip().isin(["", "nan", "NaN", "NA", "null"]).to_numpy())
            if len(bad):
                raise DataError(f"series {c!r} is numeric but row {bad[0]} holds {X[c].iloc[bad[0]]!r}")
            cols.append(v.to_numpy(dtype=np.float64, na_value=np.nan))
        arr = np.stack(cols, 1) if cols else np.zeros((len(X), 0))
    else:
        try:
            arr = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise DataError(f"the series must be numbers: {e}") from None
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise DataError(f"expected a series (T,) or several series (T, C), got shape {arr.shape}")
        names = ["value"] if arr.shape[1] == 1 else [f"series{i}" for i in range(arr.shape[1])]
    if arr.shape[1] == 0:
        raise DataError("no series: the table has no value column")
    arr = arr.copy()
    arr[~np.isfinite(arr)] = np.nan
    return arr, names


def regular_grid(timestamps, n: int, interval: float | None = None) -> tuple[np.ndarray, float, int]:
    """Grid position of each row, the interval (seconds) and the grid length.

    Refuses unsorted and duplicated timestamps, naming the first offending row.
    """
    ts = pd.to_datetime(pd.Series(timestamps), errors="coerce")
    if len(ts) != n:
        raise DataError(f"{len(ts)} timestamps for {n} rows")
    bad = np.flatnonzero(ts.isna().to_numpy())
    if len(bad):
        raise DataError(f"timestamp in row {bad[0]} is missing or not a date: {pd.Series(timestamps).iloc[bad[0]]!r}")
    secs = (ts - ts.iloc[0]).dt.total_seconds().to_numpy()
    step = np.diff(secs)
    if (step < 0).any():
        r = int(np.flatnonzero(step < 0)[0]) + 1
        raise DataError(f"timestamps are not sorted: row {r} ({ts.iloc[r]}) comes before row {r - 1} "
                        f"({ts.iloc[r - 1]}); sort the data by time")
    if (step == 0).any():
        r = int(np.flatnonzero(step == 0)[0]) + 1
        raise DataError(f"duplicated timestamp {ts.iloc[r]} in rows {r - 1} and {r}")
    if interval is None:
        interval = float(np.median(step)) if len(step) else 1.0
    pos = np.rint(secs / interval).astype(np.int64)
    if len(pos) > 1 and (np.diff(pos) <= 0).any():
        r = int(np.flatnonzero(np.diff(pos) <= 0)[0]) + 1
        raise DataError(f"rows {r - 1} and {r} fall on the same {interval:g}-second slot: irregular timestamps")
    return pos, interval, int(pos[-1]) + 1 if len(pos) else 0


def windows(values: np.ndarray, observed: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Sliding windows (N, W*C) of a (T, C) grid, time-major, N = T - W + 1."""
    v = np.lib.stride_tricks.sliding_window_view(values, w, axis=0)  # (N, C, W)
    o = np.lib.stride_tricks.sliding_window_view(observed, w, axis=0)
    return (np.ascontiguousarray(v.transpose(0, 2, 1).reshape(len(v), -1), dtype=np.float32),
            np.ascontiguousarray(o.transpose(0, 2, 1).reshape(len(o), -1), dtype=np.float32))


def injection(rate: float) -> Callable:
    """Donut's missing-point injection as a trainer transform on packed batches."""

    def transform(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        drop = torch.rand(x[:, 1].shape, generator=gen) < rate
        x = x.clone()
        x[:, 1] = torch.where(drop, torch.zeros_like(x[:, 1]), x[:, 1])
        x[:, 0] = x[:, 0] * x[:, 1]
        return x

    return transform


def events(labels: np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive 1s as (first, last) index pairs."""
    d = np.diff(np.r_[0, np.asarray(labels, int), 0])
    return list(zip(np.flatnonzero(d == 1).tolist(), (np.flatnonzero(d == -1) - 1).tolist()))


class SeriesDetector(DetectorContract, BaseEstimator):
    """Donut on sliding windows, with PyOD's contract over points.

    ``fit(X, y=None, timestamps=None)``: X is a series (T,), several series (T, C) or a
    data frame of numeric columns. Optional labels ``y`` (1 = anomaly) are left out of
    the likelihood (Donut's semi-supervised use); the default is unsupervised.
    ``decision_function(X, timestamps=None)`` gives one score per row of X.

    Defaults follow Donut: window 120, two hidden layers of 100, latent 3, injection
    rate 0.01, decoder-predicted scale with a 1e-4 floor, L2 weight decay 1e-3, 10 MCMC
    imputation steps for windows with missing points; the score averages ``n_samples``
    draws.
    """

    def __init__(self, window: int = 120, contamination: float = 0.01, latent_dim: int = 3, hidden=(100, 100),
                 injection: float = 0.01, min_scale: float = 1e-4, max_steps: int = 4000, batch_size: int = 256,
                 lr: float = 1e-3, weight_decay: float = 1e-3, val_size: float = 0.1, n_samples: int = 32,
                 mcmc_steps: int = 10, random_state: int = 0, threads: int | None = None, progress: bool = False,
                 log: Callable[[str], None] | None = None):
        check_contamination(contamination)
        self.window = window
        self.contamination = contamination
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.injection = injection
        self.min_scale = min_scale
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.val_size = val_size
        self.n_samples = n_samples
        self.mcmc_steps = mcmc_steps
        self.random_state = random_state
        self.threads = threads
        self.progress = progress
        self.log = log

    def _check_params(self) -> None:
        check_contamination(self.contamination)
        for name in ("window", "latent_dim", "max_steps", "batch_size", "n_samples"):
            check_positive_int(name, getattr(self, name))
        if self.window < 2:
            raise ParameterError(f"window must be >= 2, got {self.window}")
        if not 0.0 <= float(self.injection) < 1.0:
            raise ParameterError(f"injection must be in [0, 1), got {self.injection!r}")
        if not 0.0 <= float(self.val_size) < 0.5:
            raise ParameterError(f"val_size must be in [0, 0.5), got {self.val_size!r}")
        if isinstance(self.mcmc_steps, bool) or not isinstance(self.mcmc_steps, (int, np.integer)) or self.mcmc_steps < 0:
            raise ParameterError(f"mcmc_steps must be an integer >= 0, got {self.mcmc_steps!r}")

    # -- preparing a series ----------------------------------------------------------
    def _grid(self, X, timestamps, fitting: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        """Scaled values and mask on the regular grid, each row's grid position, a report."""
        arr, names = _as_matrix(X)
        if fitting:
            self.series_names_ = names
        elif arr.shape[1] != len(self.series_names_):
            raise DataError(f"{arr.shape[1]} series given, the detector was fitted on {len(self.series_names_)} "
                            f"({', '.join(self.series_names_)})")
        if timestamps is None:
            pos, interval, length = np.arange(len(arr)), None, len(arr)
        else:
            pos, interval, length = regular_grid(timestamps, len(arr), None if fitting else self.interval_)
        if fitting:
            self.interval_ = interval
        if length < self.window:
            raise DataError(f"the series has {length} points, shorter than the window ({self.window}); "
                            f"use a smaller window")
        grid = np.full((length, arr.shape[1]), np.nan)
        grid[pos] = arr
        if fitting:
            self.center_, self.scale_ = _robust_stats(grid)
        missing = np.isnan(grid)
        values = np.where(missing, 0.0, (grid - self.center_) / self.scale_)
        report = {"rows": len(arr), "grid_points": length, "inserted_missing_points": int(length - len(arr)),
                  "missing_values": int(np.isnan(arr).sum())}
        return values, (~missing).astype(np.float32), pos, report

    # -- fitting ---------------------------------------------------------------------
    def fit(self, X, y=None, timestamps=None, run_dir: str | Path | None = None) -> "SeriesDetector":
        self._check_params()
        values, observed, pos, report = self._grid(X, timestamps, fitting=True)
        if y is not None:
            y = np.asarray(y).astype(int).ravel()
            if len(y) != len(pos):
                raise DataError(f"{len(y)} labels for {len(pos)} rows")
            observed[pos[y == 1]] = 0.0  # M-ELBO: labelled anomalies give no likelihood term
            report["labelled_anomalies_masked"] = int((y == 1).sum())
        self.fit_report_ = report
        v, o = windows(values, observed, self.window)
        self.model_ = self._train(v, o, run_dir)
        self.decision_scores_ = self._point_scores(values, observed, pos)
        self._process_decision_scores()
        return self

    def _train(self, v: np.ndarray, o: np.ndarray, run_dir) -> MaskedVAE:
        torch.manual_seed(self.random_state)
        d = v.shape[1]
        model = build_vae(detector_description(d, list(self.hidden), self.latent_dim, "decoder", self.min_scale))
        x = pack(torch.from_numpy(v), torch.from_numpy(o))
        self.history_ = train_packed(model, x, val_size=float(self.val_size), batch_size=self.batch_size,
                                     max_steps=self.max_steps, lr=self.lr, weight_decay=self.weight_decay,
                                     seed=self.random_state, threads=self.threads, run_dir=run_dir,
                                     transform=injection(float(self.injection)), progress=self.progress, log=self.log)
        return model

    # -- scoring ---------------------------------------------------------------------
    @torch.no_grad()
    def _last_point_terms(self, values: np.ndarray, observed: np.ndarray, batch: int = 1024) -> np.ndarray:
        """Per grid point and channel: -E_q[log p(x_t,c | z)] from the window ending at t, (T, C)."""
        v, o = windows(values, observed, self.window)
        c = values.shape[1]
        model = self.model_.eval()
        out = np.zeros((len(v), self.window, c))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_state)
            for i in range(0, len(v), batch):
                x = self._impute(model, pack(torch.from_numpy(v[i : i + batch]), torch.from_numpy(o[i : i + batch])))
                q = model.encode(x)
                lp = model.likelihood.log_prob_per_feature(x, model.decode(q.rsample(self.n_samples)))
                out[i : i + batch] = (-lp.mean(0)).double().numpy().reshape(len(x), self.window, c)
        # point t >= W-1: last position of window t-W+1; earlier points: their place in window 0
        return np.concatenate([out[0, : self.window - 1], out[:, -1]], 0)

    def _impute(self, model: MaskedVAE, x: torch.Tensor) -> torch.Tensor:
        """Donut's MCMC imputation: missing values <- reconstruction, ``mcmc_steps`` times."""
        rows = (x[:, 1] < 1).any(1)
        if self.mcmc_steps == 0 or not rows.any():
            return x
        x = x.clone()
        sub = x[rows]
        missing = sub[:, 1] < 1
        with torch.random.fork_rng(devices=[]):  # own stream: windows without gaps score as with mcmc_steps=0
            torch.manual_seed(self.random_state + 1)
            for _ in range(int(self.mcmc_steps)):
                mean = model.likelihood.mean(model.decode(model.encode(sub).rsample()))
                sub[:, 0] = torch.where(missing, mean, sub[:, 0])
        x[rows] = sub
        return x

    def _point_scores(self, values, observed, pos, per_channel: bool = False) -> np.ndarray:
        terms = self._last_point_terms(values, observed)[pos]  # rows of the input, not the grid
        return terms if per_channel else terms.sum(1)

    def decision_function(self, X, timestamps=None) -> np.ndarray:
        """One score per row of X (higher = more abnormal); missing points score 0."""
        self._check_fitted()
        values, observed, pos, report = self._grid(X, timestamps, fitting=False)
        self.last_report_ = report
        return self._point_scores(values, observed, pos)

    def explain(self, X, timestamps=None) -> pd.DataFrame:
        """Each series' share of a point's score (rows sum to 1; equal shares for a zero score)."""
        self._check_fitted()
        values, observed, pos, _ = self._grid(X, timestamps, fitting=False)
        terms = np.clip(self._point_scores(values, observed, pos, per_channel=True), 0, None)
        total = terms.sum(1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(total > 0, terms / total, 1.0 / terms.shape[1])
        return pd.DataFrame(share, columns=self.series_names_)

    # -- files -----------------------------------------------------------------------
    def save(self, directory: str | Path, extra: dict | None = None) -> Path:
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_pretrained(self.model_, directory)
        atomic_write_bytes(directory / SCORES_FILE, save_numpy({
            "decision_scores": np.ascontiguousarray(self.decision_scores_, np.float64),
            "center": np.asarray(self.center_, np.float64), "scale": np.asarray(self.scale_, np.float64)}))
        params = {k: v for k, v in self.get_params().items() if k != "log"}
        meta = {"kind": "series", "params": params, "series_names": self.series_names_, "interval": self.interval_,
                "threshold": self._saved_threshold(), "fit_report": self.fit_report_, "history": self.history_, "extra": extra or {}}
        atomic_write_text(directory / META_FILE, dumps(meta))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "SeriesDetector":
        meta = read_meta(directory, "series")
        try:
            det = cls(**meta["params"])
            det.series_names_ = [str(s) for s in meta["series_names"]]
            det.interval_ = None if meta["interval"] is None else float(meta["interval"])
            det.fit_report_, det.history_ = meta.get("fit_report", {}), meta.get("history", [])
            det.extra_ = dict(meta.get("extra") or {})
        except (ValueError, KeyError, TypeError, DataError) as e:
            raise ModelFileError(f"{Path(directory) / META_FILE}: not a valid detector description ({e})") from None
        arrays = read_arrays(directory, ("decision_scores", "center", "scale"))
        det.center_, det.scale_ = arrays["center"], arrays["scale"]
        for name, values in (("center", det.center_), ("scale", det.scale_)):
            if values.shape != (len(det.series_names_),) or not np.isfinite(values).all():
                raise ModelFileError(f"{Path(directory) / SCORES_FILE}: {name} must be {len(det.series_names_)} "
                                     f"finite number(s), one a series; got shape {values.shape}")
        if (det.scale_ <= 0).any():
            raise ModelFileError(f"{Path(directory) / SCORES_FILE}: every scale must be > 0")
        det.model_ = from_pretrained(directory)
        if det.model_.config.get("n_features") != det.window * len(det.series_names_):
            raise ModelFileError(f"{directory}: the model's input width does not match window x series")
        det._restore_decision_scores(arrays["decision_scores"], meta, directory)
        return det


def _robust_stats(grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel median and IQR / 1.349 (std if the IQR is 0, 1 for a constant series)."""
    center, scale = np.zeros(grid.shape[1]), np.ones(grid.shape[1])
    for c in range(grid.shape[1]):
        v = grid[:, c][~np.isnan(grid[:, c])]
        if len(v) == 0:
            raise DataError(f"series {c} has no finite value")
        q1, med, q3 = np.percentile(v, [25, 50, 75])
        s = (q3 - q1) / 1.349
        s = s if s > 0 else float(np.std(v))
        center[c], scale[c] = med, s if s > 0 else 1.0
    return center, scale
