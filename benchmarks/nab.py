"""SeriesDetector (Donut-style VAE) on the 24 NAB series of the data directory, against a
rolling z-score and PyOD's IForest on sliding windows, in the same run.

Protocol (Lavin & Ahmad 2015, NAB; labels = NAB's ``combined_windows.json``):

- Each method fits on the whole series without labels (transductive, one seed) and
  scores every point. The VAE: ``SeriesDetector`` defaults except the window (``--window``,
  default 60 points). Timestamps are regularised (gaps become missing points) where they
  are sorted and unique; four NAB series have duplicated or out-of-order stamps, which
  the detector refuses, and are used in row order (as NAB's own detectors read them).
- Rolling z-score: |x_t - mean| / std over the previous ``--window`` points (causal).
- IForest: PyOD's IForest (defaults) on the series' sliding windows of ``--window``
  points (standardized), each window's score given to its last point; earlier points take
  the first window's score.
- Point-wise ROC-AUC: a point is positive inside a labelled window (series without
  windows have no ROC-AUC and count for false alarms only).
- Event-level recall at contamination ``--contamination`` (default 0.01): every method
  flags the points above the (1 - c) quantile of its own scores on the series; a labelled
  window is detected when one of its points is flagged. False-alarm events: runs of
  flagged points that touch no labelled window.

    python benchmarks/nab.py          # writes benchmarks/results/nab.{json,md}
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, now, versions, write_results  # noqa: E402

from vaekit.anomaly import SeriesDetector  # noqa: E402
from vaekit.anomaly.data import load_nab, nab_series  # noqa: E402
from vaekit.anomaly.timeseries import events  # noqa: E402

METHODS = ["vaekit", "zscore", "iforest"]


def rolling_zscore(v: np.ndarray, w: int) -> np.ndarray:
    s = pd.Series(v)
    prev = s.shift(1).rolling(w, min_periods=max(2, w // 4))
    z = (s - prev.mean()).abs() / prev.std().replace(0, np.nan)
    return z.fillna(0.0).to_numpy()


def iforest_windows(v: np.ndarray, w: int, seed: int) -> np.ndarray:
    from pyod.models.iforest import IForest

    x = (v - np.nanmean(v)) / (np.nanstd(v) or 1.0)
    x = np.nan_to_num(x)
    win = np.lib.stride_tricks.sliding_window_view(x, w)
    s = IForest(random_state=seed).fit(win).decision_scores_
    return np.r_[np.full(w - 1, s[0]), s]


def clean_timestamps(df: pd.DataFrame) -> bool:
    """Sorted and unique: the detector regularises them; otherwise it refuses them."""
    t = pd.to_datetime(df["timestamp"])
    return bool((t.diff().dt.total_seconds().iloc[1:] > 0).all())


def vaekit_scores(df: pd.DataFrame, w: int, seed: int, contamination: float) -> np.ndarray:
    det = SeriesDetector(window=w, contamination=contamination, random_state=seed, threads=1)
    det.fit(df[["value"]], timestamps=df["timestamp"] if clean_timestamps(df) else None)
    return det.decision_scores_


def event_metrics(y: np.ndarray, scores: np.ndarray, c: float) -> dict:
    flagged = (scores > np.percentile(scores, 100 * (1 - c))).astype(int)
    windows = events(y)
    hit = [bool(flagged[a : b + 1].any()) for a, b in windows]
    false = [e for e in events(flagged) if not y[e[0] : e[1] + 1].any()]
    return {"windows": len(windows), "detected": int(sum(hit)), "false_alarm_events": len(false),
            "flagged_points": int(flagged.sum())}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--window", type=int, default=60)
    p.add_argument("--contamination", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--series", default="", help="comma-separated substrings to select series")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    started = time.perf_counter()
    names = sorted(nab_series())
    if args.series:
        names = [n for n in names if any(s in n for s in args.series.split(","))]
    per = {}
    for name in names:
        df, y = load_nab(name)
        v = df["value"].to_numpy(dtype=float)
        row = {"points": len(df), "windows": len(events(y)), "timestamps_used": clean_timestamps(df)}
        for m in METHODS:
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if m == "vaekit":
                    s = vaekit_scores(df, args.window, args.seed, args.contamination)
                elif m == "zscore":
                    s = rolling_zscore(v, args.window)
                else:
                    s = iforest_windows(v, args.window, args.seed)
            r = {"seconds": round(time.perf_counter() - t, 2), **event_metrics(y, s, args.contamination)}
            r["roc_auc"] = float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else None
            row[m] = r
        per[name] = row
        print(f"{name:55s} " + "  ".join(
            f"{m} AUC {row[m]['roc_auc'] if row[m]['roc_auc'] is None else round(row[m]['roc_auc'], 3)} "
            f"hit {row[m]['detected']}/{row[m]['windows']} fa {row[m]['false_alarm_events']}" for m in METHODS),
            flush=True)
    metrics = summarise(per)
    for m in METHODS:
        print(f"{m:8s} mean ROC-AUC {metrics['mean_roc_auc'][m]:.4f}  event recall {metrics['event_recall'][m]:.4f}"
              f"  false-alarm events {metrics['false_alarm_events'][m]}")
    if args.no_write:
        return 0
    info = machine()
    payload = {"benchmark": "nab", "date": now(), "machine": info, "versions": versions("pyod", "pandas"),
               "command": " ".join(["python", "benchmarks/nab.py", *(argv or sys.argv[1:])]),
               "config": {"window": args.window, "contamination": args.contamination, "seed": args.seed,
                          "series": names, "fit": "whole series, unlabelled (transductive)",
                          "vaekit": {k: v for k, v in SeriesDetector(window=args.window).get_params().items()
                                     if k != "log"},
                          "wall_seconds": round(time.perf_counter() - started, 1)},
               "metrics": metrics}
    write_results("nab", payload, markdown(metrics, args, info))
    return 0


def summarise(per: dict) -> dict:
    out = {"mean_roc_auc": {}, "event_recall": {}, "false_alarm_events": {}, "seconds": {}, "per_series": per}
    for m in METHODS:
        aucs = [r[m]["roc_auc"] for r in per.values() if r[m]["roc_auc"] is not None]
        windows = sum(r[m]["windows"] for r in per.values())
        out["mean_roc_auc"][m] = float(np.mean(aucs)) if aucs else None
        out["event_recall"][m] = sum(r[m]["detected"] for r in per.values()) / windows if windows else None
        out["false_alarm_events"][m] = int(sum(r[m]["false_alarm_events"] for r in per.values()))
        out["seconds"][m] = round(sum(r[m]["seconds"] for r in per.values()), 1)
    return out


def markdown(metrics: dict, args, info: dict) -> str:
    per = metrics["per_series"]
    lines = [f"NAB, {len(per)} series, window {args.window}, contamination {args.contamination}, "
             f"seed {args.seed}; {info['cpu']}, {now()}", "",
             "| series | points | windows | " + " | ".join(f"{m} ROC-AUC | {m} hits | {m} false alarms"
                                                         for m in METHODS) + " |",
             "|---|---|---|" + "---|---|---|" * len(METHODS)]
    for name, r in per.items():
        cells = []
        for m in METHODS:
            auc = "" if r[m]["roc_auc"] is None else f"{r[m]['roc_auc']:.3f}"
            cells += [auc, f"{r[m]['detected']}/{r[m]['windows']}", str(r[m]["false_alarm_events"])]
        lines.append(f"| {name} | {r['points']} | {r['windows']} | " + " | ".join(cells) + " |")
    lines += ["", "| method | mean point-wise ROC-AUC | event recall | false-alarm events | seconds |",
              "|---|---|---|---|---|"]
    for m in METHODS:
        lines.append(f"| {m} | {metrics['mean_roc_auc'][m]:.4f} | {metrics['event_recall'][m]:.4f} | "
                     f"{metrics['false_alarm_events'][m]} | {metrics['seconds'][m]} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
