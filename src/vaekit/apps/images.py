"""Image generation: train, evaluate and draw a VAE on MNIST, digits or a user's images.

The application chooses the data (:mod:`vaekit.apps.image_data`), the networks and the
likelihood (:mod:`vaekit.builders`) and its metrics; the loop is the shared
:class:`vaekit.train.Trainer`. Figures: samples, reconstructions, interpolations, latent
traversals, a 2-D latent map coloured by label, training curves and KL per dimension.
"""

from __future__ import annotations

import json
import math
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from vaekit import plots, runs
from vaekit.apps.image_data import ImageData, load_image_data
from vaekit.builders import build_vae, image_vae_description
from vaekit.config import RunConfig
from vaekit.core import VAE
from vaekit.data.images import read_images
from vaekit.errors import DataError, VaekitError
from vaekit.metrics.elbo import elbo_pass
from vaekit.metrics.latent import collapse_warning
from vaekit.metrics.likelihood import bits_per_dim, iw_nll
from vaekit.io import read_config
from vaekit.train import Tensors, Trainer
from vaekit.train.acceleration import check_train_settings
from vaekit.train.distributed import DistContext, barrier
from vaekit.train.checkpoint import atomic_write_text


def train(config: RunConfig, run_dir: str | Path, overwrite: bool = False, resume: bool = False,
          progress: bool = True, log: Callable[[str], None] = print, command: str | None = None,
          dist: DistContext | None = None, callbacks: list[Callable[[dict], None]] | None = None,
          figures: bool = True) -> Path:
    """Train a VAE into ``run_dir`` and write its weights, figures and model card.

    ``callbacks`` get each epoch's record (``vaekit tune`` reports it to Optuna's pruner);
    ``figures=False`` skips the figures (hyperparameter trials).

    Under torchrun (``dist`` given) every rank trains its shard; rank 0 alone creates the
    run directory and writes files.
    """
    main = dist is None or dist.is_main
    run_dir = Path(run_dir)
    if resume:
        if main:
            runs.prepare(run_dir, resume=True)
        config = runs.run_config(run_dir)
    data = load_image_data(config)
    description = image_vae_description(config.model, data.shape, data.n_classes)
    document = read_config(run_dir) if resume else runs.describe_run(description, config, command)
    new_run = main and not resume
    if new_run:
        check_train_settings(config.train, dist)  # a bad device or precision writes nothing
    # rank 0 creates the directory; an old run that --overwrite replaces stays until this one can be resumed
    # (under torchrun it is never moved back: an elastic restart must not resume it)
    with runs.replacing(run_dir, overwrite, log, restore=dist is None) if new_run else nullcontext():
        if new_run:
            runs.write_config(run_dir, document)
        barrier(dist)
        torch.manual_seed(config.train.seed)  # the initial weights follow the seed too
        model = build_vae(document)
        trainer = Trainer(model, config.train, data.train, data.val, run_dir, data.transform(),
                          callbacks=callbacks, progress=progress, log=log, dist=dist)
        result = trainer.fit(resume=resume)
        model.cpu()
        if main:
            model.save_pretrained(run_dir)
            log(f"trained {result.epochs} epochs ({result.stopped}), best validation -ELBO "
                f"{result.best_val_loss:.3f} nats")
            if figures:
                draw_figures(model, data, run_dir)
            runs.write_model_card(run_dir)
        barrier(dist)
        if main and resume:
            runs.drop_replaced(run_dir)  # a resumed run that --overwrite started is now whole (replacing drops it otherwise)
    return run_dir


def load_run(run_dir: str | Path) -> tuple[VAE, RunConfig, ImageData]:
    model = VAE.from_pretrained(run_dir)
    config = runs.run_config(run_dir)
    return model, config, load_image_data(config)


def _labels_for(model: VAE, data: Tensors, n: int) -> torch.Tensor | None:
    return None if model.n_classes == 0 else data.y[:n]


