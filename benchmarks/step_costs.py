"""What the pieces of an MNIST training step cost, measured one by one.

The figures behind the README's performance notes: the Bernoulli log-likelihood as a fused
BCE kernel against the einsum form (forward + backward, one x per logit row), gradient
clipping with ``clip_grad_norm_`` against ``trainer.clip_gradients`` (784-400-20 MLP
gradients, below the bound; torch's ``get_total_norm`` alone), one fused Adam update and
zero_grad through ``torch.optim`` against ``acceleration.AdamStep``, the five large
matmuls of a batch-128 step against the machine's fp32 peak, binarization's threshold
(a comparison and a cast against clamp + ceil; and compiled, reading int16 noise against
the int32 noise vaekit draws), the random draw of dynamic binarization (torch float
uniforms, torch 64-bit integers, NumPy SFC64 words as vaekit draws them), and the gather of
a batch of images (advanced indexing against ``index_select``), and the compiled Bernoulli
term of an importance-sampling chunk (softplus form against vaekit's one-pass form) and of a
batch-1024 training step (BCE-with-logits against the one-pass form with its gradient).

    python benchmarks/step_costs.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, now, versions, write_results  # noqa: E402
from throughput import HIDDEN, LATENT  # noqa: E402

from vaekit.apps.image_data import dynamic_binarize  # noqa: E402
from vaekit.train.acceleration import AdamStep  # noqa: E402
from vaekit.train.gradients import clip_gradients  # noqa: E402


SHAPES = [(HIDDEN, 784), (HIDDEN,), (LATENT, HIDDEN), (LATENT,), (LATENT, HIDDEN), (LATENT,),
          (HIDDEN, LATENT), (HIDDEN,), (784, HIDDEN), (784,)]  # the MLP's parameters


def microseconds(fn, reps: int = 300) -> float:
    for _ in range(20):
        fn()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps * 1e6


def likelihood_costs(batch: int = 128) -> dict:
    logits = torch.randn(batch, 784, requires_grad=True)
    x = torch.bernoulli(torch.rand(batch, 784))

    def einsum():
        (torch.einsum("...d,...d->...", logits, x) - F.softplus(logits).sum(-1)).sum().backward()

    def bce():
        (-F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)).sum().backward()

    return {"einsum_us": microseconds(einsum), "fused_bce_us": microseconds(bce)}


def clipping_costs() -> dict:
    params = [torch.zeros(s, requires_grad=True) for s in SHAPES]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3  # norm well below the default bound of 100
    return {"clip_grad_norm_us": microseconds(lambda: torch.nn.utils.clip_grad_norm_(params, 100.0)),
            "get_total_norm_us": microseconds(lambda: torch.nn.utils.get_total_norm([p.grad for p in params])),
            "dot_norm_us": microseconds(lambda: torch.stack([torch.dot(g, g) for g in
                                                             (p.grad.reshape(-1) for p in params)]).sum().sqrt()),
            "clip_gradients_us": microseconds(lambda: clip_gradients(params, 100.0))}


def adam_costs() -> dict:
    """One Adam update of the 784-400-20 MLP's parameters (fused kernel), through
    ``torch.optim`` and through vaekit's ``AdamStep``; zero_grad both ways. The gradients
    are put back after each zero_grad, so the update runs on the same values each time."""
    out = {}
    for name in ("optimizer", "adam_step"):
        params = [torch.zeros(s, requires_grad=True) for s in SHAPES]
        grads = [torch.randn(s) * 1e-3 for s in SHAPES]
        for p, g in zip(params, grads):
            p.grad = g
        optimizer = torch.optim.Adam(params, lr=1e-6, fused=True)
        optimizer.step()  # creates the state
        adam = AdamStep(optimizer)

        def refill():
            for p, g in zip(params, grads):
                p.grad = g

        step = optimizer.step if name == "optimizer" else adam.step
        zero = (lambda: optimizer.zero_grad(set_to_none=True)) if name == "optimizer" else adam.zero_grad
        out[f"{name}_step_us"] = microseconds(step)
        out[f"{name}_zero_grad_us"] = microseconds(lambda: (zero(), refill())) - microseconds(refill)
    return out


def matmul_costs(batch: int = 128) -> dict:
    """The five large matmuls of a batch-128 step, alone: the forward of the encoder's
    first and the decoder's last layer, their weight gradients, and the decoder's input
    gradient; with the machine's fp32 peak at 2048^3, for the fraction they reach."""
    x, h = torch.rand(batch, 784), torch.rand(batch, HIDDEN)
    w_in, w_out = torch.randn(HIDDEN, 784), torch.randn(784, HIDDEN)
    b_in, b_out = torch.randn(HIDDEN), torch.randn(784)
    g_hidden, g_out = torch.randn(batch, HIDDEN), torch.randn(batch, 784)
    pieces = [lambda: torch.addmm(b_in, x, w_in.t()), lambda: g_hidden.t().mm(x),
              lambda: torch.addmm(b_out, h, w_out.t()), lambda: g_out.t().mm(h), lambda: g_out.mm(w_out)]
    total_us = sum(microseconds(f) for f in pieces)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    peak = 2 * 2048**3 / (microseconds(lambda: a @ b, reps=20) * 1e-6)
    achieved = 5 * 2 * batch * 784 * HIDDEN / (total_us * 1e-6)
    return {"five_large_us": total_us, "gflops": achieved / 1e9, "peak_gflops": peak / 1e9,
            "fraction_of_peak": achieved / peak}


