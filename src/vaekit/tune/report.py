"""Reading studies and runs back: the trials table, Optuna's plots, and ``vaekit compare``."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from vaekit.errors import RunDirError
from vaekit.tune.objectives import METRICS_FILE
from vaekit.tune.study import OBJECTIVE_ATTR, _optuna, decoded_params, flatten_settings, open_study


def _row(cells: list[str]) -> str:
    """One Markdown table row. A pipe in a cell is escaped and a line break becomes a
    space, so that an error message or a path cannot split the row."""
    return "| " + " | ".join(c.replace("|", "\\|").replace("\r", " ").replace("\n", " ") for c in cells) + " |"


def report(storage: str, study_name: str, out: Path | None = None) -> str:
    """A Markdown table of the trials; with ``out``, also Optuna's plots as PNGs."""
    _optuna()  # a clear error when Optuna is missing
    study = open_study(storage, study_name, {}, "", create=False)
    trials = study.get_trials(deepcopy=False)
    keys = sorted({k for t in trials for k in t.params})
    stored = json.loads(study.user_attrs.get(OBJECTIVE_ATTR, '{"metric": "val_iw_nll", "direction": "minimize"}'))
    better = "lower" if stored["direction"] == "minimize" else "higher"
    lines = [f"Study `{study_name}` ({len(trials)} trials; objective: {stored['metric']}, {better} is better)", "",
             "| trial | state | value | " + " | ".join(keys) + " | seconds | note |",
             "|---" * (len(keys) + 5) + "|"]
    for t in trials:
        secs = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start else None
        note = t.user_attrs.get("error", "")[:80]
        cells = [str(t.number), t.state.name.lower(), f"{t.value:.3f}" if t.value is not None else "",
                 *[json.dumps(decoded_params(t.params).get(k, "")) for k in keys], f"{secs:.0f}" if secs is not None else "", note]
        lines.append(_row(cells))
    text = "\n".join(lines) + "\n"
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.md").write_text(text)
        _plots(study, out)
    return text


def _plots(study, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as ovm

    optuna = _optuna()
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    written = []
    plots = [("optimization_history", ovm.plot_optimization_history, 1),
             ("parallel_coordinate", ovm.plot_parallel_coordinate, 2),
             ("param_importances", ovm.plot_param_importances, 2)]
    for name, fn, needed in plots:
        if len(complete) < needed:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                ax = fn(study)
        except (ValueError, RuntimeError):
            continue  # e.g. importances of a single-valued parameter
        fig = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
        fig.set_size_inches(8, 5)
        fig.tight_layout()
        fig.savefig(out / f"{name}.png", dpi=110)
        plt.close(fig)
        written.append(out / f"{name}.png")
    return written


def run_summary(run_dir: Path) -> tuple[dict, dict]:
    """A run directory's settings (flattened) and metrics, for any application.

    Image runs: the run config, the best validation loss and ``evaluation.json``;
    recommender, anomaly and dimensionality-reduction runs: the estimator's parameters; tuning trials add the
    metrics of their ``objective.json``.
    """
    from vaekit import runs
    from vaekit.io import read_config

    r = Path(run_dir)
    metrics: dict = {}
    if (r / "recommender.json").is_file() or (r / "detector.json").is_file():
        name = "recommender.json" if (r / "recommender.json").is_file() else "detector.json"
        try:
            params = json.loads((r / name).read_text()).get("params", {})
        except (ValueError, UnicodeDecodeError) as e:
            raise RunDirError(f"{r / name}: not valid JSON ({e})") from None
        flat = flatten_settings({"params": params})
    elif "transformer" in (doc := read_config(r)):  # a dimensionality-reduction model
        fitted = doc["transformer"]
        flat = flatten_settings({"params": fitted.get("params", {})})
        history = [h for h in fitted.get("history") or [] if isinstance(h, dict)]
        if history:
            validated = [h["val_loss"] for h in history if isinstance(h.get("val_loss"), (int, float))]
            metrics.update(epochs=len(history), train_loss=history[-1].get("train_loss"),
                           best_val_loss=min(validated) if validated else None)
    else:
        cfg = runs.run_config(r).model_dump()
        flat = flatten_settings({k: v for k, v in cfg.items() if k != "search"})
        history = runs.read_metrics(r)
        if history:
            best = min(history, key=lambda h: h.get("val_loss", h["train_loss"]))
            metrics.update(epochs=len(history), best_val_loss=best.get("val_loss"),
                           active_units=best.get("active_units"))
        ev = r / "evaluation.json"
        if ev.is_file():
            e = json.loads(ev.read_text())
            metrics.update(test_elbo=e.get("test_elbo"), iw_nll=e.get("iw_nll"), fid=e.get("fid"))
    trial = r / METRICS_FILE
    if trial.is_file():
        metrics.update(json.loads(trial.read_text()).get("metrics", {}))
    return flat, metrics


def compare(run_dirs: list[Path]) -> str:
    """A Markdown table of runs: the settings that differ and their metrics."""
    if not run_dirs:
        raise RunDirError("compare needs at least one run directory")
    rows = [(str(r), *run_summary(r)) for r in run_dirs]
    all_keys = sorted({k for row in rows for k in row[1]})
    keys = [k for k in all_keys if len({json.dumps(row[1].get(k)) for row in rows}) > 1 or len(rows) == 1]
    preferred = ["epochs", "best_val_loss", "test_elbo", "iw_nll", "fid", "active_units"]
    seen = [k for row in rows for k in row[2]]
    mkeys = [k for k in dict.fromkeys(preferred + seen) if any(row[2].get(k) is not None for row in rows)]
    lines = ["| run | " + " | ".join(keys + mkeys) + " |", "|---" * (1 + len(keys) + len(mkeys)) + "|"]
    for name, flat, metrics in rows:
        cells = [json.dumps(flat.get(k)) for k in keys]
        cells += [f"{metrics[k]:.4f}" if isinstance(metrics.get(k), float) else str(metrics.get(k, "")) for k in mkeys]
        lines.append(_row([name, *cells]))
    return "\n".join(lines) + "\n"
