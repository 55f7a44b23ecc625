"""``vaekit anomaly fit|score``: VAE anomaly detection on a CSV, Parquet or ``.npz`` file.

A table (one row = one record) gets :class:`~vaekit.anomaly.VAEDetector`; a file with a
timestamp column gets the Donut-style :class:`~vaekit.anomaly.SeriesDetector` over its
numeric columns (``--mode`` overrides the guess).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import pandas as pd
import typer
from rich.console import Console

from vaekit import runs
from vaekit.anomaly.base import check_contamination, check_positive_int, read_kind
from vaekit.anomaly.data import binary_labels, read_table
from vaekit.anomaly.detector import VAEDetector
from vaekit.anomaly.plots import score_histogram, series_figure
from vaekit.anomaly.timeseries import SeriesDetector
from vaekit.errors import DataError
from vaekit.train.checkpoint import atomic_write_text

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                  help="Anomaly detection with a VAE on tables and time series (PyOD's contract; Donut for series).")
console = Console()


def _split_cols(text: Optional[str]) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()] if text else []


def _column(df: pd.DataFrame, name: str, what: str) -> pd.Series:
    if name not in df.columns:
        raise DataError(f"no {what} column {name!r}; columns are: {', '.join(map(str, df.columns[:20]))}")
    return df[name]


def _prepare(df: pd.DataFrame, y, label_col, timestamp_col, drop: list[str]):
    """Features, labels (or None) and timestamps (or None) of a table."""
    if label_col:
        y = binary_labels(_column(df, label_col, "label"), f"label column {label_col!r}")
    ts = _column(df, timestamp_col, "timestamp") if timestamp_col else None
    for c in drop:
        _column(df, c, "ignored")
    features = df.drop(columns=[c for c in [label_col, timestamp_col, *drop] if c and c in df.columns])
    if features.shape[1] == 0:
        raise DataError("no feature column left after removing the label, timestamp and ignored columns")
    return features, y, ts


def _label_metrics(y, scores) -> str:
    from sklearn.metrics import average_precision_score, roc_auc_score

    if y is None or len(np.unique(y)) < 2:
        return ""
    return f"ROC-AUC {roc_auc_score(y, scores):.4f}, AP {average_precision_score(y, scores):.4f}"


def _print_report(report: dict) -> None:
    notes = []
    if report.get("missing_values"):
        m = report["missing_values"]
        notes.append("missing/non-finite values (left out of the likelihood): "
                     + (", ".join(f"{k} {v}" for k, v in m.items()) if isinstance(m, dict) else str(m)))
    if report.get("inserted_missing_points"):
        notes.append(f"{report['inserted_missing_points']} missing time steps filled as missing points")
    if report.get("unknown_categories"):
        notes.append("categories not seen in training: " + ", ".join(f"{k} {v}" for k, v in report["unknown_categories"].items()))
    if report.get("ignored_columns"):
        notes.append("columns not seen in training, ignored: " + ", ".join(report["ignored_columns"]))
    if report.get("constant_columns_changed"):
        notes.append("columns constant in training that now differ (these rows score high): "
                     + ", ".join(f"{k} in {v} row(s)" for k, v in report["constant_columns_changed"].items()))
    if report.get("constant_columns"):
        notes.append("constant columns (modelled as 'equals the training value'): "
                     + ", ".join(report["constant_columns"]))
    for n in notes:
        console.print(f"note: {n}", highlight=False)


@app.command()
def fit(
    data: Annotated[Path, typer.Argument(help="CSV/TSV, Parquet or .npz (arrays X and optional y)")],
    out: Annotated[Path, typer.Option(help="run directory to write")] = Path("runs/anomaly"),
    contamination: Annotated[float, typer.Option(help="expected share of anomalies, in (0, 0.5]")] = 0.1,
    mode: Annotated[str, typer.Option(help="auto | table | series (auto: series if there is a timestamp column)")] = "auto",
    timestamp_col: Annotated[Optional[str], typer.Option(help="timestamp column (series mode); auto: 'timestamp'")] = None,
    label_col: Annotated[Optional[str], typer.Option(help="0/1 label column: not used to fit, only reported")] = None,
    categorical: Annotated[Optional[str], typer.Option(help="comma-separated categorical columns (default: text columns)")] = None,
    ignore: Annotated[Optional[str], typer.Option(help="comma-separated columns to leave out (ids, free text)")] = None,
    score: Annotated[str, typer.Option(help="table score: nelbo | recon_prob | iw_nll")] = "nelbo",
    window: Annotated[int, typer.Option(help="series window length (points)")] = 120,
    max_steps: Annotated[Optional[int], typer.Option(
        help="training steps, at least 1 (default 3000 tables, 4000 series)")] = None,
    seed: int = 0,
    overwrite: Annotated[bool, typer.Option(help="replace an existing run directory")] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
):
    """Fit a detector on DATA (unlabelled) and write a run directory: model, threshold, figures, card."""
    df, y = read_table(data)
    if mode not in ("auto", "table", "series"):
        raise DataError(f"--mode must be auto, table or series, got {mode!r}")
    if timestamp_col is None and mode != "table" and "timestamp" in df.columns:
        timestamp_col = "timestamp"
    series = mode == "series" or (mode == "auto" and timestamp_col is not None)
    if mode == "table" and timestamp_col:
        raise DataError("--timestamp-col is for series; drop it or use --mode series")
    features, y, ts = _prepare(df, y, label_col, timestamp_col, _split_cols(ignore))
    check_contamination(contamination)  # before anything is written
    if max_steps is None:
        max_steps = 4000 if series else 3000
    check_positive_int("--max-steps", max_steps)  # 0 is refused, not read as "the default"
    with runs.staged(out, overwrite=overwrite) as run_dir:  # the old run stays until this one is whole
        log = _once_per_kind(lambda m: console.print(m, highlight=False))
        start = time.perf_counter()
        common = dict(contamination=contamination, random_state=seed, progress=progress, log=log)
        if series:
            det = SeriesDetector(window=window, max_steps=max_steps, **common)
            det.fit(features, timestamps=ts, run_dir=run_dir)
        else:
            det = VAEDetector(score=score, categorical=_split_cols(categorical) or None, max_steps=max_steps,
                              **common)
            det.fit(features, run_dir=run_dir)
        seconds = time.perf_counter() - start
        info = {"source": str(data), "label_col": label_col, "timestamp_col": timestamp_col,
                "ignored": _split_cols(ignore), "fit_seconds": round(seconds, 2)}
        det.save(run_dir, extra=info)
        kind = "series" if series else "table"
        console.print(f"{kind} detector: {len(features)} rows, {features.shape[1]} column(s), fitted in {seconds:.1f} s; "
                      f"threshold {det.threshold_:.4g}, {int(det.labels_.sum())} training rows flagged", highlight=False)
        _print_report(det.fit_report_)
        metrics = _label_metrics(y, det.decision_scores_)
        if metrics:
            console.print(f"on the training rows (labels not used to fit): {metrics}", highlight=False)
        figures = [score_histogram(det.decision_scores_, det.threshold_, run_dir / "figures" / "score_histogram.png", y)]
        if series:
            figures.append(series_figure(features.to_numpy(dtype=float), det.decision_scores_, det.labels_,
                                         run_dir / "figures" / "series.png", _times(ts), y, det.threshold_,
                                         list(features.columns)))
        _model_card(run_dir, det, kind, info, metrics, figures)
    console.print(f"detector written to {out}")


def _once_per_kind(log):
    """The trainer warns about a collapsed posterior every epoch; say it once."""
    said = set()

    def once(message: str) -> None:
        kind = "collapse" if "posterior collapse" in message else message
        if kind not in said:
            said.add(kind)
            log(message)

    return once


def _times(ts):
    return None if ts is None else pd.to_datetime(ts, errors="coerce").to_numpy()


def _model_card(run_dir: Path, det, kind: str, info: dict, metrics: str, figures: list[Path]) -> None:
    params = {k: v for k, v in det.get_params().items() if k not in ("log", "progress")}
    lines = [f"# vaekit anomaly detector ({kind})", "",
             f"Load with `vaekit.anomaly.{type(det).__name__}.load(\"<this folder>\")` (safetensors + JSON), "
             "or score a file with `vaekit anomaly score <this folder> data.csv --out scores.csv`.", "",
             f"- command: `{' '.join(['vaekit', *sys.argv[1:]])}`", f"- data: `{info['source']}`",
             f"- settings: {params}", f"- threshold: {det.threshold_:.6g} (contamination {det.contamination})",
             f"- data report: {det.fit_report_}", f"- fit time: {info['fit_seconds']} s", f"- versions: {runs.versions()}"]
    if metrics:
        lines.append(f"- on the training rows (labels not used to fit): {metrics}")
    lines += ["", "## Figures", ""] + [f"![{f.stem}](figures/{f.name})" for f in figures]
    atomic_write_text(run_dir / "README.md", "\n".join(lines) + "\n")


@app.command()
def score(
    run: Annotated[Path, typer.Argument(help="run directory written by `vaekit anomaly fit`")],
    data: Annotated[Path, typer.Argument(help="CSV/TSV, Parquet or .npz with the training columns")],
    out: Annotated[Path, typer.Option(help="CSV to write: row, score, label, probability, top columns")] = Path("scores.csv"),
    top: Annotated[int, typer.Option(help="contributing columns to list per row")] = 3,
    figure: Annotated[Optional[Path], typer.Option(help="also write a PNG (histogram; series plot for series)")] = None,
):
    """Score DATA with a fitted detector: one output row per input row."""
    if top < 0:
        raise DataError(f"--top must be >= 0, got {top}")
    kind = read_kind(run)
    det = SeriesDetector.load(run) if kind == "series" else VAEDetector.load(run)
    info = det.extra_
    df, y = read_table(data)
    label_col = info.get("label_col") if info.get("label_col") in df.columns else None
    ts_col = info.get("timestamp_col")
    if kind == "series" and ts_col and ts_col not in df.columns:
        raise DataError(f"{data}: no timestamp column {ts_col!r} (the detector was fitted with one)")
    drop = [c for c in info.get("ignored", []) if c in df.columns]
    features, y, ts = _prepare(df, y, label_col, ts_col if kind == "series" else None, drop)
    start = time.perf_counter()
    if kind == "series":
        scores = det.decision_function(features, timestamps=ts)
        shares = det.explain(features, timestamps=ts)
    else:
        scores = det.decision_function(features)
        shares = det.explain(features)
    seconds = time.perf_counter() - start
    labels = (scores > det.threshold_).astype(int)
    lo, hi = float(det.decision_scores_.min()), float(det.decision_scores_.max())
    table = pd.DataFrame({"row": np.arange(len(scores))})
    if ts is not None:
        table["timestamp"] = ts.to_numpy()
    table["score"], table["label"] = scores, labels
    table["probability"] = np.clip((scores - lo) / (hi - lo), 0, 1) if hi > lo else 0.0
    names, values = np.asarray(shares.columns), shares.to_numpy()
    order = np.argsort(-values, axis=1, kind="stable")[:, : min(top, values.shape[1])]
    for k in range(order.shape[1]):
        table[f"top{k + 1}"] = names[order[:, k]]
        table[f"top{k + 1}_share"] = np.round(values[np.arange(len(values)), order[:, k]], 4)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    console.print(f"{len(scores)} rows scored in {seconds:.2f} s; {int(labels.sum())} above the threshold "
                  f"{det.threshold_:.4g}; written to {out}", highlight=False)
    _print_report(det.last_report_)
    metrics = _label_metrics(y, scores)
    if metrics:
        console.print(f"against the labels: {metrics}", highlight=False)
    if figure is not None:
        if kind == "series":
            series_figure(features.to_numpy(dtype=float), scores, labels, figure, _times(ts), y, det.threshold_,
                          list(features.columns))
        else:
            score_histogram(scores, det.threshold_, figure, y)
        console.print(f"figure written to {figure}")