def threshold_costs(batch: int = 1024) -> dict:
    """Dynamic binarization's threshold for a batch of MNIST images, as a comparison plus a
    bool-to-float cast against vaekit's clamp + ceil of the difference (same output)."""
    x = torch.randint(0, 256, (batch, 1, 28, 28)) / 255.0
    noise = dynamic_binarize.noise(x, torch.Generator().manual_seed(0))
    return {"compare_cast_us": microseconds(lambda: (noise < x * 65536 - 32768).float(), reps=100),
            "vaekit_us": microseconds(lambda: dynamic_binarize.apply(x, noise), reps=100)}


def compiled_microseconds(fn, call, reps: int, dynamic: bool = False) -> float:
    """Microseconds of ``call(compiled)``, ``compiled`` being ``fn`` under torch.compile with
    vaekit's options, compiled afresh (the compiler's caches reset before and after)."""
    from vaekit.train.acceleration import COMPILE_OPTIONS

    torch._dynamo.reset()
    compiled = torch.compile(fn, options=COMPILE_OPTIONS, dynamic=dynamic)
    try:
        return microseconds(lambda: call(compiled), reps=reps)
    finally:
        torch._dynamo.reset()


def compiled_threshold_costs(batch: int = 1024) -> dict:
    """The threshold compiled by torch.compile (as the fast path runs it), reading the noise
    as int16 against as int32: inductor vectorizes the int32 load and not the int16 one."""
    x = torch.randint(0, 256, (batch, 1, 28, 28)) / 255.0
    noise = dynamic_binarize.noise(x, torch.Generator().manual_seed(0))
    return {name: compiled_microseconds(dynamic_binarize.apply, lambda c, n=n: c(x, n), reps=100, dynamic=True)
            for name, n in (("int16_us", noise.to(torch.int16)), ("int32_us", noise))}


def iw_likelihood_costs(samples: int = 100, images: int = 50) -> dict:
    """The Bernoulli term of one importance-sampling chunk (100 samples x 50 MNIST images of
    logits against their 50 images), compiled: the softplus form (an exp and a log1p a pixel)
    against vaekit's one-pass form (one exp a pixel, the log of 16 factors' product)."""
    from vaekit.core.distributions import _bernoulli_log_prob_one_pass

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(samples, images, 784, generator=g) * 4 - 2
    x = torch.bernoulli(torch.rand(images, 784, generator=g))
    forms = (("softplus_us", lambda p, x: (p * x - F.softplus(p)).sum(-1)),
             ("one_pass_us", _bernoulli_log_prob_one_pass))
    return {name: compiled_microseconds(fn, lambda c: c(logits, x), reps=50) for name, fn in forms}


def training_likelihood_costs(batch: int = 1024) -> dict:
    """The Bernoulli term of a training step (one x per row of logits), forward + backward,
    compiled: BCE-with-logits against vaekit's one-pass form with its analytic gradient."""
    from vaekit.core.distributions import _BernoulliOnePass

    g = torch.Generator().manual_seed(0)
    base = torch.randn(batch, 784, generator=g) * 4 - 2
    x = torch.bernoulli(torch.rand(batch, 784, generator=g))
    forms = (("bce_us", lambda p, x: -F.binary_cross_entropy_with_logits(p, x, reduction="none").sum(-1)),
             ("one_pass_us", _BernoulliOnePass.apply))

    def step(compiled):
        compiled(base.clone().requires_grad_(), x).backward()
    return {name: compiled_microseconds(lambda p, x, form=form: form(p, x).sum(), step, reps=100)
            for name, form in forms}


def gather_costs(batch: int = 1024, n: int = 60_000) -> dict:
    """A random batch of MNIST-shaped images out of a resident training set."""
    data = torch.rand(n, 1, 28, 28)
    idx = torch.randperm(n)[:batch]
    return {"advanced_indexing_us": microseconds(lambda: data[idx]),
            "index_select_us": microseconds(lambda: data.index_select(0, idx))}


