"""Tabular preprocessing of the anomaly detector, fitted on training data only.

- Numeric columns are scaled robustly: (x - median) / (IQR / 1.349), so that a normal
  column has unit scale and the anomalies in an unlabelled training set barely move the
  statistics; a column whose IQR is 0 falls back to its standard deviation.
- A column that is constant in the training data (``constant_columns_``) is not a VAE
  input; the transform marks the rows where it takes another value
  (``Encoded.constant_changed``, counted in the report as ``constant_columns_changed``)
  and the detector scores such a change as a Gaussian at the training value with the
  floor scale would: a value never seen in training is an anomaly. KDD Cup 99's
  ``wrong_fragment`` is constant in normal traffic.
- Categorical columns (text, ``category`` dtype, or named in ``categorical``) are one-hot
  encoded over the ``max_categories`` most frequent training values; rarer training values
  share one ``other`` slot, and values never seen in training get an all-zero code (so
  the model reconstructs them badly and they score high). KDD Cup 99 has three. A
  whole number is one category however it is stored: 2 and 2.0 are both ``"2"``, so a
  missing cell that makes a column of codes float (as CSV readers do) changes nothing.
- Missing values (NaN, None, empty cells) and infinities are not imputed into the
  likelihood: the transform returns an observed mask, the VAE leaves those entries out of
  p(x|z) (Donut's M-ELBO, see :mod:`vaekit.anomaly.model`) and the encoder sees the
  training median. Every transform reports what it found (:attr:`report_`).
- Scaled values are clipped to +-1e6 so that float32 arithmetic stays finite; such a row
  is an anomaly by any measure and keeps a huge score.
- Columns are matched by name for data frames: reordered columns are aligned, extra
  columns are ignored and reported, missing columns are an error. Arrays are positional
  and must have the training number of columns. Text in a numeric column is an error
  that names the column, the row and the value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vaekit.errors import DataError

OTHER = "__other__"
CLIP = 1e6  # scaled values beyond a million robust units are clipped: float32 squares stay finite


@dataclass
class Encoded:
    """The model's view of a table: values, an observed mask and what was found."""

    values: np.ndarray  # (n, D) float32, missing entries set to 0
    observed: np.ndarray  # (n, D) float32, 1 = observed
    report: dict = field(default_factory=dict)
    constant_changed: np.ndarray | None = None  # (n, K) float32: 1 where constant column k changed


def as_frame(X, columns: list[str] | None = None) -> pd.DataFrame:
    """A data frame view of a frame, a 2-D array or a list of rows."""
    if isinstance(X, pd.DataFrame):
        df = X
    else:
        if isinstance(X, pd.Series):
            raise DataError("expected a 2-D table, got a single column (pandas Series); use X.to_frame()")
        try:
            arr = np.asarray(X)
        except (ValueError, TypeError) as e:
            raise DataError(f"cannot read the input as a table: {e}") from None
        if arr.ndim != 2:
            raise DataError(f"expected a 2-D table (rows x columns), got an array of shape {arr.shape}")
        if arr.dtype.kind == "c":
            raise DataError("complex numbers are not supported")
        names = columns if columns is not None and len(columns) == arr.shape[1] else [f"x{i}" for i in range(arr.shape[1])]
        df = pd.DataFrame(arr, columns=names)
    if df.shape[0] == 0:
        raise DataError("the table has no rows")
    if df.shape[1] == 0:
        raise DataError("the table has no columns")
    if not df.columns.is_unique:
        dup = df.columns[df.columns.duplicated()].tolist()
        raise DataError(f"duplicated column names: {dup[:5]}")
    df = df.copy()
    df.columns = [str(c) for c in df.columns]
    return df


def _is_missing_text(s: pd.Series) -> np.ndarray:
    return s.isna().to_numpy() | s.astype(str).str.strip().isin(["", "nan", "NaN", "NA", "null", "None"]).to_numpy()


