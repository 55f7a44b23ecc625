"""Readers for image data a user brings: one PNG/JPEG file, a folder of them, ``.npy``,
``.npz`` (``X`` or ``x`` or ``images``, optional ``y``/``labels``) or idx files.

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


NPY_MAGIC = b"\x93NUMPY"


def read_npy(path: Path):
    try:
        with open(path, "rb") as f:
            head = f.read(len(NPY_MAGIC))
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None
    if head != NPY_MAGIC:  # numpy would take it for a pickle and suggest loading it unsafely
        raise DataError(f"{path} is not a NumPy .npy file (it does not start with the .npy header)")
    try:
        return np.load(path, allow_pickle=False), None
    except ValueError as e:
        if "pickle" in str(e):
            raise DataError(f"{path} holds Python objects, not numbers; refused (files are never unpickled)") from None
        raise DataError(f"cannot read {path} as .npy: {type(e).__name__}: {e}") from None
    except Exception as e:  # numpy raises many types (even tokenize errors) on a bad header
        raise DataError(f"cannot read {path} as .npy: {type(e).__name__}: {e}") from None


def read_image_file(path: Path, mode: str | None = None) -> tuple[np.ndarray, str]:
    """One image as an (H, W) or (H, W, 3) uint8 array, and the mode it was read in.

    ``mode`` None picks grey ("L") for grey and palette files and "RGB" for the rest; a
    folder passes its first image's mode so that every image has the same channels.
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            mode = mode or ("L" if im.mode in ("1", "L", "I", "I;16", "P", "LA") else "RGB")
            return np.asarray(im.convert(mode)), mode
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, ... on damaged files
        raise DataError(f"cannot read image {path}: {type(e).__name__}: {e}") from None


def read_image_folder(path: Path):
    """All images under ``path``; sub-folder names become labels when there are several."""
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DataError(f"{path}: no PNG/JPEG images found")
    classes = sorted({p.parent.relative_to(path).as_posix() for p in files})
    arrays, size, mode = [], None, None
    for p in files:
        a, mode = read_image_file(p, mode)
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


def read_images(path: str | Path, image_shape: tuple[int, ...] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Read any supported image source into ``(x, y)``.

    With ``image_shape`` (a model's (C, H, W) or (D,)), an array that holds exactly one
    image of that shape without the batch axis, such as (28, 28) for a (1, 28, 28) model,
    is read as that one image rather than as 28 rows, and an image file is converted to
    the model's channels (grey or RGB).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"data path {path} does not exist")
    if path.is_dir():
        x, y = read_image_folder(path)
    elif path.suffix.lower() in IMAGE_SUFFIXES:
        x, y = read_image_file(path, _mode_for(image_shape))[0][None], None
    elif path.suffix == ".npz":
        x, y = read_npz(path)
    elif path.suffix == ".npy":
        x, y = read_npy(path)
    elif "idx" in path.name or path.name.endswith("-ubyte") or path.name.endswith("-ubyte.gz"):
        x, y = read_idx(path), None
    else:
        raise DataError(f"{path}: unsupported data file (use an image file ({', '.join(sorted(IMAGE_SUFFIXES))}), "
                        "a folder of images, .npy, .npz or idx)")
    x = np.asarray(x)
    if image_shape is not None and is_one_image(x.shape, tuple(image_shape)):
        x = x[None]
    x = to_nchw(x, str(path))
    return x, _labels(y, x.shape[0], str(path))


def _mode_for(image_shape: tuple[int, ...] | None) -> str | None:
    """The PIL mode that gives an image the channels of ``image_shape`` (None: as stored)."""
    if image_shape is None or len(image_shape) != 3:
        return None
    return {1: "L", 3: "RGB"}.get(image_shape[0])


def is_one_image(shape: tuple[int, ...], image_shape: tuple[int, ...]) -> bool:
    """Whether an array of ``shape`` is one image of ``image_shape`` (C, H, W) or (D,)
    without its batch axis: the same shape, or (H, W) for one channel, or (H, W, C)."""
    if shape == image_shape:
        return True
    if len(image_shape) != 3:
        return False
    channels, height, width = image_shape
    return (channels == 1 and shape == (height, width)) or shape == (height, width, channels)
