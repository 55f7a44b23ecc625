"""`vaekit reduce`: fit a VAETransformer on a CSV table, embed new tables, draw the map.

    vaekit reduce fit data.csv --n-components 2 --label digit --out runs/reduce
    vaekit reduce transform runs/reduce new.csv --out embedding.csv --plot map.png

A CSV has a header row; every column except ``--label`` must be numeric. The run
directory holds ``config.json`` + ``model.safetensors`` (no pickle), ``metrics.jsonl``,
``embedding.csv`` (the training rows' codes) and ``figures/embedding.png``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer
from rich.console import Console

from vaekit.errors import DataError

console = Console()
app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Dimensionality reduction with a VAE (a scikit-learn transformer).")

LabelOpt = Annotated[Optional[str], typer.Option(
    "--label", help="column holding labels: left out of the features, used to colour the map")]


def read_table(path: Path, label: str | None):
    """(numeric feature DataFrame, labels or None) from a CSV file with a header row."""
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as e:
        raise DataError(f"cannot read {path} as CSV: {str(e).splitlines()[0] if str(e) else e}") from None
    labels = None
    if label is not None:
        if label not in frame.columns:
            raise DataError(f"{path}: no column {label!r}; columns: {', '.join(map(str, frame.columns[:20]))}")
        labels = frame.pop(label).astype(str).to_numpy()
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise DataError(f"{path}: no data ({frame.shape[0]} rows, {frame.shape[1]} feature columns)")
    bad = [str(c) for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])
           or pd.api.types.is_bool_dtype(frame[c])]
    if bad:
        raise DataError(f"{path}: non-numeric column(s) {', '.join(bad[:5])}; pass a label column with --label")
    finite = np.isfinite(frame.to_numpy(dtype=np.float64)).all(axis=0)
    missing = [str(c) for c, ok in zip(frame.columns, finite) if not ok]
    if missing:
        raise DataError(f"{path}: missing or non-finite values in column(s) {', '.join(missing[:5])}")
    frame.columns = [str(c) for c in frame.columns]
    return frame, labels


def _write_embedding(z, names, labels, label_name: str | None, out: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame(z, columns=list(names))
    if labels is not None:
        frame[label_name or "label"] = labels
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)


def _plot(z, labels, path: Path, title: str) -> Path:
    from vaekit.reduction.figures import embedding_scatter

    if z.shape[1] < 2:
        z = np.column_stack([z[:, 0], np.zeros(len(z))])
    return embedding_scatter(z, labels, path, title=title)


@app.command()
def fit(
    data: Annotated[Path, typer.Argument(help="CSV file with a header row; numeric feature columns")],
    out: Annotated[Path, typer.Option(help="run directory to write")],
    n_components: Annotated[int, typer.Option(help="size of the embedding")] = 2,
    label: LabelOpt = None,
    likelihood: Annotated[str, typer.Option(
        help="auto (Bernoulli for binary data, else Gaussian) | bernoulli | gaussian")] = "auto",
    max_iter: Annotated[Optional[int], typer.Option(help="epochs (default: about 6000 gradient steps)")] = None,
    neighbor_weight: Annotated[Optional[float], typer.Option(
        help="weight of the neighbour term; 0 = plain VAE (default: 3 up to 2-D, (2/n)^2 above)")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    overwrite: Annotated[bool, typer.Option(help="replace an existing run directory")] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
):
    """Fit a VAETransformer to a table; write the model, the training codes and their map."""
    from vaekit import runs
    from vaekit.reduction.transformer import VAETransformer

    if n_components <= 0:
        raise typer.BadParameter(f"must be > 0, got {n_components}", param_hint="--n-components")
    if max_iter is not None and max_iter <= 0:
        raise typer.BadParameter(f"must be > 0, got {max_iter}", param_hint="--max-iter")
    if likelihood not in ("auto", "bernoulli", "gaussian"):
        raise typer.BadParameter(f"must be auto, bernoulli or gaussian, got {likelihood!r}", param_hint="--likelihood")
    if neighbor_weight is not None and neighbor_weight < 0:
        raise typer.BadParameter(f"must be >= 0, got {neighbor_weight}", param_hint="--neighbor-weight")
    frame, labels = read_table(data, label)
    with runs.staged(out, overwrite=overwrite) as run_dir:  # the old run stays until this one is whole
        est = VAETransformer(n_components, likelihood=likelihood, max_iter=max_iter or "auto",
                             neighbor_weight="auto" if neighbor_weight is None else neighbor_weight,
                             random_state=seed, verbose=progress)
        try:
            z = est.fit_transform(frame)
        except ValueError as e:  # data the estimator refuses (e.g. bernoulli outside [0, 1])
            raise DataError(f"{data}: {e}") from None
        est.save(run_dir)
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in est.history_))
        names = est.get_feature_names_out()
        _write_embedding(z, names, labels, label, run_dir / "embedding.csv")
        png = _plot(z, labels, run_dir / "figures" / "embedding.png", f"VAE embedding of {data.name}")
    console.print(f"run directory: {out}\nembedding: {out / 'embedding.csv'}\nfigure: {out / png.relative_to(run_dir)}")


def _fitted_columns(frame, fitted, data: Path):
    """The table's columns in the order the model was fitted on (matched by name), or an
    error naming the columns that are missing or that the model does not know."""
    if fitted is None or not hasattr(frame, "columns"):
        return frame
    names = [str(c) for c in frame.columns]
    missing = [c for c in fitted if c not in names]
    extra = [c for c in names if c not in set(fitted)]
    if missing or extra:
        parts = ([f"missing column(s) {', '.join(map(repr, missing[:10]))}"] if missing else []) + \
                ([f"column(s) the model was not fitted on {', '.join(map(repr, extra[:10]))} (a label? pass "
                  "--label NAME)"] if extra else [])
        raise DataError(f"{data}: {'; '.join(parts)}")
    return frame[list(fitted)]


@app.command()
def transform(
    run: Annotated[Path, typer.Argument(help="run directory written by `vaekit reduce fit`")],
    data: Annotated[Path, typer.Argument(help="CSV file with the same feature columns as the fitted data")],
    out: Annotated[Path, typer.Option(help="CSV file for the codes")] = Path("embedding.csv"),
    label: LabelOpt = None,
    plot: Annotated[Optional[Path], typer.Option(help="also draw the codes as a scatter PNG")] = None,
    mode: Annotated[str, typer.Option(help="mean (posterior mean) | sample (one draw from q(z|x))")] = "mean",
    seed: Annotated[int, typer.Option(help="seed of --mode sample")] = 0,
):
    """Embed new rows with a fitted model (no refitting)."""
    from vaekit.reduction.transformer import VAETransformer

    if mode not in ("mean", "sample"):
        raise typer.BadParameter(f"must be mean or sample, got {mode!r}", param_hint="--mode")
    est = VAETransformer.load(run)
    frame, labels = read_table(data, label)
    frame = _fitted_columns(frame, getattr(est, "feature_names_in_", None), data)
    try:
        z = est.transform(frame, sample=mode == "sample", random_state=seed)
    except ValueError as e:  # wrong columns, wrong number of features
        raise DataError(f"{data}: {str(e).splitlines()[0]}") from None
    _write_embedding(z, est.get_feature_names_out(), labels, label, out)
    console.print(f"wrote {out} {z.shape}")
    if plot is not None:
        console.print(f"wrote {_plot(z, labels, plot, f'VAE embedding of {data.name}')}")

