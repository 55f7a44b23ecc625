"""Molecule libraries from files: reading, RDKit cleaning, tokens, splits.

A user's library is a ``.smi`` / ``.smiles`` / ``.txt`` file (one SMILES a line, the first
whitespace-separated field; extra fields such as names are ignored) or a ``.csv`` /
``.tsv`` with a SMILES column, each optionally gzip-compressed. Every SMILES is parsed and
canonicalized with RDKit; empty, unparsable, huge and over-long lines are skipped and
counted in the data report, never fatal. MOSES (``moses/``) and ZINC250k (``zinc250k/``)
come from the data directory through the registry.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import zlib
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

from vaekit.data import require_file
from vaekit.errors import DataError
from vaekit.molecules.chem import canonical, property_table
from vaekit.molecules.tokens import Representation

SMILES_SUFFIXES = (".smi", ".smiles", ".txt")
TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t"}


def _open_text(path: Path) -> str:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path}: a damaged gzip file ({e})") from None
    if b"\x00" in raw:
        raise DataError(f"{path}: holds NUL bytes: a binary file, not a SMILES library")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(f"{path}: line {line} is not UTF-8 text ({e.reason})") from None


def _kind(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    if last in TABLE_SUFFIXES:
        return last
    if last in SMILES_SUFFIXES or last == "":
        return ".smi"
    raise DataError(f"{path}: unknown file type {last!r}; expected .smi, .smiles, .txt, .csv or .tsv (optionally .gz)")


def read_smiles(path: str | Path, column: str | None = None) -> list[str]:
    """The raw SMILES strings of a file, one per row; blank rows stay as "" (counted as empty by :func:`clean`)."""
    path = require_file(path)
    text = _open_text(path)
    if not text.strip():
        raise DataError(f"{path}: the file is empty (expected one SMILES per line)")
    kind = _kind(path)
    if kind == ".smi":
        if column is not None:
            raise DataError(f"{path}: --column applies to .csv / .tsv files; a .smi file holds SMILES first on each line")
        out = []
        for i, line in enumerate(text.splitlines()):
            fields = line.split()
            if i == 0 and fields and fields[0].lower() == "smiles":
                continue  # a header line
            out.append(fields[0] if fields else "")
        return out
    delimiter = TABLE_SUFFIXES[kind]
    limit = csv.field_size_limit(1 << 30)  # a huge field is skipped later as a too-long line, not refused here
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as e:
        raise DataError(f"{path}: not a valid {kind[1:].upper()} file ({e})") from None
    finally:
        csv.field_size_limit(limit)
    header = rows[0]
    wanted = column or "smiles"
    names = [h.strip() for h in header]
    matches = [i for i, h in enumerate(names) if h == wanted or (column is None and h.lower() == "smiles")]
    if not matches:
        hint = ""
        if len(names) == 1:
            for other in (";", "\t", ",", "|"):
                if other != delimiter and other in names[0]:
                    hint = f"; the header holds {other!r}: is the delimiter {other!r} rather than {delimiter!r}?"
                    break
        what = f"column {column!r}" if column else "a 'smiles' column (name it with --column)"
        raise DataError(f"{path}: no {what}; columns found: {names}{hint}")
    j = matches[0]
    return [row[j] if j < len(row) else "" for row in rows[1:] if row]


def read_lines(path: Path) -> list[str]:
    """One SMILES a line, no header (the ZINC250k split files)."""
    return [line.strip() for line in _open_text(path).splitlines()]


# -- cleaning ----------------------------------------------------------------------------
def _canonical_chunk(chunk: list[str]) -> list[str | None]:
    return [canonical(s) for s in chunk]


def _pool(workers: int):
    """Worker processes for RDKit work. Forked where the platform allows it: the workers
    run RDKit only (no OpenMP), and a forked worker does not re-import the caller's script
    the way a spawned one does (which would need an ``if __name__ == "__main__"`` guard)."""
    import multiprocessing

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return get_context(method).Pool(workers)


def parallel_map(fn, items: list, workers: int | None = None, chunk: int = 2000) -> list:
    """``fn`` over chunks of ``items`` in worker processes (RDKit holds the GIL)."""
    workers = workers or min(os.cpu_count() or 1, 8)
    chunks = [items[i : i + chunk] for i in range(0, len(items), chunk)]
    if workers <= 1 or len(chunks) <= 1:
        return [y for c in chunks for y in fn(c)]
    with _pool(workers) as pool:
        return [y for part in pool.map(fn, chunks) for y in part]


def canonicalize(smiles: list[str]) -> list[str | None]:
    """RDKit canonical SMILES (None for invalid), in worker processes for large lists."""
    return parallel_map(_canonical_chunk, smiles) if len(smiles) > 20_000 else _canonical_chunk(smiles)


@dataclass
class CleanLibrary:
    smiles: list[str]  # canonical, kept
    tokens: list[list[str]]
    report: dict = field(default_factory=dict)


def clean(raw: list[str], representation: Representation, max_len: int, max_chars: int = 1000,
          where: str = "library", canonical_input: list[str | None] | None = None) -> CleanLibrary:
    """Canonical SMILES and tokens of the usable molecules; the rest counted by reason."""
    counts = Counter()
    short = [s.strip() if isinstance(s, str) else "" for s in raw]
    todo = [s for s in short if s and len(s) <= max_chars]
    canon = iter(canonical_input if canonical_input is not None else canonicalize(todo))
    kept, tokens = [], []
    for s in short:
        if not s:
            counts["empty"] += 1
            continue
        if len(s) > max_chars:
            counts["too_long_line"] += 1
            continue
        c = next(canon)
        if c is None:
            counts["invalid_smiles"] += 1
            continue
        try:
            t = representation.tokens(c)
        except DataError:
            counts["untokenizable"] += 1
            continue
        if len(t) > max_len:
            counts["too_many_tokens"] += 1
            continue
        kept.append(c)
        tokens.append(t)
    if not kept:
        raise DataError(f"{where}: no usable molecule among {len(raw)} lines ({dict(counts)})")
    report = {"lines": len(raw), "kept": len(kept), "skipped": dict(counts), "max_tokens": max_len,
              "representation": representation.name}
    return CleanLibrary(kept, tokens, report)


# -- property targets --------------------------------------------------------------------
def _property_chunk(args) -> list[list[float]]:
    smiles, names = args
    return property_table(smiles, names)


def properties_cached(smiles: list[str], names: list[str], cache: Path | None) -> np.ndarray:
    """RDKit properties (N, P) of canonical SMILES, cached by the list's hash (npz, no pickle)."""
    if not names:
        return np.zeros((len(smiles), 0), np.float32)
    key = hashlib.sha256(("\n".join(smiles) + "|" + ",".join(names)).encode()).hexdigest()[:24]
    path = cache / f"properties-{key}.npz" if cache else None
    if path is not None and path.is_file():
        with np.load(path, allow_pickle=False) as f:
            return f["values"]
    chunks = [(smiles[i : i + 2000], names) for i in range(0, len(smiles), 2000)]
    if len(chunks) > 2 and (os.cpu_count() or 1) > 1:
        with _pool(min(os.cpu_count() or 1, 8)) as pool:
            rows = [r for part in pool.map(_property_chunk, chunks) for r in part]
    else:
        rows = [r for c in chunks for r in _property_chunk(c)]
    values = np.asarray(rows, np.float32).reshape(len(smiles), len(names))
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, values=values)
            os.replace(tmp, path)
        except OSError:
            pass  # an unwritable cache only costs a recomputation
    return values


def seeded_subset(items: list, n: int | None, seed: int) -> list:
    if not n or n >= len(items):
        return items
    idx = torch.randperm(len(items), generator=torch.Generator().manual_seed(seed))[:n].tolist()
    return [items[i] for i in sorted(idx)]


def moses_files() -> dict[str, Path]:
    from vaekit.data.fetch import fetch

    files = fetch("moses")
    return {"train": files["train.csv.gz"], "test": files["test.csv.gz"], "test_scaffolds": files["test_scaffolds.csv.gz"]}


def zinc250k_files() -> dict[str, Path]:
    from vaekit.data.fetch import fetch

    files = fetch("zinc250k")
    return {"train": files["train.csv.gz"], "valid": files["valid.csv.gz"], "test": files["test.csv.gz"]}
