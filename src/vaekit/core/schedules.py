"""Schedules for the KL weight beta and the free-bits bound, both against KL vanishing.

- Linear warm-up: Bowman et al. 2016, "Generating Sentences from a Continuous Space";
  Sønderby et al. 2016, "Ladder Variational Autoencoders".
- Sigmoid annealing: Bowman et al. 2016 (logistic schedule).
- Cyclical annealing: Fu et al. 2019, "Cyclical Annealing Schedule" (ramp for a fraction
  ``ratio`` of each cycle, then hold at the maximum).
- Free bits: Kingma et al. 2016, "Improved Variational Inference with Inverse
  Autoregressive Flow", eq. (15): the KL term of each latent dimension is
  max(lambda, KL_j), where KL_j is averaged over the minibatch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

KINDS = ("constant", "linear", "sigmoid", "cyclical")


@dataclass(frozen=True)
class BetaSchedule:
    """beta as a function of the global training step.

    ``kind``: constant | linear | sigmoid | cyclical. ``value`` is the final (maximum) beta,
    ``start`` the initial one, ``warmup_steps`` the length of the ramp (of one cycle for
    cyclical), ``cycles`` the number of cycles and ``ratio`` the ramp's share of a cycle.
    """

    kind: str = "constant"
    value: float = 1.0
    start: float = 0.0
    warmup_steps: int = 0
    cycles: int = 4
    ratio: float = 0.5

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown beta schedule {self.kind!r}; choose one of {KINDS}")
        if self.value < 0 or self.start < 0:
            raise ValueError(f"beta must be >= 0, got value={self.value} start={self.start}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if not 0 < self.ratio <= 1:
            raise ValueError(f"ratio must be in (0, 1], got {self.ratio}")

    def __call__(self, step: int) -> float:
        if self.kind == "constant" or self.warmup_steps == 0:
            return self.value
        if self.kind == "linear":
            frac = min(1.0, step / self.warmup_steps)
        elif self.kind == "sigmoid":
            # logistic centred at half the warm-up, reaching ~0.9933 of the ramp at its end
            frac = 1.0 / (1.0 + math.exp(-10.0 * (step / self.warmup_steps - 0.5)))
            if step >= self.warmup_steps:
                frac = 1.0
        else:  # cyclical: warmup_steps is the period of one cycle
            if step >= self.cycles * self.warmup_steps:
                frac = 1.0
            else:
                pos = (step % self.warmup_steps) / self.warmup_steps
                frac = min(1.0, pos / self.ratio)
        return self.start + (self.value - self.start) * frac


def free_bits_kl(kl_per_dim: Tensor, free_bits: float) -> Tensor:
    """KL term with free bits: sum_j max(lambda, mean_batch KL_j), returned per example.

    ``kl_per_dim`` is (B, D). With ``free_bits`` = 0 this is the plain per-example KL.
    The bound is applied to the batch mean of each dimension (Kingma et al. 2016), and the
    result is spread evenly over the batch so that its mean is the bounded KL.
    """
    if free_bits <= 0:
        return kl_per_dim.sum(-1)
    batch_mean = kl_per_dim.mean(0)
    bounded = torch.clamp(batch_mean, min=free_bits)
    # keep per-example gradients of dimensions above the bound; constant ones below it
    active = (batch_mean > free_bits).to(kl_per_dim.dtype)
    per_example = (kl_per_dim * active).sum(-1) + ((1 - active) * bounded).sum()
    return per_example