def draw_costs(batch: int) -> dict:
    x = torch.rand(batch, 1, 28, 28)
    g = torch.Generator().manual_seed(0)
    n = x.numel()
    return {
        "torch_float_uniform_us": microseconds(lambda: torch.rand(x.shape, generator=g)),
        "torch_int64_words_us": microseconds(
            lambda: torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), generator=g, dtype=torch.int64)),
        "vaekit_sfc64_us": microseconds(lambda: dynamic_binarize.noise(x, g)),
    }


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    torch.manual_seed(0)
    metrics = {"threads": torch.get_num_threads(), "likelihood_b128": likelihood_costs(),
               "clipping": clipping_costs(), "adam": adam_costs(), "matmuls_b128": matmul_costs(),
               "threshold_b1024": threshold_costs(),
               "compiled_threshold_b1024": compiled_threshold_costs(), "gather_b1024": gather_costs(),
               "iw_likelihood_chunk": iw_likelihood_costs(), "train_likelihood_b1024": training_likelihood_costs(),
               "draw_b128": draw_costs(128), "draw_b1024": draw_costs(1024)}
    metrics = {k: ({kk: round(vv, 3 if kk == "fraction_of_peak" else 1) for kk, vv in v.items()} if isinstance(v, dict) else v) for k, v in metrics.items()}
    payload = {"benchmark": "step_costs", "date": now(), "machine": machine(), "versions": versions(),
               "command": " ".join(sys.argv), "metrics": metrics}
    m = metrics
    lines = ["| piece | alternative | µs | vaekit | µs |", "|---|---|---|---|---|",
             f"| Bernoulli log-lik., batch 128, fwd + bwd | einsum | {m['likelihood_b128']['einsum_us']} | "
             f"fused BCE | {m['likelihood_b128']['fused_bce_us']} |",
             f"| gradient clipping (norm below bound) | clip_grad_norm_ | {m['clipping']['clip_grad_norm_us']} | "
             f"clip_gradients | {m['clipping']['clip_gradients_us']} |",
             f"| gradient norm alone | get_total_norm | {m['clipping']['get_total_norm_us']} | "
             f"sum of dot products | {m['clipping']['dot_norm_us']} |",
             f"| Adam update, fused kernel | optimizer.step | {m['adam']['optimizer_step_us']} | "
             f"AdamStep.step | {m['adam']['adam_step_step_us']} |",
             f"| zero_grad | optimizer.zero_grad | {m['adam']['optimizer_zero_grad_us']} | "
             f"AdamStep.zero_grad | {m['adam']['adam_step_zero_grad_us']} |",
             f"| five large matmuls of a batch-128 step, alone | fp32 peak {m['matmuls_b128']['peak_gflops']} "
             f"GFLOP/s | | {m['matmuls_b128']['gflops']} GFLOP/s ({m['matmuls_b128']['fraction_of_peak']:.0%}) | "
             f"{m['matmuls_b128']['five_large_us']} |"]
    lines.append(f"| binarization threshold, batch 1024 | compare + cast | {m['threshold_b1024']['compare_cast_us']} "
                 f"| clamp + ceil | {m['threshold_b1024']['vaekit_us']} |")
    lines.append(f"| binarization threshold compiled, batch 1024 | int16 noise | "
                 f"{m['compiled_threshold_b1024']['int16_us']} | int32 noise | {m['compiled_threshold_b1024']['int32_us']} |")
    lines.append(f"| batch gather, 1024 of 60,000 images | x[idx] | {m['gather_b1024']['advanced_indexing_us']} | "
                 f"index_select | {m['gather_b1024']['index_select_us']} |")
    lines.append(f"| IW-NLL Bernoulli term, 100 x 50 x 784 logits, compiled | softplus form | "
                 f"{m['iw_likelihood_chunk']['softplus_us']} | one pass, log of 16 factors | "
                 f"{m['iw_likelihood_chunk']['one_pass_us']} |")
    lines.append(f"| Bernoulli term, batch 1024, fwd + bwd, compiled | BCE-with-logits | "
                 f"{m['train_likelihood_b1024']['bce_us']} | one pass, analytic gradient | "
                 f"{m['train_likelihood_b1024']['one_pass_us']} |")
    for b in (128, 1024):
        d = m[f"draw_b{b}"]
        lines.append(f"| binarization draw, batch {b} | torch floats / torch int64 words | "
                     f"{d['torch_float_uniform_us']} / {d['torch_int64_words_us']} | SFC64 words (int32) | "
                     f"{d['vaekit_sfc64_us']} |")
    lines += ["", f"{payload['machine']['cpu']}, {metrics['threads']} threads, torch {payload['versions']['torch']}; "
                  f"{payload['date']}."]
    write_results("step_costs", payload, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