def draw_figures(model: VAE, data: ImageData, run_dir: Path, seed: int = 0) -> list[Path]:
    """All standard figures into ``run_dir/figures``; returns their paths."""
    fig = Path(run_dir) / "figures"
    torch.manual_seed(seed)
    test = data.test
    out = [plots.training_curves(runs.read_metrics(run_dir), fig / "training.png")]
    y = None if model.n_classes == 0 else torch.arange(64) % model.n_classes
    out.append(plots.image_grid(_as_images(model.sample(64, y), data.shape), fig / "samples.png",
                                title="Samples from the prior"))
    n = min(16, len(test))
    x = test.x[:n]
    out.append(plots.reconstruction_figure(_as_images(x, data.shape),
                                           _as_images(model.reconstruct(x, _labels_for(model, test, n)), data.shape),
                                           fig / "reconstructions.png"))
    if len(test) >= 2:
        rows = [model.interpolate(test.x[2 * i], test.x[2 * i + 1], 10,
                                  None if model.n_classes == 0 else test.y[2 * i : 2 * i + 2])
                for i in range(min(4, len(test) // 2))]
        out.append(plots.interpolation_figure(torch.stack([_as_images(r, data.shape) for r in rows]),
                                              fig / "interpolation.png"))
    out.append(traverse(model, data, fig / "traversals.png"))
    q = model.encode(test.x[:2000], None if model.n_classes == 0 else test.y[:2000])
    out.append(plots.latent_map(q.mean, None if test.y is None else test.y[:2000].numpy(), fig / "latent_map.png"))
    out.append(plots.kl_per_dim_figure(q.kl_to_standard_normal().mean(0), fig / "kl_per_dim.png"))
    return out


@torch.no_grad()
def traverse(model: VAE, data: ImageData, path: Path, dims: list[int] | None = None,
             steps: int = 9, span: float = 3.0) -> Path:
    """Decode z = mean(x) with one dimension swept over [-span, span] (most active dims first)."""
    x = data.test.x[:500]
    y = None if model.n_classes == 0 else data.test.y[:500]
    q = model.encode(x, y)
    if dims is None:
        order = torch.argsort(q.kl_to_standard_normal().mean(0), descending=True)
        dims = order[: min(8, model.latent_dim)].tolist()
    bad = [d for d in dims if not 0 <= d < model.latent_dim]
    if bad:
        raise DataError(f"latent dimensions {bad} out of range 0..{model.latent_dim - 1}")
    values = torch.linspace(-span, span, steps)
    base = q.mean[0]
    rows = []
    for d in dims:
        z = base.repeat(steps, 1)
        z[:, d] = values
        rows.append(_as_images(model.generate(z, None if y is None else y[:1].expand(steps)), data.shape))
    return plots.traversal_figure(torch.stack(rows), dims, [round(float(v), 2) for v in values], path)


def _as_images(x: torch.Tensor, shape) -> torch.Tensor:
    """Model outputs as (N, C, H, W) for plotting; flat vectors become square-ish images."""
    x = x.float().clamp(0, 1)
    if len(shape) == 3:
        return x.reshape(-1, *shape)
    d = math.prod(shape)
    side = math.isqrt(d)
    if side * side != d:
        return x.reshape(-1, 1, 1, d)
    return x.reshape(-1, 1, side, side)


def evaluate(run_dir: str | Path, iw_samples: int | None = None, n_test: int | None = None,
             progress: Callable[[int], None] | None = None) -> dict:
    """Test-set metrics of a run, also written to ``RUN/evaluation.json``."""
    model, config, data = load_run(run_dir)
    test = data.test if n_test is None else Tensors(data.test.x[:n_test], None if data.test.y is None else data.test.y[:n_test])
    k = iw_samples or config.eval.iw_samples
    stats = elbo_pass(model, test, batch_size=500)
    nll = float(iw_nll(model, test, k=k, chunk=config.eval.iw_chunk, batch_size=50, on_batch=progress).mean())
    au = stats.active_units
    result = {
        "n_test": stats.n,
        "test_elbo": stats.elbo,
        "reconstruction": stats.reconstruction,
        "kl": stats.kl,
        "iw_nll": nll,
        "iw_samples": k,
        "bits_per_dim": bits_per_dim(nll, math.prod(data.shape)),
        "active_units": au,
        "latent_dim": model.latent_dim,
        "mutual_information": stats.mutual_information(),
        "kl_per_dim": [round(float(v), 5) for v in stats.kl_per_dim],
        "collapse_warning": collapse_warning(stats.kl_per_dim, au),
    }
    result.update(_sample_quality(model, data, config, run_dir))
    atomic_write_text(Path(run_dir) / "evaluation.json", json.dumps(result, indent=2))
    runs.write_model_card(Path(run_dir), result)
    return result


def _sample_quality(model: VAE, data: ImageData, config: RunConfig, run_dir) -> dict:
    """Domain FID and precision/recall in the feature space of a small classifier."""
    from vaekit.metrics import quality

    if data.train.y is None:
        return {"sample_quality": "skipped: no labels to train a feature network"}
    net = quality.feature_net_for(data.name, data.train.x, data.train.y, data.n_classes,
                                  cache_dir=Path(run_dir) / "checkpoints")
    if net is None:
        return {}
    n = min(config.eval.n_generated, len(data.test))
    y = None if model.n_classes == 0 else data.test.y[:n]
    torch.manual_seed(0)
    fake = _as_images(model.sample(n, y), data.shape)
    real = _as_images(data.test.x[:n], data.shape)
    q = quality.sample_quality(net, real, fake)
    return {f"sample_{k}" if not k.startswith("domain") else k: v for k, v in q.items()}


def read_inputs(spec: str, data: ImageData) -> torch.Tensor:
    """An image given as a test-set index or a file path, as one (C, H, W) tensor.

    The file holds one image: an image file, or an array of the model's image shape (a
    leading batch axis of 1 allowed). A file of several images is refused rather than
    one of them picked.
    """
    if spec.isdigit():
        i = int(spec)
        if i >= len(data.test):
            raise DataError(f"test index {i} out of range (test set has {len(data.test)} images)")
        return data.test.x[i]
    x, _ = read_images(spec, data.shape)
    if tuple(x.shape[1:]) != data.shape:
        raise DataError(f"{spec}: image shape {tuple(x.shape[1:])} differs from the model's {data.shape}")
    if len(x) != 1:
        raise DataError(f"{spec}: holds {len(x)} images; give one image (a file or a test-set index)")
    return torch.from_numpy(x[0])


def encode_file(model: VAE, path: str, shape) -> np.ndarray:
    """Posterior means of the images in ``path`` (anything :func:`read_images` reads; an
    array of one image's shape counts as one image)."""
    x, _ = read_images(path, tuple(shape))
    if tuple(x.shape[1:]) != tuple(shape):
        raise DataError(f"{path}: data shape {tuple(x.shape[1:])} differs from the model's {tuple(shape)}")
    if model.n_classes:
        raise VaekitError("encoding with a conditional model needs labels; use the Python API")
    with torch.no_grad():
        return model.encode(torch.from_numpy(x)).mean.numpy()
