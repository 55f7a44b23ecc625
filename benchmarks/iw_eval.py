"""Importance-weighted NLL evaluation speed: vaekit's chunked, encode-once estimator
against Pythae's ``get_nll``, same 784-400-20 networks, same images, interleaved.

Speed is in importance samples per second (images x k / seconds); the decoder's fp32
roofline is the matmul peak measured in the same run divided by the decoder's FLOPs
per sample (2 x (20*400 + 400*784)).

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
from vaekit.metrics.likelihood import iw_nll  # noqa: E402
from vaekit.train import Tensors  # noqa: E402

DECODER_FLOP = 2 * (LATENT * HIDDEN + HIDDEN * 784)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=200)
    p.add_argument("--k", type=int, default=5000)
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args()
    x = torch.bernoulli(mnist_like(args.images))
    torch.manual_seed(0)
    ours = build_vae(image_vae_description(ModelConfig(latent_dim=LATENT, hidden=[HIDDEN]), (1, 28, 28))).eval()
    theirs = pythae_vae().eval()
    speed: dict[str, list[float]] = {"vaekit": [], "pythae": []}
    peaks = []
    for _ in range(args.reps):
        peaks.append(matmul_peak(torch.float32))
        t = time.perf_counter()
        iw_nll(ours, Tensors(x), k=args.k, chunk=500, batch_size=50)
        speed["vaekit"].append(args.images * args.k / (time.perf_counter() - t))
        t = time.perf_counter()
        with torch.no_grad():
            theirs.get_nll(x, n_samples=args.k, batch_size=min(args.k, 1000))
        speed["pythae"].append(args.images * args.k / (time.perf_counter() - t))
        print({k: round(v[-1]) for k, v in speed.items()}, flush=True)
    med = {k: statistics.median(v) for k, v in speed.items()}
    roof = statistics.median(peaks) / DECODER_FLOP
    metrics = {"vaekit_iw_sps": round(med["vaekit"]), "pythae_iw_sps": round(med["pythae"]),
               "ratio": round(med["vaekit"] / med["pythae"], 2), "fp32_decoder_roofline_sps": round(roof),
               "fraction_of_roofline": round(med["vaekit"] / roof, 3), "samples": speed}
    payload = {"benchmark": "iw_eval", "date": now(), "machine": machine(), "versions": versions("pythae"),
               "command": " ".join(sys.argv), "config": vars(args), "metrics": metrics}
    md = (f"| estimator | importance samples/s | vs Pythae |\n|---|---|---|\n"
          f"| vaekit `iw_nll` (chunk 500, 50 images a batch) | {metrics['vaekit_iw_sps']} | {metrics['ratio']}x |\n"
          f"| Pythae 0.1.2 `get_nll` | {metrics['pythae_iw_sps']} | 1.00x |\n"
          f"| fp32 decoder roofline | {metrics['fp32_decoder_roofline_sps']} | |\n\n"
          f"k = {args.k}, {args.images} images, {args.reps} interleaved repetitions; {payload['machine']['cpu']}, "
          f"torch {payload['versions']['torch']}; {payload['date']}.\n")
    write_results("iw_eval", payload, md)
    print(md)


if __name__ == "__main__":
    main()
