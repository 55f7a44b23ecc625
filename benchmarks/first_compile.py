"""What a first compile of the fast path's training step costs, with and without
``acceleration.COMPILE_OPTIONS``.

Each measurement is a fresh Python process with an empty inductor cache (a first compile
ever on the machine): it builds the 784-400-20 Bernoulli VAE's trainer with the fast
settings (compile + bf16, batch 1024) and times its first training step, which compiles
the binarization threshold, the forward and the backward graphs, against its second.
The two settings alternate, several repetitions each:

- ``vaekit``: the options vaekit passes to ``torch.compile`` (``cpp.vec_isa_ok``: the
  SIMD instruction sets are taken from the CPU's feature flags, which skips the base test
  build of each; the narrower AVX512-bf16, VNNI and AMX checks still build);
- ``inductor_default``: no options, so inductor proves each instruction set by building
  and loading a test library first.

    python benchmarks/first_compile.py --reps 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, now, versions, write_results  # noqa: E402

SETTINGS = ("vaekit", "inductor_default")

CHILD = r"""
import json, sys, time
sys.path.insert(0, {bench!r})
import torch
from vaekit.train import acceleration
if {default!r}:
    acceleration.COMPILE_OPTIONS = None
from throughput import mnist_like, mnist_trainer
x = mnist_like(60000)
trainer = mnist_trainer(x, 1, {batch!r}, {lr!r}, fast={fast!r}, precision={precision!r}, compile={compile!r})
batch = x[:{batch!r}]
start = time.perf_counter()
trainer._step(batch, None)
first = time.perf_counter() - start
start = time.perf_counter()
trainer._step(batch, None)
second = time.perf_counter() - start
print(json.dumps({{"first_step_s": first, "second_step_s": second,
                   "compiled": getattr(trainer.net, "fn", None) is not None}}))
"""


def first_step(default: bool, batch: int = 1024, lr: float = 4e-3, fast: bool = True, precision: str = "auto",
               compile: bool = False, cache: str | None = None) -> dict:
    """One fresh process; the first and second step's seconds (by default the fast
    settings: compile + bf16, batch 1024). The compiler cache is an empty one, or ``cache``
    (a directory an earlier process filled: a later run on the same machine)."""
    with tempfile.TemporaryDirectory(prefix="vaekit-inductor-") as tmp:
        env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache or tmp)
        env.pop("TORCHINDUCTOR_VEC_ISA_OK", None)
        code = CHILD.format(bench=str(Path(__file__).resolve().parent), default=default, batch=batch, lr=lr,
                            fast=fast, precision=precision, compile=compile)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"first-compile child failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args()
    runs: dict[str, list[dict]] = {s: [] for s in SETTINGS}
    for rep in range(args.reps):
        for s in SETTINGS:
            runs[s].append(first_step(default=s == "inductor_default"))
            print(f"rep {rep} {s}: {runs[s][-1]}", flush=True)
    med = {s: statistics.median(r["first_step_s"] for r in runs[s]) for s in SETTINGS}
    payload = {
        "benchmark": "first_compile", "date": now(), "machine": machine(), "versions": versions(),
        "command": "python benchmarks/first_compile.py " + " ".join(sys.argv[1:]),
        "model": "784-400-20 Bernoulli MLP VAE, compile + bf16, batch 1024",
        "metrics": {"first_step_seconds": {s: round(med[s], 2) for s in SETTINGS},
                    "saved_seconds": round(med["inductor_default"] - med["vaekit"], 2)},
        "runs": runs,
    }
    lines = ["| compile options | first training step, s (median) | each repetition | second step, ms |",
             "|---|---|---|---|"]
    for s in SETTINGS:
        reps = ", ".join(f"{r['first_step_s']:.2f}" for r in runs[s])
        second = statistics.median(r["second_step_s"] for r in runs[s]) * 1e3
        lines.append(f"| {s} | {med[s]:.2f} | {reps} | {second:.1f} |")
    m = payload["machine"]
    lines += ["", f"Fresh process and empty inductor cache for each measurement; the first step compiles the "
              f"binarization threshold and the training graphs. {m['cpu']}, {m['cores']} cores, torch "
              f"{payload['versions']['torch']}; {args.reps} alternating repetitions; {payload['date']}.", ""]
    write_results("first_compile", payload, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
