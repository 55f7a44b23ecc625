"""User-item interaction files as a SciPy sparse matrix, with id maps and a drop report.

Implicit feedback as in Liang et al. 2018 ("Variational Autoencoders for Collaborative
Filtering"): ratings are binarized (kept when >= ``min_rating``), duplicates collapse to
one interaction, and users with fewer than ``min_user_items`` interactions are dropped.
Readers accept MovieLens' tab-separated ``u.data``, CSV/TSV and Parquet; every refusal
names the file, the column and the offending value.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from vaekit.data import require_file
from vaekit.errors import DataError

MOVIELENS_COLUMNS = ["user", "item", "rating", "timestamp"]
# only an empty cell is a missing id: ids such as "NA", "null" or "None" are ids. In the
# rating column the usual spellings of a missing value (R writes NA) are missing ratings.
TEXT_CELLS = {"keep_default_na": False, "na_values": [""]}
MISSING_RATINGS = {"", "NA", "N/A", "n/a", "NULL", "null", "None", "NaN", "nan", "-NaN", "-nan", "#N/A", "<NA>"}


@dataclass
class Interactions:
    """``matrix[u, i] = 1`` when user ``user_ids[u]`` interacted with item ``item_ids[i]``."""

    matrix: sp.csr_matrix
    user_ids: np.ndarray  # row -> original user id (str)
    item_ids: np.ndarray  # column -> original item id (str)
    report: dict = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_items(self) -> int:
        return self.matrix.shape[1]


def read_table(path: str | Path, sep: str | None = None) -> pd.DataFrame:
    """A ratings table: ``u.data`` (MovieLens, no header), ``.csv``/``.tsv`` or ``.parquet``."""
    path = require_file(path)
    try:
        if path.suffix == ".parquet":
            try:
                return pd.read_parquet(path)
            except ImportError:
                raise DataError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
        if path.name == "u.data" or path.suffix == ".data":
            return pd.read_csv(path, sep="\t", header=None, names=MOVIELENS_COLUMNS, dtype=str, **TEXT_CELLS)
        if sep is None:
            sep = "\t" if path.suffix == ".tsv" else ","
        return pd.read_csv(path, sep=sep, dtype=str, skipinitialspace=True, **TEXT_CELLS)
    except DataError:
        raise
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except (ValueError, pd.errors.ParserError, OSError) as e:
        raise DataError(f"{path}: cannot read the table ({e})") from None


def _column(df: pd.DataFrame, name: str, what: str, where: str) -> pd.Series:
    if name not in df.columns:
        cols = ", ".join(map(str, df.columns[:20]))
        hint = " (one column only: is the delimiter right? try --sep)" if df.shape[1] == 1 else ""
        raise DataError(f"{where}: no {what} column {name!r}; columns are: {cols}{hint}")
    return df[name]


def _ids(column: pd.Series) -> pd.Series:
    """Ids as stripped strings; "" where missing. Whole floats print as integers: a
    Parquet integer column with a missing cell is read as floats, and its id 7 must stay
    "7", not become "7.0", to match histories typed by hand."""
    missing = column.isna().to_numpy()
    if pd.api.types.is_float_dtype(column):
        values = column.to_numpy(dtype=float)
        present = values[~missing]
        if np.all(np.isfinite(present)) and np.all(present == np.round(present)) and np.all(abs(present) < 2**53):
            column = column.astype("Int64")
    out = column.astype(str).str.strip()
    out[missing] = ""
    return out


def _refuse_rows(bad, where: str, column: str, problem: str, raw: pd.Series) -> None:
    """Raise naming the first row (1-based, as a spreadsheet counts data rows) that is ``bad``."""
    bad = np.asarray(bad, dtype=bool)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        value = raw.iloc[row]
        shown = "(empty)" if value is None or (isinstance(value, float) and np.isnan(value)) else repr(value)
        raise DataError(f"{where}: column {column!r}, row {row + 1}: rating {shown} {problem}"
                        + (f" ({int(bad.sum())} such rows)" if bad.sum() > 1 else ""))


def interactions_from_table(
    df: pd.DataFrame,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str | None = "rating",
    min_rating: float | None = None,
    min_user_items: int = 1,
    where: str = "table",
) -> Interactions:
    """Binarize, deduplicate and filter a table; report what was dropped and why."""
    if min_user_items < 1:
        raise DataError(f"min_user_items must be >= 1, got {min_user_items}")
    if min_rating is not None and (isinstance(min_rating, bool) or not isinstance(min_rating, numbers.Real)
                                   or not np.isfinite(min_rating)):
        raise DataError(f"min_rating must be a finite number, got {min_rating!r}")
    users = _ids(_column(df, user_col, "user", where))
    items = _ids(_column(df, item_col, "item", where))
    report = {"rows": int(len(df))}
    keep = (users != "") & (items != "")
    report["rows_missing_ids"] = int((~keep).sum())
    if rating_col is not None and rating_col in df.columns:
        raw = df[rating_col]
        if raw.dtype == object:
            raw = raw.where(~raw.isin(MISSING_RATINGS))
        ratings = pd.to_numeric(raw, errors="coerce").astype("float64")  # nullable Int64 too
        _refuse_rows(ratings.isna() & raw.notna(), where, rating_col, "is not a number", raw)
        _refuse_rows(~np.isfinite(ratings) & ratings.notna(), where, rating_col, "is not a finite number", raw)
        _refuse_rows(ratings < 0, where, rating_col, "is negative", raw)
        if min_rating is not None:
            _refuse_rows(ratings.isna() & keep, where, rating_col,
                         "is missing, so --min-rating cannot keep or drop it", raw)
            low = ratings < min_rating
            report["rows_below_min_rating"] = int((low & keep).sum())
            keep &= ~low
    elif min_rating is not None:
        raise DataError(f"{where}: min_rating given but there is no rating column {rating_col!r}")
    pairs = pd.DataFrame({"user": users[keep], "item": items[keep]})
    n_before = len(pairs)
    pairs = pairs.drop_duplicates()
    report["duplicates"] = int(n_before - len(pairs))
    counts = pairs.groupby("user").size()
    small = counts[counts < min_user_items].index
    report["users_below_min_items"] = int(len(small))
    pairs = pairs[~pairs["user"].isin(small)]
    if pairs.empty:
        raise DataError(
            f"{where}: no interactions left after filtering ({report['rows']} rows, "
            f"{report.get('rows_below_min_rating', 0)} below min_rating {min_rating}, "
            f"{report['users_below_min_items']} users with fewer than {min_user_items} items)"
        )
    return _to_matrix(pairs["user"].to_numpy(), pairs["item"].to_numpy(), report)


def _to_matrix(users: np.ndarray, items: np.ndarray, report: dict) -> Interactions:
    user_ids, u = np.unique(users, return_inverse=True)
    item_ids, i = np.unique(items, return_inverse=True)
    m = sp.csr_matrix((np.ones(len(u), dtype=np.float32), (u, i)), shape=(len(user_ids), len(item_ids)))
    m.sum_duplicates()
    m.data[:] = 1.0
    report.update(users=int(len(user_ids)), items=int(len(item_ids)), interactions=int(m.nnz))
    return Interactions(m, user_ids.astype(str), item_ids.astype(str), report)


def read_interactions(path: str | Path, user_col: str = "user", item_col: str = "item",
                      rating_col: str | None = "rating", min_rating: float | None = None,
                      min_user_items: int = 1, sep: str | None = None) -> Interactions:
    """Read, binarize and filter an interaction file (see :func:`interactions_from_table`)."""
    df = read_table(path, sep)
    if df.empty:
        raise DataError(f"{path}: the file holds no rows")
    return interactions_from_table(df, user_col, item_col, rating_col, min_rating, min_user_items, str(path))


def movielens_100k(min_rating: float = 4.0, min_user_items: int = 5) -> Interactions:
    """MovieLens 100K (Harper & Konstan 2015) from the data directory, binarized as in Liang
    et al. 2018 (ratings of 4 and 5, i.e. > 3.5, are positives; users with >= 5 of them)."""
    from vaekit.data.fetch import fetch

    path = fetch("ml-100k")["u.data"]
    return read_interactions(path, min_rating=min_rating, min_user_items=min_user_items)
