"""Figures for anomaly detection: the score histogram with its threshold, and a series
with its scores and detected windows.

Built on :class:`matplotlib.figure.Figure` directly (no ``pyplot`` state), like
:mod:`vaekit.plots`; each function writes one PNG and returns its path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from vaekit.anomaly.timeseries import events
from vaekit.plots import DPI, save_figure


def _finite(scores) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.size == 0 or not np.isfinite(s).all():
        raise ValueError("scores must be a non-empty array of finite numbers")
    return s


def score_histogram(scores, threshold: float, path: str | Path, labels=None, title: str | None = None) -> Path:
    """Histogram of scores with the threshold; with labels, normal and anomalous rows apart."""
    s = _finite(scores)
    fig = Figure(figsize=(6.4, 3.6), dpi=DPI)
    ax = fig.subplots()
    # a few huge scores would squash every other bar into one: clip them into the last bin
    p1, p99 = np.percentile(s, [1, 99.5])
    cap = max(float(p99) + (float(p99) - float(p1)) * 0.1, float(threshold))
    clipped = int((s > cap).sum())
    s_plot = np.minimum(s, cap)
    bins = np.linspace(float(s.min()), cap, 51) if cap > s.min() else 10
    note = f" ({clipped} above {cap:.4g} drawn at the right edge)" if clipped else ""
    if labels is None:
        ax.hist(s_plot, bins=bins, color="#4c72b0", alpha=0.85, label="rows" + note)
    else:
        y = np.asarray(labels).ravel().astype(bool)
        ax.hist(s_plot[~y], bins=bins, color="#4c72b0", alpha=0.7, label=f"normal ({int((~y).sum())})")
        ax.hist(s_plot[y], bins=bins, color="#dd8452", alpha=0.7, label=f"anomaly ({int(y.sum())})" + note)
    ax.axvline(threshold, color="#c44e52", linestyle="--", label=f"threshold {threshold:.4g}")
    flagged = int((s > threshold).sum())
    ax.set_yscale("log")
    ax.set_xlabel("anomaly score (higher = more abnormal)")
    ax.set_ylabel("rows")
    ax.set_title(title or f"{len(s)} rows, {flagged} above the threshold")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def series_figure(values, scores, detected, path: str | Path, timestamps=None, true_labels=None,
                  threshold: float | None = None, names=None, title: str | None = None) -> Path:
    """The series (top) with detected windows shaded red and, if given, labelled windows
    green; the scores (bottom) with the threshold."""
    v = np.asarray(values, dtype=np.float64)
    v = v[:, None] if v.ndim == 1 else v
    s = _finite(scores)
    if len(s) != len(v):
        raise ValueError(f"{len(v)} values but {len(s)} scores")
    t = np.arange(len(v)) if timestamps is None else np.asarray(timestamps)
    fig = Figure(figsize=(10, 4.8), dpi=DPI)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    for c in range(v.shape[1]):
        top.plot(t, v[:, c], lw=0.7, label=None if names is None else str(names[c]))
    for windows, color, label in ((events(detected), "#c44e52", "detected"),
                                  (events(true_labels) if true_labels is not None else [], "#55a868", "labelled")):
        for i, (a, b) in enumerate(windows):
            for ax in (top, bottom):
                ax.axvspan(t[a], t[b], color=color, alpha=0.25, lw=0, label=label if (i == 0 and ax is top) else None)
    bottom.plot(t, s, lw=0.7, color="#4c72b0")
    if threshold is not None:
        bottom.axhline(threshold, color="#c44e52", ls="--", lw=0.8)
    if np.nanmax(s) - np.nanmin(s) > 1e3 * max(float(np.nanpercentile(s, 90) - np.nanpercentile(s, 10)), 1e-9):
        bottom.set_yscale("symlog")
    top.set_ylabel("value")
    bottom.set_ylabel("score")
    top.set_title(title or f"{len(events(detected))} detected window(s)")
    handles, _ = top.get_legend_handles_labels()
    if handles:
        top.legend(fontsize=8, loc="upper right")
    fig.autofmt_xdate()
    fig.tight_layout()
    return save_figure(fig, path)
