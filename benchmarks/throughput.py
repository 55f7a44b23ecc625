"""Training throughput: vaekit (default and fast settings) against Pythae, interleaved.

The classic MLP VAE 784-400-20 with a Bernoulli likelihood, Adam lr 1e-3, on MNIST
(dynamically binarized; random binary data of the same shape when MNIST is absent).
Each repetition runs every system once, in turn, so drifts of this shared machine hit
all of them alike; the table reports medians. Also measured in the same run: the
machine's fp32 and bf16 matmul peak, turned into a roofline in samples/s for this model
(~3.9 MFLOP per training sample: forward plus backward, 3 x 2 x 636k multiply-adds).

Each system trains 6 epochs of 60,000 images (2,814 steps at batch 128) and the speed is
the median over the epochs after the first (warm-up, compilation). Runs must be this
long: Adam's moments start to turn denormal after ~800 steps, which slows Pythae's step by
~9% from the third epoch on (``benchmarks/denormals.py``; vaekit flushes them), so a
few hundred steps measure a speed no real training run keeps.

    VAEKIT_DATA_DIR=../shared/data python benchmarks/throughput.py --reps 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, now, versions, write_results  # noqa: E402

from vaekit.config import TrainConfig, build_config  # noqa: E402
from vaekit.builders import build_vae, image_vae_description  # noqa: E402
from vaekit.train import Tensors, Trainer  # noqa: E402

HIDDEN, LATENT = 400, 20
MACS = 784 * HIDDEN + HIDDEN * 2 * LATENT + LATENT * HIDDEN + HIDDEN * 784  # forward, per sample
TRAIN_FLOP = 3 * 2 * MACS


SELECTION_SPLIT = 54000  # MNIST training images from here on are held out for choosing settings
ADAM_BETA2 = TrainConfig().adam_betas[1]  # vaekit's (and Adam's) default beta2


def mnist_like(n: int) -> torch.Tensor:
    try:
        from vaekit.apps.image_data import load_raw
        from vaekit.config import DataConfig

        x, _, _, _ = load_raw(DataConfig(name="mnist"))
        return torch.from_numpy(x[:n])
    except Exception as e:  # no MNIST here: same shape, random grey levels
        print(f"MNIST unavailable ({e}); using random data of the same shape", flush=True)
        return torch.rand(n, 1, 28, 28)


def matmul_peak(dtype: torch.dtype, size: int = 2048, reps: int = 10, device: str = "cpu",
                shape: tuple[int, int, int] | None = None) -> float:
    """FLOP/s of a square ``size`` matmul, or of an (m, k) @ (k, n) ``shape``."""
    m, k, n = shape or (size, size, size)
    reps = reps if shape is None else reps * 20
    a = torch.randn(m, k, dtype=dtype, device=device)
    b = torch.randn(k, n, dtype=dtype, device=device)
    a @ b
    _sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * m * k * n * reps / (time.perf_counter() - t)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def mnist_trainer(x: torch.Tensor, epochs: int, batch: int, lr: float, fast: bool = False, device: str = "cpu",
                  precision: str = "auto", lr_decay: float = 1.0, seed: int = 0,
                  flush_denormals: bool = True, beta2: float = ADAM_BETA2, compile: bool = False) -> Trainer:
    """The 784-400-20 Bernoulli VAE on ``x`` with vaekit's trainer and dynamic binarization,
    as every MNIST speed and quality benchmark here trains it (``compile``: torch.compile
    without the rest of the fast path)."""
    from vaekit.apps.image_data import dynamic_binarize

    cfg = build_config({
        "model": {"architecture": "mlp", "latent_dim": LATENT, "hidden": [HIDDEN]},
        "train": {"epochs": epochs, "batch_size": batch, "lr": lr, "lr_decay": lr_decay, "patience": None,
                  "adam_betas": [0.9, beta2],
                  "fast": fast, "compile": compile, "precision": precision, "device": device, "seed": seed,
                  "flush_denormals": flush_denormals},
    })
    torch.manual_seed(seed)
    model = build_vae(image_vae_description(cfg.model, (1, 28, 28)))
    return Trainer(model, cfg.train, Tensors(x), None, None, dynamic_binarize, progress=False)


def vaekit_train(x: torch.Tensor, epochs: int, batch: int, lr: float, fast: bool, device: str = "cpu",
                 beta2: float = ADAM_BETA2):
    """Train the 784-400-20 VAE with the vaekit trainer; returns (model, per-epoch history)."""
    trainer = mnist_trainer(x, epochs, batch, lr, fast, device, beta2=beta2)
    return trainer.model.cpu(), trainer.fit().history


def vaekit_sps(x: torch.Tensor, epochs: int, batch: int, lr: float, fast: bool, device: str = "cpu",
               beta2: float = ADAM_BETA2) -> float:
    _, history = vaekit_train(x, epochs, batch, lr, fast, device, beta2)
    return statistics.median(h["samples_per_second"] for h in history[1:])  # first epoch: warm-up/compile


def nll_delta(x: torch.Tensor, test: torch.Tensor, epochs: int, fast_batch: int, fast_lr: float, k: int,
              fast_beta2: float = ADAM_BETA2) -> dict:
    """Test IW-NLL after the same number of epochs with the default settings, the fast
    settings, and fp32 eager at the fast settings' batch, lr and Adam beta2: ``delta`` is
    fast minus default (batch size and precision together), ``delta_same_batch`` fast
    minus fp32 at the same batch (what compile + bf16 alone cost)."""
    from vaekit.metrics.likelihood import iw_nll

    out = {}
    for name, batch, lr, fast in (("default", 128, 1e-3, False), ("fast", fast_batch, fast_lr, True),
                                  ("fp32_fast_batch", fast_batch, fast_lr, False)):
        model, _ = vaekit_train(x, epochs, batch, lr, fast, beta2=ADAM_BETA2 if name == "default" else fast_beta2)
        out[name] = float(iw_nll(model, Tensors(test), k=k, chunk=100, batch_size=50).mean())
        print(f"{name}: test NLL {out[name]:.3f} after {epochs} epochs", flush=True)
    out["delta"] = out["fast"] - out["default"]
    out["delta_same_batch"] = out["fast"] - out["fp32_fast_batch"]
    return out


def pythae_vae():
    """Pythae's VAE with the same 784-400-20 networks as vaekit's."""
    from pythae.models import VAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder

    class Encoder(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(784, HIDDEN), nn.ReLU())
            self.mean, self.log_var = nn.Linear(HIDDEN, LATENT), nn.Linear(HIDDEN, LATENT)

        def forward(self, x):
            h = self.body(x)
            return ModelOutput(embedding=self.mean(h), log_covariance=self.log_var(h))

    class Decoder(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(LATENT, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 784), nn.Sigmoid())

        def forward(self, z):
            return ModelOutput(reconstruction=self.net(z).reshape(-1, 1, 28, 28))

    cfg = VAEConfig(input_dim=(1, 28, 28), latent_dim=LATENT, reconstruction_loss="bce")
    return VAE(cfg, encoder=Encoder(), decoder=Decoder())


class _StopPythae(Exception):
    pass


def pythae_epochs(data: torch.Tensor, epochs: int, batch: int, lr: float, device: str = "cpu", model=None,
                  after_epoch=None) -> list[float]:
    """Train Pythae's VAE with one ``TrainingPipeline`` for ``epochs`` epochs; the seconds of
    each epoch, from Pythae's own epoch-begin to epoch-end callbacks (its per-run set-up
    and final save are not counted, its per-epoch work is). ``after_epoch(epoch)`` runs
    outside the clock after each epoch; returning True stops training."""
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig
    from pythae.trainers.training_callbacks import TrainingCallback

    seconds: list[float] = []

    class Clock(TrainingCallback):
        def on_epoch_begin(self, training_config, **kwargs):
            self.start = time.perf_counter()

        def on_epoch_end(self, training_config, **kwargs):
            seconds.append(time.perf_counter() - self.start)
            if after_epoch is not None and after_epoch(len(seconds)):
                raise _StopPythae

    model = model if model is not None else pythae_vae()
    with tempfile.TemporaryDirectory() as out:
        tc = BaseTrainerConfig(output_dir=out, num_epochs=epochs, learning_rate=lr, per_device_train_batch_size=batch,
                               per_device_eval_batch_size=batch, no_cuda=not device.startswith("cuda"),
                               steps_saving=None)
        try:
            TrainingPipeline(model=model, training_config=tc)(train_data=data, eval_data=None, callbacks=[Clock()])
        except _StopPythae:
            pass
    return seconds


def pythae_sps(x: torch.Tensor, epochs: int, batch: int, lr: float, device: str = "cpu") -> float:
    data = torch.bernoulli(x)  # Pythae has no dynamic binarization: binarize once
    torch.manual_seed(0)
    times = pythae_epochs(data, epochs, batch, lr, device)
    return len(x) / statistics.median(times[1:] or times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=60000, help="training examples per epoch")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--fast-batch", type=int, default=1024)
    p.add_argument("--fast-lr", type=float, default=4e-3, help="chosen on held-out training images "
                   "(benchmarks/results/fast_settings_val.md), never on the test set")
    p.add_argument("--fast-beta2", type=float, default=ADAM_BETA2, help="Adam's beta2 of the fast settings")
    p.add_argument("--device", default="cpu", help="cpu or cuda: the GPU variant is the same script")
    p.add_argument("--nll-epochs", type=int, default=30, help="epochs of the fp32-vs-fast quality check (0: skip)")
    p.add_argument("--nll-k", type=int, default=1000, help="importance samples of that check")
    p.add_argument("--name", default="throughput", help="results file name (benchmarks/results/NAME.{json,md})")
    args = p.parse_args()
    x = mnist_like(args.n)
    fast_lr = args.fast_lr
    runs: dict[str, list[float]] = {"vaekit_default": [], "vaekit_fast": [], "pythae": []}
    peaks: dict[str, list[float]] = {"fp32": [], "bf16": [], "bf16_model_shape": []}
    for rep in range(args.reps):
        peaks["fp32"].append(matmul_peak(torch.float32, device=args.device))
        peaks["bf16"].append(matmul_peak(torch.bfloat16, device=args.device))
        # the model's largest layer at the fast batch: what small matmuls reach on this machine
        peaks["bf16_model_shape"].append(matmul_peak(torch.bfloat16, device=args.device,
                                                     shape=(args.fast_batch, 784, HIDDEN)))
        runs["vaekit_default"].append(vaekit_sps(x, args.epochs, 128, 1e-3, False, args.device))
        runs["vaekit_fast"].append(vaekit_sps(x, args.epochs, args.fast_batch, fast_lr, True, args.device,
                                                 args.fast_beta2))
        runs["pythae"].append(pythae_sps(x, args.epochs, 128, 1e-3, args.device))
        print(rep, {k: round(v[-1]) for k, v in runs.items()}, flush=True)
    quality = None
    if args.nll_epochs:
        from vaekit.apps.image_data import load_raw
        from vaekit.config import DataConfig

        _, _, tx, _ = load_raw(DataConfig(name="mnist"))
        test = torch.bernoulli(torch.from_numpy(tx), generator=torch.Generator().manual_seed(1234))
        quality = nll_delta(mnist_like(60000)[:SELECTION_SPLIT], test, args.nll_epochs, args.fast_batch, fast_lr, args.nll_k,
                            args.fast_beta2)
    med = {k: statistics.median(v) for k, v in runs.items()}
    peak = {k: statistics.median(v) for k, v in peaks.items()}
    roof = {k: v / TRAIN_FLOP for k, v in peak.items()}
    metrics = {
        "vaekit_default_sps": round(med["vaekit_default"]),
        "vaekit_fast_sps": round(med["vaekit_fast"]),
        "pythae_sps": round(med["pythae"]),
        "default_over_pythae": round(med["vaekit_default"] / med["pythae"], 2),
        "fast_over_pythae": round(med["vaekit_fast"] / med["pythae"], 2),
        "fp32_matmul_gflops": round(peak["fp32"] / 1e9, 1),
        "bf16_matmul_gflops": round(peak["bf16"] / 1e9, 1),
        "fp32_roofline_sps": round(roof["fp32"]),
        "bf16_roofline_sps": round(roof["bf16"]),
        "fast_fraction_of_bf16_roofline": round(med["vaekit_fast"] / roof["bf16"], 3),
        "bf16_model_shape_gflops": round(peak["bf16_model_shape"] / 1e9, 1),
        "fast_fraction_of_bf16_model_shape_roofline": round(med["vaekit_fast"] / roof["bf16_model_shape"], 3),
        "fast_nll_delta_nats": None if quality is None else round(quality["delta"], 3),
        "fast_nll_delta_same_batch_nats": None if quality is None else round(quality["delta_same_batch"], 3),
        "nll_check": quality,
        "samples": runs,
    }
    payload = {"benchmark": "throughput", "date": now(), "machine": machine(), "versions": versions("pythae"),
               "command": " ".join(sys.argv), "config": vars(args) | {"fast_lr": fast_lr}, "metrics": metrics}
    md = "\n".join([
        "| system | settings | samples/s (median) | vs Pythae |",
        "|---|---|---|---|",
        f"| vaekit | default: fp32, batch 128, eager, fused Adam | {metrics['vaekit_default_sps']} | {metrics['default_over_pythae']}x |",
        f"| vaekit | fast: compile + bf16, batch {args.fast_batch}, lr {fast_lr:.2g}"
        f"{'' if args.fast_beta2 == ADAM_BETA2 else f', Adam beta2 {args.fast_beta2:g}'} | {metrics['vaekit_fast_sps']} | {metrics['fast_over_pythae']}x |",
        f"| Pythae 0.1.2 | VAE + TrainingPipeline, batch 128 | {metrics['pythae_sps']} | 1.00x |",
        f"| roofline | fp32 matmul {metrics['fp32_matmul_gflops']} GFLOP/s | {metrics['fp32_roofline_sps']} | |",
        f"| roofline | bf16 matmul {metrics['bf16_matmul_gflops']} GFLOP/s | {metrics['bf16_roofline_sps']} | |",
        f"| roofline at the model's shape | bf16 {args.fast_batch}x784 @ 784x{HIDDEN}: "
        f"{metrics['bf16_model_shape_gflops']} GFLOP/s | {round(roof['bf16_model_shape'])} | |",
    ]) + (f"\n\nFast path: {metrics['fast_fraction_of_bf16_roofline']:.0%} of the bf16 roofline, "
          f"{metrics['fast_fraction_of_bf16_model_shape_roofline']:.0%} of the roofline at the model's own matmul shape.") + ("" if quality is None else
           f"\n\nQuality check, {args.nll_epochs} epochs on 54,000 MNIST images each, test NLL (k={args.nll_k}, "
           f"10,000 images): fp32 default {quality['default']:.2f}, fast {quality['fast']:.2f} nats "
           f"(delta {quality['delta']:+.2f}); fp32 eager at the fast batch and lr "
           f"{quality['fp32_fast_batch']:.2f} (fast minus it: {quality['delta_same_batch']:+.2f}).") + f"\n\n{payload['machine']['cpu']}, {payload['machine']['cores']} cores, torch {payload['versions']['torch']}; {args.reps} interleaved repetitions; {payload['date']}.\n"
    write_results(args.name, payload, md)
    print(md)


if __name__ == "__main__":
    main()
