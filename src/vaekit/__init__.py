"""vaekit: variational autoencoders as dependable tools.

    from vaekit import VAE, Trainer, TrainConfig, RunConfig
    model = VAE.from_pretrained("runs/mnist")
"""

from vaekit.config import DataConfig, EvalConfig, ModelConfig, RunConfig, TrainConfig, build_config, load_preset
from vaekit.core import VAE, LossOutput
from vaekit.errors import VaekitError
from vaekit.io import from_pretrained, save_pretrained
from vaekit.train import Tensors, Trainer, TrainResult

__version__ = "0.1.0"

__all__ = [
    "VAE",
    "LossOutput",
    "Trainer",
    "TrainResult",
    "Tensors",
    "RunConfig",
    "DataConfig",
    "ModelConfig",
    "TrainConfig",
    "EvalConfig",
    "build_config",
    "load_preset",
    "save_pretrained",
    "from_pretrained",
    "VaekitError",
]
