"""Whether compiling the training step pays for its first compile, at vaekit's default
settings and at the fast path's: why the trainer compiles only when asked.

For each setting of the 784-400-20 Bernoulli MNIST VAE, the same model trains eagerly
and compiled, interleaved, several repetitions; the speed is the median samples/s over
epochs 2 to ``--epochs`` (the first carries the compile). A first compile ever is timed
as ``first_compile.py`` does (a fresh process with an empty inductor cache: the first
training step's seconds minus the second's), and so is a later one (a fresh process whose
inductor cache an earlier process filled: the next run on the same machine). Break-even:
how many epochs of 60,000 images the compiled speed needs to win back the compile.

- ``default``: fp32, batch 128, lr 1e-3 (``train.compile=true`` against the default);
- ``fast``: bf16 autocast, batch 1024, lr 4e-3 (``train.fast=true`` against the same
  settings with the compiler off, ``train.precision=bf16``).

    python benchmarks/compile_payoff.py --reps 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, now, versions, write_results  # noqa: E402
from first_compile import first_step  # noqa: E402
from throughput import mnist_like, mnist_trainer  # noqa: E402

SETTINGS = {
    "default": {"batch": 128, "lr": 1e-3, "eager": {"fast": False}, "compiled": {"fast": False, "compile": True}},
    "fast": {"batch": 1024, "lr": 4e-3, "eager": {"fast": False, "precision": "bf16"}, "compiled": {"fast": True}},
}
N_IMAGES = 60_000


def epoch_speed(x, name: str, compiled: bool, epochs: int) -> float:
    s = SETTINGS[name]
    trainer = mnist_trainer(x, epochs, s["batch"], s["lr"], **s["compiled" if compiled else "eager"])
    history = trainer.fit().history
    return statistics.median(h["samples_per_second"] for h in history[1:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--epochs", type=int, default=4)
    args = p.parse_args()
    x = mnist_like(N_IMAGES)
    speed = {(n, c): [] for n in SETTINGS for c in (False, True)}
    cold = {n: [] for n in SETTINGS}
    warm = {n: [] for n in SETTINGS}
    for rep in range(args.reps):
        for name, s in SETTINGS.items():
            for compiled in (False, True):
                speed[(name, compiled)].append(epoch_speed(x, name, compiled, args.epochs))
            with tempfile.TemporaryDirectory(prefix="vaekit-inductor-") as cache:
                for seconds in (cold[name], warm[name]):  # the same cache: empty, then filled
                    run = first_step(False, s["batch"], s["lr"], **s["compiled"], cache=cache)
                    seconds.append(run["first_step_s"] - run["second_step_s"])
            print(f"rep {rep} {name}: eager {speed[(name, False)][-1]:.0f}, compiled {speed[(name, True)][-1]:.0f} "
                  f"samples/s, compile {cold[name][-1]:.1f} s first ever, {warm[name][-1]:.1f} s later", flush=True)
    rows = {}
    for name in SETTINGS:
        eager, comp = statistics.median(speed[(name, False)]), statistics.median(speed[(name, True)])
        first_s, later_s = statistics.median(cold[name]), statistics.median(warm[name])
        saved_per_epoch = N_IMAGES / eager - N_IMAGES / comp
        rows[name] = {"eager_sps": round(eager), "compiled_sps": round(comp), "speedup": round(comp / eager, 3),
                      "first_compile_seconds": round(first_s, 2), "later_compile_seconds": round(later_s, 2),
                      "seconds_saved_per_epoch": round(saved_per_epoch, 3),
                      "break_even_epochs_first": round(first_s / saved_per_epoch, 1) if saved_per_epoch > 0 else None,
                      "break_even_epochs_later": round(later_s / saved_per_epoch, 1) if saved_per_epoch > 0 else None}
    payload = {"benchmark": "compile_payoff", "date": now(), "machine": machine(), "versions": versions(),
               "command": "python benchmarks/compile_payoff.py " + " ".join(sys.argv[1:]),
               "metrics": rows,
               "samples": {f"{n}_{'compiled' if c else 'eager'}": v for (n, c), v in speed.items()},
               "first_compile_seconds": cold, "later_compile_seconds": warm}
    lines = ["| settings | eager samples/s | compiled samples/s | speed-up | compile, s: first ever / later | "
             "saved per epoch, s | break-even, epochs: first / later |", "|---|---|---|---|---|---|---|"]
    labels = {"default": "default: fp32, batch 128", "fast": "fast: bf16, batch 1024"}
    for name, r in rows.items():
        lines.append(f"| {labels[name]} | {r['eager_sps']} | {r['compiled_sps']} | {r['speedup']:.2f}x | "
                     f"{r['first_compile_seconds']} / {r['later_compile_seconds']} | {r['seconds_saved_per_epoch']} | "
                     f"{r['break_even_epochs_first']} / {r['break_even_epochs_later']} |")
    m = payload["machine"]
    lines += ["", f"784-400-20 Bernoulli VAE, epochs of {N_IMAGES:,} MNIST-shaped images; speeds are medians over "
              f"epochs 2-{args.epochs} and {args.reps} interleaved repetitions; a first compile ever is a fresh "
              f"process with an empty inductor cache, a later one a fresh process with the cache the first filled. "
              f"{m['cpu']}, {m['cores']} cores, torch {payload['versions']['torch']}; {payload['date']}.", ""]
    write_results("compile_payoff", payload, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