def _category_text(s: pd.Series) -> pd.Series:
    """Category names of a column's values: stripped text, whole numbers as integers."""
    values = pd.Series([_whole_number_as_int(v) for v in s], index=s.index, dtype=object)
    return values.astype(str).str.strip()


def _whole_number_as_int(v):
    if isinstance(v, (float, np.floating)) and float(v).is_integer() and abs(v) < 2**53:
        return int(v)
    return v


def _category_index(cats: list[str]) -> dict[str, int]:
    """Slot of each category name; a name saved as a float's text ("2.0") also answers to
    its integer text ("2"), which is how :func:`_category_text` writes that number."""
    index = {c: i for i, c in enumerate(cats)}
    for c, i in list(index.items()):
        head, dot, tail = c.partition(".")
        if dot and tail == "0" and head.lstrip("-").isdigit():
            index.setdefault(head, i)
    return index


def _numeric(s: pd.Series, name: str) -> np.ndarray:
    """Float values of a column; NaN/inf become NaN; text that is not a number is refused."""
    if s.dtype.kind in "biuf":
        v = s.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        missing = _is_missing_text(s)
        v = pd.to_numeric(s.where(~missing, np.nan), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.flatnonzero(np.isnan(v) & ~missing)
        if len(bad):
            r = bad[0]
            raise DataError(f"column {name!r} is numeric but row {r} holds {s.iloc[r]!r} "
                            f"({len(bad)} non-numeric value(s)); fix the data or declare the column categorical")
    v = v.copy()
    v[~np.isfinite(v)] = np.nan
    return v


def _looks_categorical(s: pd.Series) -> bool:
    if isinstance(s.dtype, pd.CategoricalDtype):
        return True
    if s.dtype.kind in "biuf":
        return False
    missing = _is_missing_text(s)
    present = s[~missing]
    if len(present) == 0:
        return False
    parsed = pd.to_numeric(present, errors="coerce")
    return parsed.notna().mean() < 0.9  # mostly text: categories; mostly numbers: a numeric column with typos


class TabularPreprocessor:
    """Fit on a training table, then turn any table with the same columns into model inputs.

    Parameters
    ----------
    categorical : list of column names (or positions for arrays), optional
        Columns to one-hot encode. Default: text and ``category`` columns.
    max_categories : int
        One-hot slots per categorical column (the most frequent training values).
    missing : {"mask", "error"}
        ``"mask"`` (default): missing and infinite values are left out of the likelihood
        and reported; ``"error"``: refuse them with the first row and column named.
    """

    def __init__(self, categorical=None, max_categories: int = 50, missing: str = "mask"):
        if missing not in ("mask", "error"):
            raise DataError(f"missing must be 'mask' or 'error', got {missing!r}")
        if not isinstance(max_categories, (int, np.integer)) or max_categories < 1:
            raise DataError(f"max_categories must be a positive integer, got {max_categories!r}")
        self.categorical = categorical
        self.max_categories = int(max_categories)
        self.missing = missing

    # -- fitting ---------------------------------------------------------------------
    def fit(self, X) -> "TabularPreprocessor":
        df = as_frame(X)
        self.input_kind_ = "frame" if isinstance(X, pd.DataFrame) else "array"
        self.columns_ = list(df.columns)
        cat = self._categorical_names(df)
        self.numeric_, self.center_, self.scale_, self.constant_columns_ = [], [], [], []
        self.constant_values_: list[float] = []
        self.categories_: dict[str, list[str]] = {}
        self.seen_: dict[str, list[str]] = {}
        for name in self.columns_:
            if name in cat:
                self.categories_[name] = self._fit_categories(df[name])
                if OTHER in self.categories_[name]:
                    s = df[name]
                    self.seen_[name] = sorted(set(_category_text(s)[~_is_missing_text(s)]))
                continue
            v = _numeric(df[name], name)
            v = v[~np.isnan(v)]
            if len(v) == 0:
                raise DataError(f"column {name!r} has no finite value in the training data")
            q1, med, q3 = np.percentile(v, [25, 50, 75])
            scale = (q3 - q1) / 1.349
            if not scale > 0:
                scale = float(np.std(v))
            if not scale > 0:
                self.constant_columns_.append(name)
                self.constant_values_.append(float(med))
                continue
            self.numeric_.append(name)
            self.center_.append(float(med))
            self.scale_.append(float(scale))
        if not self.numeric_ and not self.categories_:
            raise DataError(f"no usable column: every column is constant ({', '.join(self.constant_columns_)})")
        self._index()
        return self

    def _categorical_names(self, df: pd.DataFrame) -> set[str]:
        if self.categorical is None:
            return {c for c in df.columns if _looks_categorical(df[c])}
        names = set()
        for c in self.categorical:
            if isinstance(c, (int, np.integer)) and str(c) not in df.columns:
                if not 0 <= c < df.shape[1]:
                    raise DataError(f"categorical column index {c} is out of range (0..{df.shape[1] - 1})")
                names.add(df.columns[c])
            elif str(c) in df.columns:
                names.add(str(c))
            else:
                raise DataError(f"categorical column {c!r} is not in the table; columns: {', '.join(df.columns[:20])}")
        return names

    def _fit_categories(self, s: pd.Series) -> list[str]:
        text = _category_text(s)[~_is_missing_text(s)]
        counts = text.value_counts()
        counts = counts.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
        keep = [str(v) for v in counts.index[: self.max_categories]]
        return keep + ([OTHER] if len(counts) > self.max_categories else [])

    def _index(self) -> None:
        names, groups = list(self.numeric_), list(self.numeric_)
        for col, cats in self.categories_.items():
            names += [f"{col}={c}" for c in cats]
            groups += [col] * len(cats)
        self.encoded_names_, self.encoded_groups_ = names, groups
        self.feature_names_ = list(self.columns_)

    # -- transforming ----------------------------------------------------------------
    def _align(self, X) -> tuple[pd.DataFrame, list[str]]:
        df = as_frame(X)
        if isinstance(X, pd.DataFrame) and self.input_kind_ == "frame":
            missing = [c for c in self.columns_ if c not in df.columns]
            if missing:
                raise DataError(f"columns missing from the data (present at fit time): {', '.join(missing[:10])}"
                                + (f" and {len(missing) - 10} more" if len(missing) > 10 else ""))
            extra = [c for c in df.columns if c not in self.columns_]
            return df[self.columns_], extra
        if df.shape[1] != len(self.columns_):
            raise DataError(f"the data have {df.shape[1]} columns, the detector was fitted on {len(self.columns_)}")
        df.columns = self.columns_
        return df, []

    def transform(self, X) -> Encoded:
        df, extra = self._align(X)
        n = len(df)
        values = np.zeros((n, len(self.encoded_names_)), np.float32)
        observed = np.ones_like(values)
        report = {"rows": n, "missing_values": {}, "unknown_categories": {}, "ignored_columns": extra}
        for j, name in enumerate(self.numeric_):
            v = _numeric(df[name], name)
            miss = np.isnan(v)
            if miss.any():
                report["missing_values"][name] = int(miss.sum())
                self._refuse_missing(name, miss)
            values[:, j] = np.where(miss, 0.0, np.clip((v - self.center_[j]) / self.scale_[j], -CLIP, CLIP))
            observed[:, j] = ~miss
        j = len(self.numeric_)
        constant_changed = np.zeros((n, len(self.constant_columns_)), np.float32)
        report["constant_columns_changed"] = {}
        for k, (name, value) in enumerate(zip(self.constant_columns_, self.constant_values_)):
            v = _numeric(df[name], name)
            miss = np.isnan(v)
            if miss.any():
                report["missing_values"][name] = int(miss.sum())
                self._refuse_missing(name, miss)
            constant_changed[:, k] = ~miss & (v != value)
            if constant_changed[:, k].any():
                report["constant_columns_changed"][name] = int(constant_changed[:, k].sum())
        for col, cats in self.categories_.items():
            s = df[col]
            miss = _is_missing_text(s)
            text = _category_text(s).to_numpy()
            if miss.any():
                report["missing_values"][col] = int(miss.sum())
                self._refuse_missing(col, miss)
            index = _category_index(cats)
            seen = set(_category_index(self.seen_.get(col, [])))  # training values that share the "other" slot
            codes = np.array([index.get(t, index.get(OTHER, -1) if t in seen else -1) for t in text])
            unknown = (codes == -1) & ~miss  # never seen in training: no slot at all
            if unknown.any():
                report["unknown_categories"][col] = int(unknown.sum())
            block = np.zeros((n, len(cats)), np.float32)
            ok = ~miss & (codes >= 0)
            block[np.flatnonzero(ok), codes[ok]] = 1.0
            values[:, j : j + len(cats)] = block
            observed[:, j : j + len(cats)] = (~miss)[:, None]
            j += len(cats)
        empty = np.flatnonzero(observed.sum(1) == 0)
        if len(empty):
            raise DataError(f"row {empty[0]} has no observed value ({len(empty)} such row(s))")
        report["rows_with_missing"] = int((observed.min(1) == 0).sum())
        self.report_ = report
        return Encoded(values, observed, report, constant_changed)

    def fit_transform(self, X) -> Encoded:
        return self.fit(X).transform(X)

    def _refuse_missing(self, name: str, miss: np.ndarray) -> None:
        if self.missing == "error":
            raise DataError(f"column {name!r} has {int(miss.sum())} missing or infinite value(s), first in row "
                            f"{int(np.flatnonzero(miss)[0])} (missing='error')")

    def group_matrix(self) -> np.ndarray:
        """(D + K, F) 0/1 matrix summing encoded dimensions, then the K constant columns,
        into the F original columns."""
        index = {c: i for i, c in enumerate(self.feature_names_)}
        groups = [*self.encoded_groups_, *self.constant_columns_]
        m = np.zeros((len(groups), len(self.feature_names_)), np.float32)
        for d, g in enumerate(groups):
            m[d, index[g]] = 1.0
        return m

    # -- files -----------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"categorical": self.categorical, "max_categories": self.max_categories, "missing": self.missing,
                "input_kind": self.input_kind_, "columns": self.columns_, "numeric": self.numeric_,
                "center": self.center_, "scale": self.scale_, "constant_columns": self.constant_columns_,
                "constant_values": self.constant_values_,
                "categories": self.categories_, "seen": self.seen_}

    @classmethod
    def from_dict(cls, d: dict) -> "TabularPreprocessor":
        p = cls(d.get("categorical"), d["max_categories"], d["missing"])
        p.input_kind_, p.columns_, p.numeric_ = d["input_kind"], list(d["columns"]), list(d["numeric"])
        p.center_, p.scale_ = [float(v) for v in d["center"]], [float(v) for v in d["scale"]]
        p.constant_columns_ = list(d["constant_columns"])
        p.constant_values_ = [float(v) for v in d.get("constant_values", [np.nan] * len(p.constant_columns_))]
        p.categories_ = {str(k): [str(c) for c in v] for k, v in d["categories"].items()}
        p.seen_ = {str(k): list(v) for k, v in d.get("seen", {}).items()}
        if len(p.center_) != len(p.numeric_) or len(p.scale_) != len(p.numeric_):
            raise ValueError("numeric columns, centers and scales differ in length")
        if len(p.constant_values_) != len(p.constant_columns_):
            raise ValueError("constant columns and their values differ in length")
        known = set(p.columns_)
        stray = [c for c in [*p.numeric_, *p.categories_, *p.constant_columns_] if c not in known]
        if stray:
            raise ValueError(f"column {stray[0]!r} is used but not listed in 'columns'")
        p._index()
        return p
