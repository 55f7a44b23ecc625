"""Where and how fast a training step runs: device choice, fused Adam (called directly,
``AdamStep``), bf16 autocast and torch.compile with a clean fallback. Each choice keeps
the maths of the step unchanged (bf16 autocast changes only the precision of matmuls;
weights and loss stay fp32). Denormal flushing, which changes values below 1.2e-38 only,
is in ``vaekit.train.denormals``.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.optim import optimizer as torch_optimizer

from vaekit.config import TrainConfig
from vaekit.errors import DataError
from vaekit.train.distributed import DistContext


def fused_adam_ok(device: torch.device) -> bool:
    """Fused Adam (one kernel for all parameters) where this build has it: same maths."""
    try:
        probe = torch.zeros(1, device=device, requires_grad=True)
        torch.optim.Adam([probe], fused=True)
        return True
    except Exception:  # any failure of the probe (a build without it, a broken compiler set-up)
        return False


def autocast_dtype(config: TrainConfig, device: torch.device):
    """bf16 autocast when asked (``precision=bf16``, or ``auto`` with ``fast``) and the
    hardware has bf16 matmuls; an explicit ``fp32`` wins over ``fast``."""
    if config.precision == "fp32" or (config.precision == "auto" and not config.fast):
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


# Inductor's options for every vaekit compile. ``cpp.vec_isa_ok``: trust the CPU's own
# feature flags (cpuid) for the SIMD instruction sets instead of proving each one by
# building and loading a test library. It skips the base test build of each instruction
# set (the narrower AVX512-bf16, VNNI and AMX checks still build); a first compile of the
# MNIST MLP's training step takes 11.8 s with it and 18.5 s without on a 2-core machine
# (``benchmarks/first_compile.py``). It is passed per compile rather than set globally,
# but inductor computes its list of instruction sets once per process: when vaekit
# compiles first, that list comes from the CPU's flags for every later compile in the
# process too. If this compiler cannot build for a flagged set after all, the compile
# fails on its first call and ``Compiled`` carries on eagerly, saying so.
COMPILE_OPTIONS = {"cpp.vec_isa_ok": True}


_NO_COMPILER: str | None = None


def _first_line(error: Exception, limit: int = 300) -> str:
    """``Type: message`` cut to its first line: inductor's errors carry several lines of
    advice (TORCHDYNAMO_VERBOSE, TORCH_LOGS) that do not belong in a one-line report. An
    error that dynamo wrapped (``BackendCompilerFailed``) is reported by the one inside."""
    while getattr(error, "inner_exception", None) is not None:
        error = error.inner_exception
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Compiled(torch.nn.Module):
    """torch.compile of a module or function (the training forward, the IW estimator's
    log weights), with a clean fallback to eager execution when the compiler is unavailable
    or fails on it (reported once, naming what continues eagerly). A compiled training
    step builds its backward graph at its first backward, outside this guard; the trainer
    catches that failure, calls ``give_up`` and runs the batch again eagerly."""

    def __init__(self, net: Callable, log: Callable[[str], None], doing: str = "training", dynamic: bool = False):
        super().__init__()
        self.eager = net
        self.log = log
        self.doing = doing
        if _NO_COMPILER:  # an earlier compile in this process found no working C++ compiler
            self.fn = None
            log(f"torch.compile unavailable ({_NO_COMPILER}); {doing} eagerly")
            return
        try:
            self.fn = torch.compile(net, dynamic=dynamic, options=COMPILE_OPTIONS)
        except Exception as e:  # no compiler on this platform
            self.fn = None
            log(f"torch.compile unavailable ({_first_line(e)}); {doing} eagerly")

    def give_up(self, error: Exception) -> None:
        """Stop using the compiled function after ``error``; say so in one line."""
        global _NO_COMPILER
        self.fn = None
        reason = _first_line(error)
        if "InvalidCxxCompiler" in reason:  # the error's type, or inductor's first line naming it
            _NO_COMPILER = reason  # later compiles in this process would fail the same way: skip them
        self.log(f"torch.compile failed ({reason}); {self.doing} eagerly")

    def forward(self, *args):
        if self.fn is not None:
            try:
                return self.fn(*args)
            except Exception as e:  # compilation happens on the first call
                self.give_up(e)
        return self.eager(*args)


class AdamStep:
    """``optimizer.step()`` and ``zero_grad`` for a fused Adam, with torch.optim's per-step
    Python left out: one call of the fused kernel that ``Adam(fused=True).step()`` itself
    ends in (``torch._fused_adam_``), on the optimizer's own state tensors, so its state
    dict, checkpoints and results are unchanged (a test checks they are bit-identical).

    Why: the wrapper around that kernel (state look-ups per parameter, grouping by device
    and dtype, profiler hooks) costs ~80 µs a step on the 784-400-20 MLP (256 against 336
    µs, ``benchmarks/step_costs.py``), ~2% of a batch-128 step. Whatever the direct call
    does not cover goes through ``optimizer.step()``, checked at every step (a checkpoint
    may bring other flags): the first step (which creates the state), a parameter without
    a gradient, several parameter groups, parameters on several devices or of several
    dtypes, complex parameters, amsgrad, capturable, differentiable or decoupled weight
    decay, a non-fused Adam, and registered optimizer step hooks.
    """

    def __init__(self, optimizer: torch.optim.Optimizer):
        self.optimizer = optimizer
        groups = optimizer.param_groups
        self.params = list(groups[0]["params"]) if len(groups) == 1 else []
        self.uniform = len({(p.device, p.dtype) for p in self.params}) == 1 and not any(
            p.is_complex() for p in self.params)

    @property
    def direct(self) -> bool:
        """Whether the next step can be the one fused call (the flags are read each time)."""
        opt, groups = self.optimizer, self.optimizer.param_groups
        if not (hasattr(torch, "_fused_adam_") and isinstance(opt, torch.optim.Adam) and len(groups) == 1
                and self.uniform and groups[0]["params"] == self.params):
            return False
        g = groups[0]
        hooks = (opt._optimizer_step_pre_hooks, opt._optimizer_step_post_hooks,
                 getattr(torch_optimizer, "_global_optimizer_pre_hooks", {}),
                 getattr(torch_optimizer, "_global_optimizer_post_hooks", {}))
        return (bool(g.get("fused")) and not g["amsgrad"] and not g.get("differentiable")
                and not g.get("capturable") and not g.get("decoupled_weight_decay") and not any(hooks))

    def zero_grad(self) -> None:
        """What ``optimizer.zero_grad(set_to_none=True)`` does, without its profiler wrapper."""
        for group in self.optimizer.param_groups:
            for p in group["params"]:
                p.grad = None

    def step(self) -> None:
        grads = [p.grad for p in self.params]
        states = [self.optimizer.state.get(p) for p in self.params]
        if any(g is None for g in grads) or not all(states) or not self.direct:
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


def check_train_settings(config: TrainConfig, dist: DistContext | None = None) -> None:
    """The trainer's device and precision checks, for a caller that must fail before it
    writes anything (a run directory, or over an old run with ``--overwrite``)."""
    autocast_dtype(config, pick_device(config.device, dist))


def pick_device(name: str, dist: DistContext | None) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DataError(f"train.device={name!r} but no CUDA device is available")
        if dist is not None:
            return torch.device("cuda", dist.local_rank)
    return torch.device(name)
