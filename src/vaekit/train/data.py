"""What the trainer reads: a dataset held as tensors, its epoch order, and the form of a
random batch transform."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from vaekit.errors import DataError

Transform = Callable[[Tensor, torch.Generator], Tensor]
"""A random batch transform, e.g. dynamic binarization: ``transform(x, generator)``. One that
also has ``noise(x, generator)`` and ``apply(x, noise)`` (its draw and its deterministic
part) gets its deterministic part compiled when the step is."""


@dataclass
class Tensors:
    """A dataset held in memory: inputs and optional integer labels (tensors; NumPy arrays
    are taken as tensors, float64 as float32)."""

    x: Tensor
    y: Tensor | None = None

    def __post_init__(self):
        self.x = _as_tensor(self.x, "x")
        if self.y is not None:
            self.y = _as_tensor(self.y, "y")
        if self.x.dim() == 0:
            raise DataError("x: a single number, not a dataset (expected shape (N, ...))")
        if self.x.shape[0] == 0:
            raise DataError("empty dataset: no examples")
        if self.y is not None and self.y.shape[0] != self.x.shape[0]:
            raise DataError(f"{self.x.shape[0]} inputs but {self.y.shape[0]} labels")

    def __len__(self) -> int:
        return self.x.shape[0]

    def batch(self, idx: Tensor) -> tuple[Tensor, Tensor | None]:
        """The examples at ``idx``. ``index_select`` copies whole rows and, on CPU, takes about
        half the time of advanced indexing (``x[idx]``) for a batch of images."""
        return self.x.index_select(0, idx), None if self.y is None else self.y.index_select(0, idx)


def _as_tensor(values, what: str) -> Tensor:
    """A tensor as is; a NumPy array as a tensor (float64 as float32, the models' dtype)."""
    if isinstance(values, Tensor):
        return values
    if isinstance(values, np.ma.MaskedArray):
        raise DataError(f"Tensors {what}: a masked array; fill or drop its masked values first "
                        "(x.filled(value) or x.compressed())")
    if isinstance(values, (np.ndarray, np.generic)):
        arr = np.asarray(values)
        if arr.ndim == 0:
            raise DataError(f"Tensors {what}: a single number, not a dataset (expected shape (N, ...))")
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        try:
            return torch.from_numpy(np.ascontiguousarray(arr))
        except TypeError:
            raise DataError(f"{what}: a NumPy array of dtype {arr.dtype} cannot be a tensor") from None
    raise DataError(f"Tensors {what}: expected a torch.Tensor or a NumPy array, got {type(values).__name__}")


def epoch_order(data: Tensors, batch: int, generator: torch.Generator) -> Tensor:
    """The example order of one epoch: a permutation, or the data's own (e.g. length buckets)."""
    own = getattr(data, "epoch_order", None)
    return own(batch, generator) if own is not None else torch.randperm(len(data), generator=generator)
