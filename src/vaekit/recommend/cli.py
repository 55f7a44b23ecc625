"""``vaekit recommend fit|top|similar``: Mult-VAE recommendations from the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from vaekit import runs
from vaekit.data.ratings import Interactions, read_interactions
from vaekit.errors import DataError
from vaekit.recommend.recommender import MultVAERecommender, Recommendation
from vaekit.recommend.splits import strong_generalization_split
from vaekit.train.checkpoint import atomic_write_text

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                  help="Recommend items from a user's history with Mult-VAE (Liang et al. 2018).")
console = Console()


def load_interactions(data: str, user_col: str, item_col: str, rating_col: Optional[str],
                      min_rating: Optional[float], min_user_items: int, sep: Optional[str]) -> Interactions:
    """``ml-100k`` (from the data directory, MovieLens columns) or a CSV/TSV/Parquet file."""
    if data == "ml-100k":
        from vaekit.data.fetch import fetch

        path = fetch("ml-100k")["u.data"]
        return read_interactions(path, "user", "item", "rating", min_rating, min_user_items)
    return read_interactions(data, user_col, item_col, rating_col, min_rating, min_user_items, sep)


@app.command()
def fit(
    data: Annotated[str, typer.Argument(help="ml-100k, or a CSV/TSV/Parquet file of user-item interactions")],
    out: Annotated[Path, typer.Option(help="run directory to write")] = Path("runs/recommend"),
    user_col: Annotated[str, typer.Option(help="user id column")] = "user",
    item_col: Annotated[str, typer.Option(help="item id column")] = "item",
    rating_col: Annotated[Optional[str], typer.Option(help="rating column (optional)")] = "rating",
    min_rating: Annotated[Optional[float], typer.Option(help="keep interactions rated at least this (binarize)")] = None,
    min_user_items: Annotated[int, typer.Option(help="drop users with fewer interactions")] = 5,
    sep: Annotated[Optional[str], typer.Option(help="CSV delimiter (default: ',' or tab for .tsv)")] = None,
    variant: Annotated[str, typer.Option(help="vae (Mult-VAE) or dae (Mult-DAE)")] = "vae",
    epochs: Annotated[int, typer.Option(min=1)] = 100,
    batch_size: Annotated[int, typer.Option(min=1)] = 100,
    hidden: Annotated[str, typer.Option(
        help="hidden layer sizes, comma-separated (the paper: 600); '' = none, a linear encoder and "
             "decoder, which validated best on MovieLens-100K")] = "600",
    latent_dim: Annotated[int, typer.Option(min=1, help="size of the code z")] = 200,
    dropout: Annotated[float, typer.Option(help="input dropout rate in [0, 1)")] = 0.5,
    beta_cap: Annotated[float, typer.Option(help="KL weight reached by the linear annealing")] = 0.2,
    anneal_epochs: Annotated[Optional[float], typer.Option(
        help="epochs over which the KL weight rises to --beta-cap (default: all of training)")] = None,
    lr: Annotated[float, typer.Option(help="Adam learning rate")] = 1e-3,
    weight_decay: Annotated[float, typer.Option(help="L2 weight decay")] = 0.0,
    weight_average: Annotated[Optional[float], typer.Option(
        help="decay in [0, 1) of a moving average of the weights, updated every epoch; validation, the "
             "best epoch and the saved model use the average (default: off)")] = None,
    validation_users: Annotated[Optional[int], typer.Option(
        help="users held out (80/20 fold-in) to pick the best epoch by NDCG@100; 0 = none "
             "(default: 10% of users, at most 1000)")] = None,
    seed: int = 0,
    overwrite: Annotated[bool, typer.Option(help="replace an existing run directory")] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
):
    """Train a Mult-VAE on an interaction file; the run directory holds model and id maps."""
    if min_rating is None and data == "ml-100k":
        min_rating = 4.0  # Liang et al.: ratings > 3.5 are positives
    if validation_users is not None and validation_users < 0:
        raise DataError(f"--validation-users must be >= 0, got {validation_users}")
    rec = MultVAERecommender(variant=variant, hidden=_sizes(hidden), latent_dim=latent_dim, dropout=dropout,
                             beta_cap=beta_cap, anneal_epochs=anneal_epochs, epochs=epochs, batch_size=batch_size, lr=lr,
                             weight_decay=weight_decay, weight_average=weight_average, seed=seed, progress=progress,
                             log=lambda m: console.print(m, highlight=False))
    rec.check_params()  # settings and --out are refused before the data is read
    runs.check_target(out, overwrite)
    inter = load_interactions(data, user_col, item_col, rating_col, min_rating, min_user_items, sep)
    r = inter.report
    console.print(f"{inter.n_users} users, {inter.n_items} items, {r['interactions']} interactions "
                  f"(dropped: {r.get('rows_below_min_rating', 0)} below min rating, {r['duplicates']} duplicates, "
                  f"{r['users_below_min_items']} users with < {min_user_items} items, "
                  f"{r['rows_missing_ids']} rows without ids)", highlight=False)
    n_val = validation_users if validation_users is not None else min(inter.n_users // 10, 1000)
    with runs.staged(out, overwrite=overwrite) as run_dir:  # the old run stays until this one is whole
        _fit_and_save(rec, inter, n_val, seed, run_dir, data)
    console.print(f"model written to {out}")


def _fit_and_save(rec: MultVAERecommender, inter: Interactions, n_val: int, seed: int, run_dir: Path,
                  data: str) -> None:
    """Fit (choosing the epoch on ``n_val`` held-out users when there are any), then save.

    The held-out validation users are not trained on, but their histories are kept with
    the model, so ``top --user`` knows every user of the file; items that only they have
    are outside the model's catalogue, and the report counts them."""
    report = dict(inter.report)
    if n_val > 0 and inter.n_users >= 10:
        split = strong_generalization_split(inter.matrix, n_val, seed=seed, n_test_users=0)
        # validation users are held out of training; all matrices share the split's item index
        keep = split.users["train"]
        train = inter.matrix[keep][:, split.item_index]
        rec.fit(train, (split.valid_in, split.valid_out), run_dir, item_ids=inter.item_ids[split.item_index],
                user_ids=inter.user_ids[keep])
        rec.keep_histories(inter.matrix[:, split.item_index], inter.user_ids)
        report["validation_users"] = int(n_val)
        report["items_only_in_validation"] = int(inter.n_items - len(split.item_index))
        best = max(rec.history, key=lambda h: h.get("val_ndcg_100", -1))
        console.print(f"best epoch {best['epoch'] + 1}: NDCG@100 {best['val_ndcg_100']:.4f} on {n_val} validation "
                      f"users (held out of training; {report['items_only_in_validation']} item(s) only they have "
                      "are not recommended)", highlight=False)
    else:
        rec.fit(inter.matrix, None, run_dir, item_ids=inter.item_ids, user_ids=inter.user_ids)
    rec.report = report
    rec.save(run_dir)
    _model_card(run_dir, rec, data, " ".join(["vaekit", *sys.argv[1:]]))


