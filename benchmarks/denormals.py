"""What denormal numbers cost a long MNIST training run, and what flushing them saves.

Adam's first moment of a weight whose gradient is mostly zero (encoder weights of
nearly always black pixels, weights of ReLU units that rarely fire) decays by 0.9 a step
until it falls under fp32's smallest normal number (1.2e-38); arithmetic on such
denormal values takes the CPU's slow path. This script trains the
784-400-20 Bernoulli VAE (fp32, batch 128, Adam lr 1e-3: vaekit's default settings) on
MNIST for several epochs with ``train.flush_denormals`` off and on, interleaved, and
reports per epoch the training samples/s and the milliseconds of the Adam step, plus how
many entries of Adam's moment estimates are denormal at the end. Pythae's pipeline, which leaves
the CPU's mode alone, runs the same epochs as shipped and inside vaekit's
``flush_denormals`` context, to show the effect is the model's, not the toolkit's.

    VAEKIT_DATA_DIR=../shared/data python benchmarks/denormals.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, now, versions, write_results  # noqa: E402
from throughput import mnist_like, mnist_trainer, pythae_epochs  # noqa: E402

from vaekit.train.denormals import flush_denormals  # noqa: E402

TINY = torch.finfo(torch.float32).tiny


def vaekit_run(x: torch.Tensor, epochs: int, flush: bool) -> dict:
    trainer = mnist_trainer(x, epochs, 128, 1e-3, flush_denormals=flush)
    step = trainer.adam.step  # what the trainer calls for each update
    adam: list[tuple[int, float]] = []

    def timed_step(*args, **kwargs):
        start = time.perf_counter()
        out = step(*args, **kwargs)
        adam.append((trainer.global_step, time.perf_counter() - start))
        return out

    trainer.adam.step = timed_step
    history = trainer.fit().history
    per_epoch = [[] for _ in history]
    for global_step, seconds in adam:
        per_epoch[min(global_step // trainer.steps_per_epoch, len(history) - 1)].append(seconds)
    moments = torch.cat([state[k].flatten() for state in trainer.optimizer.state.values()
                         for k in ("exp_avg", "exp_avg_sq")])
    return {"samples_per_second": [round(h["samples_per_second"]) for h in history],
            "adam_ms": [round(1e3 * sum(s) / len(s), 3) for s in per_epoch],
            "adam_moments": moments.numel(), "denormal_adam_moments": int(((moments != 0) & (moments.abs() < TINY)).sum())}


def pythae_run(x: torch.Tensor, epochs: int, flush: bool) -> dict:
    data = torch.bernoulli(x, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    with flush_denormals(flush):
        seconds = pythae_epochs(data, epochs, 128, 1e-3)
    return {"samples_per_second": [round(len(x) / s) for s in seconds]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=60000, help="training examples per epoch")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--no-pythae", action="store_true")
    args = p.parse_args()
    x = mnist_like(args.n)
    runs: dict[str, list[dict]] = {}
    systems = [("vaekit", vaekit_run)] + ([] if args.no_pythae else [("pythae", pythae_run)])
    for rep in range(args.reps):
        for name, run in systems:
            for flush in (False, True):
                key = f"{name}_{'flush' if flush else 'denormals'}"
                runs.setdefault(key, []).append(run(x, args.epochs, flush))
                print(rep, key, runs[key][-1], flush=True)

    def median_over_reps(key: str, field: str) -> list[float]:
        return [statistics.median(r[field][e] for r in runs[key]) for e in range(args.epochs)]

    table = {key: {"samples_per_second": median_over_reps(key, "samples_per_second"),
                   **({"adam_ms": median_over_reps(key, "adam_ms")} if "adam_ms" in runs[key][0] else {})}
             for key in runs}
    late = {key: statistics.median(v["samples_per_second"][args.epochs // 2:]) for key, v in table.items()}
    metrics = {"per_epoch": table, "late_epochs_sps": late,
               "vaekit_flush_speedup_late": round(late["vaekit_flush"] / late["vaekit_denormals"], 3),
               "denormal_adam_moments_at_end": {k: [r["denormal_adam_moments"] for r in v]
                                                for k, v in runs.items() if k.startswith("vaekit")},
               "runs": runs}
    if "pythae_flush" in late:
        metrics["pythae_flush_speedup_late"] = round(late["pythae_flush"] / late["pythae_denormals"], 3)
    payload = {"benchmark": "denormals", "date": now(), "machine": machine(), "versions": versions("pythae"),
               "command": " ".join(sys.argv), "config": vars(args), "metrics": metrics}
    steps = -(-args.n // 128)
    lines = ["| run | " + " | ".join(f"epoch {e + 1}" for e in range(args.epochs)) + " |",
             "|---|" + "---|" * args.epochs]
    for key, v in table.items():
        lines.append(f"| {key} samples/s | " + " | ".join(f"{s:.0f}" for s in v["samples_per_second"]) + " |")
        if "adam_ms" in v:
            lines.append(f"| {key} Adam ms | " + " | ".join(f"{s:.2f}" for s in v["adam_ms"]) + " |")
    md = "\n".join(lines) + (
        f"\n\nMNIST 784-400-20 Bernoulli VAE, fp32, batch 128 ({steps} steps an epoch), Adam lr 1e-3; median of "
        f"{args.reps} interleaved repetitions. Second half of the run (epochs {args.epochs // 2 + 1}-{args.epochs}): "
        f"vaekit {late['vaekit_flush']:.0f} samples/s flushing denormals, {late['vaekit_denormals']:.0f} keeping them "
        f"({metrics['vaekit_flush_speedup_late']:.2f}x)"
        + ("" if "pythae_flush" not in late else
           f"; Pythae {late['pythae_denormals']:.0f} as shipped, {late['pythae_flush']:.0f} inside vaekit's "
           f"flush_denormals ({metrics['pythae_flush_speedup_late']:.2f}x)")
        + f". Denormal entries in Adam's moments at the end (of {runs['vaekit_flush'][0]['adam_moments']:,}): keeping them "
        f"{metrics['denormal_adam_moments_at_end']['vaekit_denormals']}, flushing "
        f"{metrics['denormal_adam_moments_at_end']['vaekit_flush']}."
        f"\n\n{payload['machine']['cpu']}, {payload['machine']['cores']} cores, torch {payload['versions']['torch']}; "
        f"{payload['date']}.\n")
    write_results("denormals", payload, md)


if __name__ == "__main__":
    main()
