"""Reading anomaly-detection data: user files (CSV, Parquet, ``.npz``) and the registered
benchmark sets (ADBench's classical tables, KDD Cup 99, NAB), always through
:func:`vaekit.data.fetch.fetch`, so the data directory comes first.
"""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from vaekit.anomaly.base import plain
from vaekit.data import require_file
from vaekit.errors import DataError

# KDD Cup 99: 41 features then the label ("normal." or an attack name), no header
KDD_COLUMNS = [
    "duration", "protocol_type", "service", "flag", "src_bytes", "dst_bytes", "land", "wrong_fragment", "urgent",
    "hot", "num_failed_logins", "logged_in", "num_compromised", "root_shell", "su_attempted", "num_root",
    "num_file_creations", "num_shells", "num_access_files", "num_outbound_cmds", "is_host_login", "is_guest_login",
    "count", "srv_count", "serror_rate", "srv_serror_rate", "rerror_rate", "srv_rerror_rate", "same_srv_rate",
    "diff_srv_rate", "srv_diff_host_rate", "dst_host_count", "dst_host_srv_count", "dst_host_same_srv_rate",
    "dst_host_diff_srv_rate", "dst_host_same_src_port_rate", "dst_host_srv_diff_host_rate",
    "dst_host_serror_rate", "dst_host_srv_serror_rate", "dst_host_rerror_rate", "dst_host_srv_rerror_rate",
    "label",
]
KDD_CATEGORICAL = ["protocol_type", "service", "flag"]


def read_table(path: str | Path) -> tuple[pd.DataFrame, np.ndarray | None]:
    """A table and, for ``.npz`` files holding ``y``, its labels.

    CSV (``.csv``, ``.tsv``, optionally gzipped), Parquet (needs pyarrow or fastparquet)
    and NumPy ``.npz`` with a 2-D array ``X`` and an optional ``y`` (read without pickle).
    """
    path = require_file(path)
    name = path.name.lower()
    try:
        if name.endswith(".npz"):
            return _read_npz(path)
        if name.endswith(".parquet") or name.endswith(".pq"):
            try:
                df = pd.read_parquet(path)
            except ImportError:
                raise DataError(f"{path}: reading Parquet needs pyarrow (pip install 'vaekit[parquet]'); "
                                "or save the table as CSV") from None
        else:
            sep = "\t" if name.endswith((".tsv", ".tsv.gz")) else ","
            df = pd.read_csv(path, sep=sep, skipinitialspace=True, low_memory=False)
    except DataError:
        raise
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError, EOFError,
            zipfile.BadZipFile, NotImplementedError) as e:  # EOFError: an .npz member cut short;
        # NotImplementedError: zipfile on a member of an unknown zip version or compression
        raise DataError(f"{path}: cannot read the table ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if df.shape[0] == 0:
        raise DataError(f"{path}: the table has no rows")
    return df, None


def _read_npz(path: Path) -> tuple[pd.DataFrame, np.ndarray | None]:
    with np.load(path, allow_pickle=False) as npz:
        if "X" not in npz.files:
            raise DataError(f"{path}: no array 'X' (arrays: {', '.join(npz.files) or 'none'})")
        X = npz["X"]
        y = npz["y"] if "y" in npz.files else None
    if X.ndim != 2:
        raise DataError(f"{path}: X must be 2-D (rows x columns), got shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise DataError(f"{path}: X must hold numbers, got dtype {X.dtype}")
    if y is not None:
        y = np.asarray(y).ravel()
        if len(y) != len(X):
            raise DataError(f"{path}: {len(X)} rows in X but {len(y)} labels in y")
    return pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])]), y


def binary_labels(values, where: str) -> np.ndarray:
    """0/1 labels (1 = anomaly) from numbers or booleans; anything else is refused."""
    s = pd.Series(np.asarray(values).ravel())
    num = pd.to_numeric(s, errors="coerce")
    if s.dtype == bool:
        num = s.astype(int)
    if num.isna().any() or not num.isin([0, 1]).all():
        bad = plain(s[num.isna() | ~num.isin([0, 1])].iloc[0])
        raise DataError(f"{where}: labels must be 0 (normal) or 1 (anomaly), found {bad!r}")
    return num.to_numpy(dtype=np.int64)


# -- registered benchmark sets -------------------------------------------------------------
def load_adbench(name: str) -> tuple[np.ndarray, np.ndarray]:
    """X (float64) and y (1 = anomaly) of an ADBench classical set, e.g. ``adbench-cardio``."""
    from vaekit.data.fetch import fetch

    path = next(iter(fetch(name).values()))
    with np.load(path, allow_pickle=False) as npz:
        return npz["X"].astype(np.float64), npz["y"].astype(np.int64).ravel()


def load_kddcup99(part: str) -> pd.DataFrame:
    """``"train"`` (the 10% set, 494,021 rows) or ``"test"`` (``corrected``, 311,029 rows),
    with :data:`KDD_COLUMNS`; ``label`` keeps the attack name (``normal.`` for normal)."""
    from vaekit.data.fetch import fetch

    files = fetch("kddcup99")
    fname = {"train": "kddcup.data_10_percent.gz", "test": "corrected.gz"}[part]
    with gzip.open(files[fname], "rt") as f:
        return pd.read_csv(f, header=None, names=KDD_COLUMNS)


def nab_series() -> dict[str, list[list[str]]]:
    """NAB's labelled windows by series (``group/file.csv``) for every registered series."""
    from vaekit.data.fetch import fetch

    files = fetch("nab")
    windows = json.loads(files["labels/combined_windows.json"].read_text())
    return {k: v for k, v in windows.items() if f"data/{k}" in files}


def load_nab(series: str) -> tuple[pd.DataFrame, np.ndarray]:
    """A NAB series (timestamp, value) and its point labels: 1 inside a labelled window."""
    from vaekit.data.fetch import fetch

    files = fetch("nab")
    df = pd.read_csv(files[f"data/{series}"])
    windows = json.loads(files["labels/combined_windows.json"].read_text()).get(series, [])
    ts = pd.to_datetime(df["timestamp"])
    y = np.zeros(len(df), np.int64)
    for start, end in windows:
        y[((ts >= pd.Timestamp(start)) & (ts <= pd.Timestamp(end))).to_numpy()] = 1
    return df, y
