"""Readers for image data a user brings: a folder of PNG/JPEG files, ``.npy``, ``.npz``
(``X`` or ``x`` or ``images``, optional ``y``/``labels``) or idx files.

Every reader returns ``(x, y)``: x float32 of shape (N, C, H, W) (or (N, D) for flat
vectors), integer images scaled to [0, 1]; y an int64 label array or None. Everything is
checked: empty sets, mixed image sizes, NaN or inf, and pickled object arrays (refused:
``allow_pickle=False``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vaekit.data.idx import read_idx
from vaekit.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}


def to_nchw(arr: np.ndarray, source: str) -> np.ndarray:
    """Scale to float32 in [0, 1] (integers) and lay out as (N, C, H, W) or (N, D)."""
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise DataError(f"{source}: expected a numeric array, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise DataError(f"{source}: complex values are not images")
    if arr.ndim < 2 or arr.shape[0] == 0 or arr[0].size == 0:
        raise DataError(f"{source}: empty dataset or no features (shape {arr.shape})")
    if np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool:
        top = 1 if arr.dtype == bool else 255
        if arr.min() < 0 or arr.max() > top:
            raise DataError(f"{source}: integer pixels must lie in [0, 255], got [{arr.min()}, {arr.max()}]")
        x = arr.astype(np.float32) / top
    else:
        x = arr.astype(np.float32)
        bad = ~np.isfinite(x)
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise DataError(f"{source}: {int(bad.sum())} NaN or inf values (first in example {row})")
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
        x = x.transpose(0, 3, 1, 2)
    elif x.ndim > 4:
        raise DataError(f"{source}: cannot read shape {arr.shape} as images")
    return np.ascontiguousarray(x)


def _labels(y, n: int, source: str) -> np.ndarray | None:
    if y is None:
        return None
    y = np.asarray(y)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer) or (y < 0).any():
        raise DataError(f"{source}: labels must be {n} non-negative integers, got shape {y.shape} dtype {y.dtype}")
    return y.astype(np.int64)


def read_npz(path: Path):
    try:
        with np.load(path, allow_pickle=False) as f:
            key = next((k for k in ("X", "x", "images", "arr_0") if k in f.files), None)
            if key is None:
                raise DataError(f"{path}: no array named X, x, images or arr_0 (has {f.files})")
            x = f[key]
            ykey = next((k for k in ("y", "labels") if k in f.files), None)
            y = f[ykey] if ykey else None
    except DataError:
        raise
    except Exception as e:  # numpy raises many types on a malformed header or member
        raise DataError(f"cannot read {path} as .npz without pickle: {type(e).__name__}: {e}") from None
    return x, y


def read_npy(path: Path):
    try:
        return np.load(path, allow_pickle=False), None
    except Exception as e:  # numpy raises many types (even tokenize errors) on a bad header
        raise DataError(f"cannot read {path} as .npy without pickle: {type(e).__name__}: {e}") from None


def read_image_folder(path: Path):
    """All images under ``path``; sub-folder names become labels when there are several."""
    from PIL import Image

    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DataError(f"{path}: no PNG/JPEG images found")
    classes = sorted({p.parent.relative_to(path).as_posix() for p in files})
    arrays, size, mode = [], None, None
    for p in files:
        try:
            with Image.open(p) as im:
                im.load()
                mode = mode or ("L" if im.mode in ("1", "L", "I", "I;16", "P", "LA") else "RGB")
                a = np.asarray(im.convert(mode))
        except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, ... on damaged files
            raise DataError(f"cannot read image {p}: {type(e).__name__}: {e}") from None
        if size is None:
            size = a.shape
        elif a.shape != size:
            raise DataError(f"images of mixed sizes: {p} is {a.shape[:2]}, {files[0]} is {size[:2]}")
        arrays.append(a)
    y = None
    if len(classes) > 1:
        index = {c: i for i, c in enumerate(classes)}
        y = np.array([index[p.parent.relative_to(path).as_posix()] for p in files])
    return np.stack(arrays), y


def read_images(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read any supported image source into ``(x, y)``."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data path {path} does not exist")
    if path.is_dir():
        x, y = read_image_folder(path)
    elif path.suffix == ".npz":
        x, y = read_npz(path)
    elif path.suffix == ".npy":
        x, y = read_npy(path)
    elif "idx" in path.name or path.name.endswith("-ubyte") or path.name.endswith("-ubyte.gz"):
        x, y = read_idx(path), None
    else:
        raise DataError(f"{path}: unsupported data file (use a folder of images, .npy, .npz or idx)")
    x = to_nchw(np.asarray(x), str(path))
    return x, _labels(y, x.shape[0], str(path))
