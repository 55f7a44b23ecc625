"""The one training loop and its checkpoints."""

from vaekit.train.trainer import Tensors, Trainer, TrainResult

__all__ = ["Tensors", "Trainer", "TrainResult"]
