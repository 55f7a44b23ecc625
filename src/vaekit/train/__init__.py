"""The one training loop and its checkpoints."""

from vaekit.train.data import Tensors
from vaekit.train.trainer import Trainer, TrainResult

__all__ = ["Tensors", "Trainer", "TrainResult"]
