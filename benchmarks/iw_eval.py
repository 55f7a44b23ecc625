"""Importance-weighted NLL evaluation speed: vaekit's chunked, encode-once estimator
against Pythae's ``get_nll``, same 784-400-20 networks, same images, interleaved.

Speed is in importance samples per second (images x k / seconds); the decoder's fp32
roofline is the matmul peak measured in the same run divided by the decoder's FLOPs
per sample (2 x (20*400 + 400*784)). vaekit is measured eagerly and compiled
(``iw_nll(..., compile=True)``, what it picks by itself for a full test set); the compiled
estimator is warmed up once before the clock starts, and that compile time is reported.
A third row compiles the log weights alone and merges each chunk into the running
logsumexp eagerly: what the merge's joining the compiled call is worth.

    VAEKIT_DATA_DIR=../shared/data python benchmarks/iw_eval.py --images 200 --k 5000
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
from throughput import HIDDEN, LATENT, matmul_peak, mnist_like, pythae_vae  # noqa: E402

from vaekit.builders import build_vae, image_vae_description  # noqa: E402
from vaekit.config import ModelConfig  # noqa: E402
from vaekit.core.distributions import DiagGaussian  # noqa: E402
from vaekit.metrics.likelihood import iw_nll  # noqa: E402
from vaekit.train import Tensors  # noqa: E402
from vaekit.train.acceleration import Compiled  # noqa: E402

DECODER_FLOP = 2 * (LATENT * HIDDEN + HIDDEN * 784)


def weights_only_chunk(model):
    """The chunk step with only :meth:`VAE.log_weights` compiled and the merge eager (how
    the compiled estimator worked before the merge joined the compiled call)."""
    compiled = Compiled(lambda x, mean, log_var, eps: model.log_weights(x, eps.shape[0], None,
                                                                        DiagGaussian(mean, log_var), eps),
                        print, doing="evaluating")

    def merge(total, x, y, q, eps):
        return torch.logaddexp(total, torch.logsumexp(compiled(x, q.mean, q.log_var, eps), 0))
    return merge


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=200)
    p.add_argument("--k", type=int, default=5000)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--name", default="iw_eval", help="results file name (benchmarks/results/NAME.{json,md})")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    x = torch.bernoulli(mnist_like(args.images))
    torch.manual_seed(0)
    ours = build_vae(image_vae_description(ModelConfig(latent_dim=LATENT, hidden=[HIDDEN]), (1, 28, 28))).eval()
    theirs = pythae_vae().eval()
    speed: dict[str, list[float]] = {"vaekit": [], "vaekit_weights_only": [], "vaekit_eager": [], "pythae": []}
    t = time.perf_counter()
    iw_nll(ours, Tensors(x[:50]), k=100, chunk=100, batch_size=50, compile=True)  # the one shape compiled
    compile_seconds = time.perf_counter() - t
    weights_only = weights_only_chunk(ours)
    with torch.inference_mode():
        ours.iwae_bound(x[:50], 100, chunk=100, merge_chunk=weights_only)
    peaks = []
    for _ in range(args.reps):
        peaks.append(matmul_peak(torch.float32))
        for name, compiled in (("vaekit", True), ("vaekit_eager", False)):
            t = time.perf_counter()
            iw_nll(ours, Tensors(x), k=args.k, chunk=100, batch_size=50, compile=compiled)
            speed[name].append(args.images * args.k / (time.perf_counter() - t))
        t = time.perf_counter()
        with torch.inference_mode():
            torch.manual_seed(0)
            for i in range(0, args.images, 50):
                ours.iwae_bound(x[i:i + 50], args.k, chunk=100, merge_chunk=weights_only)
        speed["vaekit_weights_only"].append(args.images * args.k / (time.perf_counter() - t))
        t = time.perf_counter()
        with torch.no_grad():
            theirs.get_nll(x, n_samples=args.k, batch_size=min(args.k, 1000))
        speed["pythae"].append(args.images * args.k / (time.perf_counter() - t))
        print({k: round(v[-1]) for k, v in speed.items()}, flush=True)
    med = {k: statistics.median(v) for k, v in speed.items()}
    roof = statistics.median(peaks) / DECODER_FLOP
    metrics = {"vaekit_iw_sps": round(med["vaekit"]), "vaekit_weights_only_iw_sps": round(med["vaekit_weights_only"]),
               "vaekit_eager_iw_sps": round(med["vaekit_eager"]),
               "pythae_iw_sps": round(med["pythae"]), "ratio": round(med["vaekit"] / med["pythae"], 2),
               "eager_ratio": round(med["vaekit_eager"] / med["pythae"], 2),
               "compile_seconds": round(compile_seconds, 1), "threads": torch.get_num_threads(), "fp32_decoder_roofline_sps": round(roof),
               "fraction_of_roofline": round(med["vaekit"] / roof, 3), "samples": speed}
    payload = {"benchmark": "iw_eval", "date": now(), "machine": machine(), "versions": versions("pythae"),
               "command": " ".join(sys.argv), "config": vars(args), "metrics": metrics}
    md = (f"| estimator | importance samples/s | vs Pythae |\n|---|---|---|\n"
          f"| vaekit `iw_nll`, compiled (chunk 100, 50 images a batch) | {metrics['vaekit_iw_sps']} | "
          f"{metrics['ratio']}x |\n"
          f"| vaekit, compiled log weights only (the merge into the running logsumexp eager) | "
          f"{metrics['vaekit_weights_only_iw_sps']} | {med['vaekit_weights_only'] / med['pythae']:.2f}x |\n"
          f"| vaekit `iw_nll`, eager | {metrics['vaekit_eager_iw_sps']} | {metrics['eager_ratio']}x |\n"
          f"| Pythae 0.1.2 `get_nll` | {metrics['pythae_iw_sps']} | 1.00x |\n"
          f"| fp32 decoder roofline | {metrics['fp32_decoder_roofline_sps']} | |\n\n"
          f"Compiled: {metrics['fraction_of_roofline']:.0%} of the roofline, after {metrics['compile_seconds']} s "
          f"of compiling (once per shape, outside the clock).\n\n"
          f"k = {args.k}, {args.images} images, {args.reps} interleaved repetitions; {metrics['threads']} torch "
          f"thread(s); {payload['machine']['cpu']}, "
          f"torch {payload['versions']['torch']}; {payload['date']}.\n")
    write_results(args.name, payload, md)
    print(md)


if __name__ == "__main__":
    main()