def _sizes(text: str) -> list[int]:
    """'600' -> [600]; '600,200' -> [600, 200]; '' -> [] (no hidden layer)."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not all(p.isdecimal() and p.isascii() and int(p) > 0 for p in parts):
        raise DataError(f"--hidden must be positive integers separated by commas (or ''), got {text!r}")
    return [int(p) for p in parts]


def _model_card(run_dir: Path, rec: MultVAERecommender, data: str, command: str) -> None:
    best = max(rec.history, key=lambda h: h.get("val_ndcg_100", -h["train_loss"])) if rec.history else {}
    lines = [f"# vaekit recommender: Mult-{rec.variant.upper()} on {data}", "",
             "Load with `vaekit.recommend.MultVAERecommender.load(\"<this folder>\")` (safetensors + JSON).", "",
             f"- command: `{command}`", f"- users {len(rec.user_ids)}, items {len(rec.item_ids)}",
             f"- data report: {json.dumps(rec.report)}", f"- settings: {json.dumps(rec.params())}",
             f"- versions: {runs.versions()}"]
    if "val_ndcg_100" in best:
        lines.append(f"- best validation NDCG@100: {best['val_ndcg_100']:.4f} (epoch {best['epoch'] + 1})")
    atomic_write_text(run_dir / "README.md", "\n".join(lines) + "\n")


def _show(rec: Recommendation, title: str) -> None:
    if rec.note:
        unknown = f" ({', '.join(rec.unknown[:10])})" if rec.unknown else ""
        console.print(f"note: {rec.note}{unknown}", highlight=False)
    table = Table(title=title)
    table.add_column("rank", justify="right")
    table.add_column("item")
    table.add_column("score", justify="right")
    for i, (item, score) in enumerate(zip(rec.items, rec.scores), 1):
        table.add_row(str(i), item, f"{score:.4f}")
    console.print(table)


def _history_items(text: str) -> list[str]:
    """``--user-history``: a JSON list of ids (which may hold commas) when it reads as one,
    else comma-separated ids (``[REC] (2007),42`` stays two ids)."""
    stripped = text.strip()
    quoted = stripped.startswith("[") and stripped[1:].lstrip().startswith('"')  # '["...': meant as JSON
    if stripped.startswith("[") and (stripped.endswith("]") or quoted):
        try:
            items = json.loads(stripped)
        except ValueError as e:  # not JSON: ids that happen to start and end with brackets
            if quoted:
                raise DataError(f"--user-history reads as a JSON list but is not valid JSON ({e}); "
                                "give a JSON list such as '[\"1\", \"50\"]' or comma-separated ids") from None
            items = None
        if items is not None:
            bad = ([x for x in items if isinstance(x, bool) or not isinstance(x, (str, int))]
                   if isinstance(items, list) else [items])
            if bad:
                raise DataError(f"--user-history: a JSON list of item ids (strings or integers) was expected, "
                                f"got {bad[0]!r}")
            return [str(x) for x in items]
    return [s for s in text.split(",") if s.strip()]


@app.command()
def top(
    run: Annotated[Path, typer.Argument(help="run directory written by `vaekit recommend fit`")],
    user_history: Annotated[Optional[str], typer.Option(
        help="item ids the user has: comma-separated, or a JSON list for ids that hold commas "
             "('[\"Movie, The\", \"42\"]')")] = None,
    user: Annotated[Optional[str], typer.Option(help="a training user's id (uses their saved history)")] = None,
    k: Annotated[int, typer.Option("-k", "--k", help="number of items")] = 10,
    include_seen: Annotated[bool, typer.Option(help="also rank items already in the history")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
):
    """Top-k recommendations for a history of item ids (or a known user)."""
    if (user_history is None) == (user is None):
        raise DataError("give exactly one of --user-history or --user")
    rec = MultVAERecommender.load(run)
    if user is not None:
        result = rec.recommend_user(user, k, exclude_seen=not include_seen)
    else:
        result = rec.recommend(_history_items(user_history), k, exclude_seen=not include_seen)
    if as_json:
        print(json.dumps({"items": result.items, "scores": result.scores, "unknown": result.unknown,
                          "note": result.note}))
    else:
        _show(result, f"top {k}")


@app.command()
def similar(
    run: Annotated[Path, typer.Argument(help="run directory written by `vaekit recommend fit`")],
    item: Annotated[str, typer.Argument(help="item id")],
    k: Annotated[int, typer.Option("-k", "--k", help="number of items")] = 10,
):
    """Items closest to ITEM in the decoder's item embedding."""
    _show(MultVAERecommender.load(run).similar_items(item, k), f"items similar to {item}")
