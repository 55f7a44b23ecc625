"""Reader for the idx format of MNIST (LeCun et al.), plain or gzip-compressed.

Header: two zero bytes, a type code, the number of dimensions, then one big-endian
uint32 per dimension. Every field is checked against the file's real size.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from vaekit.errors import DataError

_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except FileNotFoundError:
        raise DataError(f"idx file {path} does not exist") from None
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"cannot read idx file {path}: {e}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path} is not an idx file (bad magic number)")
    code, ndim = raw[2], raw[3]
    if code not in _TYPES:
        raise DataError(f"{path}: unknown idx type code 0x{code:02x}")
    if ndim == 0 or len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path}: truncated idx header ({ndim} dimensions)")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(_TYPES[code])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    body = raw[4 + 4 * ndim :]
    if len(body) != expected:
        raise DataError(f"{path}: idx header says shape {dims} ({expected} bytes), body has {len(body)} bytes")
    return np.frombuffer(body, dtype=dtype).reshape(dims)
