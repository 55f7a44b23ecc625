"""Where and how fast a training step runs: device choice, fused Adam, bf16 autocast and
torch.compile with a clean fallback. Each choice keeps the maths of the step unchanged
(bf16 autocast changes only the precision of matmuls; weights and loss stay fp32).
"""

from __future__ import annotations

from typing import Callable

import torch

from vaekit.config import TrainConfig
from vaekit.errors import DataError
from vaekit.train.distributed import DistContext


def fused_adam_ok(device: torch.device) -> bool:
    """Fused Adam (one kernel for all parameters) where this build has it: same maths."""
    try:
        probe = torch.zeros(1, device=device, requires_grad=True)
        torch.optim.Adam([probe], fused=True)
        return True
    except (RuntimeError, TypeError):
        return False


def autocast_dtype(config: TrainConfig, device: torch.device):
    """bf16 autocast when asked (or by ``fast``) and the hardware has bf16 matmuls."""
    if config.precision != "bf16" and not config.fast:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    supported = getattr(torch.backends.mkldnn, "is_available", lambda: False)() and (
        getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
        or getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
    )
    if not supported and config.precision == "bf16":
        raise DataError("train.precision=bf16 but this CPU has no native bf16 matmuls; use fp32")
    return torch.bfloat16 if supported else None


class Compiled(torch.nn.Module):
    """torch.compile of a module or function (the training forward, the IW estimator's
    log weights), with a clean fallback to eager execution when the compiler is unavailable
    or fails on it (reported once, naming what continues eagerly)."""

    def __init__(self, net: Callable, log: Callable[[str], None], doing: str = "training", dynamic: bool = False):
        super().__init__()
        self.eager = net
        self.log = log
        self.doing = doing
        try:
            self.fn = torch.compile(net, dynamic=dynamic)
        except Exception as e:  # no compiler on this platform
            self.fn = None
            log(f"torch.compile unavailable ({type(e).__name__}: {e}); {doing} eagerly")

    def forward(self, *args):
        if self.fn is not None:
            try:
                return self.fn(*args)
            except Exception as e:  # compilation happens on the first call
                self.fn = None
                self.log(f"torch.compile failed ({type(e).__name__}: {e}); {self.doing} eagerly")
        return self.eager(*args)


def pick_device(name: str, dist: DistContext | None) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DataError(f"train.device={name!r} but no CUDA device is available")
        if dist is not None:
            return torch.device("cuda", dist.local_rank)
    return torch.device(name)
