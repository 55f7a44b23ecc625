"""Where and how fast a training step runs: device choice, fused Adam, bf16 autocast and
torch.compile with a clean fallback. Each choice keeps the maths of the step unchanged
(bf16 autocast changes only the precision of matmuls; weights and loss stay fp32).
"""

from __future__ import annotations

import ctypes
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

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


class AdamStep:
    """``optimizer.step()`` and ``zero_grad`` for a fused Adam, with torch.optim's per-step
    Python left out: one call of the fused kernel that ``Adam(fused=True).step()`` itself
    ends in (``torch._fused_adam_``), on the optimizer's own state tensors, so its state
    dict, checkpoints and results are unchanged (a test checks they are bit-identical).

    Why: the wrapper around that kernel (state look-ups per parameter, grouping by device
    and dtype, profiler hooks) costs ~80 µs a step on the 784-400-20 MLP (253 against 335
    µs, ``benchmarks/step_costs.py``), ~2% of a batch-128 step. Anything the direct call does
    not cover goes through ``optimizer.step()``: the first step (which creates the state),
    a parameter without a gradient, several parameter groups, amsgrad, a non-fused Adam.
    """

    def __init__(self, optimizer: torch.optim.Optimizer):
        self.optimizer = optimizer
        groups = optimizer.param_groups
        self.params = list(groups[0]["params"]) if len(groups) == 1 else []
        self.direct = (
            hasattr(torch, "_fused_adam_") and isinstance(optimizer, torch.optim.Adam) and len(groups) == 1
            and bool(groups[0].get("fused")) and not groups[0]["amsgrad"] and not groups[0].get("differentiable")
            and not groups[0].get("capturable") and not groups[0].get("decoupled_weight_decay")
            and not any(p.is_complex() for p in self.params)
        )

    def zero_grad(self) -> None:
        if self.direct:
            for p in self.params:
                p.grad = None
        else:
            self.optimizer.zero_grad(set_to_none=True)

    def step(self) -> None:
        grads = [p.grad for p in self.params]
        states = [self.optimizer.state.get(p) for p in self.params]
        if not self.direct or any(g is None for g in grads) or not all(states):
            self.optimizer.step()
            return
        group = self.optimizer.param_groups[0]
        beta1, beta2 = group["betas"]
        steps = [s["step"] for s in states]
        with torch.no_grad():
            torch._foreach_add_(steps, 1)
            torch._fused_adam_(
                self.params, grads, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states], [], steps,
                lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"], eps=group["eps"],
                amsgrad=False, maximize=group["maximize"],
            )


_flush_lock = threading.Lock()
_flush_depth = 0


def _openmp_runtimes() -> list[ctypes.CDLL]:
    """The OpenMP runtimes loaded in this process (torch's intra-op thread pool), found
    through /proc/self/maps; empty where that is unavailable."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if line.rstrip().endswith((".so", ".so.1", ".so.5"))}
    except OSError:
        return []
    names = ("libgomp", "libomp", "libiomp")
    libs = []
    for path in sorted(p for p in paths if any(n in p.rsplit("/", 1)[-1] for n in names)):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        if hasattr(lib, "omp_pause_resource_all"):
            libs.append(lib)
    return libs


def _restart_thread_pools() -> None:
    """Free the calling thread's OpenMP pool (OpenMP 5.0 ``omp_pause_resource_all``, hard
    pause): the next parallel region starts fresh workers, and new threads inherit their
    creator's floating-point mode (POSIX), so a mode set on this thread reaches them."""
    for lib in _openmp_runtimes():
        lib.omp_pause_resource_all(2)  # omp_pause_hard


def denormals_flushed() -> bool:
    """Whether the calling thread flushes denormals to zero (probed, not remembered)."""
    return bool(torch.tensor([1e-30]) * 1e-10 == 0)


@contextmanager
def flush_denormals(enabled: bool = True) -> Iterator[None]:
    """Flush-to-zero and denormals-are-zero on the CPU for the work inside, on the calling
    thread and on torch's intra-op worker threads; the previous mode returns on exit.

    Why: Adam's first moment of a weight whose gradient is mostly zero (encoder weights of
    pixels that are nearly always black, weights of ReLU units that rarely fire) decays
    by beta1 = 0.9 a step. About 800 steps after its last non-zero gradient it passes
    below fp32's smallest normal number (1.2e-38) and stays denormal for ~150 steps before
    it rounds to zero; on the CPU every operation on such a value takes a slow path. In
    the MNIST MLP ~60,000 moments are denormal at any time after the first epochs, and
    the fused Adam step takes 2.5x as long (benchmarks/denormals.py). Flushing changes
    only values below 1.2e-38, updates far too small to move an fp32 weight.

    ``torch.set_flush_denormal`` sets the calling thread's mode only; the worker threads
    of torch's OpenMP pool keep theirs, so the pool is restarted to inherit it. Nested
    uses share one switch."""
    global _flush_depth
    if not enabled:
        yield
        return
    with _flush_lock:
        first = _flush_depth == 0
        _flush_depth += 1
        was_on = denormals_flushed() if first else True
        if first and not was_on and torch.set_flush_denormal(True):
            _restart_thread_pools()
        else:
            was_on = True  # nothing to undo: already on, unsupported or nested
    try:
        yield
    finally:
        with _flush_lock:
            _flush_depth -= 1
            if _flush_depth == 0 and not was_on:
                torch.set_flush_denormal(False)
                _restart_thread_pools()


def pick_device(name: str, dist: DistContext | None) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DataError(f"train.device={name!r} but no CUDA device is available")
        if dist is not None:
            return torch.device("cuda", dist.local_rank)
    return torch.device(name)
